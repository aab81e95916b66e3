//! The Parquet writer and its uploads: partitions, file rolls, `add` statistics, and files
//! sent in parts, read back with the parquet crate's reader.

use std::sync::Arc;

use arrow::array::AsArray;
use cloudtrail_delta::LogKind;
use cloudtrail_delta::writer::LogWriter;
use cloudtrail_delta::writer::upload::{
    FileUpload, LOCAL_PART_BYTES, OBJECT_STORE_PART_BYTES as PART_BYTES,
};
use deltalake::kernel::Add;
use deltalake::logstore::object_store::{
    ObjectStore, ObjectStoreExt, local::LocalFileSystem, memory::InMemory, path::Path,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn batch(records: &[&str]) -> arrow::array::RecordBatch {
    let mut builder = LogKind::CloudTrail.batch_builder();
    for record in records {
        builder.append(record.as_bytes()).unwrap();
    }
    builder.finish("s3://bucket/object.json.gz")
}

async fn read(store: &dyn ObjectStore, add: &Add) -> Vec<arrow::array::RecordBatch> {
    let bytes = store
        .get(&Path::from(add.path.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as i64, add.size, "{}", add.path);
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn stats(add: &Add) -> serde_json::Value {
    serde_json::from_str(add.stats.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn a_batch_spanning_midnight_lands_in_two_partitions_with_their_statistics() {
    let store = Arc::new(InMemory::new());
    let mut writer = LogWriter::new(store.clone(), LogKind::CloudTrail, 128 << 20, PART_BYTES);
    writer
        .write(batch(&[
            r#"{"eventTime":"2024-04-30T23:59:58.250Z","eventName":"B","userIdentity":{"arn":"arn:b"}}"#,
            r#"{"eventTime":"2024-05-01T00:00:01Z","eventName":"C","readOnly":false}"#,
            r#"{"eventTime":"2024-04-30T23:59:59Z","eventName":"A","userIdentity":{"arn":"arn:a"},"readOnly":true}"#,
        ]))
        .await
        .unwrap();
    let mut adds = writer.flush().await.unwrap();
    adds.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(adds.len(), 2, "{adds:?}");

    let first = &adds[0];
    assert!(
        first.path.starts_with("event_date=2024-04-30/part-"),
        "{}",
        first.path
    );
    assert_eq!(
        first.partition_values.get("event_date"),
        Some(&Some("2024-04-30".to_owned()))
    );
    assert!(first.data_change);
    assert_eq!(
        stats(first),
        serde_json::json!({
            "numRecords": 2,
            "minValues": {
                "eventTime": "2024-04-30T23:59:58.250Z",
                "eventName": "A",
                "readOnly": true,
                "userIdentity": {"arn": "arn:a"},
            },
            "maxValues": {
                "eventTime": "2024-04-30T23:59:59.000Z",
                "eventName": "B",
                "readOnly": true,
                "userIdentity": {"arn": "arn:b"},
            },
            "nullCount": {
                "eventTime": 0, "eventSource": 2, "eventName": 0, "awsRegion": 2,
                "recipientAccountId": 2, "eventID": 2, "errorCode": 2, "sourceIPAddress": 2,
                "readOnly": 1, "eventType": 2, "eventCategory": 2,
                "userIdentity": {"arn": 0, "accountId": 2, "type": 2, "principalId": 2},
            },
        })
    );
    let rows = read(store.as_ref(), first).await;
    let names: Vec<&str> = rows
        .iter()
        .flat_map(|b| {
            b.column_by_name("eventName")
                .unwrap()
                .as_string::<i32>()
                .iter()
        })
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        names,
        ["B", "A"],
        "rows keep their order within a partition"
    );
    assert!(
        rows[0].column_by_name("event_date").is_none(),
        "the partition column is not in the files"
    );

    let second = &adds[1];
    assert!(
        second.path.starts_with("event_date=2024-05-01/"),
        "{}",
        second.path
    );
    assert_eq!(stats(second)["numRecords"], 1);
    assert_eq!(stats(second)["minValues"]["readOnly"], false);
    assert_eq!(read(store.as_ref(), second).await[0].num_rows(), 1);
}

#[tokio::test]
async fn files_roll_at_the_target_size_and_hold_every_row_once() {
    let store = Arc::new(InMemory::new());
    // A target of one byte: every write finishes its file.
    let mut writer = LogWriter::new(store.clone(), LogKind::CloudTrail, 1, PART_BYTES);
    for i in 0..3 {
        let records: Vec<String> = (0..10)
            .map(|j| format!(r#"{{"eventTime":"2024-04-30T22:00:0{j}Z","eventID":"{i}-{j}"}}"#))
            .collect();
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        writer.write(batch(&records)).await.unwrap();
    }
    let adds = writer.flush().await.unwrap();
    assert_eq!(adds.len(), 3);
    let mut ids = Vec::new();
    for add in &adds {
        assert_eq!(stats(add)["numRecords"], 10);
        for rows in read(store.as_ref(), add).await {
            let column = rows.column_by_name("eventID").unwrap().as_string::<i32>();
            ids.extend(column.iter().map(|id| id.unwrap().to_owned()));
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
}

#[tokio::test]
async fn a_reset_writer_leaves_no_file_behind() {
    let store = Arc::new(InMemory::new());
    let mut writer = LogWriter::new(store.clone(), LogKind::CloudTrail, 128 << 20, PART_BYTES);
    writer
        .write(batch(&[r#"{"eventTime":"2024-04-30T22:00:00Z"}"#]))
        .await
        .unwrap();
    writer.reset();
    assert!(writer.flush().await.unwrap().is_empty());
    let listed: Vec<_> = futures::StreamExt::collect(store.list(None)).await;
    assert!(listed.is_empty(), "{listed:?}");
}

/// Sends a file of two parts and 12 345 bytes through `store` a megabyte at a time, checking that no
/// full part waits, and reads it back.
async fn sends_in_parts_and_reads_back_whole(store: Arc<dyn ObjectStore>, part_bytes: usize) {
    let path = Path::from("event_date=2024-04-30/large.parquet");
    let mut upload = FileUpload::new(store.clone(), path.clone(), part_bytes);
    let content: Vec<u8> = (0..(2 * part_bytes + 12_345))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut buffer = upload.buffer();
    for chunk in content.chunks(1 << 20) {
        buffer.extend_from_slice(chunk);
        upload.send_full_parts(&mut buffer).await.unwrap();
        assert!(
            buffer.len() < part_bytes,
            "a full part waits: {}",
            buffer.len()
        );
    }
    assert_eq!(buffer.len(), 12_345);
    upload.finish(buffer).await.unwrap();
    let stored = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert!(stored == content, "the stored file differs");
}

#[tokio::test]
async fn a_file_larger_than_a_part_is_sent_in_parts_and_reads_back_whole() {
    sends_in_parts_and_reads_back_whole(Arc::new(InMemory::new()), PART_BYTES).await;
}

#[tokio::test]
async fn a_local_file_is_sent_in_local_parts_and_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    sends_in_parts_and_reads_back_whole(Arc::new(store), LOCAL_PART_BYTES).await;
}
