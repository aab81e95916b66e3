//! `cloudtrail-delta-maintenance`: the scheduled maintenance function (packaged as
//! `bootstrap` of its own function). Each invocation, whatever its payload (the template's
//! EventBridge schedule), compacts both tables, vacuums them and deletes expired log entries;
//! see `cloudtrail_delta::maintenance`. Safe while the ingest function commits.
//!
//! Its settings (the tables, the commit mode, `TARGET_FILE_MB`, `VACUUM_RETENTION_HOURS`) are
//! read from the environment at init (`cloudtrail_delta::settings`).

use cloudtrail_delta::aws;
use cloudtrail_delta::maintenance;
use cloudtrail_delta::settings::{Program, Settings};
use cloudtrail_delta::table::commit;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cloudtrail_delta_lambda::init_logging();
    let settings =
        Settings::from_env(Program::MaintenanceFunction).inspect_err(|e| tracing::error!("{e}"))?;
    commit::install(&settings.commit_mode, &aws::load_config().await);
    let settings = &settings;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let mut tables = Vec::new();
        let mut failures = Vec::new();
        let results = maintenance::upkeep_all(&settings.tables, &settings.commit_mode, settings.maintenance)
                .await;
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
