//! A Delta table of log records: created on first use, appended to one source object per commit.
//!
//! Exactly-once per source object rests on Delta transaction identifiers (`txn` actions): each
//! commit carries `txn { appId: <the object's ingest id>, version: 1, lastUpdated }` per
//! object. Before writing, the ingester asks whether the table holds that id: in the commits
//! its ingest index does not cover yet ([`RecentIngests`]), then in the index
//! ([`IngestIndex`]), whose lookups cost one or two ranged reads whatever the table's age.
//! When two ingests of the same object race, the loser's commit fails in delta-rs' conflict
//! checker (`ConcurrentTransaction`) and is reported as already ingested. Transaction
//! identifiers are table state, not file names, so they survive OPTIMIZE and checkpoints.
//!
//! State that does not grow with history: the table keeps `txn` actions in its checkpoints
//! for [`TXN_RETENTION`] only (`delta.setTransactionRetentionDuration`), and its writers
//! extend the index before every checkpoint they write ([`LogTable::commit`]), so an id
//! leaves the checkpoints only once the index holds it, and a cold start reads at most about
//! one checkpoint interval of commits plus the index's ranged reads.
//!
//! The table handle is refreshed incrementally, so the cost of an append does not grow with
//! the number of files; every [`RELOAD_AFTER_VERSIONS`] versions it is loaded afresh from the
//! newest checkpoint, which keeps a long-lived process's memory flat.

pub mod commit;
pub mod commit_cache;
pub mod evolution;
pub mod ingest_index;
pub mod ingested;
pub mod layout;

use std::collections::HashMap;

use deltalake::errors::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitConflictError, TransactionError};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableBuilder};

use self::commit::{CommitMode, without_log_cleanup};
use self::evolution::{Incompatible, missing_fields};
use self::ingest_index::IngestIndex;
use self::ingested::{IngestedObject, RecentIngests, SHA256_KEY, SOURCES_KEY, delivery_day};
use self::layout::stats_columns;
use crate::writer::LogWriter;
use cloudtrail_parse::Sha256Hash;
use cloudtrail_parse::schema::{EVENT_DATE, LogKind};
use deltalake::kernel::LogicalFileView;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

/// Properties every table is created with.
///
/// - `delta.appendOnly`: audit logs are evidence; rows are never updated or deleted
///   (OPTIMIZE and VACUUM still work: they do not change data).
/// - `delta.checkpointInterval`: a checkpoint every 100 commits keeps table loads fast.
/// - `delta.setTransactionRetentionDuration`: checkpoints keep `txn` actions for
///   [`TXN_RETENTION`]; the ingest index remembers the objects after that.
/// - `delta.dataSkippingStatsColumns`: file statistics on the columns people filter on
///   ([`stats_columns`]), instead of the first 32 leaf columns (mostly `userIdentity`
///   internals).
pub fn table_properties(kind: LogKind) -> Vec<(&'static str, String)> {
    vec![
        ("delta.appendOnly", "true".to_owned()),
        ("delta.checkpointInterval", "100".to_owned()),
        (TXN_RETENTION_PROPERTY, TXN_RETENTION.to_owned()),
        (
            "delta.dataSkippingStatsColumns",
            stats_columns(kind).join(","),
        ),
    ]
}

/// The table property that expires `txn` actions from checkpoints.
pub const TXN_RETENTION_PROPERTY: &str = "delta.setTransactionRetentionDuration";

/// How long checkpoints keep an ingested object's `txn` action. Lookups do not depend on it
/// (the ingest index holds every id before a checkpoint drops it); it bounds the checkpoints,
/// and covers Lambda's asynchronous retries (up to 6 hours) for other Delta readers of `txn`.
pub const TXN_RETENTION: &str = "interval 6 hours";

/// An object whose key's delivery date is this many days before its ingest is a backfill:
/// its `txn` action carries that date as `lastUpdated`, so it is expired from the start and
/// a backfill of years adds nothing to checkpoints (the index and the log remember it).
const BACKFILL_AFTER_DAYS: i64 = 2;

/// The record batches of one of a table's Parquet files, read whole first: for small files
/// (compaction's inputs, the ingest index's files), where one request beats ranged reads.
pub(crate) async fn read_whole_file(
    store: &dyn ObjectStore,
    file: &LogicalFileView,
) -> Result<ParquetRecordBatchReader, DeltaTableError> {
    let bytes = store
        .get(&file.object_store_path())
        .await
        .map_err(DeltaTableError::from)?
        .bytes()
        .await
        .map_err(DeltaTableError::from)?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?)
}

/// A table handle that has been brought forward this many versions is loaded afresh.
///
/// delta-rs keeps the table's file list in memory as one Arrow batch per version applied
/// since the handle was loaded, each with a few dozen arrays of overhead whatever its rows, so
/// a process that commits object after object would hold more with every commit, for good. A
/// fresh load reads the newest checkpoint (one batch for all its files) and the
/// commits after it. Once per checkpoint interval (see [`table_properties`]) costs one
/// checkpoint read per hundred versions.
pub const RELOAD_AFTER_VERSIONS: u64 = 100;

/// Parquet files are rolled once they reach this size (the encoded bytes, plus the estimate of
/// the row group in progress): about 12 row groups, the footer metadata parquet holds until a
/// file closes. A log of up to ~130 MB of JSON makes one file per partition; a larger one makes
/// several, which `maintain` compacts into 128 MiB files (rolling at 128 MiB while ingesting
/// would raise a large log's peak memory by the metadata held).
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
    /// Options of the table's store, for its ingest index.
    storage_options: HashMap<String, String>,
    /// What the table holds, loaded on first use; `Unreadable` when the table's checkpoints
    /// are of a kind [`RecentIngests`] does not read (then delta-rs is asked per id).
    ingested: Ingested,
    /// The version the handle was last loaded afresh at.
    loaded_at: u64,
}

enum Ingested {
    NotLoaded,
    Loaded {
        recent: RecentIngests,
        index: IngestIndex,
    },
    Unreadable,
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
        let mut table = Self::unloaded(uri, storage_options, mode)?;
        if table.log_store().is_delta_table_location().await? {
            table.load().await?;
        } else {
            table = Self::create(table, kind).await?;
        }
        let table = Self::evolve(table, kind, uri).await?;
        Ok(Self {
            kind,
            loaded_at: table.version().unwrap_or(0),
            table,
            storage_options: storage_options.clone(),
            ingested: Ingested::NotLoaded,
        })
    }

    /// Brings `table` to this version's schema (see [`evolution::add_missing_columns`]); a
    /// column of another type fails, naming it.
    async fn evolve(
        table: DeltaTable,
        kind: LogKind,
        uri: &str,
    ) -> Result<DeltaTable, DeltaTableError> {
        let ours: StructType = kind.arrow_schema().as_ref().try_into_kernel()?;
        evolution::add_missing_columns(table, &ours, uri, |e: Incompatible| {
            DeltaTableError::Generic(format!(
                "{uri} cannot take this version's {kind} records: {e}; write them to \
                 another table, or rewrite this one with the column's new type"
            ))
        })
        .await
    }

    /// Checks, without a request, that a table can be at `uri`: a table URI of a known
    /// store, with a log store for `mode`. A bad location then fails once, before any object.
    pub fn check_location(
        uri: &str,
        storage_options: &HashMap<String, String>,
        mode: &CommitMode,
    ) -> Result<(), DeltaTableError> {
        Self::unloaded(uri, storage_options, mode).map(drop)
    }

    /// The table handle at `uri`, not loaded.
    fn unloaded(
        uri: &str,
        storage_options: &HashMap<String, String>,
        mode: &CommitMode,
    ) -> Result<DeltaTable, DeltaTableError> {
        let url = deltalake::ensure_table_uri(uri)?;
        let table = DeltaTableBuilder::from_url(url)?
            .with_storage_options(storage_options.clone())
            .build()?;
        commit::check_log_store(table.log_store().as_ref(), mode)?;
        Ok(table)
    }

    async fn create(table: DeltaTable, kind: LogKind) -> Result<DeltaTable, DeltaTableError> {
        let schema: StructType = kind.arrow_schema().as_ref().try_into_kernel()?;
        let builder = CreateBuilder::new()
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
            );
        commit::create_once(table.log_store(), builder).await
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
            // What the index took over since is forgotten: loaded again on the next lookup.
            self.ingested = Ingested::NotLoaded;
            return Ok(());
        }
        self.table.update_incremental(None).await
    }

    /// Which of `objects` (ingest id and URI of each) the table already holds, in order.
    /// As of the loaded version: [`refresh`](Self::refresh) first to see other writers' commits.
    pub async fn holds(&mut self, objects: &[(&str, &str)]) -> Result<Vec<bool>, DeltaTableError> {
        let version = self.table.version().unwrap_or(0);
        let log_store = self.table.log_store();
        if let Ingested::NotLoaded = self.ingested {
            let index = IngestIndex::open(self.table.table_url(), &self.storage_options).await?;
            let watermark = index.watermark().await?;
            self.ingested =
                match RecentIngests::load(log_store.as_ref(), watermark, version).await? {
                    Some(recent) => Ingested::Loaded { recent, index },
                    None => Ingested::Unreadable,
                };
        }
        match &mut self.ingested {
            Ingested::Loaded { recent, index } => {
                recent.catch_up(log_store.as_ref(), version).await?;
                let mut held: Vec<bool> =
                    objects.iter().map(|(id, _)| recent.contains(id)).collect();
                let ask: Vec<(&str, Option<chrono::NaiveDate>)> = objects
                    .iter()
                    .zip(&held)
                    .filter(|(_, held)| !**held)
                    .map(|((id, uri), _)| (*id, delivery_day(uri)))
                    .collect();
                if !ask.is_empty() {
                    let found = index.lookup(&ask).await?;
                    for ((id, _), held) in objects.iter().zip(held.iter_mut()) {
                        *held |= found.contains(*id);
                    }
                }
                Ok(held)
            }
            Ingested::NotLoaded | Ingested::Unreadable => {
                let snapshot = self.table.snapshot()?;
                let mut held = Vec::with_capacity(objects.len());
                for (id, _) in objects {
                    held.push(
                        snapshot
                            .transaction_version(log_store.as_ref(), id)
                            .await?
                            .is_some(),
                    );
                }
                Ok(held)
            }
        }
    }

    /// A writer that streams zstd Parquet files into this table's partitions.
    pub fn writer(&self) -> LogWriter {
        LogWriter::for_table(&self.table, self.kind, TARGET_FILE_SIZE)
    }

    /// Commits `adds` as one append carrying the ingest id of every object they hold, and
    /// its URI and SHA-256 for the ingest index. When the commit is due a checkpoint,
    /// extends the ingest index first, then writes the checkpoint (see the module docs).
    pub async fn commit(
        &mut self,
        adds: Vec<Add>,
        objects: &[NewObject<'_>],
    ) -> Result<CommitOutcome, DeltaTableError> {
        let mut retried_metadata = false;
        loop {
            match self.commit_once(adds.clone(), objects).await {
                // Maintenance changed the table's properties meanwhile: once more on the new
                // metadata, if the schema is still ours.
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(CommitConflictError::MetadataChanged),
                }) if !retried_metadata => {
                    retried_metadata = true;
                    self.table.update_incremental(None).await?;
                    self.check_schema()?;
                }
                other => return other,
            }
        }
    }

    /// Checks that the table, whose metadata changed meanwhile, still holds every column of
    /// ours (a newer release may have added more).
    fn check_schema(&self) -> Result<(), DeltaTableError> {
        let ours: StructType = self.kind.arrow_schema().as_ref().try_into_kernel()?;
        match missing_fields(self.table.snapshot()?.schema().as_ref(), &ours) {
            Ok(missing) if missing.is_empty() => Ok(()),
            Ok(missing) => Err(DeltaTableError::Generic(format!(
                "{} changed meanwhile and lacks the columns {} of this version's {} schema",
                self.uri(),
                missing.join(", "),
                self.kind
            ))),
            Err(e) => Err(DeltaTableError::Generic(format!(
                "{} changed meanwhile: {e}",
                self.uri()
            ))),
        }
    }

    async fn commit_once(
        &mut self,
        adds: Vec<Add>,
        objects: &[NewObject<'_>],
    ) -> Result<CommitOutcome, DeltaTableError> {
        let now = chrono::Utc::now();
        let transactions = objects
            .iter()
            .map(|o| {
                Transaction::new_with_last_update(o.ingest_id, 1, Some(last_updated(o.uri, now)))
            })
            .collect();
        let sources: Vec<&str> = objects.iter().map(|o| o.uri).collect();
        let hashes: Vec<String> = objects.iter().map(|o| o.sha256.to_hex()).collect();
        let properties = without_log_cleanup()
            .with_application_transactions(transactions)
            .with_metadata([
                (SOURCES_KEY.to_owned(), serde_json::json!(sources)),
                (SHA256_KEY.to_owned(), serde_json::json!(hashes)),
            ])
            // The checkpoint waits for the index (below).
            .with_create_checkpoint(false)
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
                crate::runtime::crash::point(crate::runtime::crash::AFTER_COMMIT);
                let version = done.version();
                let retries = done.metrics.num_retries;
                self.table.state = Some(done.snapshot());
                if let Ingested::Loaded { recent, .. } = &mut self.ingested {
                    for (object, sha256) in objects.iter().zip(hashes) {
                        recent.insert(IngestedObject {
                            ingest_id: object.ingest_id.to_owned(),
                            uri: Some(object.uri.to_owned()),
                            version,
                            committed_at_ms: now.timestamp_millis(),
                            sha256: Some(sha256),
                        });
                    }
                }
                let interval = self
                    .table
                    .snapshot()?
                    .table_config()
                    .checkpoint_interval()
                    .get();
                if (version + 1).is_multiple_of(interval)
                    && let Err(e) = self.index_and_checkpoint().await
                {
                    // The commit stands; the next checkpoint, or maintenance, tries again.
                    tracing::warn!(table = %self.uri(), version, error = %e,
                        "no checkpoint: the ingest index could not be extended");
                }
                Ok(CommitOutcome::Committed { version, retries })
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => {
                self.refresh().await?;
                let asked: Vec<(&str, &str)> =
                    objects.iter().map(|o| (o.ingest_id, o.uri)).collect();
                let held = self.holds(&asked).await?.into_iter().filter(|h| *h).count();
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

    /// Extends the ingest index through the loaded version, then writes a checkpoint there:
    /// the checkpoint may drop expired `txn` actions because the index holds them.
    pub async fn index_and_checkpoint(&mut self) -> Result<(), DeltaTableError> {
        let version = self.table.version().unwrap_or(0);
        if let Ingested::NotLoaded = self.ingested {
            self.holds(&[]).await?;
        }
        let Ingested::Loaded { recent, index } = &mut self.ingested else {
            return Err(DeltaTableError::Generic(
                "the table's checkpoint is of a kind the ingest index cannot read".into(),
            ));
        };
        let log_store = self.table.log_store();
        recent.catch_up(log_store.as_ref(), version).await?;
        index.extend(&recent.through(version), version).await?;
        recent.forget_through(version);
        deltalake::protocol::checkpoints::create_checkpoint(&self.table, None).await
    }
}

/// One object an ingest commit records.
#[derive(Debug, Clone, Copy)]
pub struct NewObject<'a> {
    /// Its ingest id (see [`crate::SourceObject::ingest_id`]).
    pub ingest_id: &'a str,
    pub uri: &'a str,
    /// The SHA-256 of its uncompressed bytes.
    pub sha256: Sha256Hash,
}

/// The `lastUpdated` of an object's `txn` action: now, or for a backfill (an object whose key
/// was dated [`BACKFILL_AFTER_DAYS`] or more before now) the start of its delivery day.
fn last_updated(uri: &str, now: chrono::DateTime<chrono::Utc>) -> i64 {
    match delivery_day(uri) {
        Some(day) if (now.date_naive() - day).num_days() >= BACKFILL_AFTER_DAYS => day
            .and_hms_opt(0, 0, 0)
            .map_or(now.timestamp_millis(), |t| t.and_utc().timestamp_millis()),
        _ => now.timestamp_millis(),
    }
}
