//! The statistics a Delta `add` action carries for a data file (`numRecords`, and `minValues`,
//! `maxValues` and `nullCount` of the table's statistics columns), taken from the Parquet
//! footer the writer returns: the column chunk statistics of each row group, combined.
//!
//! Nested columns (`userIdentity.arn`) get their statistics nested, as the Delta protocol
//! lays them out (`{"userIdentity": {"arn": …}}`); readers skip files on them as on top-level
//! ones. The statistics columns are of three kinds: strings, booleans and `eventTime`
//! (microseconds, written in milliseconds as the protocol asks: a minimum rounded down, a
//! maximum rounded up, so both stay bounds).

use deltalake::parquet::basic::{LogicalType, TimeUnit};
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::statistics::{Statistics, ValueStatistics};
use serde_json::{Map, Value};

/// The `stats` JSON of a file whose footer is `metadata`, for the statistics columns
/// `columns` (dotted paths, as in `delta.dataSkippingStatsColumns`).
pub fn delta_stats(metadata: &ParquetMetaData, columns: &[&str]) -> String {
    let mut min_values = Map::new();
    let mut max_values = Map::new();
    let mut null_count = Map::new();
    let schema = metadata.file_metadata().schema_descr();
    for column in columns {
        let path: Vec<&str> = column.split('.').collect();
        let Some(index) = (0..schema.num_columns()).find(|&i| {
            let column = schema.column(i);
            let parts = column.path().parts();
            parts.len() == path.len() && parts.iter().zip(&path).all(|(a, b)| a == b)
        }) else {
            continue;
        };
        let descriptor = schema.column(index);
        let Some(combined) = combine(
            metadata
                .row_groups()
                .iter()
                .map(|group| group.column(index).statistics()),
            descriptor.logical_type_ref(),
        ) else {
            continue;
        };
        insert_at(&mut null_count, &path, Value::from(combined.nulls));
        if let Some((min, max)) = combined.range {
            insert_at(&mut min_values, &path, min.json(Bound::Lower));
            insert_at(&mut max_values, &path, max.json(Bound::Upper));
        }
    }
    serde_json::json!({
        "numRecords": metadata.file_metadata().num_rows(),
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": null_count,
    })
    .to_string()
}

/// A column's statistics over a whole file.
#[derive(Debug, PartialEq)]
struct Combined {
    nulls: u64,
    /// The smallest and largest value; `None` when every value is null.
    range: Option<(Scalar, Scalar)>,
}

/// A statistics value of one of the kinds the statistics columns have.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Scalar {
    Boolean(bool),
    TimestampMicros(i64),
    String(String),
}

#[derive(Clone, Copy)]
enum Bound {
    Lower,
    Upper,
}

impl Bound {
    /// The minimum or the maximum of `values`.
    fn of<T>(self, values: &ValueStatistics<T>) -> Option<&T> {
        match self {
            Bound::Lower => values.min_opt(),
            Bound::Upper => values.max_opt(),
        }
    }
}

impl Scalar {
    fn json(&self, bound: Bound) -> Value {
        match self {
            Scalar::Boolean(value) => Value::Bool(*value),
            Scalar::String(value) => Value::String(value.clone()),
            Scalar::TimestampMicros(micros) => {
                let millis = match bound {
                    Bound::Lower => micros.div_euclid(1000),
                    Bound::Upper => {
                        micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) > 0)
                    }
                };
                match chrono::DateTime::from_timestamp_millis(millis) {
                    Some(time) => Value::String(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
                    None => Value::Null,
                }
            }
        }
    }
}

/// Combines the row groups' statistics of one column; `None` when a row group has none (then
/// nothing can be said of the file) or the column is of a kind not handled.
fn combine<'a>(
    groups: impl Iterator<Item = Option<&'a Statistics>>,
    logical_type: Option<&LogicalType>,
) -> Option<Combined> {
    let mut combined = Combined {
        nulls: 0,
        range: None,
    };
    for statistics in groups {
        let statistics = statistics?;
        combined.nulls += statistics.null_count_opt()?;
        let (Some(min), Some(max)) = (
            scalar(statistics, logical_type, Bound::Lower),
            scalar(statistics, logical_type, Bound::Upper),
        ) else {
            // A row group of nulls has no range; one of values without a range spoils it.
            match statistics.min_bytes_opt() {
                None => continue,
                Some(_) => return None,
            }
        };
        combined.range = Some(match combined.range.take() {
            None => (min, max),
            Some((low, high)) => (
                if min < low { min } else { low },
                if max > high { max } else { high },
            ),
        });
    }
    Some(combined)
}

fn scalar(
    statistics: &Statistics,
    logical_type: Option<&LogicalType>,
    bound: Bound,
) -> Option<Scalar> {
    match (statistics, logical_type) {
        (Statistics::Boolean(values), _) => bound.of(values).copied().map(Scalar::Boolean),
        (Statistics::Int64(values), Some(LogicalType::Timestamp(timestamp)))
            if matches!(timestamp.unit, TimeUnit::MICROS) =>
        {
            bound.of(values).copied().map(Scalar::TimestampMicros)
        }
        (Statistics::ByteArray(values), Some(LogicalType::String)) => bound
            .of(values)
            .and_then(|bytes| bytes.as_utf8().ok())
            .map(|text| Scalar::String(text.to_owned())),
        _ => None,
    }
}

/// Puts `value` at the dotted `path` inside `map`, making the parent objects it needs.
fn insert_at(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = map;
    for parent in parents {
        let entry = map
            .entry(*parent)
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(child) = entry else { return };
        map = child;
    }
    map.insert((*last).to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_make_nested_objects() {
        let mut map = Map::new();
        insert_at(&mut map, &["userIdentity", "arn"], Value::from("a"));
        insert_at(&mut map, &["userIdentity", "type"], Value::from("b"));
        insert_at(&mut map, &["eventName"], Value::from("c"));
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"userIdentity": {"arn": "a", "type": "b"}, "eventName": "c"})
        );
    }

    #[test]
    fn timestamps_are_milliseconds_that_stay_bounds() {
        let micros = Scalar::TimestampMicros(1_714_514_400_000_123);
        assert_eq!(
            micros.json(Bound::Lower),
            Value::from("2024-04-30T22:00:00.000Z")
        );
        assert_eq!(
            micros.json(Bound::Upper),
            Value::from("2024-04-30T22:00:00.001Z")
        );
        let whole = Scalar::TimestampMicros(1_714_514_400_000_000);
        assert_eq!(
            whole.json(Bound::Upper),
            Value::from("2024-04-30T22:00:00.000Z")
        );
    }
}
