//! Exactly once whatever the delay, with state that does not grow with history, against real
//! local Delta tables: a re-delivery after the `txn` window adds nothing, a backfill re-run
//! over objects ingested long ago adds nothing (and its `txn` actions stay out of the
//! checkpoints), maintenance leaves no expired id in the checkpoint and upgrades an older
//! table, and an ingest commit outlives a concurrent metadata change.

mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use cloudtrail_delta::ingest::BatchItem;
use cloudtrail_delta::maintenance::{self, Policy, Upkeep};
use cloudtrail_delta::parse::Sha256Hash;
use cloudtrail_delta::source::Opened;
use cloudtrail_delta::table::NewObject;
use cloudtrail_delta::table::commit::CommitMode;
use cloudtrail_delta::table::ingest_index::{INDEX_DIR, IngestIndex};
use cloudtrail_delta::table::{CommitOutcome, LogTable, TXN_RETENTION, TXN_RETENTION_PROPERTY};
use cloudtrail_delta::{LogKind, Outcome, SourceObject};
use common::*;

/// An object delivered on `date` (`YYYY/MM/DD`).
fn object_on(date: &str, name: &str, content: &[u8]) -> SourceObject {
    let key = format!(
        "AWSLogs/123456789012/CloudTrail/us-east-1/{date}/123456789012_CloudTrail_us-east-1_{name}.json.gz"
    );
    SourceObject {
        uri: format!("s3://bucket/{key}"),
        key,
        fingerprint: format!("{:x}", xxhash_rust::xxh3::xxh3_64(content)),
        size: Some(content.len() as u64),
    }
}

fn today() -> String {
    chrono::Utc::now().format("%Y/%m/%d").to_string()
}

fn item_on(date: &str, name: &str) -> BatchItem {
    let content = Arc::new(log(3, name));
    BatchItem {
        object: object_on(date, name, &content),
        open: Arc::new(move || Ok(Opened::bytes(Cursor::new(content.to_vec())))),
    }
}

async fn ingest_item(ingester: &mut cloudtrail_delta::Ingester, item: &BatchItem) -> Outcome {
    let mut results = ingester.ingest_batch(std::slice::from_ref(item)).await;
    results.pop().expect("one result").unwrap()
}

fn settings() -> Policy {
    Policy {
        target_file_bytes: 64 << 20,
        vacuum_retention: Duration::from_secs(7 * 24 * 3600),
    }
}

/// Runs maintenance on the CloudTrail table under `dir`.
async fn maintain(dir: &Path) -> (deltalake::DeltaTable, Upkeep) {
    maintenance::upkeep(open_table(dir).await, LogKind::CloudTrail, settings())
        .await
        .unwrap()
}

/// Shortens the table's `txn` retention to one second (a metadata commit).
async fn expire_txns_after_a_second(dir: &Path) {
    open_table(dir)
        .await
        .set_tbl_properties()
        .with_properties(HashMap::from([(
            TXN_RETENTION_PROPERTY.to_owned(),
            "interval 1 seconds".to_owned(),
        )]))
        .await
        .unwrap();
}

/// The app ids of the `txn` rows of the table's newest checkpoint.
fn checkpoint_txns(table: &Path) -> Vec<String> {
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(table.join("_delta_log/_last_checkpoint")).unwrap())
            .unwrap();
    let file = table.join(format!(
        "_delta_log/{:020}.checkpoint.parquet",
        last["version"].as_u64().unwrap()
    ));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let txn = batch.column_by_name("txn").unwrap().as_struct();
        let app_ids = txn.column_by_name("appId").unwrap().as_string::<i32>();
        for row in 0..batch.num_rows() {
            if txn.is_valid(row) {
                ids.push(app_ids.value(row).to_owned());
            }
        }
    }
    ids
}

async fn index_rows(dir: &Path) -> u64 {
    let root = deltalake::ensure_table_uri(dir.join("ct").to_str().unwrap()).unwrap();
    IngestIndex::open(&root, &HashMap::new())
        .await
        .unwrap()
        .rows()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redelivery_after_the_txn_window_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = item_on(&today(), "live");
    let mut ingester = ingester(dir.path());
    assert!(matches!(
        ingest_item(&mut ingester, &first).await,
        Outcome::Ingested(_)
    ));
    expire_txns_after_a_second(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, done) = maintain(dir.path()).await;
    assert_eq!(done.objects_indexed, 1);
    // The window has passed: the checkpoint no longer names the object; the index does.
    assert_eq!(
        checkpoint_txns(&dir.path().join("ct")),
        Vec::<String>::new()
    );
    assert_eq!(index_rows(dir.path()).await, 1);

    let version = version(dir.path());
    // A cold start sees the re-delivery as already ingested.
    let mut cold = self::ingester(dir.path());
    assert!(matches!(
        ingest_item(&mut cold, &first).await,
        Outcome::AlreadyIngested { .. }
    ));
    assert_eq!(version, self::version(dir.path()));
    assert_eq!(rows_in_log(&dir.path().join("ct")), 3);

    // Without the index, nothing else remembers it: the same table less its index takes
    // the object a second time.
    std::fs::remove_dir_all(dir.path().join("ct").join(INDEX_DIR)).unwrap();
    let mut forgetful = self::ingester(dir.path());
    assert!(matches!(
        ingest_item(&mut forgetful, &first).await,
        Outcome::Ingested(_)
    ));
}

#[tokio::test]
async fn a_backfill_rerun_over_objects_ingested_long_ago_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let days = ["2023/01/01", "2023/01/02", "2023/06/30"];
    let batches: Vec<Vec<BatchItem>> = days
        .iter()
        .map(|day| {
            (0..40)
                .map(|i| item_on(day, &format!("{}-{i}", day.replace('/', ""))))
                .collect()
        })
        .collect();
    let mut ingester = ingester(dir.path());
    for batch in &batches {
        for result in ingester.ingest_batch(batch).await {
            assert!(matches!(result.unwrap(), Outcome::Ingested(_)));
        }
    }
    let version = version(dir.path());
    assert_eq!(version, 3, "one commit per batch");

    // Re-run before maintenance: the commits themselves say what is in.
    let mut rerun = self::ingester(dir.path());
    for batch in &batches {
        for result in rerun.ingest_batch(batch).await {
            assert!(matches!(result.unwrap(), Outcome::AlreadyIngested { .. }));
        }
    }
    assert_eq!(version, self::version(dir.path()));

    let (_, done) = maintain(dir.path()).await;
    assert_eq!(done.objects_indexed, 120);
    // Backfilled objects' transactions are expired from the start: none in the checkpoint.
    assert_eq!(
        checkpoint_txns(&dir.path().join("ct")),
        Vec::<String>::new()
    );

    // Re-run after maintenance (which compacted the day's files: one more version), cold:
    // the index says what is in.
    let version = self::version(dir.path());
    let mut rerun = self::ingester(dir.path());
    for batch in &batches {
        for result in rerun.ingest_batch(batch).await {
            assert!(matches!(result.unwrap(), Outcome::AlreadyIngested { .. }));
        }
    }
    assert_eq!(version, self::version(dir.path()));
    assert_eq!(rows_in_log(&dir.path().join("ct")), 120 * 3);
}

#[tokio::test]
async fn after_maintenance_the_checkpoint_holds_no_expired_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    for i in 0..5 {
        ingest_item(&mut ingester, &item_on(&today(), &format!("a{i}"))).await;
    }
    let ct = dir.path().join("ct");
    // Live objects are in the window: a checkpoint now keeps their ids.
    deltalake::checkpoints::create_checkpoint(&open_table(dir.path()).await, None)
        .await
        .unwrap();
    assert_eq!(checkpoint_txns(&ct).len(), 5);

    expire_txns_after_a_second(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ingest_item(&mut ingester, &item_on(&today(), "fresh")).await;
    let (_, done) = maintain(dir.path()).await;
    assert_eq!(done.objects_indexed, 6);
    // Only the object ingested within the last second may be left.
    let left = checkpoint_txns(&ct);
    assert!(left.len() <= 1, "{left:?}");
    assert_eq!(index_rows(dir.path()).await, 6);
}

#[tokio::test]
async fn maintenance_upgrades_a_table_made_without_the_txn_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    for i in 0..3 {
        ingest_item(&mut ingester, &item_on(&today(), &format!("u{i}"))).await;
    }
    // A table of an older version: the same, less the retention property.
    let table = open_table(dir.path()).await;
    let mut configuration: HashMap<String, String> =
        table.snapshot().unwrap().metadata().configuration().clone();
    assert!(configuration.remove(TXN_RETENTION_PROPERTY).is_some());
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let mut older = cloudtrail_delta::Ingester::new(cloudtrail_delta::TableUris {
        cloudtrail: old.join("ct").to_str().unwrap().to_owned(),
        insights: old.join("insights").to_str().unwrap().to_owned(),
        aggregated: None,
        digests: None,
    });
    deltalake::operations::create::CreateBuilder::new()
        .with_location(old.join("ct").to_str().unwrap())
        .with_columns(table.snapshot().unwrap().schema().fields().cloned())
        .with_partition_columns(["event_date"])
        .with_configuration(configuration.into_iter().map(|(k, v)| (k, Some(v))))
        .await
        .unwrap();
    let items: Vec<BatchItem> = (0..3)
        .map(|i| item_on(&today(), &format!("o{i}")))
        .collect();
    for item in &items {
        assert!(matches!(
            ingest_item(&mut older, item).await,
            Outcome::Ingested(_)
        ));
    }
    let (table, done) = maintain(&old).await;
    assert!(done.txn_retention_set);
    assert_eq!(done.objects_indexed, 3);
    assert_eq!(
        table
            .snapshot()
            .unwrap()
            .metadata()
            .configuration()
            .get(TXN_RETENTION_PROPERTY)
            .map(String::as_str),
        Some(TXN_RETENTION)
    );
    // The ingester opened before the upgrade goes on, and nothing already in is taken again.
    for item in &items {
        assert!(matches!(
            ingest_item(&mut older, item).await,
            Outcome::AlreadyIngested { .. }
        ));
    }
    assert!(matches!(
        ingest_item(&mut older, &item_on(&today(), "after")).await,
        Outcome::Ingested(_)
    ));
    let (_, again) = maintain(&old).await;
    assert!(!again.txn_retention_set);
}

/// A commit prepared before a metadata commit (maintenance setting a property) lands on the
/// second try instead of failing with `MetadataChanged`.
#[tokio::test]
async fn an_ingest_commit_retries_once_over_a_metadata_change() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("ct").to_str().unwrap().to_owned();
    let mode = CommitMode::ConditionalPut;
    let mut table = LogTable::open_or_create(&uri, LogKind::CloudTrail, &HashMap::new(), &mode)
        .await
        .unwrap();
    let mut writer = table.writer();
    let object = object_on(&today(), "m", b"m");
    let mut batch = LogKind::CloudTrail.batch_builder();
    batch
        .append(br#"{"eventVersion":"1.09","eventTime":"2024-04-30T22:00:00Z","eventID":"m-0"}"#)
        .unwrap();
    writer.write(batch.finish(&object.uri)).await.unwrap();
    let adds = writer.flush().await.unwrap();
    expire_txns_after_a_second(dir.path()).await;
    let id = object.ingest_id();
    let new = NewObject {
        ingest_id: &id,
        uri: &object.uri,
        sha256: Sha256Hash::of(b"m"),
    };
    let outcome = table.commit(adds, &[new]).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed { version: 2, .. }),
        "{outcome:?}"
    );
}

/// An ingest index made before it recorded hashes (no `sha256` column) gains the column on
/// its next extension, and the objects added from then on carry their hash.
#[tokio::test]
async fn an_index_without_the_hash_column_gains_it() {
    use cloudtrail_delta::table::ingest_index::{DELIVERY_DATE, SHA256, index_url};
    use cloudtrail_delta::table::ingested::IngestedObject;
    use deltalake::kernel::{DataType, PrimitiveType, StructField};

    let dir = tempfile::tempdir().unwrap();
    let root = deltalake::ensure_table_uri(dir.path().join("ct").to_str().unwrap()).unwrap();
    let old_columns = [
        StructField::new("ingest_id", DataType::STRING, false),
        StructField::new("source_uri", DataType::STRING, true),
        StructField::new("table_version", DataType::LONG, false),
        StructField::new(
            "committed_at",
            DataType::Primitive(PrimitiveType::Timestamp),
            false,
        ),
        StructField::new(DELIVERY_DATE, DataType::DATE, true),
    ];
    deltalake::operations::create::CreateBuilder::new()
        .with_location(index_url(&root).unwrap().as_str())
        .with_columns(old_columns)
        .with_partition_columns([DELIVERY_DATE])
        .await
        .unwrap();

    let mut index = IngestIndex::open(&root, &HashMap::new()).await.unwrap();
    let object = IngestedObject {
        ingest_id: "cloudtrail-delta/0001".into(),
        uri: Some(format!("s3://bucket/{KEY}")),
        version: 1,
        committed_at_ms: 1_714_514_400_000,
        sha256: Some(Sha256Hash::of(b"log").to_hex()),
    };
    assert!(
        index
            .extend(std::slice::from_ref(&object), 1)
            .await
            .unwrap()
    );
    let table = index.table().expect("the index exists");
    let schema = table.snapshot().unwrap().schema();
    assert!(schema.field(SHA256).is_some(), "{schema:?}");
    assert_eq!(index.objects(None).await.unwrap(), vec![object]);
}
