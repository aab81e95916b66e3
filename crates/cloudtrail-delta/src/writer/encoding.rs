//! How the tables' Parquet files are encoded: zstd, bounded row groups, statistics where they
//! are used, and per string column the encoding its values call for.
//!
//! Dictionary encoding pays when values repeat (`eventName`, `userIdentity.arn`, most JSON
//! texts) and costs when they do not: a column of unique values (`eventID`, `requestID`,
//! session principal ids) is hashed value by value, then stored as a dictionary of every value
//! plus an index per row. So each writer looks at the first batch it is given (the sample) and
//! writes the string columns whose sampled values are mostly distinct without a dictionary:
//! random identifiers (`eventID`, `requestID`) as `DELTA_LENGTH_BYTE_ARRAY` (the lengths
//! delta-encoded apart from the bytes), everything else as `PLAIN`, which keeps each value
//! next to its length: zstd finds more matches there in structured text (principal ids, IP
//! addresses, JSON), and the writer holds no 1 MiB length buffer per column.
//!
//! zstd at level 1, and chunk statistics on the table's statistics columns only: higher levels
//! and statistics on every column cost encoding time for little size.

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::table::layout::stats_columns;
use cloudtrail_parse::schema::LogKind;

/// Rows per Parquet row group, at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Encoded bytes per Parquet row group, at most (about 10 000 CloudTrail records, 1.3 MB once
/// compressed). The writer holds one row group's pages in memory, so this bounds the writer's
/// memory whatever the record size; measured: 4 MiB instead of 64k-row groups takes the peak
/// RSS of a 1 GB log from 165 MB to 69 MB, for 1.6 % more Parquet bytes.
/// OPTIMIZE rewrites files with larger groups when scans need them.
const ROW_GROUP_BYTES: usize = 4 << 20;
/// zstd level 1: on these columns about as small as level 3, and faster.
const ZSTD_LEVEL: i32 = 1;
/// A string column is written without a dictionary when at least this share of its sampled
/// values are distinct... At this share `sourceIPAddress`, `responseElements` and
/// `additionalEventData` (about three quarters distinct in CloudTrail batches) lose their
/// dictionaries, which is faster and smaller, while `requestParameters` (about half) keeps its
/// own, without which the files grow.
const DISTINCT_SHARE: f64 = 0.7;
/// ...and the sample holds at least this many of its values (fewer say little).
const MIN_SAMPLED_VALUES: usize = 64;
/// The top-level columns of random identifiers (UUIDs and the like). Written without a
/// dictionary they are `DELTA_LENGTH_BYTE_ARRAY`: their bytes share nothing zstd can match,
/// so `PLAIN`'s length before every value is pure overhead, while delta-encoded apart the
/// lengths cost next to nothing. Every other column without a dictionary is `PLAIN`.
const RANDOM_IDENTIFIERS: [&str; 2] = ["eventID", "requestID"];

/// How a table's Parquet files are written, given the first batch of the write (`sample`;
/// without one every string column keeps its dictionary).
pub fn writer_properties(
    kind: LogKind,
    sample: Option<&RecordBatch>,
) -> Result<WriterProperties, ParquetError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        // Statistics cost time on every value and footer bytes (and memory, until the file
        // is closed) on every row group. Readers prune on the columns people filter on, the
        // same ones the Delta log keeps statistics of (`file_stats` reads them from here).
        .set_statistics_enabled(EnabledStatistics::None)
        // The offset index serves page skipping with a column index, and there is none (no
        // page statistics); the writer would hold it for every row group until the file
        // closes.
        .set_offset_index_disabled(true)
        .set_created_by(format!("cloudtrail-delta {}", env!("CARGO_PKG_VERSION")));
    for column in stats_columns(kind) {
        builder = builder.set_column_statistics_enabled(
            ColumnPath::from(column.split('.').map(str::to_owned).collect::<Vec<_>>()),
            EnabledStatistics::Chunk,
        );
    }
    if let Some(sample) = sample {
        for (path, encoding) in mostly_distinct_columns(sample) {
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding);
        }
    }
    Ok(builder.build())
}

/// The Parquet paths of the string columns of `batch` whose values are mostly distinct,
/// each with the encoding it is written in instead of a dictionary.
pub fn mostly_distinct_columns(batch: &RecordBatch) -> Vec<(ColumnPath, Encoding)> {
    let mut found = Vec::new();
    let mut path = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        path.push(field.name().clone());
        visit(column.as_ref(), &mut path, &mut found);
        path.pop();
    }
    found
}

fn visit(array: &dyn Array, path: &mut Vec<String>, found: &mut Vec<(ColumnPath, Encoding)>) {
    match array.data_type() {
        DataType::Utf8 => {
            if let Some(encoding) = encoding_without_dictionary(array, path) {
                found.push((ColumnPath::new(path.clone()), encoding));
            }
        }
        DataType::Struct(fields) => {
            let array = array.as_struct();
            for (field, child) in fields.iter().zip(array.columns()) {
                path.push(field.name().clone());
                visit(child.as_ref(), path, found);
                path.pop();
            }
        }
        // Parquet's three-level list: <name>.list.<element name>.
        DataType::List(item) => {
            path.push("list".to_owned());
            path.push(item.name().clone());
            visit(array.as_list::<i32>().values().as_ref(), path, found);
            path.truncate(path.len() - 2);
        }
        _ => {}
    }
}

/// `None` when the sampled strings repeat enough for a dictionary; otherwise the encoding the
/// column is written in.
fn encoding_without_dictionary(array: &dyn Array, path: &[String]) -> Option<Encoding> {
    let strings = array.as_string::<i32>();
    let values = strings.len() - strings.null_count();
    if values < MIN_SAMPLED_VALUES {
        return None;
    }
    // xxh3, unseeded, rather than the standard SipHash (0.4 % of a large log's ingest
    // instructions): a sample is one batch, so even values made to collide cost little.
    let mut distinct: HashSet<&str, Xxh3DefaultBuilder> =
        HashSet::with_capacity_and_hasher(values, Xxh3DefaultBuilder);
    distinct.extend(strings.iter().flatten());
    if (distinct.len() as f64) < DISTINCT_SHARE * values as f64 {
        None
    } else if matches!(path, [column] if RANDOM_IDENTIFIERS.contains(&column.as_str())) {
        Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)
    } else {
        Some(Encoding::PLAIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudtrail_parse::schema::LogKind;

    fn batch(rows: usize, principal: impl Fn(usize) -> String) -> RecordBatch {
        let mut builder = LogKind::CloudTrail.batch_builder();
        for i in 0..rows {
            let name = ["GetObject", "PutObject"][i % 2];
            let record = serde_json::json!({
                "eventTime": "2024-04-30T22:00:00Z",
                "eventID": format!("id-{i}"),
                "eventName": name,
                "userIdentity": {"principalId": principal(i)},
                "resources": [{"ARN": format!("arn:aws:s3:::bucket/key-{i}")}],
            });
            builder.append(record.to_string().as_bytes()).unwrap();
        }
        builder.finish("s3://bucket/object.json.gz")
    }

    fn names(paths: Vec<(ColumnPath, Encoding)>) -> Vec<String> {
        paths.iter().map(|(path, _)| path.string()).collect()
    }

    #[test]
    fn unique_string_columns_are_found_at_every_level() {
        let found = names(mostly_distinct_columns(&batch(200, |i| format!("p-{i}"))));
        assert_eq!(
            found,
            [
                "userIdentity.principalId",
                "eventID",
                "resources.list.element.ARN"
            ]
        );
    }

    #[test]
    fn repeated_values_and_small_samples_keep_their_dictionary() {
        // 200 rows, 40 principals: 20 % distinct.
        let found = names(mostly_distinct_columns(&batch(200, |i| {
            format!("p-{}", i % 40)
        })));
        assert_eq!(found, ["eventID", "resources.list.element.ARN"]);
        // Too few values to judge.
        assert!(
            mostly_distinct_columns(&batch(MIN_SAMPLED_VALUES - 1, |i| i.to_string())).is_empty()
        );
    }

    #[test]
    fn a_column_past_the_distinct_share_loses_its_dictionary() {
        // 200 rows, 160 principals: 80 % distinct; 120 principals: 60 %.
        let found = names(mostly_distinct_columns(&batch(200, |i| {
            format!("p-{}", i % 160)
        })));
        assert_eq!(
            found,
            [
                "userIdentity.principalId",
                "eventID",
                "resources.list.element.ARN"
            ]
        );
        let found = names(mostly_distinct_columns(&batch(200, |i| {
            format!("p-{}", i % 120)
        })));
        assert_eq!(found, ["eventID", "resources.list.element.ARN"]);
    }

    #[test]
    fn properties_follow_the_sample() {
        let props =
            writer_properties(LogKind::CloudTrail, Some(&batch(200, |i| i.to_string()))).unwrap();
        let event_id = ColumnPath::from("eventID");
        let event_name = ColumnPath::from("eventName");
        let principal = ColumnPath::from(vec!["userIdentity".to_owned(), "principalId".to_owned()]);
        assert!(!props.dictionary_enabled(&event_id));
        assert_eq!(
            props.encoding(&event_id),
            Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)
        );
        assert!(!props.dictionary_enabled(&principal));
        assert_eq!(props.encoding(&principal), Some(Encoding::PLAIN));
        assert!(props.dictionary_enabled(&event_name));
        assert_eq!(
            props.statistics_enabled(&event_name),
            EnabledStatistics::Chunk
        );
        assert_eq!(
            props.statistics_enabled(&ColumnPath::from("requestParameters")),
            EnabledStatistics::None
        );
        let unsampled = writer_properties(LogKind::CloudTrail, None).unwrap();
        assert!(unsampled.dictionary_enabled(&event_id));
    }

    #[test]
    fn random_identifiers_are_delta_length_and_other_columns_plain() {
        let encodings: Vec<(String, Encoding)> =
            mostly_distinct_columns(&batch(200, |i| format!("p-{i}")))
                .into_iter()
                .map(|(path, encoding)| (path.string(), encoding))
                .collect();
        assert_eq!(
            encodings,
            [
                ("userIdentity.principalId".to_owned(), Encoding::PLAIN),
                ("eventID".to_owned(), Encoding::DELTA_LENGTH_BYTE_ARRAY),
                ("resources.list.element.ARN".to_owned(), Encoding::PLAIN),
            ]
        );
    }
}
