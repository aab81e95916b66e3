//! CloudWatch metrics of an invocation, in the Embedded Metric Format (EMF): one JSON line on
//! stdout that CloudWatch Logs turns into metrics, with no API call and no agent.
//!
//! Namespace `CloudTrailDelta`, dimension `FunctionName`. Per invocation:
//!
//! | metric                  | unit         | meaning                                              |
//! |-------------------------|--------------|------------------------------------------------------|
//! | `ObjectsIngested`       | Count        | objects committed by this invocation                 |
//! | `ObjectsAlreadyIngested`| Count        | duplicates: objects found in the table already       |
//! | `ObjectsSkipped`        | Count        | folder markers, other files                          |
//! | `ObjectsFailed`         | Count        | objects that failed (retried, then dead-lettered)    |
//! | `Records`               | Count        | records committed                                    |
//! | `ObjectBytes`           | Bytes        | bytes of the committed objects, as stored (gzip)     |
//! | `CommitRetries`         | Count        | retries of the most contended commit (lost races)    |
//! | `IngestLagSeconds`      | Seconds      | now − the newest eventTime committed (if any)        |
//! | `DurationMs`            | Milliseconds | the invocation's handling time                       |
//!
//! And when the invocation verified a digest's hour ([`crate::verify`]):
//!
//! | metric                  | unit         | meaning                                              |
//! |-------------------------|--------------|------------------------------------------------------|
//! | `LogFilesUnverified`    | Count        | ingested log files no digest vouches for (unlisted, or a hash mismatch) |
//! | `LogFilesMissing`       | Count        | log files a digest lists that no table holds         |
//! | `DigestSignatureInvalid`| Count        | digests unsigned, badly signed, or breaking the chain |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::ingest::{Outcome, Report};
use crate::verify::{FindingKind, Verification};

/// The CloudWatch namespace of our metrics.
pub const NAMESPACE: &str = "CloudTrailDelta";

/// Figures of one invocation, added up object by object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InvocationMetrics {
    pub ingested: u64,
    pub already_ingested: u64,
    pub skipped: u64,
    pub failed: u64,
    pub records: u64,
    pub object_bytes: u64,
    pub commit_retries: u64,
    /// The newest eventTime committed, in microseconds since the epoch.
    pub newest_event_micros: Option<i64>,
    /// What the verifications of this invocation found, if it made any.
    pub verified: Option<VerificationCounts>,
}

/// The findings of verifications, by metric.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VerificationCounts {
    pub log_files_unverified: u64,
    pub log_files_missing: u64,
    pub digest_signature_invalid: u64,
}

impl VerificationCounts {
    /// The counts of one verification's findings.
    pub fn of(verification: &Verification) -> Self {
        let count =
            |kinds: &[FindingKind]| kinds.iter().map(|k| verification.count(*k) as u64).sum();
        Self {
            log_files_unverified: count(&[FindingKind::Unlisted, FindingKind::HashMismatch]),
            log_files_missing: count(&[FindingKind::Missing]),
            digest_signature_invalid: count(&[
                FindingKind::Unsigned,
                FindingKind::BadSignature,
                FindingKind::ChainBreak,
            ]),
        }
    }
}

impl InvocationMetrics {
    /// Adds one object's result.
    pub fn record<E>(&mut self, result: &Result<Outcome, E>) {
        match result {
            Ok(Outcome::Ingested(report)) => self.add_report(report),
            Ok(Outcome::AlreadyIngested { .. }) => self.already_ingested += 1,
            Ok(Outcome::Skipped(_)) => self.skipped += 1,
            Err(_) => self.failed += 1,
        }
    }

    /// Adds what one verification found.
    pub fn record_verification(&mut self, verification: &Verification) {
        let found = VerificationCounts::of(verification);
        let total = self
            .verified
            .get_or_insert_with(VerificationCounts::default);
        total.log_files_unverified += found.log_files_unverified;
        total.log_files_missing += found.log_files_missing;
        total.digest_signature_invalid += found.digest_signature_invalid;
    }

    /// Adds one object that failed before it reached the ingester (unreadable event, etc.).
    pub fn record_failure(&mut self) {
        self.failed += 1;
    }

    fn add_report(&mut self, report: &Report) {
        self.ingested += 1;
        self.records += report.records;
        self.object_bytes += report.object_bytes;
        self.commit_retries = self.commit_retries.max(report.commit_retries);
        self.newest_event_micros = self.newest_event_micros.max(report.newest_event_micros);
    }

    /// The EMF document for these figures, as of `now`.
    pub fn emf(&self, function_name: &str, duration: Duration, now: SystemTime) -> Value {
        let now_millis = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut values: Vec<(&str, &str, Value)> = vec![
            ("ObjectsIngested", "Count", json!(self.ingested)),
            (
                "ObjectsAlreadyIngested",
                "Count",
                json!(self.already_ingested),
            ),
            ("ObjectsSkipped", "Count", json!(self.skipped)),
            ("ObjectsFailed", "Count", json!(self.failed)),
            ("Records", "Count", json!(self.records)),
            ("ObjectBytes", "Bytes", json!(self.object_bytes)),
            ("CommitRetries", "Count", json!(self.commit_retries)),
            (
                "DurationMs",
                "Milliseconds",
                json!(duration.as_secs_f64() * 1e3),
            ),
        ];
        if let Some(found) = self.verified {
            values.push((
                "LogFilesUnverified",
                "Count",
                json!(found.log_files_unverified),
            ));
            values.push(("LogFilesMissing", "Count", json!(found.log_files_missing)));
            values.push((
                "DigestSignatureInvalid",
                "Count",
                json!(found.digest_signature_invalid),
            ));
        }
        if let Some(newest) = self.newest_event_micros {
            let lag = (now_millis as f64 / 1e3 - newest as f64 / 1e6).max(0.0);
            values.push(("IngestLagSeconds", "Seconds", json!(lag)));
        }
        let definitions: Vec<Value> = values
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
            .collect();
        let mut document = Map::new();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_millis,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": definitions,
                }],
            }),
        );
        document.insert("FunctionName".into(), json!(function_name));
        for (name, _, value) in values {
            document.insert(name.into(), value);
        }
        Value::Object(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudtrail_parse::route::SkipReason;
    use cloudtrail_parse::schema::LogKind;

    fn report(records: u64, retries: u64, newest_micros: i64) -> Report {
        Report {
            kind: LogKind::CloudTrail,
            records,
            object_bytes: 1_000,
            json_bytes: 9_000,
            sha256: cloudtrail_parse::Sha256Hash([0; 32]),
            files: 1,
            version: 3,
            commit_retries: retries,
            newest_event_micros: Some(newest_micros),
            read: Duration::ZERO,
            parse: Duration::ZERO,
            write: Duration::ZERO,
            commit: Duration::ZERO,
        }
    }

    #[test]
    fn an_invocation_becomes_one_emf_document() {
        let mut metrics = InvocationMetrics::default();
        let t0 = 1_714_500_000_000_000; // 2024-04-30T18:00:00Z in micros
        metrics.record::<()>(&Ok(Outcome::Ingested(report(10, 2, t0))));
        metrics.record::<()>(&Ok(Outcome::Ingested(report(5, 0, t0 - 60_000_000))));
        metrics.record::<()>(&Ok(Outcome::AlreadyIngested {
            kind: LogKind::CloudTrail,
        }));
        metrics.record::<()>(&Ok(Outcome::Skipped(SkipReason::FolderMarker)));
        metrics.record(&Err("bad"));
        let now = UNIX_EPOCH + Duration::from_secs(1_714_500_090);
        let doc = metrics.emf("ingest-fn", Duration::from_millis(250), now);

        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_714_500_090_000u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(doc["FunctionName"], "ingest-fn");
        // Every declared metric has its value at the root, as EMF requires.
        let declared = directive["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), 9);
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has no value");
        }
        assert_eq!(doc["ObjectsIngested"], 2);
        assert_eq!(doc["ObjectsAlreadyIngested"], 1);
        assert_eq!(doc["ObjectsSkipped"], 1);
        assert_eq!(doc["ObjectsFailed"], 1);
        assert_eq!(doc["Records"], 15);
        assert_eq!(doc["ObjectBytes"], 2_000);
        assert_eq!(doc["CommitRetries"], 2);
        assert_eq!(doc["IngestLagSeconds"], 90.0);
        assert_eq!(doc["DurationMs"], 250.0);
    }

    #[test]
    fn no_lag_without_committed_records() {
        let mut metrics = InvocationMetrics::default();
        metrics.record::<()>(&Ok(Outcome::Skipped(SkipReason::FolderMarker)));
        let doc = metrics.emf("f", Duration::ZERO, SystemTime::now());
        assert!(doc.get("IngestLagSeconds").is_none());
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"IngestLagSeconds"));
    }
}
