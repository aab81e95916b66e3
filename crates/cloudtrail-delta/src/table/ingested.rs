//! The objects a table's commits record as ingested, read from its log.
//!
//! Every ingest commit carries one `txn` action per object (`appId` = the object's ingest id)
//! and lists the objects' URIs, in the same order, in its `commitInfo`
//! (`cloudtrail_delta.sources`). [`RecentIngests`] holds the objects of the commits the ingest
//! index ([`crate::table::ingest_index`]) does not cover yet: the commits after its watermark, which
//! the table's writers keep to about one checkpoint interval (see [`crate::table`]). The
//! same reader gives the index the rows it extends itself with.
//!
//! A table without an index yet (made before the index existed), or whose commits after the
//! watermark are no longer all there, is read from its newest checkpoint's `txn` column
//! instead, plus the commits after it. Classic checkpoints only (one Parquet file, as delta-rs
//! and Spark write by default); [`RecentIngests::load`] answers `None` for others, and the
//! caller asks delta-rs per id.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use deltalake::errors::{DeltaResult, DeltaTableError};
use deltalake::logstore::LogStore;
use deltalake::logstore::object_store::{self, ObjectStoreExt, path::Path};
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
// Deprecated in parquet 59 in favour of a hand-written AsyncFileReader; it still fetches only
// the projected column chunks, which is what matters for a checkpoint of a large table.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use serde::Deserialize;

use cloudtrail_parse::route::delivery_date;

/// The prefix of every ingest id (see [`crate::SourceObject::ingest_id`]); `txn` actions
/// with other app ids belong to other writers and are not ours to index.
pub const INGEST_ID_PREFIX: &str = "cloudtrail-delta/";

/// The key of the object URIs in an ingest commit's `commitInfo`.
pub const SOURCES_KEY: &str = "cloudtrail_delta.sources";

/// The key of the objects' SHA-256 values (hex, of the uncompressed bytes, in the order of
/// the URIs) in an ingest commit's `commitInfo`.
pub const SHA256_KEY: &str = "cloudtrail_delta.sha256";

/// Commit files read at once when catching up with the log.
const COMMIT_READS_IN_FLIGHT: usize = 16;

/// One object a commit of the table records as ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedObject {
    pub ingest_id: String,
    /// The object's URI; `None` when only a checkpoint names the id (checkpoints keep no
    /// `commitInfo`).
    pub uri: Option<String>,
    /// The version of the commit that recorded it.
    pub version: u64,
    /// When that commit was made, in milliseconds since the epoch.
    pub committed_at_ms: i64,
    /// The SHA-256 of the object's uncompressed bytes, in hex; `None` for objects committed
    /// before the hash was recorded, and where only a checkpoint names the id.
    pub sha256: Option<String>,
}

impl IngestedObject {
    /// The delivery date of the object (`YYYY/MM/DD` of its key), if its URI has
    /// CloudTrail's layout: the ingest index's partition.
    pub fn delivery_date(&self) -> Option<chrono::NaiveDate> {
        self.uri.as_deref().and_then(delivery_day)
    }
}

/// The delivery date of the object at `uri`, if its key has CloudTrail's layout.
pub fn delivery_day(uri: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(delivery_date(uri)?, "%Y/%m/%d").ok()
}

#[derive(Deserialize)]
struct LastCheckpoint {
    version: u64,
    parts: Option<u64>,
    #[serde(rename = "v2Checkpoint")]
    v2_checkpoint: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct LogLine {
    txn: Option<Txn>,
    #[serde(rename = "commitInfo")]
    commit_info: Option<CommitInfo>,
}

#[derive(Deserialize)]
struct Txn {
    #[serde(rename = "appId")]
    app_id: String,
    #[serde(rename = "lastUpdated")]
    last_updated: Option<i64>,
}

#[derive(Deserialize)]
struct CommitInfo {
    timestamp: Option<i64>,
    #[serde(rename = "cloudtrail_delta.sources")]
    sources: Option<Vec<String>>,
    #[serde(rename = "cloudtrail_delta.sha256")]
    sha256: Option<Vec<Option<String>>>,
}

/// The objects commit `version` records as ingested; `None` when the commit file is gone
/// (cleaned up after the log retention).
pub async fn read_commit(
    log_store: &dyn LogStore,
    version: u64,
) -> DeltaResult<Option<Vec<IngestedObject>>> {
    let Some(commit) = log_store.read_commit_entry(version).await? else {
        return Ok(None);
    };
    let mut txns = Vec::new();
    let mut timestamp = None;
    let mut sources = None;
    let mut hashes = None;
    for line in commit.split(|b| *b == b'\n') {
        // Only transaction and commit-info lines need parsing; the others are skipped unread.
        let is_txn = memchr::memmem::find(line, b"\"txn\"").is_some();
        if !is_txn && memchr::memmem::find(line, b"\"commitInfo\"").is_none() {
            continue;
        }
        let parsed: LogLine = serde_json::from_slice(line)?;
        if let Some(txn) = parsed.txn {
            txns.push(txn);
        }
        if let Some(info) = parsed.commit_info {
            timestamp = info.timestamp;
            sources = info.sources;
            hashes = info.sha256;
        }
    }
    // The URIs pair with the transactions in order when the commit has one of each (ours do).
    let sources = sources.filter(|s| s.len() == txns.len());
    let hashes = hashes.filter(|h| h.len() == txns.len());
    let objects = txns
        .into_iter()
        .enumerate()
        .filter(|(_, txn)| txn.app_id.starts_with(INGEST_ID_PREFIX))
        .map(|(i, txn)| IngestedObject {
            uri: sources.as_ref().map(|s| s[i].clone()),
            sha256: hashes.as_ref().and_then(|h| h[i].clone()),
            version,
            committed_at_ms: timestamp.or(txn.last_updated).unwrap_or(0),
            ingest_id: txn.app_id,
        })
        .collect();
    Ok(Some(objects))
}

/// The objects of commits `versions`, read [`COMMIT_READS_IN_FLIGHT`] at a time, in order;
/// `None` when one of the commits is gone.
pub async fn read_commits(
    log_store: &dyn LogStore,
    versions: std::ops::RangeInclusive<u64>,
) -> DeltaResult<Option<Vec<IngestedObject>>> {
    let mut reads = futures::stream::iter(versions)
        .map(|version| read_commit(log_store, version))
        .buffered(COMMIT_READS_IN_FLIGHT);
    let mut objects = Vec::new();
    while let Some(read) = reads.next().await {
        match read? {
            Some(found) => objects.extend(found),
            None => return Ok(None),
        }
    }
    Ok(Some(objects))
}

/// The objects of the commits the ingest index does not cover, by ingest id.
#[derive(Debug, Default)]
pub struct RecentIngests {
    objects: HashMap<String, IngestedObject>,
    /// The newest commit read.
    version: Option<u64>,
}

impl RecentIngests {
    /// Reads the objects of the commits after `indexed_through` (the ingest index's
    /// watermark) up to `version`. Without a watermark, or when those commits are no longer
    /// all there, reads the table's newest checkpoint's `txn` column (every id it holds,
    /// expired or not) and the commits after it. `None` when that checkpoint is of a kind
    /// this reader does not read.
    pub async fn load(
        log_store: &dyn LogStore,
        indexed_through: Option<u64>,
        version: u64,
    ) -> DeltaResult<Option<Self>> {
        let mut recent = Self::default();
        if let Some(watermark) = indexed_through {
            if watermark >= version {
                recent.version = Some(version);
                return Ok(Some(recent));
            }
            if let Some(objects) = read_commits(log_store, watermark + 1..=version).await? {
                objects.into_iter().for_each(|o| recent.insert(o));
                recent.version = Some(version);
                return Ok(Some(recent));
            }
            tracing::warn!(
                watermark,
                version,
                "the ingest index is behind the log's retained commits; reading the checkpoint \
                 (run maintenance)"
            );
        }
        let store = log_store.object_store(None);
        let last = match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
            Ok(found) => Some(serde_json::from_slice::<LastCheckpoint>(
                &found.bytes().await?,
            )?),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(last) = last.filter(|last| last.version <= version) {
            if last.parts.is_some_and(|p| p > 1) || last.v2_checkpoint.is_some() {
                return Ok(None);
            }
            let file = Path::from(format!(
                "_delta_log/{:020}.checkpoint.parquet",
                last.version
            ));
            #[allow(deprecated)]
            let reader = ParquetObjectReader::new(store, file);
            recent.read_checkpoint(reader, last.version).await?;
            recent.version = Some(last.version);
        }
        recent.catch_up(log_store, version).await?;
        Ok(Some(recent))
    }

    #[allow(deprecated)]
    async fn read_checkpoint(
        &mut self,
        reader: ParquetObjectReader,
        version: u64,
    ) -> DeltaResult<()> {
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let mask =
            ProjectionMask::columns(builder.parquet_schema(), ["txn.appId", "txn.lastUpdated"]);
        let mut batches = builder.with_projection(mask).build()?;
        while let Some(batch) = batches.try_next().await? {
            let txn = batch
                .column_by_name("txn")
                .and_then(|c| c.as_struct_opt())
                .ok_or_else(|| DeltaTableError::Generic("checkpoint without txn".into()))?;
            let app_ids = txn
                .column_by_name("appId")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| DeltaTableError::Generic("checkpoint txn without appId".into()))?;
            let updated = txn
                .column_by_name("lastUpdated")
                .and_then(|c| c.as_primitive_opt::<Int64Type>());
            for row in 0..batch.num_rows() {
                if !txn.is_valid(row) || !app_ids.is_valid(row) {
                    continue;
                }
                let id = app_ids.value(row);
                if !id.starts_with(INGEST_ID_PREFIX) {
                    continue;
                }
                let committed_at_ms = updated
                    .filter(|u| u.is_valid(row))
                    .map_or(0, |u| u.value(row));
                self.insert(IngestedObject {
                    ingest_id: id.to_owned(),
                    uri: None,
                    version,
                    committed_at_ms,
                    sha256: None,
                });
            }
        }
        Ok(())
    }

    /// Reads the commits after the newest one read, up to `version`.
    pub async fn catch_up(&mut self, log_store: &dyn LogStore, version: u64) -> DeltaResult<()> {
        let next = self.version.map_or(0, |v| v + 1);
        if next > version {
            return Ok(());
        }
        let objects = read_commits(log_store, next..=version)
            .await?
            .ok_or_else(|| {
                DeltaTableError::Generic(format!(
                    "a commit between {next} and {version} of the log is missing"
                ))
            })?;
        objects.into_iter().for_each(|o| self.insert(o));
        self.version = Some(version);
        Ok(())
    }

    pub fn contains(&self, ingest_id: &str) -> bool {
        self.objects.contains_key(ingest_id)
    }

    /// Records an object (one this process just committed, or one read from the log).
    pub fn insert(&mut self, object: IngestedObject) {
        self.objects.insert(object.ingest_id.clone(), object);
    }

    /// The objects recorded by commits up to `version`, for the ingest index.
    pub fn through(&self, version: u64) -> Vec<IngestedObject> {
        self.objects
            .values()
            .filter(|o| o.version <= version)
            .cloned()
            .collect()
    }

    /// Forgets the objects of commits up to `version` (the index covers them now).
    pub fn forget_through(&mut self, version: u64) {
        self.objects.retain(|_, o| o.version > version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_day_reads_the_key_date() {
        let uri = "s3://b/AWSLogs/1/CloudTrail/us-east-1/2024/04/30/1_CloudTrail_x.json.gz";
        assert_eq!(
            delivery_day(uri),
            chrono::NaiveDate::from_ymd_opt(2024, 4, 30)
        );
        assert_eq!(delivery_day("file:///tmp/log.json.gz"), None);
    }
}
