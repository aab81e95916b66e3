//! The aggregated-events record schema (`CloudTrail-Aggregated/` files): five-minute summaries
//! of a trail's data events, as AWS's "CloudTrail record contents for aggregated events"
//! documents them. They have no `eventTime`; the table is partitioned by the date of
//! `timeWindow.windowStart`.

use crate::columns::{I64, List, Str, Timestamp};
use crate::json_struct;

json_struct! {
    /// `timeWindow`: the interval the events were aggregated over.
    pub struct TimeWindow {
        "windowStart" => window_start: Timestamp,
        "windowEnd" => window_end: Timestamp,
        "windowSize" => window_size: Str,
    }
}

json_struct! {
    /// An element of a dimension's `statistics`: a value of the dimension and its count.
    pub struct Statistic {
        "name" => name: Str,
        "value" => value: I64,
    }
}

json_struct! {
    /// `summary.primaryDimension` and each element of `summary.details`.
    pub struct Dimension {
        "dimension" => dimension: Str,
        "statistics" => statistics: List<Statistic>,
        "aggregationType" => aggregation_type: Str,
    }
}

json_struct! {
    /// `summary`
    pub struct Summary {
        "primaryDimension" => primary_dimension: Dimension,
        "details" => details: List<Dimension>,
    }
}

json_struct! {
    /// One aggregated record: the top-level columns of the aggregated-events table.
    pub struct AggregatedRecord {
        "eventVersion" => event_version: Str,
        "accountId" => account_id: Str,
        "eventId" => event_id: Str,
        "eventCategory" => event_category: Str,
        "eventType" => event_type: Str,
        "awsRegion" => aws_region: Str,
        "eventSource" => event_source: Str,
        "timeWindow" => time_window: TimeWindow,
        "summary" => summary: Summary,
    }
}

impl super::RecordFields for AggregatedRecord {
    const TIME_PATH: &'static [&'static str] = &["timeWindow", "windowStart"];

    fn event_time(&self) -> &Timestamp {
        &self.time_window.window_start
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Int64Type};

    use crate::schema::{EVENT_DATE, LogKind, RESCUED_DATA};

    const RECORD: &str = r#"{"eventVersion":"1.0","accountId":"111122223333",
        "eventId":"62759c1a-6248-48e1-a6b3-d5fb7e6c4bc0","eventCategory":"Aggregated",
        "eventType":"AwsAggregatedEvent","awsRegion":"us-west-2","eventSource":"s3.amazonaws.com",
        "timeWindow":{"windowStart":"2025-11-17T23:55:00Z","windowEnd":"2025-11-18T00:00:00Z","windowSize":"PT5M"},
        "summary":{"primaryDimension":{"dimension":"eventName","statistics":[{"name":"PutObject","value":1000}],"aggregationType":"Count"},
        "details":[{"dimension":"resourceARN","statistics":[{"name":"arn:aws:s3:::bucket-1","value":800},{"name":"arn:aws:s3:::bucket-2","value":200}],"aggregationType":"Count"}]}}"#;

    #[test]
    fn an_aggregated_record_is_typed_and_dated_by_its_window_start() {
        let mut builder = LogKind::Aggregated.batch_builder();
        builder.append(RECORD.as_bytes()).unwrap();
        let batch = builder.finish("s3://b/k");
        assert_eq!(batch.schema(), LogKind::Aggregated.arrow_schema());
        let days = batch
            .column_by_name(EVENT_DATE)
            .unwrap()
            .as_primitive::<Date32Type>();
        assert_eq!(days.value(0), 20409); // 2025-11-17, the window's start, not its end
        assert!(batch.column_by_name(RESCUED_DATA).unwrap().is_null(0));
        let summary = batch.column_by_name("summary").unwrap().as_struct();
        let details = summary.column_by_name("details").unwrap().as_list::<i32>();
        let first = details.value(0);
        let statistics = first
            .as_struct()
            .column_by_name("statistics")
            .unwrap()
            .as_list::<i32>();
        let counts = statistics.value(0);
        let values = counts
            .as_struct()
            .column_by_name("value")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(values.values().to_vec(), [800, 200]);
    }

    #[test]
    fn a_record_without_a_window_start_is_refused_by_name() {
        let mut builder = LogKind::Aggregated.batch_builder();
        let err = builder
            .append(br#"{"eventId":"x","timeWindow":{"windowSize":"PT5M"}}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the record has no valid timeWindow.windowStart"
        );
    }
}
