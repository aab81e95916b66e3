//! The ingest function: what one invocation does (its settings: `cloudtrail_delta::settings`).
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
//! Skipped objects (folder markers, other files) succeed. Objects outside the log bucket and
//! prefix the function is deployed for fail without being read (see
//! [`cloudtrail_delta::source::scope`]). One JSON log line per object says what happened and
//! how long each stage took.
//!
//! A digest that lands is verified later, once its hour's grace period has passed, through
//! the verification queue ([`verification`]); the verification requests come back as SQS
//! messages, each succeeding or failing on its own like notifications.

pub mod verification;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use cloudtrail_delta::ingest::{BatchItem, Ingester, Outcome};
use cloudtrail_delta::runtime::budget::Budget;
use cloudtrail_delta::runtime::metrics::InvocationMetrics;
use cloudtrail_delta::settings::{DEFAULT_LOG_FILTER, Settings};
use cloudtrail_delta::source::event::{EventError, Invocation, ObjectRef, parse_invocation};
use cloudtrail_delta::source::s3::{S3Object, S3Source};
use cloudtrail_delta::source::scope::LogScope;
use cloudtrail_delta::table::commit;
use cloudtrail_delta::{IngestError, LogKind, aws};

use self::verification::{VerificationError, Verifier};

/// JSON log lines, as the functions' `LoggingConfig: LogFormat: JSON` expects; `RUST_LOG`
/// sets the level (default [`DEFAULT_LOG_FILTER`]).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        .init();
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

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SetupError(#[from] VerificationError);

/// The function, kept across warm invocations (table handles stay open and are refreshed).
pub struct Function {
    scope: LogScope,
    ingester: Mutex<Ingester>,
    s3: S3Source,
    /// The metrics' `FunctionName` dimension.
    function_name: String,
    /// Verifies each digest's hour later; `None` without a verification queue.
    verifier: Option<Verifier>,
}

impl Function {
    /// Sets the function up from its settings (see [`cloudtrail_delta::settings::Program::IngestFunction`]): AWS clients,
    /// commit mode, the (not yet opened) tables, and the only objects it reads.
    pub async fn new(settings: Settings) -> Result<Self, SetupError> {
        let aws_config = aws::load_config().await;
        let verifier = Verifier::new(&settings, &aws_config)?;
        commit::install(&settings.commit_mode, &aws_config);
        let scope = settings
            .scope
            .clone()
            .expect("the ingest function's settings have a scope");
        let ingester = Ingester::from_settings(&settings);
        Ok(Self {
            scope,
            ingester: Mutex::new(ingester),
            s3: S3Source::new(aws::s3_client(&aws_config)),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "cloudtrail-delta".into()),
            verifier,
        })
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
                    if let Some(request) = &message.verify {
                        failed_messages[index] = !self.verify(request, metrics).await;
                        continue;
                    }
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

    /// Handles a verification request (verifies the hour, or sends it again until it is
    /// due); false when it failed and should come back.
    async fn verify(
        &self,
        request: &cloudtrail_delta::source::event::VerifyRequest,
        metrics: &mut InvocationMetrics,
    ) -> bool {
        let Some(verifier) = &self.verifier else {
            tracing::error!(digest = %request.digest,
                "a verification request, but no VERIFY_QUEUE_URL is set: dropped");
            return true;
        };
        match verifier.handle(request).await {
            Ok(Some(verification)) => {
                metrics.record_verification(&verification);
                true
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!(error = %e, "verification failed");
                false
            }
        }
    }

    /// Asks for the verification of the hour of a digest that landed (or was found in the
    /// table already: a retry may be the one whose first request was never sent); the error
    /// names the digest.
    async fn schedule_verification(&self, uri: &str) -> Result<(), String> {
        let Some((verifier, request)) = self
            .verifier
            .as_ref()
            .and_then(|v| Some((v, v.request_for(uri)?)))
        else {
            return Ok(());
        };
        verifier.enqueue(&request).await.map_err(|e| {
            tracing::error!(uri = %uri, error = %e, "verification not scheduled");
            e.to_string()
        })
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
            let mut digests = Vec::new();
            for ((index, resolved), outcome) in resolved_objects.iter().zip(outcomes) {
                metrics.record(&outcome);
                if let Ok(
                    Outcome::Ingested(cloudtrail_delta::Report {
                        kind: LogKind::Digest,
                        ..
                    })
                    | Outcome::AlreadyIngested {
                        kind: LogKind::Digest,
                    },
                ) = &outcome
                {
                    digests.push((*index, resolved.uri()));
                }
                results[*index] = Some(log_outcome(&ingester, resolved, outcome));
            }
            drop(ingester);
            for (index, uri) in digests {
                if let Err(e) = self.schedule_verification(&uri).await {
                    metrics.record_failure();
                    results[index] = Some(Err(e));
                }
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
