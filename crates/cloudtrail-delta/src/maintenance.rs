//! Upkeep of the tables, on a schedule: compaction of small files per `event_date`
//! partition, VACUUM of files no longer referenced, and cleanup of expired log entries.
//!
//! Ingestion writes a few files per partition per commit, so a busy table gathers thousands of
//! small files a day. [`compact`] bin-packs each partition's small files into files of about
//! [`Policy::target_file_bytes`], and commits, per partition, the removal of the old files
//! and the addition of the new ones with `dataChange = false` (an `OPTIMIZE`): readers see the
//! same rows, and concurrent ingest commits (blind appends of new files) do not conflict with
//! it. A concurrent compaction of the same partition does: one of the two fails and is retried
//! on the next run. No rows are changed, so the table stays `delta.appendOnly`.
//!
//! Rewriting needs only the Parquet reader and the table's own writer, not delta-rs'
//! `datafusion` feature, so the maintenance function stays as lean as the ingest function.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Date32Array, RecordBatch};
use deltalake::errors::DeltaTableError;
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::kernel::{Action, LogicalFileView};
use deltalake::logstore::object_store::ObjectStore;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableBuilder};

use crate::settings::TableUris;
use crate::table::commit::{self, CommitMode, without_log_cleanup};
use crate::table::evolution::{conform, table_schema};
use crate::table::ingest_index::IngestIndex;
use crate::table::layout::partition_days;
use crate::table::{TXN_RETENTION, TXN_RETENTION_PROPERTY, read_whole_file};
use crate::writer::{LogWriter, file_schema};
use cloudtrail_parse::schema::{EVENT_DATE, LogKind};

/// What maintenance does and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Compaction packs small files into files of about this size (bytes as stored).
    pub target_file_bytes: u64,
    /// VACUUM deletes unreferenced files older than this (files a reader of an older
    /// version may still read, or a writer still commit, are younger).
    pub vacuum_retention: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 << 20,
            vacuum_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Partitions rewritten.
    pub partitions: usize,
    pub files_removed: usize,
    pub files_added: usize,
    pub bytes_removed: u64,
    pub bytes_added: u64,
    /// Partitions whose commit lost to a concurrent compaction (left for the next run).
    pub partitions_conflicted: usize,
    /// Commits of other writers (ingests) that landed between a partition's read and its
    /// compaction commit, and that the compaction committed after without conflict.
    pub concurrent_commits: u64,
    /// The table version after the last compaction commit.
    pub version: Option<u64>,
}

/// What a full maintenance run did to one table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Upkeep {
    /// Objects added to the ingest index (see [`crate::table::ingest_index`]).
    pub objects_indexed: usize,
    /// Index partitions whose files were merged into one.
    pub index_partitions_compacted: usize,
    /// Whether this run gave the table its `txn` retention (a table made by an older version).
    pub txn_retention_set: bool,
    pub compaction: Compaction,
    /// Files VACUUM deleted.
    pub files_vacuumed: usize,
    /// Expired `_delta_log` entries deleted.
    pub log_entries_cleaned: usize,
}

/// Opens a table with its file list (maintenance needs it; ingestion does not); `None` when
/// there is no table there yet. Fails if a table on S3 would not commit the way `mode` says.
pub async fn open(uri: &str, mode: &CommitMode) -> Result<Option<DeltaTable>, DeltaTableError> {
    // `ensure_table_uri` creates a missing local folder: where there is no table, maintenance
    // leaves no trace.
    if local_folder(uri).is_some_and(|folder| !folder.exists()) {
        return Ok(None);
    }
    let url = deltalake::ensure_table_uri(uri)?;
    let mut table = DeltaTableBuilder::from_url(url)?.build()?;
    commit::check_log_store(table.log_store().as_ref(), mode)?;
    if !table.log_store().is_delta_table_location().await? {
        return Ok(None);
    }
    table.load().await?;
    Ok(Some(table))
}

/// The local folder `uri` names (a path, or a `file://` URI); `None` for an object store.
fn local_folder(uri: &str) -> Option<std::path::PathBuf> {
    match url::Url::parse(uri) {
        Ok(url) if url.scheme() == "file" => url.to_file_path().ok(),
        Ok(_) => None,
        Err(_) => Some(uri.into()),
    }
}

/// Runs [`upkeep`] on every table, one after the other; a table not created yet is `None`.
pub async fn upkeep_all(
    uris: &TableUris,
    mode: &CommitMode,
    settings: Policy,
) -> Vec<(LogKind, String, Result<Option<Upkeep>, DeltaTableError>)> {
    let mut results = Vec::new();
    for (kind, uri) in uris.all() {
        let result = match open(uri, mode).await {
            Ok(Some(table)) => upkeep(table, kind, settings)
                .await
                .map(|(_, done)| Some(done)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        results.push((kind, uri.to_owned(), result));
    }
    results
}

impl std::fmt::Display for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.compaction;
        write!(
            f,
            "{} objects indexed ({} index partitions merged){}, ",
            self.objects_indexed,
            self.index_partitions_compacted,
            if self.txn_retention_set {
                format!(", {TXN_RETENTION_PROPERTY} set to {TXN_RETENTION:?}")
            } else {
                String::new()
            }
        )?;
        write!(
            f,
            "{} partitions compacted ({} files into {}, {:.1} MB into {:.1} MB)",
            c.partitions,
            c.files_removed,
            c.files_added,
            c.bytes_removed as f64 / 1e6,
            c.bytes_added as f64 / 1e6
        )?;
        if c.partitions_conflicted > 0 {
            write!(
                f,
                ", {} left for the next run after a concurrent change",
                c.partitions_conflicted
            )?;
        }
        write!(
            f,
            ", {} files vacuumed, {} expired log entries deleted",
            self.files_vacuumed, self.log_entries_cleaned
        )
    }
}

/// Brings the ingest index up to date, gives an older table its `txn` retention, writes a
/// checkpoint (which drops expired `txn` actions: the index holds them), then compacts,
/// vacuums and cleans the log of one table.
pub async fn upkeep(
    table: DeltaTable,
    kind: LogKind,
    settings: Policy,
) -> Result<(DeltaTable, Upkeep), DeltaTableError> {
    let (table, objects_indexed, index_partitions_compacted, txn_retention_set) =
        index_and_checkpoint(table, settings).await?;
    let (mut table, compaction) = compact(table, kind, settings).await?;
    table.update_incremental(None).await?;
    // The log before VACUUM: delta-rs cleans it after VACUUM's first commit whatever the
    // commit properties say, and what it deleted there would go uncounted here.
    let log_entries_cleaned =
        deltalake::protocol::checkpoints::cleanup_metadata(&table, None).await?;
    let (mut table, files_vacuumed) = vacuum(table, settings).await?;
    table.update_incremental(None).await?;
    Ok((
        table,
        Upkeep {
            objects_indexed,
            index_partitions_compacted,
            txn_retention_set,
            compaction,
            files_vacuumed,
            log_entries_cleaned,
        },
    ))
}

/// Extends the table's ingest index through its newest version and merges the index's
/// files per delivery date; sets `delta.setTransactionRetentionDuration` on a table made
/// without it (a metadata commit: concurrent ingests retry once on it), only once the index
/// holds every id; then writes a checkpoint. Gives the table, the objects indexed, the index
/// partitions merged, and whether the retention was set.
pub async fn index_and_checkpoint(
    mut table: DeltaTable,
    settings: Policy,
) -> Result<(DeltaTable, usize, usize, bool), DeltaTableError> {
    table.update_incremental(None).await?;
    let version = table.version().unwrap_or(0);
    let mut index = IngestIndex::open(table.table_url(), &HashMap::new()).await?;
    let indexed = index.catch_up(table.log_store().as_ref(), version).await?;
    let merged = index.compact().await?;
    if let Some(index_table) = index.table() {
        vacuum(index_table.clone(), settings).await?;
    }
    let has_retention = table
        .snapshot()?
        .metadata()
        .configuration()
        .contains_key(TXN_RETENTION_PROPERTY);
    if !has_retention {
        table = table
            .set_tbl_properties()
            .with_properties(HashMap::from([(
                TXN_RETENTION_PROPERTY.to_owned(),
                TXN_RETENTION.to_owned(),
            )]))
            .with_commit_properties(without_log_cleanup())
            .await?;
        // The metadata commit is one more commit for the index to cover.
        let version = table.version().unwrap_or(0);
        index.catch_up(table.log_store().as_ref(), version).await?;
    }
    deltalake::protocol::checkpoints::create_checkpoint(&table, None).await?;
    Ok((table, indexed, merged, !has_retention))
}

/// Deletes files the table no longer references (removed by compaction, or written by
/// ingests that failed before committing) once older than the retention period.
pub async fn vacuum(
    table: DeltaTable,
    settings: Policy,
) -> Result<(DeltaTable, usize), DeltaTableError> {
    let retention = chrono::Duration::from_std(settings.vacuum_retention)
        .map_err(|e| DeltaTableError::Generic(format!("vacuum retention: {e}")))?;
    let (table, metrics) = table
        .vacuum()
        .with_mode(VacuumMode::Full)
        .with_retention_period(retention)
        // The retention is ours to choose (a test uses zero); Delta's 7-day floor is our
        // default anyway.
        .with_enforce_retention_duration(false)
        .with_commit_properties(without_log_cleanup())
        .await?;
    Ok((table, metrics.files_deleted.len()))
}

/// Bin-packs each partition's small files (under three quarters of the target size) into
/// files of about the target size; one commit per partition.
pub async fn compact(
    mut table: DeltaTable,
    kind: LogKind,
    settings: Policy,
) -> Result<(DeltaTable, Compaction), DeltaTableError> {
    let mut report = Compaction::default();
    let plan = plan(&table, settings.target_file_bytes)?;
    for (date, bins) in plan {
        let removed: Vec<&LogicalFileView> = bins.iter().flatten().collect();
        let mut actions: Vec<Action> = removed
            .iter()
            .map(|file| Action::Remove(file.remove_action(false)))
            .collect();
        let mut added = Vec::new();
        for bin in &bins {
            added.extend(rewrite(&table, kind, &date, bin, settings.target_file_bytes).await?);
        }
        let bytes_added: u64 = added.iter().map(|a| a.size.max(0) as u64).sum();
        let files_added = added.len();
        actions.extend(added.into_iter().map(Action::Add));
        let operation = DeltaOperation::Optimize {
            predicate: Some(format!("{EVENT_DATE} = '{date}'")),
            target_size: i64::try_from(settings.target_file_bytes).unwrap_or(i64::MAX),
        };
        let read_version = table.version().unwrap_or(0);
        let committed = CommitBuilder::from(without_log_cleanup())
            .with_actions(actions)
            .build(Some(table.snapshot()?), table.log_store(), operation)
            .await;
        match committed {
            Ok(done) => {
                report.partitions += 1;
                report.files_removed += removed.len();
                report.bytes_removed += removed.iter().map(|f| f.size().max(0) as u64).sum::<u64>();
                report.files_added += files_added;
                report.bytes_added += bytes_added;
                report.version = Some(done.version());
                report.concurrent_commits += done.version().saturating_sub(read_version + 1);
                tracing::info!(
                    partition = %date,
                    files_removed = removed.len(),
                    files_added,
                    version = done.version(),
                    "partition compacted"
                );
                table.state = Some(done.snapshot());
            }
            // Another compaction removed some of these files first: its result stands, and
            // ours (files written, never referenced) is left for VACUUM.
            Err(DeltaTableError::Transaction {
                source: source @ TransactionError::CommitConflict(_),
            }) => {
                tracing::warn!(partition = %date, error = %source,
                    "partition not compacted: a concurrent change won; the next run retries");
                report.partitions_conflicted += 1;
                table.update_incremental(None).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((table, report))
}

/// The files to rewrite, by partition: bins of small files, each bin about a target file.
fn plan(
    table: &DeltaTable,
    target: u64,
) -> Result<BTreeMap<String, Vec<Vec<LogicalFileView>>>, DeltaTableError> {
    let small_below = target / 4 * 3;
    let mut by_date: BTreeMap<String, Vec<LogicalFileView>> = BTreeMap::new();
    for file in table.snapshot()?.log_data().iter() {
        let size = u64::try_from(file.size()).unwrap_or(0);
        if size >= small_below {
            continue;
        }
        let date = file
            .partition_values_map()
            .get(EVENT_DATE)
            .cloned()
            .flatten()
            .unwrap_or_default();
        by_date.entry(date).or_default().push(file);
    }
    let mut plan = BTreeMap::new();
    for (date, mut files) in by_date {
        files.sort_by_key(|f| f.size());
        let mut bins: Vec<Vec<LogicalFileView>> = Vec::new();
        let mut current: Vec<LogicalFileView> = Vec::new();
        let mut current_size = 0u64;
        for file in files {
            let size = u64::try_from(file.size()).unwrap_or(0);
            if !current.is_empty() && current_size + size > target {
                bins.push(std::mem::take(&mut current));
                current_size = 0;
            }
            current_size += size;
            current.push(file);
        }
        bins.push(current);
        // A bin of one file would only be copied.
        bins.retain(|bin| bin.len() > 1);
        if !bins.is_empty() {
            plan.insert(date, bins);
        }
    }
    Ok(plan)
}

/// Reads the files of one bin and writes them again as (about) one file; gives its adds,
/// marked as not changing data.
async fn rewrite(
    table: &DeltaTable,
    kind: LogKind,
    date: &str,
    bin: &[LogicalFileView],
    target: u64,
) -> Result<Vec<deltalake::kernel::Add>, DeltaTableError> {
    // Every column of the table, those a newer release added included: compaction keeps
    // them, and fills those an older file lacks with nulls.
    let schema = table_schema(&kind.arrow_schema(), table.snapshot()?.schema().as_ref())?;
    let (file_schema, date_column) = file_schema(&schema);
    let days = partition_days(date)?;
    let store: Arc<dyn ObjectStore> = table.log_store().object_store(None);
    let mut writer = LogWriter::for_table(table, kind, target).with_schema(&schema);
    for file in bin {
        // A small file (under three quarters of the target) is read whole, then decoded.
        for batch in read_whole_file(store.as_ref(), file).await? {
            let batch = conform(&batch?, &file_schema)?;
            // Files hold every column but the partition column; put it back.
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            columns.insert(
                date_column,
                Arc::new(Date32Array::from(vec![days; batch.num_rows()])),
            );
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            writer.write(batch).await?;
        }
    }
    let mut adds = writer.flush().await?;
    for add in &mut adds {
        add.data_change = false;
    }
    Ok(adds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_where_there_is_no_table_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("tables").join("cloudtrail");
        for uri in [
            missing.to_str().unwrap().to_owned(),
            url::Url::from_file_path(&missing).unwrap().to_string(),
        ] {
            let table = open(&uri, &CommitMode::ConditionalPut).await.unwrap();
            assert!(table.is_none(), "{uri}");
            assert!(!dir.path().join("tables").exists(), "{uri} was created");
        }
        assert_eq!(local_folder("s3://bucket/delta/cloudtrail"), None);
    }
}
