//! Ingest behaviour against real local Delta tables: bad input never half-lands, re-ingest and
//! racing ingests add nothing, concurrent ingests of different objects both land, checkpoints.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cloudtrail_delta::ingest::{BatchItem, Cause};
use cloudtrail_delta::parse::Sha256Hash;
use cloudtrail_delta::parse::decode::Limits;
use cloudtrail_delta::runtime::budget::{Budget, OverBudget};
use cloudtrail_delta::source::Opened;
use cloudtrail_delta::table::NewObject;
use cloudtrail_delta::table::RELOAD_AFTER_VERSIONS;
use cloudtrail_delta::table::ingest_index::IngestIndex;
use cloudtrail_delta::{LogKind, Outcome, SourceObject};
use common::*;

#[tokio::test]
async fn bad_input_fails_clearly_and_lands_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    assert!(matches!(
        ingest(&mut ingester, "good", log(3, "good")).await.unwrap(),
        Outcome::Ingested(_)
    ));

    let deep = format!(
        r#"{{"Records":[{{"eventTime":"2024-04-30T22:00:00Z","x":{}1{}}}]}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let mut truncated = log(200, "t");
    truncated.truncate(truncated.len() / 2);
    let valid_then_bad = gzip(br#"{"Records":[{"eventTime":"2024-04-30T22:00:00Z"},{"eventTime":"2024-04-30T22:00:01Z","eventName":"#);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("corrupt-gzip", [&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0][..], b"not deflate data at all"].concat(), "decompress"),
        ("truncated-gzip", truncated, ""),
        ("not-json", gzip(b"<html>nope</html>"), "not a CloudTrail log"),
        ("no-records", gzip(br#"{"records":[]}"#), "no \"Records\" array"),
        ("record-not-object", gzip(br#"{"Records":[{"eventTime":"2024-04-30T22:00:00Z"},"x"]}"#), "record 1 is not a JSON object"),
        ("no-event-time", gzip(br#"{"Records":[{"eventName":"x"}]}"#), "record 0: the record has no valid eventTime"),
        ("bad-event-time", gzip(br#"{"Records":[{"eventTime":"yesterday"}]}"#), "record 0: eventTime: \"yesterday\" is not a timestamp like 2024-04-30T22:00:00Z"),
        ("bad-nested-value", gzip(br#"{"Records":[{"eventTime":"2024-04-30T22:00:00Z","userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":tru}}}}]}"#), "record 0: userIdentity.sessionContext.attributes.mfaAuthenticated: "),
        ("invalid-utf8", gzip(b"{\"Records\":[{\"eventTime\":\"2024-04-30T22:00:00Z\",\"eventName\":\"\xff\xfe\"}]}"), "record 0:"),
        ("absurd-nesting", gzip(deep.as_bytes()), "deeper than 100 levels"),
        ("empty", Vec::new(), "the object is empty"),
        ("empty-gzip", gzip(b""), "the object is empty"),
        ("invalid-json-late", valid_then_bad, ""),
    ];
    for (name, content, expected) in cases {
        let error = ingest(&mut ingester, name, content).await.expect_err(name);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "s3://bucket/{}",
                KEY.replace("_T.", &format!("_{name}."))
            )),
            "{message}"
        );
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            !matches!(error.cause, Cause::Table { .. }),
            "{name}: {message}"
        );
    }
    // Nothing of any bad object reached the table: still one commit after creation.
    assert_eq!(version(dir.path()), 1);
    assert_eq!(rows_in_log(&dir.path().join("ct")), 3);
}

#[tokio::test]
async fn reingesting_the_same_object_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    let content = log(10, "a");
    let Outcome::Ingested(report) = ingest(&mut ingester, "a", content.clone()).await.unwrap()
    else {
        panic!("first ingest must land")
    };
    assert_eq!(
        (report.kind, report.records, report.version),
        (LogKind::CloudTrail, 10, 1)
    );
    assert_eq!(
        ingest(&mut ingester, "a", content.clone()).await.unwrap(),
        Outcome::AlreadyIngested {
            kind: LogKind::CloudTrail
        }
    );
    // A new process (fresh table handle) sees it too.
    let mut fresh = self::ingester(dir.path());
    assert_eq!(
        ingest(&mut fresh, "a", content).await.unwrap(),
        Outcome::AlreadyIngested {
            kind: LogKind::CloudTrail
        }
    );
    // The same key with other content is another object.
    assert!(matches!(
        ingest(&mut fresh, "a", log(4, "a2")).await.unwrap(),
        Outcome::Ingested(_)
    ));
    assert_eq!(rows_in_log(&dir.path().join("ct")), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingests_of_different_objects_both_land() {
    let dir = tempfile::tempdir().unwrap();
    // Create the table first so both writers race on commits, not on creation.
    ingest(&mut ingester(dir.path()), "seed", log(1, "seed"))
        .await
        .unwrap();
    let mut handles = Vec::new();
    for writer in 0..4 {
        let path = dir.path().to_owned();
        handles.push(tokio::spawn(async move {
            let mut ingester = ingester(&path);
            let mut versions = Vec::new();
            for n in 0..3 {
                let name = format!("w{writer}-{n}");
                match ingest(&mut ingester, &name, log(5, &name)).await.unwrap() {
                    Outcome::Ingested(report) => versions.push(report.version),
                    other => panic!("{name}: {other:?}"),
                }
            }
            versions
        }));
    }
    let mut versions = HashSet::new();
    for handle in handles {
        for v in handle.await.unwrap() {
            assert!(versions.insert(v), "two commits claimed version {v}");
        }
    }
    assert_eq!(versions.len(), 12);
    assert_eq!(rows_in_log(&dir.path().join("ct")), 1 + 12 * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ingests_of_the_same_object_land_it_once() {
    let dir = tempfile::tempdir().unwrap();
    ingest(&mut ingester(dir.path()), "seed", log(1, "seed"))
        .await
        .unwrap();
    let content = log(2_000, "race");
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (path, content) = (dir.path().to_owned(), content.clone());
        handles.push(tokio::spawn(async move {
            ingest(&mut ingester(&path), "race", content).await.unwrap()
        }));
    }
    let mut landed = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Outcome::Ingested(report) => {
                assert_eq!(report.records, 2_000);
                landed += 1;
            }
            Outcome::AlreadyIngested { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(landed, 1);
    assert_eq!(rows_in_log(&dir.path().join("ct")), 1 + 2_000);
}

#[tokio::test]
async fn writes_a_checkpoint_every_hundred_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    let checkpoint = dir
        .path()
        .join("ct/_delta_log/00000000000000000099.checkpoint.parquet");
    for n in 0..99 {
        assert!(
            !checkpoint.exists(),
            "checkpoint before version 99 (at {n})"
        );
        ingest(&mut ingester, &format!("c{n}"), log(1, &format!("c{n}")))
            .await
            .unwrap();
    }
    assert!(checkpoint.exists());
    assert_eq!(rows_in_log(&dir.path().join("ct")), 99);
    // The writer extended the ingest index through the checkpoint's version first.
    let root = deltalake::ensure_table_uri(dir.path().join("ct").to_str().unwrap()).unwrap();
    let index = IngestIndex::open(&root, &Default::default()).await.unwrap();
    assert_eq!(index.watermark().await.unwrap(), Some(99));
    assert_eq!(index.rows().await.unwrap(), 99);
    // Each object's row holds the SHA-256 of its uncompressed bytes.
    let indexed = index.objects(None).await.unwrap();
    assert_eq!(indexed.len(), 99);
    for object in indexed {
        let uri = object.uri.expect("the index keeps each object's URI");
        let name = uri.trim_end_matches(".json.gz").rsplit('_').next().unwrap();
        let json = gunzip(&log(1, name));
        assert_eq!(object.sha256, Some(Sha256Hash::of(&json).to_hex()), "{uri}");
    }
    // A new handle loads from the checkpoint and still knows what was ingested before it.
    let mut fresh = self::ingester(dir.path());
    assert!(matches!(
        ingest(&mut fresh, "c5", log(1, "c5")).await.unwrap(),
        Outcome::AlreadyIngested { .. }
    ));

    // The first handle, brought forward past RELOAD_AFTER_VERSIONS, loads itself afresh
    // (from the checkpoint) and goes on as before: no double, no lost object.
    for n in 99..103 {
        ingest(&mut ingester, &format!("c{n}"), log(1, &format!("c{n}")))
            .await
            .unwrap();
    }
    let table = ingester.table(LogKind::CloudTrail).unwrap();
    assert!(
        table.loaded_at() >= RELOAD_AFTER_VERSIONS,
        "loaded afresh at version {}",
        table.loaded_at()
    );
    assert!(matches!(
        ingest(&mut ingester, "c5", log(1, "c5")).await.unwrap(),
        Outcome::AlreadyIngested { .. }
    ));
    assert!(matches!(
        ingest(&mut ingester, "c103", log(1, "c103")).await.unwrap(),
        Outcome::Ingested(report) if report.version == 104
    ));
    let tags: Vec<String> = (0..104).map(|n| format!("c{n}")).collect();
    let logs: Vec<(&str, usize)> = tags.iter().map(|t| (t.as_str(), 1)).collect();
    assert_eq!(
        event_ids_in_log(&dir.path().join("ct")),
        expected_ids(&logs)
    );
}

/// Two handles on one table, both at the same version, commit the same object: the second
/// commit is turned away by delta-rs' conflict checker (`ConcurrentTransaction`, the same
/// txn appId) and reported as already ingested. Deterministic: the second handle's snapshot
/// is stale by construction, not by timing.
#[tokio::test]
async fn a_commit_with_a_stale_snapshot_of_the_same_object_is_rejected() {
    use cloudtrail_delta::table::commit::CommitMode;
    use cloudtrail_delta::table::{CommitOutcome, LogTable};

    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("ct").to_str().unwrap().to_owned();
    let options = HashMap::new();
    let mode = CommitMode::ConditionalPut;
    let mut first = LogTable::open_or_create(&uri, LogKind::CloudTrail, &options, &mode)
        .await
        .unwrap();
    let mut second = LogTable::open_or_create(&uri, LogKind::CloudTrail, &options, &mode)
        .await
        .unwrap();
    assert_eq!(first.version(), second.version());

    let source = object("stale", b"the same content");
    let adds_of = async |table: &LogTable| {
        let mut builder = LogKind::CloudTrail.batch_builder();
        builder
            .append(br#"{"eventTime":"2024-04-30T22:00:00Z","eventID":"stale-1"}"#)
            .unwrap();
        let mut writer = table.writer();
        writer.write(builder.finish(&source.uri)).await.unwrap();
        writer.flush().await.unwrap()
    };
    let first_adds = adds_of(&first).await;
    let second_adds = adds_of(&second).await;
    let id = source.ingest_id();
    let new = NewObject {
        ingest_id: &id,
        uri: &source.uri,
        sha256: Sha256Hash::of(b"the same content"),
    };

    let committed = first.commit(first_adds, &[new]).await.unwrap();
    assert!(
        matches!(committed, CommitOutcome::Committed { .. }),
        "{committed:?}"
    );
    // `second` was not refreshed: its commit starts from the version before `first`'s.
    let rejected = second.commit(second_adds, &[new]).await.unwrap();
    assert_eq!(rejected, CommitOutcome::AlreadyIngested);
    assert_eq!(rows_in_log(&dir.path().join("ct")), 1);
}

#[tokio::test]
async fn a_batch_lands_in_one_commit_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ingester(dir.path());
    ingest(&mut first, "before", log(2, "before"))
        .await
        .unwrap();
    assert_eq!(version(dir.path()), 1);

    let items = vec![
        item("a", log(3, "a")),
        item("before", log(2, "before")), // already in the table
        item("b", log(4, "b")),
        item("a", log(3, "a")), // twice in the batch
        BatchItem {
            object: SourceObject {
                key: "AWSLogs/1/CloudTrail/r/2024/04/30/notes.txt".into(),
                ..object("notes", b"{}")
            },
            open: Arc::new(|| Ok(Opened::bytes(Cursor::new(b"{}".to_vec())))),
        },
    ];
    let results: Vec<Outcome> = first
        .ingest_batch(&items)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let versions: HashSet<u64> = results
        .iter()
        .filter_map(|o| match o {
            Outcome::Ingested(report) => Some(report.version),
            _ => None,
        })
        .collect();
    assert_eq!(versions, HashSet::from([2]), "{results:?}");
    assert!(matches!(&results[0], Outcome::Ingested(r) if r.records == 3));
    assert!(matches!(results[1], Outcome::AlreadyIngested { .. }));
    assert!(matches!(&results[2], Outcome::Ingested(r) if r.records == 4));
    assert!(matches!(results[3], Outcome::AlreadyIngested { .. }));
    assert!(matches!(results[4], Outcome::Skipped(_)));
    assert_eq!(version(dir.path()), 2, "one commit for the batch");
    assert_eq!(rows_in_log(&dir.path().join("ct")), 2 + 3 + 4);

    // Again, from a fresh handle: nothing is added.
    let mut fresh = ingester(dir.path());
    for result in fresh.ingest_batch(&items).await {
        assert!(!matches!(result.unwrap(), Outcome::Ingested(_)));
    }
    assert_eq!(version(dir.path()), 2);
    assert_eq!(
        event_ids_in_log(&dir.path().join("ct")),
        expected_ids(&[("before", 2), ("a", 3), ("b", 4)])
    );
}

/// Counts the readers open at once; a reader is open from its opening to its drop.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

struct SlowReader {
    inner: Cursor<Vec<u8>>,
    first: bool,
    in_flight: Arc<InFlight>,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if std::mem::take(&mut self.first) {
            // A round trip's latency: long enough for the other reads to start meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(40));
        }
        self.inner.read(buf)
    }
}

impl Drop for SlowReader {
    fn drop(&mut self) {
        self.in_flight.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn slow_item(name: &str, content: Vec<u8>, in_flight: &Arc<InFlight>) -> BatchItem {
    let object = object(name, &content);
    let in_flight = in_flight.clone();
    BatchItem {
        object,
        open: Arc::new(move || {
            let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_flight.most.fetch_max(now, Ordering::SeqCst);
            Ok(Opened::bytes(SlowReader {
                inner: Cursor::new(content.clone()),
                first: true,
                in_flight: in_flight.clone(),
            }))
        }),
    }
}

#[tokio::test]
async fn a_batch_reads_as_many_objects_at_once_as_its_read_ahead() {
    for read_ahead in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut ingester = ingester(dir.path()).with_read_ahead(read_ahead);
        let in_flight = Arc::new(InFlight::default());
        let tags: Vec<String> = (0..8).map(|i| format!("o{i}")).collect();
        let items: Vec<BatchItem> = tags
            .iter()
            .map(|tag| slow_item(tag, log(5, tag), &in_flight))
            .collect();
        for result in ingester.ingest_batch(&items).await {
            assert!(matches!(result, Ok(Outcome::Ingested(_))), "{result:?}");
        }
        assert_eq!(
            in_flight.most.load(Ordering::SeqCst),
            read_ahead,
            "objects read at once with read-ahead {read_ahead}"
        );
        assert_eq!(
            in_flight.now.load(Ordering::SeqCst),
            0,
            "every reader closed"
        );
        assert_eq!(version(dir.path()), 1, "one commit for the batch");
        let logs: Vec<(&str, usize)> = tags.iter().map(|t| (t.as_str(), 5)).collect();
        assert_eq!(
            event_ids_in_log(&dir.path().join("ct")),
            expected_ids(&logs)
        );
    }
}

#[tokio::test]
async fn a_bad_object_fails_only_itself_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    let mut truncated = log(5, "bad");
    truncated.truncate(truncated.len() / 2);
    let items = vec![
        item("a", log(3, "a")),
        item("bad", truncated),
        item("b", log(4, "b")),
    ];
    let results = ingester.ingest_batch(&items).await;
    assert!(matches!(&results[0], Ok(Outcome::Ingested(r)) if r.records == 3));
    let error = results[1].as_ref().expect_err("a truncated object fails");
    assert!(error.uri.ends_with("_bad.json.gz"), "{error}");
    assert!(matches!(&results[2], Ok(Outcome::Ingested(r)) if r.records == 4));
    // The shared write that held part of the bad object was never committed; the good
    // objects were read again and landed together in one commit, the bad one not at all.
    assert_eq!(
        version(dir.path()),
        1,
        "one commit for the rest of the batch"
    );
    assert!(matches!(
        (&results[0], &results[2]),
        (Ok(Outcome::Ingested(a)), Ok(Outcome::Ingested(b))) if a.version == 1 && b.version == 1
    ));
    assert_eq!(
        event_ids_in_log(&dir.path().join("ct")),
        expected_ids(&[("a", 3), ("b", 4)])
    );
}

#[tokio::test]
async fn a_batch_tries_together_three_times_then_goes_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut ingester = ingester(dir.path());
    let truncated = |tag: &str| {
        let mut log = log(5, tag);
        log.truncate(log.len() / 2);
        log
    };
    // Each try together meets one more bad object, written after the good ones' first.
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = {
        let item = item("a", log(3, "a"));
        let (open, opened) = (item.open.clone(), opened.clone());
        BatchItem {
            open: Arc::new(move || {
                opened.fetch_add(1, Ordering::SeqCst);
                open()
            }),
            ..item
        }
    };
    let items = vec![
        counted,
        item("b", log(2, "b")),
        item("bad1", truncated("bad1")),
        item("bad2", truncated("bad2")),
        item("bad3", truncated("bad3")),
        item("c", log(4, "c")),
    ];
    let results = ingester.ingest_batch(&items).await;
    for bad in &results[2..5] {
        assert!(bad.is_err(), "{bad:?}");
    }
    // Three shared tries failed (one bad object each): the rest went one commit each.
    let versions: Vec<u64> = [0, 1, 5]
        .iter()
        .map(|&i| match &results[i] {
            Ok(Outcome::Ingested(report)) => report.version,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        4,
        "read in three tries, then alone"
    );
    assert_eq!(
        event_ids_in_log(&dir.path().join("ct")),
        expected_ids(&[("a", 3), ("b", 2), ("c", 4)])
    );
}

#[tokio::test]
async fn objects_past_the_bounds_fail_early_and_land_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_object_bytes: 2_000,
        max_record_bytes: 400,
        ..Limits::default()
    };
    let mut ingester = ingester(dir.path()).with_limits(limits);
    let small = log(3, "small");
    assert!(small.len() < 2_000);
    assert!(matches!(
        ingest(&mut ingester, "small", small).await.unwrap(),
        Outcome::Ingested(_)
    ));

    // Known size (an S3 event, a listing, a local file): refused before reading.
    let big = log(400, "big");
    assert!(big.len() > 2_000, "{}", big.len());
    let error = ingest(&mut ingester, "big", big.clone()).await.unwrap_err();
    assert!(
        matches!(error.cause, Cause::ObjectTooLarge { limit: 2_000, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("_big.json.gz"), "{error}");
    // Unknown size: stopped while reading.
    let unsized_object = SourceObject {
        size: None,
        ..object("big", &big)
    };
    let error = ingester
        .ingest(&unsized_object, move || Ok(Cursor::new(big)))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("over the limit of 2000 bytes"),
        "{error}"
    );
    // A record over the record limit.
    let huge_record = gzip(
        format!(
            r#"{{"Records":[{{"eventTime":"2024-04-30T22:00:00Z","requestParameters":{{"x":"{}"}}}}]}}"#,
            "a".repeat(1_000)
        )
        .as_bytes(),
    );
    let error = ingest(&mut ingester, "huge-record", huge_record)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("record 0 is larger than 400 bytes"),
        "{error}"
    );

    // Out of time: the deadline has passed.
    ingester.set_budget(Budget {
        deadline: Some(Instant::now()),
        ..Budget::default()
    });
    let error = ingest(&mut ingester, "late", log(3, "late"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.cause, Cause::OverBudget(OverBudget::Time)),
        "{error}"
    );
    assert!(error.to_string().contains("raise the function's Timeout"));
    // Out of memory: the ceiling is below what the process already holds.
    ingester.set_budget(Budget {
        max_resident_bytes: Some(1 << 20),
        ..Budget::default()
    });
    let error = ingest(&mut ingester, "fat", log(3, "fat"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.cause, Cause::OverBudget(OverBudget::Memory { .. })),
        "{error}"
    );
    // In a batch too, and nothing was committed by any of them.
    let results = ingester
        .ingest_batch(&[item("b1", log(3, "b1")), item("b2", log(3, "b2"))])
        .await;
    assert!(results.iter().all(|r| matches!(
        r,
        Err(e) if matches!(e.cause, Cause::OverBudget(OverBudget::Memory { .. }))
    )));
    assert_eq!(version(dir.path()), 1);
    assert_eq!(rows_in_log(&dir.path().join("ct")), 3);

    // A fresh budget: the same objects land.
    ingester.set_budget(Budget::default());
    assert!(matches!(
        ingest(&mut ingester, "late", log(3, "late")).await.unwrap(),
        Outcome::Ingested(_)
    ));
}

#[tokio::test]
async fn aggregated_objects_need_their_table_set() {
    let dir = tempfile::tempdir().unwrap();
    let tables = |aggregated: Option<String>| cloudtrail_delta::TableUris {
        cloudtrail: dir.path().join("ct").to_str().unwrap().to_owned(),
        insights: dir.path().join("insights").to_str().unwrap().to_owned(),
        aggregated,
        digests: None,
    };
    let record = br#"{"Records":[{"eventVersion":"1.0","accountId":"1","eventId":"a1","eventType":"AwsAggregatedEvent","timeWindow":{"windowStart":"2025-11-17T19:20:00Z","windowEnd":"2025-11-17T19:25:00Z","windowSize":"PT5M"}}]}"#;
    let key = "AWSLogs/1/CloudTrail-Aggregated/us-west-2/2025/11/17/1_CloudTrail_us-west-2_20251117T1925Z_A.json.gz";
    let object = SourceObject {
        uri: format!("s3://bucket/{key}"),
        key: key.to_owned(),
        fingerprint: "e1".into(),
        size: None,
    };
    let content = gzip(record);

    let mut without = cloudtrail_delta::Ingester::new(tables(None));
    let open = content.clone();
    let err = without
        .ingest(&object, move || Ok(Cursor::new(open)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no table is set for aggregated objects: set AGGREGATED_TABLE_URI"),
        "{err}"
    );

    let mut with = cloudtrail_delta::Ingester::new(tables(Some(
        dir.path().join("aggregated").to_str().unwrap().to_owned(),
    )));
    let outcome = with
        .ingest(&object, move || Ok(Cursor::new(content)))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Ingested(report) if report.kind == LogKind::Aggregated && report.records == 1),
        "{outcome:?}"
    );
}
