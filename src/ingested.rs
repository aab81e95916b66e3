//! The ingest ids a table holds (its `txn` application ids), kept in memory and brought up to
//! date incrementally.
//!
//! Asking delta-rs for one id replays the transaction actions of every commit since the last
//! checkpoint, for every object: up to 99 commit files per object, that many GETs on S3. This
//! index reads the checkpoint's `txn` column and the commits after it once, then only the
//! commits that are new since the last look.
//!
//! It understands classic checkpoints (one Parquet file, as delta-rs and Spark write by
//! default). Anything else (multi-part or V2 checkpoints) makes [`IngestedIds::load`] answer
//! `None`, and the caller falls back to asking delta-rs per id.

use std::collections::HashSet;

use arrow::array::{Array, AsArray};
use deltalake::errors::{DeltaResult, DeltaTableError};
use deltalake::logstore::LogStore;
use deltalake::logstore::object_store::{self, ObjectStoreExt, path::Path};
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
// Deprecated in parquet 59 in favour of a hand-written AsyncFileReader; it still fetches only
// the projected column chunks, which is what matters for a checkpoint of a large table.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use serde::Deserialize;

/// The set of ingest ids in a table, as of a version.
#[derive(Debug, Default)]
pub struct IngestedIds {
    ids: HashSet<String>,
    /// The newest commit read.
    version: Option<u64>,
}

#[derive(Deserialize)]
struct LastCheckpoint {
    version: u64,
    parts: Option<u64>,
    #[serde(rename = "v2Checkpoint")]
    v2_checkpoint: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TxnLine {
    txn: Option<Txn>,
}

#[derive(Deserialize)]
struct Txn {
    #[serde(rename = "appId")]
    app_id: String,
}

impl IngestedIds {
    /// Reads every ingest id of the table up to `version` (its checkpoint, then the commits
    /// after it). `None` when the table's checkpoint is of a kind this index does not read.
    pub async fn load(log_store: &dyn LogStore, version: u64) -> DeltaResult<Option<Self>> {
        let store = log_store.object_store(None);
        let mut index = Self::default();
        let last = match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
            Ok(found) => Some(found.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(last) = last {
            let last: LastCheckpoint = serde_json::from_slice(&last)?;
            if last.parts.is_some_and(|p| p > 1) || last.v2_checkpoint.is_some() {
                return Ok(None);
            }
            let file = Path::from(format!(
                "_delta_log/{:020}.checkpoint.parquet",
                last.version
            ));
            #[allow(deprecated)]
            let reader = ParquetObjectReader::new(store, file);
            index.read_checkpoint(reader).await?;
            index.version = Some(last.version);
        }
        index.catch_up(log_store, version).await?;
        Ok(Some(index))
    }

    #[allow(deprecated)]
    async fn read_checkpoint(&mut self, reader: ParquetObjectReader) -> DeltaResult<()> {
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["txn.appId"]);
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
            for row in 0..batch.num_rows() {
                if txn.is_valid(row) && app_ids.is_valid(row) {
                    self.ids.insert(app_ids.value(row).to_owned());
                }
            }
        }
        Ok(())
    }

    /// Reads the commits after the newest one read, up to `version`.
    pub async fn catch_up(&mut self, log_store: &dyn LogStore, version: u64) -> DeltaResult<()> {
        let mut next = self.version.map_or(0, |v| v + 1);
        while next <= version {
            let commit = log_store.read_commit_entry(next).await?.ok_or_else(|| {
                DeltaTableError::Generic(format!("commit {next} of the log is missing"))
            })?;
            for line in commit.split(|b| *b == b'\n') {
                // Only transaction lines need parsing; the others are skipped unread.
                if memchr::memmem::find(line, b"\"txn\"").is_none() {
                    continue;
                }
                if let TxnLine { txn: Some(txn) } = serde_json::from_slice(line)? {
                    self.ids.insert(txn.app_id);
                }
            }
            self.version = Some(next);
            next += 1;
        }
        Ok(())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records an id this process just committed.
    pub fn insert(&mut self, id: &str) {
        self.ids.insert(id.to_owned());
    }
}
