//! A delta-rs [`LogStore`] whose commits are claimed in a DynamoDB lock table, following the
//! protocol of Delta's `S3DynamoDBLogStore`:
//!
//! 1. delta-rs writes the commit to a temporary file `_delta_log/_commit_<uuid>.json.tmp`;
//! 2. [`write_commit_entry`](LogStore::write_commit_entry) claims version N with a
//!    conditional PutItem (`complete = "false"`): exactly one writer wins N;
//! 3. the winner copies the temporary file to `_delta_log/N.json`;
//! 4. and marks the entry complete (with its expiry time).
//!
//! A writer can die anywhere. Once step 2 succeeded the commit is decided: any reader or writer
//! that finds the latest entry incomplete (on refresh, on listing, on reading that version)
//! repairs it by doing steps 3 and 4 itself. Copying is idempotent (the same bytes), and
//! completing is conditional, so concurrent repairs are harmless.

use std::sync::Arc;

use bytes::Bytes;
use deltalake::errors::{DeltaResult, DeltaTableError};
use deltalake::kernel::transaction::TransactionError;
use deltalake::logstore::object_store::{self, ObjectStore, ObjectStoreExt, path::Path};
use deltalake::logstore::{
    CommitOrBytes, LogStore, LogStoreConfig, commit_uri_from_version, get_latest_version,
    read_commit_entry,
};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::crash_points::{self, AFTER_LOCK_CLAIM, AFTER_LOG_ENTRY, BEFORE_LOCK_CLAIM};
use crate::lock_table::{Claim, CommitEntry, LockError, LockTable};

/// The name delta-rs sees; anything but `DefaultLogStore` makes it stage commits in a
/// temporary file, as this protocol needs.
pub const NAME: &str = "DynamoDbLogStore";

const LOG_FOLDER: &str = "_delta_log";

/// See the [module documentation](self).
pub struct DynamoDbLogStore {
    prefixed_store: Arc<dyn ObjectStore>,
    root_store: Arc<dyn ObjectStore>,
    config: LogStoreConfig,
    lock: Arc<LockTable>,
    /// The `tablePath` key: the table URI without a trailing slash.
    table_path: String,
}

impl std::fmt::Debug for DynamoDbLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{NAME}({}, lock table {})",
            self.table_path,
            self.lock.name()
        )
    }
}

impl DynamoDbLogStore {
    pub fn new(
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        config: LogStoreConfig,
        lock: Arc<LockTable>,
    ) -> Self {
        let table_path = lock_table_path(config.location().as_str());
        Self {
            prefixed_store,
            root_store,
            config,
            lock,
            table_path,
        }
    }

    /// The lock table's key for this table.
    pub fn table_path(&self) -> &str {
        &self.table_path
    }

    /// Finishes an incomplete entry: copies its temporary file to `N.json` and marks it
    /// complete. Safe to run concurrently with the writer and other repairers.
    async fn repair(&self, entry: &CommitEntry) -> Result<(), TransactionError> {
        if entry.complete {
            return Ok(());
        }
        let temp = temp_file(&entry.temp_path);
        let target = commit_uri_from_version(Some(entry.version));
        match self.prefixed_store.copy(&temp, &target).await {
            Ok(()) => debug!(version = entry.version, "commit file copied into place"),
            // The temporary file is deleted only after the entry is complete, so someone
            // finished this commit already; completing below is then a no-op.
            Err(object_store::Error::NotFound { .. }) => {
                debug!(
                    version = entry.version,
                    "temporary commit file already gone"
                )
            }
            Err(source) => return Err(TransactionError::ObjectStore { source }),
        }
        crash_points::reached(AFTER_LOG_ENTRY);
        self.lock
            .complete(&self.table_path, entry.version)
            .await
            .map_err(lock_failure)?;
        // Best effort: a leftover temporary file is only litter.
        if let Err(e) = self.prefixed_store.delete(&temp).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            warn!(version = entry.version, error = %e, "could not delete the temporary commit file");
        }
        Ok(())
    }

    /// Repairs the latest entry if it is incomplete; returns it.
    async fn repair_latest(&self) -> DeltaResult<Option<CommitEntry>> {
        let latest = self
            .lock
            .latest(&self.table_path)
            .await
            .map_err(lock_failure)?;
        if let Some(entry) = &latest
            && !entry.complete
        {
            warn!(table = %self.table_path, version = entry.version, "repairing an interrupted commit");
            self.repair(entry).await?;
        }
        Ok(latest)
    }
}

#[async_trait::async_trait]
impl LogStore for DynamoDbLogStore {
    fn name(&self) -> String {
        NAME.into()
    }

    async fn refresh(&self) -> DeltaResult<()> {
        self.repair_latest().await.map(|_| ())
    }

    async fn read_commit_entry(&self, version: u64) -> DeltaResult<Option<Bytes>> {
        // A commit file in place is final (it is only ever copied there once decided); only a
        // missing one may be a claimed commit its writer did not finish.
        if let Some(bytes) = read_commit_entry(self.prefixed_store.as_ref(), version).await? {
            return Ok(Some(bytes));
        }
        match self
            .lock
            .entry(&self.table_path, version)
            .await
            .map_err(lock_failure)?
        {
            Some(entry) => {
                self.repair(&entry).await?;
                read_commit_entry(self.prefixed_store.as_ref(), version).await
            }
            None => Ok(None),
        }
    }

    async fn write_commit_entry(
        &self,
        version: u64,
        commit_or_bytes: CommitOrBytes,
        _operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        let temp_path = relative_temp_path(&commit_or_bytes)?;
        crash_points::reached(BEFORE_LOCK_CLAIM);
        match self
            .lock
            .claim(&self.table_path, version, &temp_path)
            .await
            .map_err(lock_failure)?
        {
            Claim::Taken => return Err(TransactionError::VersionAlreadyExists(version)),
            Claim::Claimed => {}
        }
        crash_points::reached(AFTER_LOCK_CLAIM);
        // From here the commit is decided; if this writer fails to finish it, the next
        // reader or writer does.
        self.repair(&CommitEntry {
            version,
            temp_path,
            complete: false,
        })
        .await
    }

    async fn abort_commit_entry(
        &self,
        version: u64,
        commit_or_bytes: CommitOrBytes,
        _operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        let temp_path = relative_temp_path(&commit_or_bytes)?;
        let entry = self
            .lock
            .entry(&self.table_path, version)
            .await
            .map_err(lock_failure)?;
        if let Some(entry) = entry.filter(|e| e.temp_path == temp_path) {
            // Our claim went through: the commit is decided and must not be undone. Try once
            // more to finish it; otherwise the next writer will.
            return self.repair(&entry).await;
        }
        match self.prefixed_store.delete(&temp_file(&temp_path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(TransactionError::ObjectStore { source }),
        }
    }

    async fn get_latest_version(&self, start_version: u64) -> DeltaResult<u64> {
        // Every claimed version is in the log once repaired. Listing on from the newest
        // claimed one (a cheap, offset listing) also catches commits made without the lock,
        // say before the table was switched to it.
        let from = match self.repair_latest().await? {
            Some(entry) => entry.version.max(start_version),
            None => start_version,
        };
        get_latest_version(self, from).await
    }

    fn object_store(&self, _operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.prefixed_store.clone()
    }

    fn root_object_store(&self, _operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.root_store.clone()
    }

    fn config(&self) -> &LogStoreConfig {
        &self.config
    }
}

/// The lock table's `tablePath` for a table URI: the URI without its trailing slash, as
/// Delta's log stores write it.
pub fn lock_table_path(table_uri: &str) -> String {
    table_uri.trim_end_matches('/').to_owned()
}

/// The temporary commit file relative to `_delta_log/`, as the lock table stores it.
fn relative_temp_path(commit_or_bytes: &CommitOrBytes) -> Result<String, TransactionError> {
    match commit_or_bytes {
        CommitOrBytes::TmpCommit(path) => {
            let parts: Vec<_> = path.parts().collect();
            match parts.split_first() {
                Some((first, rest)) if first.as_ref() == LOG_FOLDER && !rest.is_empty() => {
                    Ok(Path::from_iter(rest.iter().cloned()).to_string())
                }
                _ => Err(unexpected(format!(
                    "temporary commit {path} is not under {LOG_FOLDER}/"
                ))),
            }
        }
        CommitOrBytes::LogBytes(_) => Err(unexpected(
            "expected a temporary commit file, got the commit's bytes".to_owned(),
        )),
    }
}

/// `_delta_log/<relative>`.
fn temp_file(relative: &str) -> Path {
    Path::from(format!("{LOG_FOLDER}/{relative}"))
}

fn lock_failure(error: LockError) -> TransactionError {
    TransactionError::LogStoreError {
        msg: error.to_string(),
        source: Box::new(error),
    }
}

fn unexpected(msg: String) -> TransactionError {
    TransactionError::LogStoreError {
        source: msg.clone().into(),
        msg,
    }
}

impl From<LockError> for DeltaTableError {
    fn from(error: LockError) -> Self {
        DeltaTableError::GenericError {
            source: Box::new(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_paths_are_stored_relative_to_the_log() {
        let commit = CommitOrBytes::TmpCommit(Path::from("_delta_log/_commit_abc.json.tmp"));
        assert_eq!(relative_temp_path(&commit).unwrap(), "_commit_abc.json.tmp");
        assert_eq!(
            temp_file("_commit_abc.json.tmp"),
            Path::from("_delta_log/_commit_abc.json.tmp")
        );
        let outside = CommitOrBytes::TmpCommit(Path::from("other/_commit_abc.json.tmp"));
        assert!(relative_temp_path(&outside).is_err());
        assert!(relative_temp_path(&CommitOrBytes::LogBytes(Bytes::new())).is_err());
    }

    #[test]
    fn table_paths_have_no_trailing_slash() {
        assert_eq!(lock_table_path("s3://b/tables/ct/"), "s3://b/tables/ct");
        assert_eq!(lock_table_path("s3://b/tables/ct"), "s3://b/tables/ct");
    }
}
