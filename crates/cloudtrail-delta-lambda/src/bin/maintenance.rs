//! `cloudtrail-delta-maintenance`: the scheduled maintenance function (packaged as
//! `bootstrap` of its own function). Each invocation, whatever its payload (the template's
//! EventBridge schedule), compacts both tables, vacuums them and deletes expired log entries;
//! see `cloudtrail_delta::maintenance`. Safe while the ingest function commits.
//!
//! Settings: `CLOUDTRAIL_TABLE_URI`, `INSIGHTS_TABLE_URI` and the commit mode as for the ingest
//! function; `TARGET_FILE_MB` (default 128) and `VACUUM_RETENTION_HOURS` (default 168).

use std::time::Duration;

use cloudtrail_delta::aws;
use cloudtrail_delta::maintenance::{self, Settings};
use cloudtrail_delta::table::commit;
use cloudtrail_delta_lambda::Config;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cloudtrail_delta_lambda::init_logging();
    let config = Config::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let settings = settings_from_env().inspect_err(|e| tracing::error!("{e}"))?;
    commit::install(&config.commit_mode, &aws::load_config().await);
    let (config, settings) = (&config, settings);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let mut tables = Vec::new();
        let mut failures = Vec::new();
        let results = maintenance::upkeep_all(&config.tables, &config.commit_mode, settings).await;
        for (kind, uri, result) in results {
            match result {
                Ok(Some(done)) => {
                    tracing::info!(table = %uri, kind = %kind, files_removed = done.compaction.files_removed,
                        files_added = done.compaction.files_added, files_vacuumed = done.files_vacuumed,
                        log_entries_cleaned = done.log_entries_cleaned, "maintenance done: {done}");
                    tables.push(json!({
                        "table": uri, "kind": kind.to_string(),
                        "objects_indexed": done.objects_indexed,
                        "index_partitions_compacted": done.index_partitions_compacted,
                        "txn_retention_set": done.txn_retention_set,
                        "partitions_compacted": done.compaction.partitions,
                        "files_removed": done.compaction.files_removed,
                        "files_added": done.compaction.files_added,
                        "partitions_conflicted": done.compaction.partitions_conflicted,
                        "files_vacuumed": done.files_vacuumed,
                        "log_entries_cleaned": done.log_entries_cleaned,
                    }));
                }
                Ok(None) => tables.push(json!({ "table": uri, "kind": kind.to_string(), "missing": true })),
                Err(e) => {
                    tracing::error!(table = %uri, kind = %kind, error = %e, "maintenance failed");
                    failures.push(format!("{kind} table {uri}: {e}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(json!({ "tables": tables }))
        } else {
            Err(Diagnostic {
                error_type: "MaintenanceFailed".into(),
                error_message: failures.join("; "),
            })
        }
    }))
    .await
}

fn settings_from_env() -> Result<Settings, String> {
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match std::env::var(name).ok().as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("configuration: {name}={v:?} is not a whole number")),
        }
    };
    let defaults = Settings::default();
    Ok(Settings {
        target_file_bytes: number("TARGET_FILE_MB", defaults.target_file_bytes >> 20)?.max(1) << 20,
        vacuum_retention: Duration::from_secs(
            number(
                "VACUUM_RETENTION_HOURS",
                defaults.vacuum_retention.as_secs() / 3600,
            )? * 3600,
        ),
    })
}
