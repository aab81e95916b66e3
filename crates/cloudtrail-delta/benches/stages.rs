//! The ingest stages, each on its own, so that an optimisation is measured where it acts:
//!
//! - `decompress`: gzip → bytes (the floor of every ingester);
//! - `parse`: JSON bytes → Arrow batches (framing, typed columns, raw JSON text);
//! - `encode`: Arrow batches → zstd Parquet, with the tables' writer properties;
//! - `ingest_small_object`: one 300-record log object into a local Delta table, commit
//!   included: the per-object cost that dominates many small files.
//!
//! The input is built from the bundled samples' records, repeated with distinct eventIDs.
//! `cargo bench --bench stages` (make bench runs the whole-file comparison with the peers).

use std::io::{Cursor, Read, Write};
use std::path::Path;

use arrow::array::RecordBatch;
use cloudtrail_delta::TableUris;
use cloudtrail_delta::parse::decode::{Limits, decompressed};
use cloudtrail_delta::parse::{Sha256Hash, parse_log};
use cloudtrail_delta::writer::encoding::writer_properties;
use cloudtrail_delta::{Ingester, LogKind, Outcome, SourceObject};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deltalake::parquet::arrow::ArrowWriter;
use flate2::{Compression, write::GzEncoder};

/// The records of the bundled CloudTrail samples, as JSON texts.
fn sample_records() -> Vec<String> {
    let mut records = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy();
            if path.is_dir() {
                stack.push(path);
            } else if name.contains("/CloudTrail/") {
                let mut text = String::new();
                decompressed(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                let log: serde_json::Value = serde_json::from_str(&text).unwrap();
                for record in log["Records"].as_array().unwrap() {
                    records.push(record.to_string());
                }
            }
        }
    }
    records.sort();
    records
}

/// A `{"Records":[...]}` document of `n` records cycling through the samples.
fn log_json(n: usize) -> Vec<u8> {
    let samples = sample_records();
    let records: Vec<String> = (0..n)
        .map(|i| {
            let mut record: serde_json::Value =
                serde_json::from_str(&samples[i % samples.len()]).unwrap();
            record["eventID"] = serde_json::json!(format!("bench-{i:08}"));
            record.to_string()
        })
        .collect();
    format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn parse(json: &[u8]) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    parse_log(
        LogKind::CloudTrail,
        "s3://bench/object.json.gz",
        &Default::default(),
        Cursor::new(json.to_vec()),
        Limits::default(),
        |batch| {
            batches.push(batch);
            true
        },
    )
    .unwrap();
    batches
}

fn stages(c: &mut Criterion) {
    let json = log_json(20_000);
    let gz = gzip(&json);
    let mut group = c.benchmark_group("stages");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(json.len() as u64));

    group.bench_function("decompress", |b| {
        b.iter_batched(
            || Cursor::new(gz.clone()),
            |input| std::io::copy(&mut decompressed(input).unwrap(), &mut std::io::sink()).unwrap(),
            BatchSize::LargeInput,
        )
    });
    // The SHA-256 parsing computes of the uncompressed bytes (what digests list).
    group.bench_function("sha256", |b| b.iter(|| Sha256Hash::of(&json)));
    group.bench_function("parse", |b| b.iter(|| parse(&json)));
    let batches = parse(&json);
    let schema = LogKind::CloudTrail.arrow_schema();
    let properties = writer_properties(LogKind::CloudTrail, batches.first()).unwrap();
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut writer =
                ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties.clone())).unwrap();
            for batch in &batches {
                writer.write(batch).unwrap();
            }
            writer.into_inner().unwrap().len()
        })
    });
    group.finish();
}

fn small_objects(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = Ingester::new(TableUris {
        cloudtrail: dir.path().join("ct").to_string_lossy().into_owned(),
        insights: dir.path().join("ins").to_string_lossy().into_owned(),
        aggregated: None,
        digests: None,
    });
    let content = gzip(&log_json(300));
    let mut n = 0u64;
    let mut group = c.benchmark_group("per_object");
    group.sample_size(20);
    group.bench_function("ingest_small_object", |b| {
        b.iter(|| {
            n += 1;
            let key = format!(
                "AWSLogs/1/CloudTrail/us-east-1/2024/04/30/1_CloudTrail_us-east-1_{n}.json.gz"
            );
            let object = SourceObject {
                uri: format!("s3://bench/{key}"),
                key,
                fingerprint: n.to_string(),
                size: Some(content.len() as u64),
            };
            let content = content.clone();
            let outcome = runtime
                .block_on(ingester.ingest(&object, move || Ok(Cursor::new(content))))
                .unwrap();
            assert!(matches!(outcome, Outcome::Ingested(_)));
        })
    });
    group.finish();
}

criterion_group!(benches, stages, small_objects);
criterion_main!(benches);
