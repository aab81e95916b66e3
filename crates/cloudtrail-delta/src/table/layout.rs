//! How a table lays out its files: partitioned by `event_date`, with statistics on the columns
//! people filter on.

use deltalake::errors::DeltaTableError;

use cloudtrail_parse::schema::{EVENT_DATE, LogKind};

/// The columns people filter on, of which the Delta log and the Parquet footers keep
/// statistics (min, max, null count).
pub fn stats_columns(kind: LogKind) -> &'static [&'static str] {
    match kind {
        LogKind::CloudTrail => &[
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "recipientAccountId",
            "eventID",
            "errorCode",
            "sourceIPAddress",
            "readOnly",
            "eventType",
            "eventCategory",
            "userIdentity.arn",
            "userIdentity.accountId",
            "userIdentity.type",
            "userIdentity.principalId",
        ],
        LogKind::Insights => &[
            "eventTime",
            "awsRegion",
            "recipientAccountId",
            "eventID",
            "eventType",
            "sharedEventID",
            "insightDetails.state",
            "insightDetails.eventSource",
            "insightDetails.eventName",
            "insightDetails.insightType",
        ],
        LogKind::Aggregated => &[
            "timeWindow.windowStart",
            "timeWindow.windowEnd",
            "accountId",
            "awsRegion",
            "eventSource",
            "eventId",
            "eventCategory",
            "summary.primaryDimension.dimension",
        ],
        LogKind::Digest => &[
            "digestEndTime",
            "awsAccountId",
            "digestS3Object",
            "logFile.s3Object",
        ],
    }
}

/// The day `event_date` values count from (Arrow's `Date32`).
fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

/// The `event_date` partition value of a day (days since the epoch): `YYYY-MM-DD`.
pub fn partition_value(days: i32) -> Result<String, DeltaTableError> {
    epoch()
        .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
        .map(|date| date.format("%Y-%m-%d").to_string())
        .ok_or_else(|| DeltaTableError::Generic(format!("{EVENT_DATE} {days} is out of range")))
}

/// Days since the epoch of an `event_date` partition value (`YYYY-MM-DD`).
pub fn partition_days(value: &str) -> Result<i32, DeltaTableError> {
    let parsed = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|e| DeltaTableError::Generic(format!("partition {EVENT_DATE}={value:?}: {e}")))?;
    i32::try_from((parsed - epoch()).num_days()).map_err(|_| {
        DeltaTableError::Generic(format!("partition {EVENT_DATE}={value:?} out of range"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_and_days_since_the_epoch_convert_both_ways() {
        assert_eq!(partition_value(0).unwrap(), "1970-01-01");
        assert_eq!(partition_value(19_843).unwrap(), "2024-04-30");
        assert!(partition_value(i32::MAX).is_err());
        assert_eq!(partition_days("1970-01-01").unwrap(), 0);
        assert_eq!(partition_days("2024-04-30").unwrap(), 19_843);
        assert!(partition_days("30/04/2024").is_err());
    }
}
