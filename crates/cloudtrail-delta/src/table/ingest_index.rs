//! The ingest index: every object a table holds, one row each, in a small Delta table beside
//! the table's data (`<table>/_ingest_index/`, a folder VACUUM leaves alone), so that knowing
//! whether an object is in the table costs the same after a year as after a day.
//!
//! Rows: `ingest_id`, `source_uri`, `table_version` (the data commit that recorded the object),
//! `committed_at`, `sha256` (hex, of the object's uncompressed bytes: what CloudTrail's digests
//! list; null for objects ingested before it was recorded), partitioned by `delivery_date` (the `YYYY/MM/DD` of the object's key; null
//! for keys without CloudTrail's layout, and for ids a pre-index checkpoint names). Each file
//! is sorted by `ingest_id` in row groups of [`ROW_GROUP_ROWS`], so a lookup reads a file's
//! footer and one row group's ids: one or two ranged reads per file of the object's
//! delivery date, and as many for the null partition.
//!
//! The index covers the data table's commits up to its watermark: the version of a `txn`
//! action with app id [`WATERMARK_APP_ID`] in the index table. The commits after it are read
//! from the data table's log ([`crate::table::ingested::RecentIngests`]). Writers extend the index
//! before each checkpoint of the data table, and maintenance at each run, so the log to read
//! stays within about one checkpoint interval, and the `txn` actions that checkpoints drop
//! once `delta.setTransactionRetentionDuration` has passed are always in the index first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::errors::{DeltaResult, DeltaTableError};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, LogicalFileView, StructType, Transaction};
use deltalake::logstore::LogStore;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt, path::Path};
use deltalake::operations::create::CreateBuilder;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::file::statistics::Statistics;
use url::Url;

use crate::table::commit::{create_once, without_log_cleanup};
use crate::table::evolution;
use crate::table::ingested::{IngestedObject, RecentIngests};

/// The index's folder under the data table's root.
pub const INDEX_DIR: &str = "_ingest_index";
/// The app id of the `txn` action whose version is the newest data commit the index covers.
pub const WATERMARK_APP_ID: &str = "cloudtrail-delta/indexed-through";
/// The partition column.
pub const DELIVERY_DATE: &str = "delivery_date";
/// The column of each object's SHA-256, added after the index's first release: an index
/// without it gains it on its next extension.
pub const SHA256: &str = "sha256";
/// Rows per row group: a lookup reads one row group's ids (about 200 KB) per file.
pub const ROW_GROUP_ROWS: usize = 4096;
/// Bytes the footer read asks for at once, so that a lookup reads it in one request.
const FOOTER_HINT: usize = 64 << 10;

/// The index table's columns (the partition column last).
pub fn index_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ingest_id", DataType::Utf8, false),
        Field::new("source_uri", DataType::Utf8, true),
        Field::new("table_version", DataType::Int64, false),
        Field::new(
            "committed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(SHA256, DataType::Utf8, true),
        Field::new(DELIVERY_DATE, DataType::Date32, true),
    ]))
}

/// The columns a file holds (all but the partition column).
fn file_schema() -> SchemaRef {
    let schema = index_schema();
    Arc::new(Schema::new(
        schema.fields()[..schema.fields().len() - 1].to_vec(),
    ))
}

/// Where the index of the data table at `table_root` lives.
pub fn index_url(table_root: &Url) -> DeltaResult<Url> {
    let mut root = table_root.clone();
    if !root.path().ends_with('/') {
        root.set_path(&format!("{}/", root.path()));
    }
    root.join(&format!("{INDEX_DIR}/"))
        .map_err(|e| DeltaTableError::Generic(format!("index location: {e}")))
}

/// The index of one data table; its Delta table is created on the first extension.
pub struct IngestIndex {
    table: DeltaTable,
    /// Whether the table exists (and `table` is loaded).
    exists: bool,
}

impl IngestIndex {
    /// Opens the index of the data table at `table_root` (absent until first extended).
    pub async fn open(
        table_root: &Url,
        storage_options: &HashMap<String, String>,
    ) -> DeltaResult<Self> {
        let mut table = DeltaTableBuilder::from_url(index_url(table_root)?)?
            .with_storage_options(storage_options.clone())
            .build()?;
        let exists = table.log_store().is_delta_table_location().await?;
        if exists {
            table.load().await?;
        }
        Ok(Self { table, exists })
    }

    /// The newest data commit the index covers; `None` before the first extension.
    pub async fn watermark(&self) -> DeltaResult<Option<u64>> {
        if !self.exists {
            return Ok(None);
        }
        let version = self
            .table
            .snapshot()?
            .transaction_version(self.table.log_store().as_ref(), WATERMARK_APP_ID)
            .await?;
        Ok(version.and_then(|v| u64::try_from(v).ok()))
    }

    /// Reloads the index's state (after another writer extended or compacted it).
    pub async fn refresh(&mut self) -> DeltaResult<()> {
        if self.exists {
            self.table.update_incremental(None).await
        } else {
            self.exists = self.table.log_store().is_delta_table_location().await?;
            if self.exists {
                self.table.load().await?;
            }
            Ok(())
        }
    }

    /// The index's Delta table, if created.
    pub fn table(&self) -> Option<&DeltaTable> {
        self.exists.then_some(&self.table)
    }

    /// Which of `ids` (ingest id and the object's delivery date) the index holds.
    pub async fn lookup(
        &mut self,
        ids: &[(&str, Option<chrono::NaiveDate>)],
    ) -> DeltaResult<HashSet<String>> {
        match self.lookup_once(ids).await {
            // A file compacted away and vacuumed since the index was loaded: reload, again.
            Err(DeltaTableError::ObjectStore {
                source: deltalake::ObjectStoreError::NotFound { .. },
            }) => {
                self.table.load().await?;
                self.lookup_once(ids).await
            }
            other => other,
        }
    }

    async fn lookup_once(
        &self,
        ids: &[(&str, Option<chrono::NaiveDate>)],
    ) -> DeltaResult<HashSet<String>> {
        let mut found = HashSet::new();
        if !self.exists || ids.is_empty() {
            return Ok(found);
        }
        // Every id is looked for under its date and under the null date.
        let mut by_date: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
        for (id, date) in ids {
            if let Some(date) = date {
                by_date
                    .entry(Some(date.format("%Y-%m-%d").to_string()))
                    .or_default()
                    .push(id);
            }
            by_date.entry(None).or_default().push(id);
        }
        let store = self.table.log_store().object_store(None);
        for file in self.table.snapshot()?.log_data().iter() {
            let date = delivery_date_of(&file);
            let Some(wanted) = by_date.get(&date) else {
                continue;
            };
            found.extend(find_in_file(store.clone(), &file, wanted).await?);
        }
        Ok(found)
    }

    /// Adds `objects` (from data commits up to `through`) and moves the watermark to
    /// `through`, in one commit. Objects of commits the index already covers are left out.
    /// Gives false when another writer extended the index to `through` or beyond first.
    pub async fn extend(&mut self, objects: &[IngestedObject], through: u64) -> DeltaResult<bool> {
        for attempt in 0..2 {
            self.refresh().await?;
            let watermark = self.watermark().await?;
            if watermark.is_some_and(|w| w >= through) {
                return Ok(false);
            }
            if !self.exists {
                self.create().await?;
            }
            self.add_missing_columns().await?;
            let fresh: Vec<&IngestedObject> = objects
                .iter()
                .filter(|o| watermark.is_none_or(|w| o.version > w) && o.version <= through)
                .collect();
            let adds = self.write_files(&fresh).await?;
            let txn = Transaction::new_with_last_update(
                WATERMARK_APP_ID,
                i64::try_from(through).unwrap_or(i64::MAX),
                Some(chrono::Utc::now().timestamp_millis()),
            );
            let operation = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: Some(vec![DELIVERY_DATE.to_owned()]),
                predicate: None,
            };
            let properties = without_log_cleanup()
                .with_application_transaction(txn)
                .with_max_retries(10);
            let actions = adds.into_iter().map(Action::Add).collect();
            match self.commit(properties, actions, operation).await {
                Ok(()) => return Ok(true),
                // Another writer moved the watermark meanwhile: look again (its files and
                // ours overlap; ours stay unreferenced, for VACUUM).
                Err(DeltaTableError::Transaction {
                    source:
                        TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
                }) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Commits `actions` to the index table and keeps the new state.
    async fn commit(
        &mut self,
        properties: CommitProperties,
        actions: Vec<Action>,
        operation: DeltaOperation,
    ) -> DeltaResult<()> {
        let done = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(self.table.snapshot()?),
                self.table.log_store(),
                operation,
            )
            .await?;
        self.table.state = Some(done.snapshot());
        Ok(())
    }

    /// Adds the columns this version writes that the index table lacks (made by an older
    /// release); another writer adding them first is fine.
    async fn add_missing_columns(&mut self) -> DeltaResult<()> {
        let ours: StructType = index_schema().as_ref().try_into_kernel()?;
        let uri = self.table.table_url().to_string();
        self.table = evolution::add_missing_columns(self.table.clone(), &ours, &uri, |e| {
            DeltaTableError::Generic(format!("the ingest index {uri}: {e}"))
        })
        .await?;
        Ok(())
    }

    async fn create(&mut self) -> DeltaResult<()> {
        let schema: StructType = index_schema().as_ref().try_into_kernel()?;
        let builder = CreateBuilder::new()
            .with_table_name("cloudtrail_delta_ingest_index")
            .with_comment(
                "Every object the table beside it holds, by ingest id; kept by cloudtrail-delta",
            )
            .with_columns(schema.fields().cloned())
            .with_partition_columns([DELIVERY_DATE])
            .with_configuration([
                ("delta.appendOnly", Some("false".to_owned())),
                ("delta.checkpointInterval", Some("100".to_owned())),
            ]);
        self.table = create_once(self.table.log_store(), builder).await?;
        self.exists = true;
        Ok(())
    }

    /// Writes `objects` as one sorted file per delivery date; gives their adds.
    async fn write_files(&self, objects: &[&IngestedObject]) -> DeltaResult<Vec<Add>> {
        let mut by_date: BTreeMap<Option<chrono::NaiveDate>, Vec<&IngestedObject>> =
            BTreeMap::new();
        for object in objects {
            by_date
                .entry(object.delivery_date())
                .or_default()
                .push(object);
        }
        let store = self.table.log_store().object_store(None);
        let mut adds = Vec::new();
        for (date, mut rows) in by_date {
            rows.sort_by(|a, b| a.ingest_id.cmp(&b.ingest_id));
            let rows: Vec<IngestedObject> = rows.into_iter().cloned().collect();
            adds.push(write_file(store.as_ref(), date, &rows, true).await?);
        }
        Ok(adds)
    }

    /// Extends the index through `version` of the data table whose log is `log_store`,
    /// reading the commits after the watermark (for a table not indexed yet, its newest
    /// checkpoint's ids and the commits after it). Gives the objects added.
    pub async fn catch_up(&mut self, log_store: &dyn LogStore, version: u64) -> DeltaResult<usize> {
        self.refresh().await?;
        let watermark = self.watermark().await?;
        if watermark.is_some_and(|w| w >= version) {
            return Ok(0);
        }
        let recent = RecentIngests::load(log_store, watermark, version)
            .await?
            .ok_or_else(|| {
                DeltaTableError::Generic(
                    "the table's checkpoint is of a kind the ingest index cannot read".into(),
                )
            })?;
        let objects = recent.through(version);
        self.extend(&objects, version).await?;
        Ok(objects.len())
    }

    /// Rewrites each delivery date's files into one sorted file where there are several
    /// (extensions add one file per date each), so that a lookup reads one file per date.
    /// Gives the partitions compacted.
    pub async fn compact(&mut self) -> DeltaResult<usize> {
        if !self.exists {
            return Ok(0);
        }
        self.refresh().await?;
        self.add_missing_columns().await?;
        let mut by_date: BTreeMap<Option<String>, Vec<LogicalFileView>> = BTreeMap::new();
        for file in self.table.snapshot()?.log_data().iter() {
            let date = delivery_date_of(&file);
            by_date.entry(date).or_default().push(file);
        }
        let store = self.table.log_store().object_store(None);
        let mut compacted = 0;
        for (date, files) in by_date.into_iter().filter(|(_, f)| f.len() > 1) {
            let mut rows = Vec::new();
            for file in &files {
                rows.extend(read_file(store.as_ref(), file).await?);
            }
            rows.sort_by(|a, b| a.ingest_id.cmp(&b.ingest_id));
            rows.dedup_by(|a, b| a.ingest_id == b.ingest_id);
            let day = date
                .as_deref()
                .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d"))
                .transpose()
                .map_err(|e| DeltaTableError::Generic(format!("index partition {date:?}: {e}")))?;
            let add = write_file(store.as_ref(), day, &rows, false).await?;
            let mut actions: Vec<Action> = files
                .iter()
                .map(|f| Action::Remove(f.remove_action(false)))
                .collect();
            actions.push(Action::Add(add));
            let operation = DeltaOperation::Optimize {
                predicate: None,
                target_size: 0,
            };
            match self.commit(without_log_cleanup(), actions, operation).await {
                Ok(()) => compacted += 1,
                // A concurrent compaction of the same partition won; its result stands.
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_),
                }) => self.table.update_incremental(None).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(compacted)
    }

    /// Every object the index holds whose delivery date is in `days`; for `None`, every
    /// object (those of keys without CloudTrail's layout too).
    pub async fn objects(
        &self,
        days: Option<&std::ops::RangeInclusive<chrono::NaiveDate>>,
    ) -> DeltaResult<Vec<IngestedObject>> {
        let Some(table) = self.table() else {
            return Ok(Vec::new());
        };
        let store = table.log_store().object_store(None);
        let mut objects = Vec::new();
        for file in table.snapshot()?.log_data().iter() {
            if let Some(days) = days {
                let date = delivery_date_of(&file)
                    .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
                if !date.is_some_and(|d| days.contains(&d)) {
                    continue;
                }
            }
            objects.extend(read_file(store.as_ref(), &file).await?);
        }
        Ok(objects)
    }

    /// Rows in the index (every file's row count, from the footers).
    pub async fn rows(&self) -> DeltaResult<u64> {
        let Some(table) = self.table() else {
            return Ok(0);
        };
        let store = table.log_store().object_store(None);
        let mut rows = 0;
        for file in table.snapshot()?.log_data().iter() {
            #[allow(deprecated)]
            let reader = ParquetObjectReader::new(store.clone(), file.object_store_path())
                .with_footer_size_hint(FOOTER_HINT);
            let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
            rows += u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        }
        Ok(rows)
    }
}

/// The delivery-date partition value of an index file (`None`: the null partition).
fn delivery_date_of(file: &LogicalFileView) -> Option<String> {
    file.partition_values_map()
        .get(DELIVERY_DATE)
        .cloned()
        .flatten()
}

/// Writes one index file of `rows` (sorted by id) under the partition of `date`.
async fn write_file(
    store: &dyn ObjectStore,
    date: Option<chrono::NaiveDate>,
    rows: &[IngestedObject],
    data_change: bool,
) -> DeltaResult<Add> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.ingest_id.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.uri.as_deref()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(r.version).unwrap_or(i64::MAX)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|r| r.committed_at_ms.saturating_mul(1000)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.sha256.as_deref()),
        )),
    ];
    let batch = RecordBatch::try_new(file_schema(), columns)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_truncate_length(None)
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, file_schema(), Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    let partition = date.map(|d| d.format("%Y-%m-%d").to_string());
    let folder = partition.as_deref().unwrap_or("__HIVE_DEFAULT_PARTITION__");
    let path = format!(
        "{DELIVERY_DATE}={folder}/part-00000-{}-c000.zstd.parquet",
        uuid::Uuid::new_v4()
    );
    let size = buffer.len();
    store
        .put(&Path::from(path.as_str()), buffer.into())
        .await
        .map_err(DeltaTableError::from)?;
    Ok(Add {
        path,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        partition_values: HashMap::from([(DELIVERY_DATE.to_owned(), partition)]),
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change,
        stats: Some(serde_json::json!({ "numRecords": rows.len() }).to_string()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

/// The ids of `wanted` (sorted or not) that one index file holds: its footer, then the
/// `ingest_id` column of the row groups whose range can hold one of them.
async fn find_in_file(
    store: Arc<dyn ObjectStore>,
    file: &LogicalFileView,
    wanted: &[&str],
) -> DeltaResult<Vec<String>> {
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(store, file.object_store_path())
        .with_footer_size_hint(FOOTER_HINT);
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let row_groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, group)| {
            match group.column(0).statistics() {
                Some(Statistics::ByteArray(stats)) => {
                    match (stats.min_bytes_opt(), stats.max_bytes_opt()) {
                        (Some(min), Some(max)) => wanted
                            .iter()
                            .any(|id| min <= id.as_bytes() && id.as_bytes() <= max),
                        _ => true,
                    }
                }
                // No statistics: the row group has to be read.
                _ => true,
            }
        })
        .map(|(index, _)| index)
        .collect();
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), [0]);
    let mut batches = builder
        .with_projection(mask)
        .with_row_groups(row_groups)
        .build()?;
    let wanted: HashSet<&str> = wanted.iter().copied().collect();
    let mut found = Vec::new();
    while let Some(batch) = batches.try_next().await? {
        let ids = batch.column(0).as_string::<i32>();
        for id in ids.iter().flatten() {
            if wanted.contains(id) {
                found.push(id.to_owned());
            }
        }
    }
    Ok(found)
}

/// Every row of one index file.
async fn read_file(
    store: &dyn ObjectStore,
    file: &LogicalFileView,
) -> DeltaResult<Vec<IngestedObject>> {
    let mut rows = Vec::new();
    for batch in super::read_whole_file(store, file).await? {
        let batch = batch?;
        let ids = batch.column(0).as_string::<i32>();
        let uris = batch.column(1).as_string::<i32>();
        let versions = batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| DeltaTableError::Generic("index table_version is not i64".into()))?;
        let times = batch
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| DeltaTableError::Generic("index committed_at is not µs".into()))?;
        // Files an older release wrote have no hashes.
        let hashes = batch
            .column_by_name(SHA256)
            .and_then(|c| c.as_string_opt::<i32>());
        for row in 0..batch.num_rows() {
            rows.push(IngestedObject {
                ingest_id: ids.value(row).to_owned(),
                uri: uris.is_valid(row).then(|| uris.value(row).to_owned()),
                version: u64::try_from(versions.value(row)).unwrap_or(0),
                committed_at_ms: times.value(row) / 1000,
                sha256: hashes
                    .filter(|h| h.is_valid(row))
                    .map(|h| h.value(row).to_owned()),
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lives_in_a_hidden_folder_of_the_table() {
        let root = Url::parse("s3://bucket/tables/cloudtrail").unwrap();
        assert_eq!(
            index_url(&root).unwrap().as_str(),
            "s3://bucket/tables/cloudtrail/_ingest_index/"
        );
        let root = Url::parse("file:///tmp/t/").unwrap();
        assert_eq!(
            index_url(&root).unwrap().as_str(),
            "file:///tmp/t/_ingest_index/"
        );
    }
}
