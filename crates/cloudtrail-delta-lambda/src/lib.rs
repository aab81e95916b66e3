//! The Lambda function: its configuration, and what one invocation does.
//!
//! The objects an event announces go through the same core as the CLI (routing, schema,
//! idempotence), together: one commit per table for all objects of an invocation, so an SQS
//! batch of thousands of notifications makes one commit, not thousands. A failing object
//! fails only itself (see [`Ingester::ingest_batch`]). Failure semantics follow the delivery:
//!
//! - S3 notifications and EventBridge events (asynchronous invocations): the invocation
//!   fails if any object fails, after every object was tried, so Lambda retries it and then
//!   hands it to the on-failure destination. Objects that landed are not landed twice by the
//!   retry (their ingest ids are in the table).
//! - SQS batches: each message succeeds or fails on its own, reported in `batchItemFailures`
//!   so that only failed messages return to the queue.
//!
//! Skipped objects (digests, folder markers, other files) succeed. Objects outside the log
//! bucket and prefix the function is deployed for fail without being read (see
//! [`cloudtrail_delta::source::scope`]). One JSON log line per object says what happened and how long each
//! stage took.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use cloudtrail_delta::TableUris;
use cloudtrail_delta::ingest::{BatchItem, DEFAULT_READ_AHEAD, Ingester, Outcome};
use cloudtrail_delta::parse::decode::Limits;
use cloudtrail_delta::parse::schema::LogKind;
use cloudtrail_delta::runtime::budget::Budget;
use cloudtrail_delta::runtime::metrics::InvocationMetrics;
use cloudtrail_delta::source::event::{EventError, Invocation, ObjectRef, parse_invocation};
use cloudtrail_delta::source::s3::{S3Object, S3Source};
use cloudtrail_delta::source::scope::LogScope;
use cloudtrail_delta::table::commit::{self, CommitMode};
use cloudtrail_delta::{IngestError, aws};

/// The table URI variables.
pub const CLOUDTRAIL_TABLE_URI: &str = "CLOUDTRAIL_TABLE_URI";
pub const INSIGHTS_TABLE_URI: &str = "INSIGHTS_TABLE_URI";
/// Optional: without it, aggregated-event objects fail, saying so.
pub const AGGREGATED_TABLE_URI: &str = "AGGREGATED_TABLE_URI";
/// Objects of an SQS batch read and parsed at once (default [`DEFAULT_READ_AHEAD`]).
pub const PARALLEL_READS: &str = "CLOUDTRAIL_DELTA_PARALLEL_READS";

/// JSON log lines, as the functions' `LoggingConfig: LogFormat: JSON` expects; `RUST_LOG`
/// sets the level (default `warn,cloudtrail_delta=info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,cloudtrail_delta=info".into()),
        )
        .init();
}

/// The settings both functions read from their environment (the ingest function also reads
/// its [`LogScope`], see [`scope_from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tables: TableUris,
    pub commit_mode: CommitMode,
    pub limits: Limits,
    /// Objects of a batch read at once.
    pub read_ahead: usize,
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
        let aggregated = match var(AGGREGATED_TABLE_URI).map(|v| v.trim().to_owned()) {
            Some(uri) if !uri.is_empty() => Some(table(AGGREGATED_TABLE_URI)?),
            _ => None,
        };
        let tables = TableUris {
            cloudtrail: table(CLOUDTRAIL_TABLE_URI)?,
            insights: table(INSIGHTS_TABLE_URI)?,
            aggregated,
        };
        let all = tables.all();
        for (i, (kind, uri)) in all.iter().enumerate() {
            for (other, other_uri) in &all[i + 1..] {
                if uri.trim_end_matches('/') == other_uri.trim_end_matches('/') {
                    return Err(ConfigError(format!(
                        "{} and {} are the same table; each needs its own location",
                        table_variable(*kind),
                        table_variable(*other)
                    )));
                }
            }
        }
        let commit_mode = CommitMode::from_lookup(&var).map_err(ConfigError)?;
        let limits = Limits::from_lookup(&var).map_err(ConfigError)?;
        let read_ahead = match var(PARALLEL_READS).as_deref().map(str::trim) {
            None | Some("") => DEFAULT_READ_AHEAD,
            Some(v) => v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError(format!("{PARALLEL_READS}={v:?} is not a positive number"))
            })?,
        };
        Ok(Self {
            tables,
            commit_mode,
            limits,
            read_ahead,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The variable naming the table of a kind's records.
fn table_variable(kind: LogKind) -> &'static str {
    match kind {
        LogKind::CloudTrail => CLOUDTRAIL_TABLE_URI,
        LogKind::Insights => INSIGHTS_TABLE_URI,
        LogKind::Aggregated => AGGREGATED_TABLE_URI,
    }
}

/// The objects the ingest function may read, from its environment (`LOG_BUCKET`,
/// `LOG_PREFIX`).
pub fn scope_from_env() -> Result<LogScope, ConfigError> {
    LogScope::from_lookup(|name| std::env::var(name).ok()).map_err(ConfigError)
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
    scope: LogScope,
    ingester: Mutex<Ingester>,
    s3: S3Source,
    /// The metrics' `FunctionName` dimension.
    function_name: String,
}

impl Function {
    /// Sets the function up: AWS clients, commit mode, the (not yet opened) tables, and the
    /// only objects it reads.
    pub async fn new(config: Config, scope: LogScope) -> Self {
        let aws_config = aws::load_config().await;
        commit::install(&config.commit_mode, &aws_config);
        let ingester = Ingester::new(config.tables)
            .with_commit_mode(config.commit_mode)
            .with_limits(config.limits)
            .with_read_ahead(config.read_ahead);
        Self {
            scope,
            ingester: Mutex::new(ingester),
            s3: S3Source::new(aws::s3_client(&aws_config)),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "cloudtrail-delta".into()),
        }
    }

    /// Handles one invocation payload. All objects of an invocation (of every message of an
    /// SQS batch) are ingested together: one commit per table. An object that cannot finish
    /// within `budget` fails, clearly and with nothing committed, before Lambda would kill
    /// the invocation.
    pub async fn handle(&self, payload: Value, budget: Budget) -> Result<Value, InvocationError> {
        let started = Instant::now();
        let mut metrics = InvocationMetrics::default();
        let result = self.handle_measured(payload, budget, &mut metrics).await;
        // One EMF line per invocation, failed ones included (their ObjectsFailed counts).
        println!(
            "{}",
            metrics.emf(&self.function_name, started.elapsed(), SystemTime::now())
        );
        cloudtrail_delta::runtime::memory::return_freed_pages();
        result
    }

    async fn handle_measured(
        &self,
        payload: Value,
        budget: Budget,
        metrics: &mut InvocationMetrics,
    ) -> Result<Value, InvocationError> {
        let invocation = parse_invocation(&payload)
            .inspect_err(|e| tracing::error!(error = %e, "cannot read the event"))?;
        match invocation {
            Invocation::Objects(objects) => {
                let total = objects.len();
                let refs: Vec<&ObjectRef> = objects.iter().collect();
                let mut failures = Vec::new();
                let mut results = Vec::new();
                for result in self.ingest(&refs, budget, metrics).await {
                    match result {
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
                // Every object of every readable message, and the message it came from.
                let mut refs = Vec::new();
                let mut owners = Vec::new();
                let mut failed_messages = vec![false; messages.len()];
                for (index, message) in messages.iter().enumerate() {
                    match &message.objects {
                        Err(e) => {
                            log_bad_message(&message.message_id, e);
                            metrics.record_failure();
                            failed_messages[index] = true;
                        }
                        Ok(objects) => {
                            refs.extend(objects.iter());
                            owners.extend(std::iter::repeat_n(index, objects.len()));
                        }
                    }
                }
                let results = self.ingest(&refs, budget, metrics).await;
                for (owner, result) in owners.into_iter().zip(results) {
                    failed_messages[owner] |= result.is_err();
                }
                let failed: Vec<Value> = messages
                    .iter()
                    .zip(failed_messages)
                    .filter(|(_, failed)| *failed)
                    .map(|(message, _)| json!({ "itemIdentifier": message.message_id }))
                    .collect();
                Ok(json!({ "batchItemFailures": failed }))
            }
        }
    }

    /// Ingests objects together (one commit per table; a failing object fails only itself),
    /// logging one line about each; an error is `<uri>: <cause>`.
    async fn ingest(
        &self,
        objects: &[&ObjectRef],
        budget: Budget,
        metrics: &mut InvocationMetrics,
    ) -> Vec<Result<Value, String>> {
        let mut results: Vec<Option<Result<Value, String>>> = vec![None; objects.len()];
        let mut items = Vec::new();
        let mut resolved_objects = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            // Checked before any request about the object.
            let admitted = match self.scope.admit(object) {
                Ok(admitted) => admitted,
                Err(refused) => {
                    metrics.record_failure();
                    tracing::error!(bucket = %object.bucket, key = %object.key,
                        outcome = "failed", reason = refused.reason, error = %refused,
                        "object refused");
                    results[index] = Some(Err(refused.to_string()));
                    continue;
                }
            };
            match self.s3.resolve(&admitted).await {
                Ok(resolved) => {
                    items.push(BatchItem {
                        object: resolved.source(),
                        open: Arc::new(self.s3.opener(&resolved)),
                    });
                    resolved_objects.push((index, resolved));
                }
                Err(e) => {
                    metrics.record_failure();
                    tracing::error!(bucket = %object.bucket, key = %object.key,
                        outcome = "failed", error = %e, "object failed");
                    results[index] = Some(Err(e.to_string()));
                }
            }
        }
        if !items.is_empty() {
            let mut ingester = self.ingester.lock().await;
            ingester.set_budget(budget);
            let outcomes = ingester.ingest_batch(&items).await;
            for ((index, resolved), outcome) in resolved_objects.iter().zip(outcomes) {
                metrics.record(&outcome);
                results[*index] = Some(log_outcome(&ingester, resolved, outcome));
            }
        }
        results
            .into_iter()
            .map(|result| result.expect("every object has a result"))
            .collect()
    }
}

/// Logs one line about an object's outcome and gives its summary (or its error).
fn log_outcome(
    ingester: &Ingester,
    resolved: &S3Object,
    result: Result<Outcome, IngestError>,
) -> Result<Value, String> {
    let uri = resolved.uri();
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

fn log_bad_message(message_id: &str, error: &EventError) {
    tracing::error!(message_id, error = %error, outcome = "failed", "cannot read an SQS message");
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable lookup over fixed pairs, standing in for the environment.
    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

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
            (commit::LOCKING_PROVIDER, "redis"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains(commit::LOCKING_PROVIDER), "{err}");
    }

    #[test]
    fn config_reads_tables_and_mode() {
        let config = Config::from_lookup(lookup(&[
            (CLOUDTRAIL_TABLE_URI, "s3://b/c"),
            (INSIGHTS_TABLE_URI, "s3://b/i"),
            (commit::LOCKING_PROVIDER, "dynamodb"),
            (commit::LOCK_TABLE_NAME, "locks"),
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
