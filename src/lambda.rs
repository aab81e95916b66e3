//! The Lambda function: its configuration, and what one invocation does.
//!
//! Each object an event announces goes through the same core as the CLI (routing, schema,
//! one commit per object, idempotence). Failure semantics follow the delivery:
//!
//! - S3 notifications and EventBridge events (asynchronous invocations): the invocation
//!   fails if any object fails, after every object was tried, so Lambda retries it and then
//!   hands it to the on-failure destination. Objects that landed are not landed twice by the
//!   retry (their ingest ids are in the table).
//! - SQS batches: each message succeeds or fails on its own, reported in `batchItemFailures`
//!   so that only failed messages return to the queue.
//!
//! Skipped objects (digests, folder markers, other files) succeed. One JSON log line per
//! object says what happened and how long each stage took.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::event::{EventError, Invocation, ObjectRef, parse_invocation};
use crate::ingest::{Ingester, Outcome, TableUris};
use crate::logstore::{self, CommitMode};
use crate::source::s3::S3Source;
use crate::{IngestError, aws};

/// The table URI variables.
pub const CLOUDTRAIL_TABLE_URI: &str = "CLOUDTRAIL_TABLE_URI";
pub const INSIGHTS_TABLE_URI: &str = "INSIGHTS_TABLE_URI";

/// The function's settings, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tables: TableUris,
    pub commit_mode: CommitMode,
}

/// A missing or bad setting, named.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the settings through `var` (the environment, in the function).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = |name: &str| -> Result<String, ConfigError> {
            let uri = var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ConfigError(format!("{name} is not set (the Delta table URI, s3://…)"))
                })?;
            deltalake::ensure_table_uri(&uri)
                .map_err(|e| ConfigError(format!("{name}={uri:?} is not a table URI: {e}")))?;
            Ok(uri)
        };
        let tables = TableUris {
            cloudtrail: table(CLOUDTRAIL_TABLE_URI)?,
            insights: table(INSIGHTS_TABLE_URI)?,
        };
        if tables.cloudtrail.trim_end_matches('/') == tables.insights.trim_end_matches('/') {
            return Err(ConfigError(format!(
                "{CLOUDTRAIL_TABLE_URI} and {INSIGHTS_TABLE_URI} are the same table; they need \
                 two locations"
            )));
        }
        let commit_mode = CommitMode::from_lookup(&var).map_err(ConfigError)?;
        Ok(Self {
            tables,
            commit_mode,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload is not an event we handle.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Some of the announced objects failed (each `<uri>: <cause>`); the others landed.
    #[error("{} of {total} objects failed: {}", failures.len(), failures.join("; "))]
    Objects { total: usize, failures: Vec<String> },
}

/// The function, kept across warm invocations (table handles stay open and are refreshed).
pub struct Function {
    ingester: Mutex<Ingester>,
    s3: S3Source,
}

impl Function {
    /// Sets the function up: AWS clients, commit mode, the (not yet opened) tables.
    pub async fn new(config: Config) -> Self {
        let aws_config = aws::load_config().await;
        logstore::install(&config.commit_mode, &aws_config);
        let ingester = Ingester::new(config.tables).with_commit_mode(config.commit_mode);
        Self {
            ingester: Mutex::new(ingester),
            s3: S3Source::new(aws::s3_client(&aws_config)),
        }
    }

    /// Handles one invocation payload.
    pub async fn handle(&self, payload: Value) -> Result<Value, InvocationError> {
        let invocation = parse_invocation(&payload)
            .inspect_err(|e| tracing::error!(error = %e, "cannot read the event"))?;
        match invocation {
            Invocation::Objects(objects) => {
                let total = objects.len();
                let mut failures = Vec::new();
                let mut results = Vec::new();
                for object in &objects {
                    match self.ingest(object).await {
                        Ok(summary) => results.push(summary),
                        Err(e) => failures.push(e),
                    }
                }
                if failures.is_empty() {
                    Ok(json!({ "objects": results }))
                } else {
                    Err(InvocationError::Objects { total, failures })
                }
            }
            Invocation::Queue(messages) => {
                let mut failed = Vec::new();
                for message in messages {
                    let ok = match message.objects {
                        Err(e) => {
                            log_bad_message(&message.message_id, &e);
                            false
                        }
                        Ok(objects) => {
                            let mut ok = true;
                            for object in &objects {
                                ok &= self.ingest(object).await.is_ok();
                            }
                            ok
                        }
                    };
                    if !ok {
                        failed.push(json!({ "itemIdentifier": message.message_id }));
                    }
                }
                Ok(json!({ "batchItemFailures": failed }))
            }
        }
    }

    /// Ingests one object, logging one line about it; the error is `<uri>: <cause>`.
    async fn ingest(&self, object: &ObjectRef) -> Result<Value, String> {
        let uri = object.uri();
        let resolved = match self.s3.resolve(object).await {
            Ok(resolved) => resolved,
            Err(e) => {
                tracing::error!(bucket = %object.bucket, key = %object.key, outcome = "failed",
                    error = %e, "object failed");
                return Err(e.to_string());
            }
        };
        let source = resolved.source();
        let open = self.s3.opener(&resolved);
        let mut ingester = self.ingester.lock().await;
        let result = ingester.ingest(&source, open).await;
        let table_uri = |kind| ingester.table(kind).map(|t| t.uri()).unwrap_or_default();
        match result {
            Ok(Outcome::Ingested(report)) => {
                let table = table_uri(report.kind);
                tracing::info!(
                    bucket = %resolved.bucket,
                    key = %resolved.key,
                    kind = %report.kind,
                    outcome = "ingested",
                    records = report.records,
                    object_bytes = report.object_bytes,
                    json_bytes = report.json_bytes,
                    files = report.files,
                    read_ms = millis(report.read),
                    parse_ms = millis(report.parse),
                    write_ms = millis(report.write),
                    commit_ms = millis(report.commit),
                    table = %table,
                    version = report.version,
                    commit_retries = report.commit_retries,
                    "object ingested"
                );
                Ok(json!({
                    "uri": uri, "outcome": "ingested", "kind": report.kind.to_string(),
                    "records": report.records, "table": table, "version": report.version,
                }))
            }
            Ok(Outcome::AlreadyIngested { kind }) => {
                let table = table_uri(kind);
                tracing::info!(bucket = %resolved.bucket, key = %resolved.key, kind = %kind,
                    outcome = "already_ingested", table = %table, "object already ingested");
                Ok(json!({ "uri": uri, "outcome": "already_ingested", "kind": kind.to_string() }))
            }
            Ok(Outcome::Skipped(reason)) => {
                tracing::info!(bucket = %resolved.bucket, key = %resolved.key,
                    outcome = "skipped", reason = %reason, "object skipped");
                Ok(json!({ "uri": uri, "outcome": "skipped", "reason": reason.to_string() }))
            }
            Err(IngestError { uri, cause }) => {
                tracing::error!(bucket = %resolved.bucket, key = %resolved.key,
                    outcome = "failed", error = %cause, "object failed");
                Err(format!("{uri}: {cause}"))
            }
        }
    }
}

fn log_bad_message(message_id: &str, error: &EventError) {
    tracing::error!(message_id, error = %error, outcome = "failed", "cannot read an SQS message");
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logstore::tests::lookup;

    #[test]
    fn config_needs_both_tables() {
        let err = Config::from_lookup(lookup(&[(INSIGHTS_TABLE_URI, "s3://b/i")])).unwrap_err();
        assert!(err.to_string().contains(CLOUDTRAIL_TABLE_URI), "{err}");
        let err = Config::from_lookup(lookup(&[(CLOUDTRAIL_TABLE_URI, "s3://b/c")])).unwrap_err();
        assert!(err.to_string().contains(INSIGHTS_TABLE_URI), "{err}");
        let err = Config::from_lookup(lookup(&[
            (CLOUDTRAIL_TABLE_URI, "s3://b/t"),
            (INSIGHTS_TABLE_URI, "s3://b/t/"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("same table"), "{err}");
    }

    #[test]
    fn config_names_a_bad_locking_provider() {
        let err = Config::from_lookup(lookup(&[
            (CLOUDTRAIL_TABLE_URI, "s3://b/c"),
            (INSIGHTS_TABLE_URI, "s3://b/i"),
            (logstore::LOCKING_PROVIDER, "redis"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains(logstore::LOCKING_PROVIDER),
            "{err}"
        );
    }

    #[test]
    fn config_reads_tables_and_mode() {
        let config = Config::from_lookup(lookup(&[
            (CLOUDTRAIL_TABLE_URI, "s3://b/c"),
            (INSIGHTS_TABLE_URI, "s3://b/i"),
            (logstore::LOCKING_PROVIDER, "dynamodb"),
            (logstore::LOCK_TABLE_NAME, "locks"),
        ]))
        .unwrap();
        assert_eq!(config.tables.cloudtrail, "s3://b/c");
        assert_eq!(config.tables.insights, "s3://b/i");
        assert_eq!(
            config.commit_mode,
            CommitMode::DynamoDb {
                table_name: "locks".into()
            }
        );
    }
}
