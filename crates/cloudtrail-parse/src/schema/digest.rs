//! CloudTrail digest files (`…/CloudTrail-Digest/…`): each hour, per account and region, one
//! JSON object naming the log files delivered in that hour with their SHA-256, signed with
//! CloudTrail's key and chained to the previous digest by its signature.
//!
//! The digests table has one row per log file a digest lists, the digest's own fields repeated
//! on each; a digest of an hour without logs (`logFiles: []`) has one row whose `logFile` is
//! null, so that every digest, and the chain through it, is in the table. The signature is
//! not in the file but in the object's S3 metadata (`signature`, `signature-algorithm`); a
//! digest read from a local file has none (`signatureSource` says which).
//!
//! Columns keep the digest's names. Times are typed; a time written in another form than
//! CloudTrail's `YYYY-MM-DDTHH:MM:SSZ` is typed and also kept verbatim in `_rescued_data`,
//! because `digestEndTime` is part of the text the signature covers. Unknown fields go to
//! `_rescued_data` (`logFile` for those of a log-file entry). `event_date` is the UTC date of
//! `digestEndTime`, the date of the digest's key.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Map, Value};

use super::{EVENT_DATE, RESCUED_DATA, SOURCE_URI, event_dates, repeated};
use crate::columns::{Column, Timestamp, parse_timestamp_micros};

/// The column that says where a digest's signature came from.
pub const SIGNATURE_SOURCE: &str = "signatureSource";

/// Where a digest's signature came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureSource {
    /// The S3 object's metadata, as CloudTrail writes it.
    S3Metadata,
    /// A local file: no metadata (`verify` reads a `<digest>.sig` file beside it, if any).
    UnsignedLocal,
    /// An S3 object without the metadata.
    Absent,
}

impl SignatureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureSource::S3Metadata => "s3-metadata",
            SignatureSource::UnsignedLocal => "unsigned-local",
            SignatureSource::Absent => "absent",
        }
    }
}

/// A digest's signature, from its object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSignature {
    /// Hex, as CloudTrail writes it.
    pub signature: Option<String>,
    pub algorithm: Option<String>,
    pub source: SignatureSource,
}

impl DigestSignature {
    /// The signature in `metadata` (an S3 object's user metadata, `x-amz-meta-` taken off) of
    /// the object at `uri`.
    pub fn from_metadata(uri: &str, metadata: &HashMap<String, String>) -> Self {
        let signature = metadata.get("signature").cloned();
        let algorithm = metadata.get("signature-algorithm").cloned();
        let source = if signature.is_some() {
            SignatureSource::S3Metadata
        } else if uri.starts_with("s3://") || uri.starts_with("s3a://") {
            SignatureSource::Absent
        } else {
            SignatureSource::UnsignedLocal
        };
        Self {
            signature,
            algorithm,
            source,
        }
    }
}

/// Why a digest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the digest has no valid digestEndTime")]
    NoEndTime,
    #[error("logFiles is not an array of objects")]
    LogFiles,
    #[error("the digest is over {limit} bytes uncompressed")]
    TooLarge { limit: u64 },
}

const DIGEST_STRINGS: [&str; 12] = [
    "awsAccountId",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "previousDigestS3Bucket",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
    "signature",
    "signatureAlgorithm",
];
const DIGEST_TIMES: [&str; 4] = [
    "digestStartTime",
    "digestEndTime",
    "newestEventTime",
    "oldestEventTime",
];
const LOG_FILE_STRINGS: [&str; 4] = ["s3Bucket", "s3Object", "hashValue", "hashAlgorithm"];
const LOG_FILE_TIMES: [&str; 2] = ["newestEventTime", "oldestEventTime"];

fn log_file_fields() -> Fields {
    LOG_FILE_STRINGS
        .iter()
        .map(|name| Field::new(*name, DataType::Utf8, true))
        .chain(
            LOG_FILE_TIMES
                .iter()
                .map(|name| Field::new(*name, Timestamp::data_type(), true)),
        )
        .collect()
}

/// The digests table's schema.
pub fn schema() -> SchemaRef {
    let string = |name: &str| Field::new(name, DataType::Utf8, true);
    let time = |name: &str| Field::new(name, Timestamp::data_type(), true);
    Arc::new(Schema::new(vec![
        string("awsAccountId"),
        time("digestStartTime"),
        time("digestEndTime"),
        string("digestS3Bucket"),
        string("digestS3Object"),
        string("digestPublicKeyFingerprint"),
        string("digestSignatureAlgorithm"),
        time("newestEventTime"),
        time("oldestEventTime"),
        string("previousDigestS3Bucket"),
        string("previousDigestS3Object"),
        string("previousDigestHashValue"),
        string("previousDigestHashAlgorithm"),
        string("previousDigestSignature"),
        Field::new("logFile", DataType::Struct(log_file_fields()), true),
        string("signature"),
        string("signatureAlgorithm"),
        string(SIGNATURE_SOURCE),
        string(RESCUED_DATA),
        string(SOURCE_URI),
        Field::new(EVENT_DATE, DataType::Date32, true),
    ]))
}

/// Takes the string at `name` out of `object` (null and absent give `None`); a value of
/// another type stays in `object`, for `_rescued_data`.
fn take_string(object: &mut Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name) {
        Some(Value::String(_)) => match object.remove(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        Some(Value::Null) => {
            object.remove(name);
            None
        }
        _ => None,
    }
}

/// Takes the time at `name` out of `object`, in microseconds; a value that is not a time
/// stays in `object`, and so does a time not written in CloudTrail's form (it is typed too).
fn take_time(object: &mut Map<String, Value>, name: &str) -> Option<i64> {
    let Some(Value::String(text)) = object.get(name) else {
        if matches!(object.get(name), Some(Value::Null)) {
            object.remove(name);
        }
        return None;
    };
    let micros = parse_timestamp_micros(text)?;
    if canonical_time(micros).as_deref() == Some(text.as_str()) {
        object.remove(name);
    }
    Some(micros)
}

/// A time as CloudTrail writes it in digests: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn canonical_time(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The rows of one digest (`text`: its uncompressed JSON), from the object at `uri`.
pub fn parse_digest(
    text: &[u8],
    uri: &str,
    signature: &DigestSignature,
) -> Result<RecordBatch, DigestError> {
    let mut document: Map<String, Value> = serde_json::from_slice(text)?;
    let mut strings: HashMap<&str, Option<String>> = DIGEST_STRINGS
        .iter()
        .map(|name| (*name, take_string(&mut document, name)))
        .collect();
    // The signature is the object's, never the file's: a file naming one is rescued.
    for (name, value) in [
        ("signature", &signature.signature),
        ("signatureAlgorithm", &signature.algorithm),
    ] {
        if let Some(Some(found)) = strings.insert(name, value.clone()) {
            document.insert(name.to_owned(), Value::String(found));
        }
    }
    let times: HashMap<&str, Option<i64>> = DIGEST_TIMES
        .iter()
        .map(|name| (*name, take_time(&mut document, name)))
        .collect();
    if times["digestEndTime"].is_none() {
        return Err(DigestError::NoEndTime);
    }
    let log_files = match document.remove("logFiles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries
            .into_iter()
            .map(|entry| match entry {
                Value::Object(entry) => Ok(entry),
                _ => Err(DigestError::LogFiles),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(DigestError::LogFiles),
    };

    // One row per log file; an empty digest has one row with no log file.
    let rows = log_files.len().max(1);
    let mut entries: Vec<Option<Map<String, Value>>> = log_files.into_iter().map(Some).collect();
    if entries.is_empty() {
        entries.push(None);
    }
    let mut file_strings: Vec<Vec<Option<String>>> = vec![Vec::new(); 4];
    let mut file_times: Vec<Vec<Option<i64>>> = vec![Vec::new(); 2];
    let mut rescued = Vec::with_capacity(rows);
    for entry in &mut entries {
        match entry {
            Some(entry) => {
                for (column, name) in file_strings.iter_mut().zip(LOG_FILE_STRINGS) {
                    column.push(take_string(entry, name));
                }
                for (column, name) in file_times.iter_mut().zip(LOG_FILE_TIMES) {
                    column.push(take_time(entry, name));
                }
            }
            None => {
                file_strings.iter_mut().for_each(|c| c.push(None));
                file_times.iter_mut().for_each(|c| c.push(None));
            }
        }
        let mut left = document.clone();
        if let Some(entry) = entry.as_ref().filter(|e| !e.is_empty()) {
            left.insert("logFile".to_owned(), Value::Object(entry.clone()));
        }
        rescued.push((!left.is_empty()).then(|| Value::Object(left).to_string()));
    }

    let repeat_string = |name: &str| -> ArrayRef {
        Arc::new(StringArray::from(vec![strings[name].as_deref(); rows]))
    };
    let repeat_time = |name: &str| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![times[name]; rows]).with_timezone("UTC"))
    };
    let log_file_present: Vec<bool> = entries.iter().map(Option::is_some).collect();
    let log_file_columns: Vec<ArrayRef> = file_strings
        .into_iter()
        .map(|values| Arc::new(StringArray::from(values)) as ArrayRef)
        .chain(file_times.into_iter().map(|values| {
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")) as ArrayRef
        }))
        .collect();
    let log_file = StructArray::new(
        log_file_fields(),
        log_file_columns,
        Some(NullBuffer::from(log_file_present)),
    );
    let end_times = repeat_time("digestEndTime");
    let days = event_dates(&end_times);
    let columns: Vec<ArrayRef> = vec![
        repeat_string("awsAccountId"),
        repeat_time("digestStartTime"),
        end_times,
        repeat_string("digestS3Bucket"),
        repeat_string("digestS3Object"),
        repeat_string("digestPublicKeyFingerprint"),
        repeat_string("digestSignatureAlgorithm"),
        repeat_time("newestEventTime"),
        repeat_time("oldestEventTime"),
        repeat_string("previousDigestS3Bucket"),
        repeat_string("previousDigestS3Object"),
        repeat_string("previousDigestHashValue"),
        repeat_string("previousDigestHashAlgorithm"),
        repeat_string("previousDigestSignature"),
        Arc::new(log_file),
        repeat_string("signature"),
        repeat_string("signatureAlgorithm"),
        Arc::new(StringArray::from(vec![signature.source.as_str(); rows])),
        Arc::new(StringArray::from(rescued)),
        Arc::new(repeated(uri, rows)),
        Arc::new(days),
    ];
    Ok(RecordBatch::try_new(schema(), columns).expect("columns of the digest schema"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType;

    const DIGEST: &str = r#"{"awsAccountId":"123456789012","digestStartTime":"2024-04-30T22:00:00Z","digestEndTime":"2024-04-30T23:00:00Z","digestS3Bucket":"logs","digestS3Object":"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/04/30/d.json.gz","digestPublicKeyFingerprint":"ab12","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":"2024-04-30T22:59:00Z","oldestEventTime":"2024-04-30T22:00:01Z","previousDigestS3Bucket":"logs","previousDigestS3Object":"AWSLogs/p.json.gz","previousDigestHashValue":"00ff","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"beef","logFiles":[{"s3Bucket":"logs","s3Object":"AWSLogs/a.json.gz","hashValue":"aa","hashAlgorithm":"SHA-256","newestEventTime":"2024-04-30T22:05:00Z","oldestEventTime":"2024-04-30T22:00:01Z"},{"s3Bucket":"logs","s3Object":"AWSLogs/b.json.gz","hashValue":"bb","hashAlgorithm":"SHA-256","newestEventTime":"2024-04-30T22:59:00Z","oldestEventTime":"2024-04-30T22:55:00.5Z","sizeBytes":12}]}"#;

    fn signed() -> DigestSignature {
        DigestSignature::from_metadata(
            "s3://logs/d.json.gz",
            &HashMap::from([
                ("signature".to_owned(), "5ig".to_owned()),
                ("signature-algorithm".to_owned(), "SHA256withRSA".to_owned()),
            ]),
        )
    }

    fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Vec<Option<&'a str>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect()
    }

    #[test]
    fn one_row_per_log_file_with_the_digest_fields_on_each() {
        let batch = parse_digest(DIGEST.as_bytes(), "s3://logs/d.json.gz", &signed()).unwrap();
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            strings(&batch, "previousDigestSignature"),
            [Some("beef"); 2]
        );
        assert_eq!(strings(&batch, "signature"), [Some("5ig"); 2]);
        assert_eq!(strings(&batch, SIGNATURE_SOURCE), [Some("s3-metadata"); 2]);
        let file = batch.column_by_name("logFile").unwrap().as_struct();
        let objects: Vec<_> = file
            .column_by_name("s3Object")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect();
        assert_eq!(
            objects,
            [Some("AWSLogs/a.json.gz"), Some("AWSLogs/b.json.gz")]
        );
        let ends = batch
            .column_by_name("digestEndTime")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(
            canonical_time(ends.value(0)).unwrap(),
            "2024-04-30T23:00:00Z"
        );
        let dates = batch
            .column_by_name(EVENT_DATE)
            .unwrap()
            .as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!(dates.value(1), 19843);
        // The unknown field and the time in another form are kept verbatim, on their row.
        let rescued = strings(&batch, RESCUED_DATA);
        assert_eq!(rescued[0], None);
        assert_eq!(
            serde_json::from_str::<Value>(rescued[1].unwrap()).unwrap(),
            serde_json::json!({"logFile": {"oldestEventTime": "2024-04-30T22:55:00.5Z", "sizeBytes": 12}})
        );
    }

    #[test]
    fn an_empty_or_starting_digest_is_one_row_without_a_log_file() {
        let starting = r#"{"awsAccountId":"1","digestStartTime":"2024-04-30T22:00:00Z","digestEndTime":"2024-04-30T23:00:00Z","digestS3Bucket":"b","digestS3Object":"k","previousDigestSignature":null,"previousDigestS3Bucket":null,"logFiles":[]}"#;
        let local = DigestSignature::from_metadata("file:///x/k", &HashMap::new());
        assert_eq!(local.source, SignatureSource::UnsignedLocal);
        let batch = parse_digest(starting.as_bytes(), "file:///x/k", &local).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert!(batch.column_by_name("logFile").unwrap().is_null(0));
        assert_eq!(strings(&batch, "previousDigestSignature"), [None]);
        assert_eq!(strings(&batch, "signature"), [None]);
        assert_eq!(strings(&batch, SIGNATURE_SOURCE), [Some("unsigned-local")]);
        assert_eq!(strings(&batch, RESCUED_DATA), [None]);
        let unsigned = DigestSignature::from_metadata("s3://b/k", &HashMap::new());
        assert_eq!(unsigned.source, SignatureSource::Absent);
    }

    #[test]
    fn a_digest_without_an_end_time_or_with_bad_log_files_is_an_error() {
        assert!(matches!(
            parse_digest(br#"{"logFiles":[]}"#, "k", &signed()),
            Err(DigestError::NoEndTime)
        ));
        assert!(matches!(
            parse_digest(
                br#"{"digestEndTime":"2024-04-30T23:00:00Z","logFiles":[1]}"#,
                "k",
                &signed()
            ),
            Err(DigestError::LogFiles)
        ));
        assert!(matches!(
            parse_digest(b"[]", "k", &signed()),
            Err(DigestError::Json(_))
        ));
    }
}
