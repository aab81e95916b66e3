//! Helpers shared by the integration tests: log files, objects, and an independent replay of
//! a table's JSON log and Parquet files.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::Arc;

use cloudtrail_delta::TableUris;
use cloudtrail_delta::ingest::BatchItem;
use cloudtrail_delta::source::Opened;
use cloudtrail_delta::{Ingester, Outcome, SourceObject};
use flate2::{Compression, write::GzEncoder};

pub const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/04/30/123456789012_CloudTrail_us-east-1_20240430T2200Z_T.json.gz";

pub fn ingester(dir: &Path) -> Ingester {
    let uris = TableUris {
        cloudtrail: dir.join("ct").to_str().unwrap().to_owned(),
        insights: dir.join("insights").to_str().unwrap().to_owned(),
        aggregated: Some(dir.join("aggregated").to_str().unwrap().to_owned()),
        digests: Some(dir.join("digests").to_str().unwrap().to_owned()),
    };
    Ingester::new(uris)
}

pub fn object(name: &str, content: &[u8]) -> SourceObject {
    let key = KEY.replace("_T.", &format!("_{name}."));
    SourceObject {
        uri: format!("s3://bucket/{key}"),
        key,
        fingerprint: format!("{:x}", xxhash_rust::xxh3::xxh3_64(content)),
        size: Some(content.len() as u64),
    }
}

/// The CloudTrail table under `dir` (`dir/ct`), loaded as maintenance opens it.
pub async fn open_table(dir: &Path) -> deltalake::DeltaTable {
    cloudtrail_delta::maintenance::open(
        dir.join("ct").to_str().unwrap(),
        &cloudtrail_delta::table::commit::CommitMode::ConditionalPut,
    )
    .await
    .unwrap()
    .expect("the table exists")
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn log(records: usize, tag: &str) -> Vec<u8> {
    let records: Vec<String> = (0..records)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.09","eventTime":"2024-04-30T22:{:02}:00Z","eventName":"E{i}","eventID":"{tag}-{i}","readOnly":true}}"#,
                i % 60
            )
        })
        .collect();
    gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
}

pub async fn ingest(
    ingester: &mut Ingester,
    name: &str,
    content: Vec<u8>,
) -> Result<Outcome, cloudtrail_delta::IngestError> {
    let object = object(name, &content);
    ingester
        .ingest(&object, move || Ok(Cursor::new(content)))
        .await
}

/// The `add` actions of the files the table's JSON log references (adds minus removes), by
/// path, replayed independently of delta-rs' reader.
pub fn live_adds(table: &Path) -> HashMap<String, serde_json::Value> {
    let mut files = HashMap::new();
    let mut commits: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    for commit in commits {
        for line in std::fs::read_to_string(commit).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                files.insert(add["path"].as_str().unwrap().to_owned(), add.clone());
            } else if let Some(remove) = action.get("remove") {
                files.remove(remove["path"].as_str().unwrap());
            }
        }
    }
    files
}

/// Rows in the table by its log (`numRecords` of each live file).
pub fn rows_in_log(table: &Path) -> u64 {
    live_adds(table)
        .values()
        .map(|add| {
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            stats["numRecords"].as_u64().unwrap()
        })
        .sum()
}

pub fn version(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("ct/_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "json")
        })
        .count()
        - 1
}

pub fn item(name: &str, content: Vec<u8>) -> BatchItem {
    let object = object(name, &content);
    let content = Arc::new(content);
    BatchItem {
        object,
        open: Arc::new(move || Ok(Opened::bytes(Cursor::new(content.to_vec())))),
    }
}

/// The eventIDs of the rows in the files the table's log references, sorted; files no
/// commit references (an aborted write's) are not read.
pub fn event_ids_in_log(table: &Path) -> Vec<String> {
    let files = live_adds(table).into_keys();
    let mut ids = Vec::new();
    for path in files {
        let path = percent_encoding::percent_decode_str(&path)
            .decode_utf8()
            .unwrap();
        let file = std::fs::File::open(table.join(path.as_ref())).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch.column_by_name("eventID").unwrap();
            let column = column
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            ids.extend(column.iter().map(|v| v.unwrap().to_owned()));
        }
    }
    ids.sort();
    ids
}

/// `tag-0`, `tag-1`, … for each (tag, records), sorted.
pub fn expected_ids(logs: &[(&str, usize)]) -> Vec<String> {
    let mut ids: Vec<String> = logs
        .iter()
        .flat_map(|(tag, n)| (0..*n).map(move |i| format!("{tag}-{i}")))
        .collect();
    ids.sort();
    ids
}
