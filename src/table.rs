//! A Delta table of log records: created on first use, appended to one source object per commit.
//!
//! Exactly-once per source object rests on Delta transaction identifiers (`txn` actions): each
//! commit carries `txn { appId: <the object's ingest id>, version: 1 }`. Before writing, the
//! ingester asks the table whether that app id is already present; when two ingests of the same
//! object race, the loser's commit fails in delta-rs' conflict checker
//! (`ConcurrentTransaction`) and is reported as already ingested. Transaction identifiers are
//! table state, not file names, so they survive OPTIMIZE and checkpoints.
//!
//! The table handle is refreshed incrementally, so the cost of an append does not grow with
//! the number of files; every [`RELOAD_AFTER_VERSIONS`] versions it is loaded afresh from the
//! newest checkpoint, which keeps a long-lived process's memory flat.

use std::collections::HashMap;

use deltalake::errors::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder};

use crate::ingested::IngestedIds;
use crate::logstore::{self, CommitMode};
use crate::schema::{EVENT_DATE, LogKind};
use crate::writer::LogWriter;

/// Properties every table is created with.
///
/// - `delta.appendOnly`: audit logs are evidence; rows are never updated or deleted
///   (OPTIMIZE and VACUUM still work: they do not change data).
/// - `delta.checkpointInterval`: a checkpoint every 100 commits keeps table loads fast.
/// - `delta.dataSkippingStatsColumns`: file statistics on the columns people filter on
///   ([`stats_columns`]), instead of the first 32 leaf columns (mostly `userIdentity`
///   internals).
pub fn table_properties(kind: LogKind) -> Vec<(&'static str, String)> {
    vec![
        ("delta.appendOnly", "true".to_owned()),
        ("delta.checkpointInterval", "100".to_owned()),
        (
            "delta.dataSkippingStatsColumns",
            stats_columns(kind).join(","),
        ),
    ]
}

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

/// A table handle that has been brought forward this many versions is loaded afresh.
///
/// delta-rs keeps the table's file list in memory as one Arrow batch per version applied
/// since the handle was loaded, each with a few dozen arrays of overhead whatever its rows:
/// measured, a process that committed object after object held about 60 KB more per commit,
/// for good. A fresh load reads the newest checkpoint (one batch for all its files) and the
/// commits after it. Once per checkpoint interval (see [`table_properties`]) costs one
/// checkpoint read per hundred versions.
pub const RELOAD_AFTER_VERSIONS: u64 = 100;

/// Parquet files are rolled once they reach this size (the encoded bytes, plus the estimate of
/// the row group in progress): about 12 row groups, the footer metadata parquet holds until a
/// file closes. A log of up to ~130 MB of JSON makes one file per partition; a larger one makes
/// several, which `maintain` compacts into 128 MiB files. Measured, one core: rolling at
/// 128 MiB instead took a 1 GB log's peak RSS from 61 to 64–65 MB.
const TARGET_FILE_SIZE: u64 = 16 << 20;

/// What a commit attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The object's files are in the table at this version.
    Committed { version: u64, retries: u64 },
    /// Another ingest of the same object committed first; nothing was added.
    AlreadyIngested,
}

/// One Delta table of one log kind.
pub struct LogTable {
    kind: LogKind,
    table: DeltaTable,
    /// The ingest ids in the table, loaded on first use; `Unreadable` when the table's
    /// checkpoints are of a kind the index does not read (then delta-rs is asked per id).
    ingested: Index,
    /// The version the handle was last loaded afresh at.
    loaded_at: u64,
}

enum Index {
    NotLoaded,
    Loaded(IngestedIds),
    Unreadable,
}

/// Commit properties without delta-rs' expired-log cleanup after the commit, for every
/// commit we make. delta-rs lists all of `_delta_log` to do it (every file, on every commit:
/// one object per commit keeps a month of them) and compiles a regex; maintenance cleans the
/// log itself instead, and counts what it deleted (`maintenance::upkeep`).
pub(crate) fn without_log_cleanup() -> CommitProperties {
    CommitProperties::default().with_cleanup_expired_logs(Some(false))
}

impl LogTable {
    /// Opens the table at `uri`, creating it (schema, partitioning, properties) if absent.
    /// Fails if a table on S3 would not commit the way `mode` says.
    pub async fn open_or_create(
        uri: &str,
        kind: LogKind,
        storage_options: &HashMap<String, String>,
        mode: &CommitMode,
    ) -> Result<Self, DeltaTableError> {
        let url = deltalake::ensure_table_uri(uri)?;
        let mut table = DeltaTableBuilder::from_url(url)?
            .with_storage_options(storage_options.clone())
            .build()?;
        logstore::check_log_store(table.log_store().as_ref(), mode)?;
        if table.log_store().is_delta_table_location().await? {
            table.load().await?;
        } else {
            table = Self::create(table, kind).await?;
        }
        let expected: StructType = kind.arrow_schema().as_ref().try_into_kernel()?;
        let actual = table.snapshot()?.schema();
        if actual.as_ref() != &expected {
            return Err(DeltaTableError::Generic(format!(
                "{uri} is a Delta table with another schema than the {kind} schema of this version"
            )));
        }
        Ok(Self {
            kind,
            loaded_at: table.version().unwrap_or(0),
            table,
            ingested: Index::NotLoaded,
        })
    }

    async fn create(table: DeltaTable, kind: LogKind) -> Result<DeltaTable, DeltaTableError> {
        let schema: StructType = kind.arrow_schema().as_ref().try_into_kernel()?;
        let log_store = table.log_store();
        let created = CreateBuilder::new()
            .with_log_store(log_store.clone())
            .with_table_name(format!("cloudtrail_{kind}"))
            .with_comment(format!(
                "AWS CloudTrail {kind} records, landed by cloudtrail-delta"
            ))
            .with_columns(schema.fields().cloned())
            .with_partition_columns([EVENT_DATE])
            .with_configuration(
                table_properties(kind)
                    .into_iter()
                    .map(|(k, v)| (k, Some(v))),
            )
            .with_save_mode(SaveMode::Ignore)
            // Only ever as version 0: delta-rs would otherwise retry a create that lost the
            // race as version 1, a second metadata commit that fails concurrent appends.
            .with_commit_properties(without_log_cleanup().with_max_retries(0))
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another writer created it at the same moment: use theirs.
            Err(create_error) => {
                let mut table = DeltaTable::new(log_store);
                match table.load().await {
                    Ok(()) => Ok(table),
                    Err(_) => Err(create_error),
                }
            }
        }
    }

    pub fn kind(&self) -> LogKind {
        self.kind
    }

    /// The table's URI.
    pub fn uri(&self) -> String {
        self.table.table_url().to_string()
    }

    /// The version the handle was last loaded afresh at (see [`RELOAD_AFTER_VERSIONS`]).
    pub fn loaded_at(&self) -> u64 {
        self.loaded_at
    }

    /// The version of the loaded state.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Brings the loaded state up to the newest version: reads only the new log entries, or
    /// loads the table afresh after [`RELOAD_AFTER_VERSIONS`].
    pub async fn refresh(&mut self) -> Result<(), DeltaTableError> {
        let version = self.table.version().unwrap_or(0);
        if version.saturating_sub(self.loaded_at) >= RELOAD_AFTER_VERSIONS {
            let mut fresh = DeltaTable::new(self.table.log_store());
            fresh.load().await?;
            self.loaded_at = fresh.version().unwrap_or(0);
            self.table = fresh;
            return Ok(());
        }
        self.table.update_incremental(None).await
    }

    /// Whether an object with this ingest id is already in the table.
    /// As of the loaded version: [`refresh`](Self::refresh) first to see other writers' commits.
    pub async fn contains(&mut self, ingest_id: &str) -> Result<bool, DeltaTableError> {
        let version = self.table.version().unwrap_or(0);
        let log_store = self.table.log_store();
        if let Index::NotLoaded = self.ingested {
            self.ingested = match IngestedIds::load(log_store.as_ref(), version).await? {
                Some(index) => Index::Loaded(index),
                None => Index::Unreadable,
            };
        }
        match &mut self.ingested {
            Index::Loaded(index) => {
                index.catch_up(log_store.as_ref(), version).await?;
                Ok(index.contains(ingest_id))
            }
            Index::NotLoaded | Index::Unreadable => Ok(self
                .table
                .snapshot()?
                .transaction_version(log_store.as_ref(), ingest_id)
                .await?
                .is_some()),
        }
    }

    /// A writer that streams zstd Parquet files into this table's partitions.
    pub fn writer(&self) -> LogWriter {
        LogWriter::for_table(&self.table, self.kind, TARGET_FILE_SIZE)
    }

    /// Commits `adds` as one append carrying the ingest id of every object they hold
    /// (`objects`: ingest id and URI of each).
    pub async fn commit(
        &mut self,
        adds: Vec<Add>,
        objects: &[(&str, &str)],
    ) -> Result<CommitOutcome, DeltaTableError> {
        let now = chrono::Utc::now().timestamp_millis();
        let transactions = objects
            .iter()
            .map(|(ingest_id, _)| Transaction::new_with_last_update(*ingest_id, 1, Some(now)))
            .collect();
        let sources: Vec<&str> = objects.iter().map(|(_, uri)| *uri).collect();
        let properties = without_log_cleanup()
            .with_application_transactions(transactions)
            .with_metadata([(
                "cloudtrail_delta.sources".to_owned(),
                serde_json::json!(sources),
            )])
            .with_max_retries(100);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![EVENT_DATE.to_owned()]),
            predicate: None,
        };
        let snapshot = self.table.snapshot()?;
        let committed = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(snapshot), self.table.log_store(), operation)
            .await;
        match committed {
            Ok(done) => {
                crate::crash::point(crate::crash::AFTER_COMMIT);
                let version = done.version();
                let retries = done.metrics.num_retries;
                self.table.state = Some(done.snapshot());
                if let Index::Loaded(index) = &mut self.ingested {
                    for (ingest_id, _) in objects {
                        index.insert(ingest_id);
                    }
                }
                Ok(CommitOutcome::Committed { version, retries })
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => {
                self.refresh().await?;
                let mut held = 0;
                for (ingest_id, _) in objects {
                    held += usize::from(self.contains(ingest_id).await?);
                }
                if held == objects.len() {
                    Ok(CommitOutcome::AlreadyIngested)
                } else {
                    Err(DeltaTableError::Generic(format!(
                        "commit of {} conflicted with a concurrent transaction that ingested \
                         {held} of its {} objects",
                        sources.join(", "),
                        objects.len()
                    )))
                }
            }
            Err(e) => Err(e),
        }
    }
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
