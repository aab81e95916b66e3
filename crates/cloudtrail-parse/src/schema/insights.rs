//! The CloudTrail Insights record schema (`CloudTrail-Insight/` files).

use crate::columns::{F64, I64, List, Str, Timestamp};
use crate::json_struct;

json_struct! {
    /// `…statistics.baseline` and `…statistics.insight`
    pub struct Average {
        "average" => average: F64,
    }
}

json_struct! {
    /// `insightDetails.insightContext.statistics`
    pub struct Statistics {
        "baseline" => baseline: Average,
        "insight" => insight: Average,
        "insightDuration" => insight_duration: I64,
        "baselineDuration" => baseline_duration: I64,
    }
}

json_struct! {
    /// An element of an attribution's `insight` or `baseline` list
    pub struct AttributionValue {
        "value" => value: Str,
        "average" => average: F64,
    }
}

json_struct! {
    /// An element of `insightDetails.insightContext.attributions`
    pub struct Attribution {
        "attribute" => attribute: Str,
        "insight" => insight: List<AttributionValue>,
        "baseline" => baseline: List<AttributionValue>,
    }
}

json_struct! {
    /// `insightDetails.insightContext`
    pub struct InsightContext {
        "statistics" => statistics: Statistics,
        "attributions" => attributions: List<Attribution>,
    }
}

json_struct! {
    /// `insightDetails`
    pub struct InsightDetails {
        "state" => state: Str,
        "eventSource" => event_source: Str,
        "eventName" => event_name: Str,
        "insightType" => insight_type: Str,
        "errorCode" => error_code: Str,
        "insightContext" => insight_context: InsightContext,
    }
}

json_struct! {
    /// One Insights record: the top-level columns of the Insights table.
    pub struct InsightRecord {
        "eventVersion" => event_version: Str,
        "eventTime" => event_time: Timestamp,
        "awsRegion" => aws_region: Str,
        "eventID" => event_id: Str,
        "eventType" => event_type: Str,
        "recipientAccountId" => recipient_account_id: Str,
        "sharedEventID" => shared_event_id: Str,
        "insightDetails" => insight_details: InsightDetails,
        "eventCategory" => event_category: Str,
    }
}

impl super::RecordFields for InsightRecord {
    fn event_time(&self) -> &Timestamp {
        &self.event_time
    }
}
