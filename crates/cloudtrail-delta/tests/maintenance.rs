//! Maintenance against real local Delta tables: compaction keeps every row once and the record
//! of what was ingested; it races ingest commits without losing either; VACUUM deletes only
//! files the table no longer references; expired log entries go at maintenance, not at each
//! ingest commit.

mod common;

use std::time::Duration;

use cloudtrail_delta::maintenance::{self, Policy};
use cloudtrail_delta::{LogKind, Outcome};
use common::*;

fn settings() -> Policy {
    Policy {
        target_file_bytes: 64 << 20,
        vacuum_retention: Duration::ZERO,
    }
}

/// Compacts the CloudTrail table under `dir` with the tests' settings.
async fn compact(dir: &std::path::Path) -> (deltalake::DeltaTable, maintenance::Compaction) {
    maintenance::compact(open_table(dir).await, LogKind::CloudTrail, settings())
        .await
        .unwrap()
}

/// Ingests `n` objects of 4 records, one commit each; gives their (tag, records).
async fn ingest_one_by_one(dir: &std::path::Path, prefix: &str, n: usize) -> Vec<(String, usize)> {
    let mut ingester = ingester(dir);
    let mut logs = Vec::new();
    for i in 0..n {
        let tag = format!("{prefix}{i}");
        let outcome = ingest(&mut ingester, &tag, log(4, &tag)).await.unwrap();
        assert!(matches!(outcome, Outcome::Ingested(_)), "{outcome:?}");
        logs.push((tag, 4));
    }
    logs
}

fn ids(logs: &[(String, usize)]) -> Vec<String> {
    let logs: Vec<(&str, usize)> = logs.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    expected_ids(&logs)
}

#[tokio::test]
async fn compaction_keeps_every_row_once_and_what_was_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let logs = ingest_one_by_one(dir.path(), "c", 12).await;
    let table_dir = dir.path().join("ct");
    assert_eq!(live_adds(&table_dir).len(), 12);

    let (_, done) = compact(dir.path()).await;
    assert_eq!(
        (done.partitions, done.files_removed, done.files_added),
        (1, 12, 1)
    );
    let adds = live_adds(&table_dir);
    assert_eq!(adds.len(), 1);
    let add = adds.values().next().unwrap();
    assert_eq!(add["dataChange"], false);
    assert_eq!(add["partitionValues"]["event_date"], "2024-04-30");
    assert_eq!(event_ids_in_log(&table_dir), ids(&logs));

    // The ingest ids survive the rewrite: re-ingesting adds nothing.
    let mut again = ingester(dir.path());
    let outcome = ingest(&mut again, "c3", log(4, "c3")).await.unwrap();
    assert!(
        matches!(outcome, Outcome::AlreadyIngested { .. }),
        "{outcome:?}"
    );
    // And a second compaction has nothing left to do.
    let (_, nothing) = compact(dir.path()).await;
    assert_eq!(nothing.files_removed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_racing_ingest_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = ingest_one_by_one(dir.path(), "before", 20).await;
    let path = dir.path().to_owned();
    // Ingest commits land while the compaction reads, rewrites and commits.
    let ingesting = tokio::spawn(async move { ingest_one_by_one(&path, "during", 15).await });
    let mut compactions = Vec::new();
    while !ingesting.is_finished() || compactions.is_empty() {
        let (_, done) = compact(dir.path()).await;
        compactions.push(done);
    }
    logs.extend(ingesting.await.unwrap());
    assert!(
        compactions.iter().any(|c| c.files_removed > 0),
        "{compactions:?}"
    );
    // A real race: ingest commits landed between a compaction's read and its commit.
    assert!(
        compactions
            .iter()
            .map(|c| c.concurrent_commits)
            .sum::<u64>()
            > 0,
        "{compactions:?}"
    );
    assert!(
        compactions.iter().all(|c| c.partitions_conflicted == 0),
        "{compactions:?}"
    );
    // Every record of every object once: none lost to the rewrite, none doubled.
    assert_eq!(event_ids_in_log(&dir.path().join("ct")), ids(&logs));
}

#[tokio::test]
async fn vacuum_deletes_only_unreferenced_files() {
    let dir = tempfile::tempdir().unwrap();
    let logs = ingest_one_by_one(dir.path(), "v", 5).await;
    let table_dir = dir.path().join("ct");
    // A file of an ingest killed before its commit: written, never referenced.
    let (path, _) = live_adds(&table_dir).into_iter().next().unwrap();
    let partition = table_dir.join(path.rsplit_once('/').unwrap().0);
    std::fs::copy(
        table_dir.join(
            percent_encoding::percent_decode_str(&path)
                .decode_utf8()
                .unwrap()
                .as_ref(),
        ),
        partition.join("part-00000-killed-writer.zstd.parquet"),
    )
    .unwrap();
    let parquet = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in walk(dir) {
            if entry.extension().is_some_and(|e| e == "parquet")
                && !entry.to_string_lossy().contains("_delta_log")
            {
                files.push(entry);
            }
        }
        files
    };
    let (table, compacted) = compact(dir.path()).await;
    assert_eq!(compacted.files_removed, 5);
    let before = parquet(&table_dir).len();
    let (_, vacuumed) = maintenance::vacuum(table, settings()).await.unwrap();
    let after = parquet(&table_dir);
    // Left: the compacted file only; gone: the 5 compacted away and the unreferenced one.
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(vacuumed, before - 1);
    let referenced: Vec<String> = live_adds(&table_dir).into_keys().collect();
    assert!(after[0].to_string_lossy().ends_with(&referenced[0]));
    assert_eq!(event_ids_in_log(&table_dir), ids(&logs));

    // With the default retention (7 days) nothing this young is deleted.
    let (_, none) = maintenance::vacuum(open_table(dir.path()).await, Policy::default())
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test]
async fn expired_log_entries_go_at_maintenance_not_at_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Versions 0 (create) to 3, then a checkpoint at 3.
    ingest_one_by_one(dir.path(), "a", 3).await;
    let table = open_table(dir.path()).await;
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .unwrap();
    // Every entry up to the checkpoint is older than the 30-day log retention.
    let log_dir = dir.path().join("ct").join("_delta_log");
    let entry = |version: u64| log_dir.join(format!("{version:020}.json"));
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 24 * 3600);
    for version in 0..=3 {
        let file = std::fs::File::options()
            .append(true)
            .open(entry(version))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    // An ingest commit (version 4) leaves them: delta-rs would list the whole log to
    // clean it after every commit.
    ingest_one_by_one(dir.path(), "b", 1).await;
    assert!((0..=4).all(|version| entry(version).exists()));
    // Maintenance removes those the checkpoint covers.
    let (_, upkeep) = maintenance::upkeep(
        open_table(dir.path()).await,
        LogKind::CloudTrail,
        settings(),
    )
    .await
    .unwrap();
    let left: Vec<bool> = (0..=4).map(|version| entry(version).exists()).collect();
    assert_eq!(left, [false, false, false, true, true]);
    assert_eq!(upkeep.log_entries_cleaned, 3);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
