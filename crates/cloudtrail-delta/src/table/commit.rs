//! How commits to tables on S3 are coordinated.
//!
//! Two modes, chosen by `AWS_S3_LOCKING_PROVIDER` (the variable Delta users know):
//!
//! - unset (or `conditional-put`): **S3 conditional writes**, delta-rs' default: each commit file is created with
//!   `If-None-Match: *`, so exactly one writer creates `_delta_log/N.json`. Nothing else to run.
//! - `dynamodb`: **a DynamoDB lock table** in the layout of Delta's `S3DynamoDBLogStore`
//!   (the `delta-dynamodb-logstore` crate), named by `DELTA_DYNAMO_TABLE_NAME` (default
//!   `delta_log`). Use it
//!   when Spark jobs with Delta's `S3DynamoDBLogStore` write the same tables, or with an
//!   S3-compatible store that lacks conditional writes.
//!
//! delta-rs 1.x dropped its own DynamoDB log store and, when asked for one, only logs an error
//! and writes with an unsafe rename; [`use_lock_table`] replaces its S3 log store factory with
//! ours, and [`check_log_store`] refuses a table whose log store does not match the mode.

use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::errors::{DeltaResult, DeltaTableError};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::object_store::ObjectStore;
use deltalake::logstore::{LogStore, LogStoreFactory, LogStoreRef, StorageConfig};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::SaveMode;
use url::Url;

use delta_dynamodb_logstore::{LockTable, LockTableFactory, register_for_s3};

use super::commit_cache::{CachedCommits, CommitCache};

/// How commits are made atomic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitMode {
    /// S3 conditional writes (`If-None-Match`).
    ConditionalPut,
    /// Claims in a DynamoDB lock table of this name.
    DynamoDb { table_name: String },
}

impl CommitMode {
    /// The name of the log store tables on S3 get in this mode.
    pub fn log_store_name(&self) -> &'static str {
        match self {
            Self::ConditionalPut => "DefaultLogStore",
            Self::DynamoDb { .. } => delta_dynamodb_logstore::NAME,
        }
    }
}

/// Makes every table on `s3://` and `s3a://` opened from now on in this process commit through
/// `lock`.
pub fn use_lock_table(lock: LockTable) {
    register_for_s3(Arc::new(CachedCommitsFactory(LockTableFactory::new(
        Arc::new(lock),
    ))));
}

/// Sets up `mode` for this process: with [`CommitMode::DynamoDb`], tables on S3 commit through
/// that lock table from now on.
pub fn install(mode: &CommitMode, config: &aws_config::SdkConfig) {
    crate::runtime::crash::install();
    match mode {
        CommitMode::DynamoDb { table_name } => use_lock_table(LockTable::new(
            crate::aws::dynamodb_client(config),
            table_name.clone(),
        )),
        CommitMode::ConditionalPut => {
            register_for_s3(Arc::new(CachedCommitsFactory(ConditionalPutFactory)))
        }
    }
}

/// Fails unless a table on S3 got the log store `mode` calls for: guards against the silent
/// fallback of delta-rs to an unsafe rename when it is asked for a DynamoDB lock it no longer
/// has.
pub fn check_log_store(log_store: &dyn LogStore, mode: &CommitMode) -> DeltaResult<()> {
    let scheme = log_store.root_url().scheme();
    if !matches!(scheme, "s3" | "s3a") {
        return Ok(());
    }
    let expected = mode.log_store_name();
    let actual = log_store.name();
    if actual == expected {
        Ok(())
    } else {
        Err(DeltaTableError::Generic(format!(
            "{}: commits would go through {actual}, not {expected} as {mode:?} requires \
             (call table::commit::install before opening tables)",
            log_store.root_url()
        )))
    }
}

/// The log stores `F` makes, over stores that read commit files through one cache (see
/// [`super::commit_cache`]).
struct CachedCommitsFactory<F>(F);

impl<F: LogStoreFactory> LogStoreFactory for CachedCommitsFactory<F> {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        let (prefixed_store, root_store) = cached_commits(prefixed_store, root_store, location);
        self.0
            .with_options(prefixed_store, root_store, location, options)
    }
}

/// delta-rs' own log store for S3 (conditional writes).
struct ConditionalPutFactory;

impl LogStoreFactory for ConditionalPutFactory {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// A table's two views of its store (rooted at the table, and at the bucket) with one
/// commit-file cache between them (see [`super::commit_cache`]).
fn cached_commits(
    prefixed_store: Arc<dyn ObjectStore>,
    root_store: Arc<dyn ObjectStore>,
    location: &Url,
) -> (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) {
    let cache = CommitCache::shared();
    (
        Arc::new(CachedCommits::new(
            prefixed_store,
            cache.clone(),
            location.path(),
        )),
        Arc::new(CachedCommits::new(root_store, cache, "")),
    )
}

/// Creates the table `builder` describes as version 0 of `log_store`, and only as version 0:
/// delta-rs would otherwise retry a create that lost the race as version 1, a second metadata
/// commit that fails concurrent appends. When another writer created it at the same moment,
/// loads theirs.
pub async fn create_once(
    log_store: LogStoreRef,
    builder: CreateBuilder,
) -> DeltaResult<DeltaTable> {
    let created = builder
        .with_log_store(log_store.clone())
        .with_save_mode(SaveMode::Ignore)
        .with_commit_properties(without_log_cleanup().with_max_retries(0))
        .await;
    match created {
        Ok(table) => Ok(table),
        Err(create_error) => {
            let mut table = DeltaTable::new(log_store);
            match table.load().await {
                Ok(()) => Ok(table),
                Err(_) => Err(create_error),
            }
        }
    }
}

/// Commit properties without delta-rs' expired-log cleanup after the commit, for every
/// commit we make. delta-rs lists all of `_delta_log` to do it (every file, on every commit:
/// one object per commit keeps a month of them) and compiles a regex; maintenance cleans the
/// log itself instead, and counts what it deleted (`maintenance::upkeep`).
pub fn without_log_cleanup() -> CommitProperties {
    CommitProperties::default().with_cleanup_expired_logs(Some(false))
}
