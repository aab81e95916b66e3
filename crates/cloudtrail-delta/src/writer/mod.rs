//! Streaming record batches into a table's partitions as Parquet files: one open file per
//! `event_date`, encoded as the first batch of each write calls for (see [`crate::writer::encoding`]),
//! sent to the table's store in parts as it grows (see [`crate::writer::upload`]), and given back as
//! `add` actions with their statistics (see [`crate::writer::file_stats`]) for the commit.
//!
//! The memory a file takes is the same whatever its length: the row group being encoded, the
//! part being filled and the part being sent. Files roll at a target size.

pub mod encoding;
pub mod file_stats;
pub mod upload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Date32Type, SchemaRef};
use deltalake::DeltaTable;
use deltalake::errors::DeltaTableError;
use deltalake::kernel::Add;
use deltalake::logstore::object_store::{ObjectStore, path::Path};
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::file::properties::WriterProperties;

use self::encoding::writer_properties;
use self::file_stats::delta_stats;
use self::upload::{FileUpload, part_bytes};
use crate::runtime::cpu_bound;
use crate::table::layout::{partition_value, stats_columns};
use cloudtrail_parse::schema::{EVENT_DATE, LogKind};

/// What the files of a table of `schema` hold (its columns less the partition column), and
/// where the partition column is.
pub fn file_schema(schema: &SchemaRef) -> (SchemaRef, usize) {
    let date_column = schema
        .index_of(EVENT_DATE)
        .expect("every table schema has the partition column");
    let file_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| i != date_column)
        .collect();
    let file_schema = schema
        .project(&file_columns)
        .expect("the indices are the schema's own");
    (Arc::new(file_schema), date_column)
}

/// Writes batches of a table's schema (partition column included) into Parquet files under
/// the table's root, one partition folder per `event_date`.
pub struct LogWriter {
    store: Arc<dyn ObjectStore>,
    kind: LogKind,
    /// The table's columns less the partition column: what the files hold.
    file_schema: SchemaRef,
    /// Where the partition column is in the batches written.
    date_column: usize,
    target_file_size: u64,
    /// Upload part size of the table's store (see [`crate::writer::upload::part_bytes`]).
    part_bytes: usize,
    /// Chosen from the first batch written after the writer is made or flushed.
    properties: Option<WriterProperties>,
    /// The file being written of each partition (days since the epoch).
    open: BTreeMap<i32, PartitionFile>,
    /// Files finished since the last flush.
    finished: Vec<Add>,
    /// Names this writer's files: `part-<n>-<writer id>-c000.zstd.parquet`.
    writer_id: uuid::Uuid,
    files_started: usize,
}

impl LogWriter {
    /// A writer into the table of `kind` whose root is `store`, rolling files once they reach
    /// `target_file_size` bytes, sending them in parts of `part_bytes`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        kind: LogKind,
        target_file_size: u64,
        part_bytes: usize,
    ) -> Self {
        let (file_schema, date_column) = file_schema(&kind.arrow_schema());
        Self {
            store,
            kind,
            file_schema,
            date_column,
            target_file_size,
            part_bytes,
            properties: None,
            open: BTreeMap::new(),
            finished: Vec::new(),
            writer_id: uuid::Uuid::new_v4(),
            files_started: 0,
        }
    }

    /// The writer for batches of `schema` rather than of the kind's own (compaction writes
    /// the table's columns, some of which a newer release may have added: see
    /// [`crate::table::evolution`]). `schema` holds the partition column.
    pub fn with_schema(mut self, schema: &SchemaRef) -> Self {
        (self.file_schema, self.date_column) = file_schema(schema);
        self
    }

    /// A writer into `table`, a table of `kind`: its store, with the part size that store
    /// calls for (see [`part_bytes`]), rolling files at `target_file_size` bytes.
    pub fn for_table(table: &DeltaTable, kind: LogKind, target_file_size: u64) -> Self {
        Self::new(
            table.log_store().object_store(None),
            kind,
            target_file_size,
            part_bytes(table.table_url()),
        )
    }

    /// Streams `batch` (of the table's schema, partition column included) into the files of
    /// its partitions. A batch of one `event_date` (nearly all are: a log file spans five
    /// minutes) goes to its partition's file without a copy.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        if self.properties.is_none() {
            let kind = self.kind;
            self.properties = Some(cpu_bound(|| writer_properties(kind, Some(&batch)))?);
        }
        let dates = batch
            .column(self.date_column)
            .as_primitive_opt::<Date32Type>()
            .filter(|dates| dates.null_count() == 0)
            .ok_or_else(|| {
                DeltaTableError::Generic(format!("a batch without an {EVENT_DATE} on every row"))
            })?;
        match single_value(dates.values()) {
            Some(days) => {
                let columns = self.file_columns(&batch);
                self.write_day(days, columns).await
            }
            None => {
                let mut rows: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
                for (row, days) in (0u32..).zip(dates.values()) {
                    rows.entry(*days).or_default().push(row);
                }
                let file_columns = self.file_columns(&batch);
                for (days, rows) in rows {
                    let rows = UInt32Array::from(rows);
                    let columns = cpu_bound(|| {
                        file_columns
                            .iter()
                            .map(|column| take(column, &rows, None))
                            .collect::<Result<_, _>>()
                    })?;
                    self.write_day(days, columns).await?;
                }
                Ok(())
            }
        }
    }

    /// The columns of `batch` that the files hold.
    fn file_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        let mut columns = batch.columns().to_vec();
        columns.remove(self.date_column);
        columns
    }

    /// Writes rows of the partition `days` into its file, sending the file's full parts and
    /// finishing the file once it reaches the target size.
    async fn write_day(
        &mut self,
        days: i32,
        columns: Vec<ArrayRef>,
    ) -> Result<(), DeltaTableError> {
        let rows = RecordBatch::try_new(self.file_schema.clone(), columns)?;
        if !self.open.contains_key(&days) {
            let file = self.start_file(days)?;
            self.open.insert(days, file);
        }
        let file = self.open.get_mut(&days).expect("inserted above");
        cpu_bound(|| {
            file.encoder.write(&rows)?;
            file.encoder.sync()
        })?;
        file.upload
            .send_full_parts(file.encoder.inner_mut())
            .await?;
        let size = file.encoder.bytes_written() + file.encoder.in_progress_size();
        if size as u64 >= self.target_file_size {
            let file = self.open.remove(&days).expect("open above");
            self.finished.push(file.finish(self.kind).await?);
        }
        Ok(())
    }

    fn start_file(&mut self, days: i32) -> Result<PartitionFile, DeltaTableError> {
        let date = partition_value(days)?;
        self.files_started += 1;
        let name = format!(
            "part-{:05}-{}-c000.zstd.parquet",
            self.files_started, self.writer_id
        );
        let path = Path::from(format!("{EVENT_DATE}={date}/{name}"));
        let upload = FileUpload::new(self.store.clone(), path, self.part_bytes);
        let encoder = ArrowWriter::try_new(
            upload.buffer(),
            self.file_schema.clone(),
            self.properties.clone(),
        )?;
        Ok(PartitionFile {
            date,
            encoder,
            upload,
        })
    }

    /// Finishes every file written since the last flush and gives their adds. On failure
    /// nothing written since the last flush is kept.
    pub async fn flush(&mut self) -> Result<Vec<Add>, DeltaTableError> {
        self.properties = None;
        let mut open = std::mem::take(&mut self.open).into_values();
        while let Some(file) = open.next() {
            match file.finish(self.kind).await {
                Ok(add) => self.finished.push(add),
                Err(e) => {
                    abort_in_background(open);
                    self.reset();
                    return Err(e);
                }
            }
        }
        Ok(std::mem::take(&mut self.finished))
    }

    /// Drops everything written since the last flush: the open files' uploads are aborted in
    /// the background; finished files stay unreferenced, for VACUUM.
    pub fn reset(&mut self) {
        self.properties = None;
        self.finished.clear();
        abort_in_background(std::mem::take(&mut self.open).into_values());
    }
}

/// Aborts the uploads of `files` on the runtime, without waiting for them.
fn abort_in_background(files: impl Iterator<Item = PartitionFile>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        for file in files {
            runtime.spawn(file.upload.abort());
        }
    }
}

/// One partition's file being written.
struct PartitionFile {
    /// The partition value, `YYYY-MM-DD`.
    date: String,
    /// Encodes into the bytes not yet sent.
    encoder: ArrowWriter<Vec<u8>>,
    upload: FileUpload,
}

impl PartitionFile {
    /// Writes the footer, sends the rest and gives the file's add.
    async fn finish(mut self, kind: LogKind) -> Result<Add, DeltaTableError> {
        let metadata = match cpu_bound(|| self.encoder.finish()) {
            Ok(metadata) => metadata,
            Err(e) => {
                self.upload.abort().await;
                return Err(e.into());
            }
        };
        let size = self.encoder.bytes_written();
        let path = self.upload.path().to_string();
        self.upload
            .finish(std::mem::take(self.encoder.inner_mut()))
            .await?;
        Ok(Add {
            path,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            partition_values: HashMap::from([(EVENT_DATE.to_owned(), Some(self.date))]),
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(delta_stats(&metadata, stats_columns(kind))),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}

/// The value of every element of `values`, if they are all the same.
fn single_value(values: &[i32]) -> Option<i32> {
    let first = *values.first()?;
    values.iter().all(|&days| days == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_one_day_has_its_date() {
        assert_eq!(single_value(&[19_843, 19_843]), Some(19_843));
        assert_eq!(single_value(&[19_843, 19_844]), None);
        assert_eq!(single_value(&[]), None);
    }
}
