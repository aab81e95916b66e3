//! Table schemas and the builder that turns records into Arrow record batches.
//!
//! Each table has the typed columns of its record kind ([`cloudtrail`], [`insights`],
//! [`aggregated`], and the [`digest`] files' rows) followed by three columns of ours:
//!
//! - `_rescued_data`: JSON text of every source value the typed columns could not hold (unknown
//!   fields, values of an unexpected type), shaped like the record; null when nothing was.
//! - `_source_uri`: the URI of the log object the record came from (lineage).
//! - `event_date`: the UTC date of `eventTime` (of `timeWindow.windowStart` for aggregated
//!   events), the partition column.

pub mod aggregated;
pub mod cloudtrail;
pub mod digest;
pub mod insights;

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray, StringBuilder};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::columns::{JsonStruct, Timestamp};
use crate::json_reader::{JsonError, JsonReader};
use crate::rescue::Rescue;

/// The column holding values the schema could not type.
pub const RESCUED_DATA: &str = "_rescued_data";
/// The column holding the source object's URI.
pub const SOURCE_URI: &str = "_source_uri";
/// The partition column.
pub const EVENT_DATE: &str = "event_date";

/// Which table a log object's records belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogKind {
    /// Management and data events (`…/CloudTrail/…`).
    CloudTrail,
    /// CloudTrail Insights events (`…/CloudTrail-Insight/…`).
    Insights,
    /// Aggregated events, five-minute summaries of data events (`…/CloudTrail-Aggregated/…`).
    Aggregated,
    /// Integrity digests (`…/CloudTrail-Digest/…`): one row per log file each lists.
    Digest,
}

impl LogKind {
    /// Every kind, each with its own table.
    pub const ALL: [LogKind; 4] = [
        LogKind::CloudTrail,
        LogKind::Insights,
        LogKind::Aggregated,
        LogKind::Digest,
    ];

    /// The Arrow schema of this kind's table.
    pub fn arrow_schema(self) -> SchemaRef {
        match self {
            LogKind::CloudTrail => table_schema::<cloudtrail::CloudTrailRecord>(),
            LogKind::Insights => table_schema::<insights::InsightRecord>(),
            LogKind::Aggregated => table_schema::<aggregated::AggregatedRecord>(),
            LogKind::Digest => digest::schema(),
        }
    }

    /// Whether this kind's files hold `{"Records":[…]}` (all but digests).
    pub fn has_records(self) -> bool {
        self != LogKind::Digest
    }

    /// A new, empty batch builder for this kind.
    ///
    /// # Panics
    ///
    /// For [`LogKind::Digest`], whose files are not records: [`digest::parse_digest`] reads
    /// them.
    pub fn batch_builder(self) -> Box<dyn RecordBatchBuilder> {
        match self {
            LogKind::CloudTrail => {
                Box::new(BatchBuilder::<cloudtrail::CloudTrailRecord>::default())
            }
            LogKind::Insights => Box::new(BatchBuilder::<insights::InsightRecord>::default()),
            LogKind::Aggregated => {
                Box::new(BatchBuilder::<aggregated::AggregatedRecord>::default())
            }
            LogKind::Digest => panic!("digest files are not records: see schema::digest"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogKind::CloudTrail => "cloudtrail",
            LogKind::Insights => "insights",
            LogKind::Aggregated => "aggregated",
            LogKind::Digest => "digest",
        }
    }
}

impl std::fmt::Display for LogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The top-level fields of a record kind.
pub trait RecordFields: JsonStruct + Default + Send {
    /// The path of the time column the partition date comes from, which every record must
    /// fill.
    const TIME_PATH: &'static [&'static str] = &["eventTime"];

    /// The builder of that column.
    fn event_time(&self) -> &Timestamp;
}

fn table_schema<R: RecordFields>() -> SchemaRef {
    let mut fields: Vec<Field> = R::fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RESCUED_DATA, DataType::Utf8, true));
    fields.push(Field::new(SOURCE_URI, DataType::Utf8, true));
    fields.push(Field::new(EVENT_DATE, DataType::Date32, true));
    Arc::new(Schema::new(fields))
}

/// Why one record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Json(#[from] JsonError),
    #[error("not valid UTF-8: {0}")]
    Utf8(#[from] simdutf8::compat::Utf8Error),
    #[error("the record has no valid {0}")]
    NoEventTime(String),
}

/// Builds record batches from record JSON texts, one record at a time.
pub trait RecordBatchBuilder: Send {
    /// Parses one record (the JSON text of one element of `Records`) and appends it.
    ///
    /// After an error the builder holds a partial row: discard it.
    fn append(&mut self, record: &[u8]) -> Result<(), RecordError>;

    /// Rows appended since the last [`RecordBatchBuilder::finish`].
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Finishes the appended rows into a batch of the table schema, with `source_uri` as lineage.
    fn finish(&mut self, source_uri: &str) -> RecordBatch;
}

struct BatchBuilder<R> {
    fields: R,
    rescued: StringBuilder,
    rescue: Rescue,
    rows: usize,
    schema: SchemaRef,
}

impl<R: RecordFields> Default for BatchBuilder<R> {
    fn default() -> Self {
        Self {
            fields: R::default(),
            rescued: StringBuilder::new(),
            rescue: Rescue::default(),
            rows: 0,
            schema: table_schema::<R>(),
        }
    }
}

impl<R: RecordFields> RecordBatchBuilder for BatchBuilder<R> {
    fn append(&mut self, record: &[u8]) -> Result<(), RecordError> {
        let times_before = self.fields.event_time().valid_count();
        // One UTF-8 check of the whole record, so that the reader checks no string, and no raw
        // JSON value, again; simdutf8 picks AVX2, SSE4.2 or NEON at run time.
        let text = simdutf8::compat::from_utf8(record)?;
        let mut reader = JsonReader::new(text);
        reader.begin_object()?;
        self.fields
            .append_entries(&mut reader, &mut self.rescue, self.rows)?;
        reader.end()?;
        if self.fields.event_time().valid_count() == times_before {
            return Err(RecordError::NoEventTime(R::TIME_PATH.join(".")));
        }
        match self.rescue.take_json() {
            Some(json) => self.rescued.append_value(json),
            None => self.rescued.append_null(),
        }
        self.rows += 1;
        Ok(())
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn finish(&mut self, source_uri: &str) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let mut columns = self.fields.finish_fields(rows);
        let event_time = time_column::<R>(&columns, &self.schema);
        columns.push(Arc::new(self.rescued.finish()) as ArrayRef);
        columns.push(Arc::new(repeated(source_uri, rows)) as ArrayRef);
        columns.push(Arc::new(event_dates(&event_time)) as ArrayRef);
        RecordBatch::try_new(self.schema.clone(), columns)
            .expect("builders produce arrays of the table schema")
    }
}

/// The time column the partition date comes from, at `R::TIME_PATH` among the columns.
fn time_column<R: RecordFields>(columns: &[ArrayRef], schema: &Schema) -> ArrayRef {
    use arrow::array::AsArray;
    let (first, rest) = R::TIME_PATH.split_first().expect("a time path");
    let index = schema
        .index_of(first)
        .expect("every record schema has its time column");
    rest.iter().fold(columns[index].clone(), |column, name| {
        column
            .as_struct()
            .column_by_name(name)
            .expect("the time path names struct fields")
            .clone()
    })
}

/// `rows` copies of `value`: the bytes copied in one go, the offsets counted, nothing checked
/// again (the lineage column is the same string on every row of a batch).
fn repeated(value: &str, rows: usize) -> StringArray {
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(value.len(), rows));
    let values = Buffer::from(value.repeat(rows).into_bytes());
    // SAFETY: the values are `rows` copies of a str and each offset starts a copy, so every
    // value is a whole str and the offsets are in order, within the values.
    unsafe { StringArray::new_unchecked(offsets, values, None) }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The UTC date (days since the epoch) of each timestamp.
fn event_dates(event_time: &ArrayRef) -> Date32Array {
    use arrow::array::AsArray;
    let times = event_time.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    times.unary_opt(|micros| i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn repeated_values_are_whole_and_valid() {
        for (value, rows) in [("s3://b/k é.json.gz", 3), ("", 2), ("x", 0)] {
            let array = repeated(value, rows);
            array.to_data().validate_full().unwrap();
            assert_eq!(array.len(), rows);
            assert_eq!(array.null_count(), 0);
            assert!(array.iter().all(|v| v == Some(value)));
        }
    }

    #[test]
    fn schema_has_typed_columns_then_ours() {
        let schema = LogKind::CloudTrail.arrow_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[..3], ["eventVersion", "userIdentity", "eventTime"]);
        assert_eq!(
            names[names.len() - 3..],
            [RESCUED_DATA, SOURCE_URI, EVENT_DATE]
        );
        assert_eq!(
            schema.field_with_name("eventTime").unwrap().data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            schema.field_with_name("readOnly").unwrap().data_type(),
            &DataType::Boolean
        );
    }

    #[test]
    fn builds_a_batch_with_rescued_data_and_dates() {
        let mut b = LogKind::CloudTrail.batch_builder();
        b.append(br#"{"eventTime":"2024-04-30T23:59:59Z","eventName":"A","readOnly":true}"#)
            .unwrap();
        b.append(
            br#"{"eventTime":"2024-05-01T00:00:00Z","readOnly":"yes","brandNew":{"x":1},
                     "userIdentity":{"type":"Root","futureField":[1]}}"#,
        )
        .unwrap();
        let batch = b.finish("s3://b/k.json.gz");
        assert_eq!(batch.num_rows(), 2);
        let rescued = batch
            .column_by_name(RESCUED_DATA)
            .unwrap()
            .as_string::<i32>();
        assert!(rescued.is_null(0));
        assert_eq!(
            rescued.value(1),
            r#"{"readOnly":"yes","brandNew":{"x":1},"userIdentity":{"futureField":[1]}}"#
        );
        let dates = batch
            .column_by_name(EVENT_DATE)
            .unwrap()
            .as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!(dates.values().to_vec(), vec![19843, 19844]);
        let read_only = batch.column_by_name("readOnly").unwrap().as_boolean();
        assert!(read_only.value(0) && read_only.is_null(1));
        assert_eq!(
            batch
                .column_by_name(SOURCE_URI)
                .unwrap()
                .as_string::<i32>()
                .value(1),
            "s3://b/k.json.gz"
        );
    }

    #[test]
    fn a_record_without_event_time_is_an_error() {
        let mut b = LogKind::CloudTrail.batch_builder();
        assert!(matches!(
            b.append(br#"{"eventName":"A"}"#),
            Err(RecordError::NoEventTime(_))
        ));
        let mut b = LogKind::CloudTrail.batch_builder();
        assert!(matches!(
            b.append(br#"{"eventTime":null}"#),
            Err(RecordError::NoEventTime(_))
        ));
        let mut b = LogKind::CloudTrail.batch_builder();
        assert!(matches!(
            b.append(br#"{"eventTime":"yesterday"}"#),
            Err(RecordError::Json(_))
        ));
        let mut b = LogKind::CloudTrail.batch_builder();
        assert!(matches!(
            b.append(br#"{"eventTime":"2024-04-30T23:59:59Z"} x"#),
            Err(RecordError::Json(_))
        ));
    }
}
