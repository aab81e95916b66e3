//! Streaming record batches into a table's partitions as Parquet files, encoded as the first
//! batch of each write calls for (see [`crate::encoding`]).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Date32Type;
use delta_kernel::expressions::Scalar;
use deltalake::errors::DeltaTableError;
use deltalake::kernel::Add;
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use indexmap::IndexMap;

use crate::encoding::writer_properties;
use crate::schema::{EVENT_DATE, LogKind};

/// A delta-rs [`RecordBatchWriter`] whose Parquet writer properties are chosen from the first
/// batch written after it is made or flushed.
pub struct LogWriter {
    /// Always `Some` between calls: taken only to set the properties.
    inner: Option<RecordBatchWriter>,
    kind: LogKind,
    /// Whether the properties of the current write were chosen.
    chosen: bool,
}

impl LogWriter {
    /// Wraps `inner`, a writer into a table of `kind`.
    pub fn new(inner: RecordBatchWriter, kind: LogKind) -> Self {
        Self {
            inner: Some(inner),
            kind,
            chosen: false,
        }
    }

    fn inner(&mut self) -> &mut RecordBatchWriter {
        self.inner
            .as_mut()
            .expect("the writer is put back after each call")
    }

    /// Streams `batch` (of the table's schema, partition column included) into the files of
    /// its partitions.
    ///
    /// A batch of one `event_date` (nearly all are: a log file spans five minutes) goes
    /// straight to that partition's file; delta-rs' own split would copy every column of it
    /// first.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        if !self.chosen {
            let properties = writer_properties(self.kind, Some(&batch))?;
            let inner = self
                .inner
                .take()
                .expect("the writer is put back after each call");
            self.inner = Some(inner.with_writer_properties(properties));
            self.chosen = true;
        }
        match single_event_date(&batch) {
            Some(days) => {
                let partition = IndexMap::from([(EVENT_DATE.to_owned(), Scalar::Date(days))]);
                self.inner()
                    .write_partition(batch, &partition, WriteMode::Default)
                    .await
                    .map(drop)
            }
            None => self.inner().write(batch).await,
        }
    }

    /// Finishes every file written since the last flush and gives their adds.
    pub async fn flush(&mut self) -> Result<Vec<Add>, DeltaTableError> {
        self.chosen = false;
        self.inner().flush().await
    }

    /// Drops everything written since the last flush (uploads in progress are aborted;
    /// finished files stay unreferenced, for VACUUM).
    pub fn reset(&mut self) {
        self.chosen = false;
        self.inner().reset();
    }
}

/// The `event_date` of every row of `batch`, if they all have the same one.
fn single_event_date(batch: &RecordBatch) -> Option<i32> {
    let dates = batch
        .column_by_name(EVENT_DATE)?
        .as_primitive_opt::<Date32Type>()?;
    if dates.null_count() > 0 {
        return None;
    }
    let first = *dates.values().first()?;
    dates
        .values()
        .iter()
        .all(|&days| days == first)
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(times: &[&str]) -> RecordBatch {
        let mut builder = LogKind::CloudTrail.batch_builder();
        for time in times {
            let record = format!(r#"{{"eventTime":"{time}"}}"#);
            builder.append(record.as_bytes()).unwrap();
        }
        builder.finish("s3://bucket/object.json.gz")
    }

    #[test]
    fn a_batch_of_one_day_has_its_date() {
        let one_day = batch(&["2024-04-30T00:00:00Z", "2024-04-30T23:59:59Z"]);
        assert_eq!(single_event_date(&one_day), Some(19_843));
        let two_days = batch(&["2024-04-30T23:59:59Z", "2024-05-01T00:00:00Z"]);
        assert_eq!(single_event_date(&two_days), None);
    }
}
