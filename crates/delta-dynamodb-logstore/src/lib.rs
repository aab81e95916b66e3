//! Delta Lake's `S3DynamoDBLogStore` commit protocol for `deltalake` 1.x.
//!
//! Delta tables on S3 need one writer at a time to win each commit version. Delta (Spark) and
//! delta-rs up to 0.x coordinated that through a DynamoDB lock table; `deltalake` 1.x dropped
//! its DynamoDB log store and, asked for one, falls back to an unsafe rename. This crate is
//! that log store again, item for item as Delta's `S3DynamoDBLogStore` writes it
//! ([`lock_table`]), so that delta-rs writers and Spark jobs can commit to the same tables:
//!
//! ```no_run
//! # async fn example(config: aws_config::SdkConfig) -> deltalake::DeltaResult<()> {
//! use delta_dynamodb_logstore::{LockTable, register};
//!
//! let client = aws_sdk_dynamodb::Client::new(&config);
//! register(LockTable::new(client, "delta_log"));
//! // Every table on s3:// or s3a:// opened from now on commits through the lock table.
//! let table = deltalake::open_table(url::Url::parse("s3://bucket/table").unwrap()).await?;
//! # Ok(()) }
//! ```
//!
//! The lock table: hash key `tablePath` (S), range key `fileName` (S), TTL on `expireTime`;
//! `tablePath` is the table URI without a trailing slash, and must be the same string in every
//! writer (`s3://` and `s3a://` are different tables to the lock).

pub mod crash_points;
pub mod dynamodb;
pub mod lock_table;

use std::sync::Arc;

use deltalake::DeltaResult;
use deltalake::logstore::object_store::ObjectStore;
use deltalake::logstore::{
    LogStore, LogStoreConfig, LogStoreFactory, StorageConfig, logstore_factories,
};
use url::Url;

pub use dynamodb::{DynamoDbLogStore, NAME, lock_table_path};
pub use lock_table::{DEFAULT_TABLE_NAME, LockError, LockTable};

/// Makes every table on `s3://` and `s3a://` opened from now on in this process commit through
/// `lock`.
pub fn register(lock: LockTable) {
    register_for_s3(Arc::new(LockTableFactory::new(Arc::new(lock))));
}

/// Makes `factory` make the log stores of every table on `s3://` and `s3a://` opened from now
/// on in this process (a factory of your own: say, one that wraps [`LockTableFactory`]'s
/// stores).
pub fn register_for_s3(factory: Arc<dyn LogStoreFactory>) {
    for scheme in ["s3://", "s3a://"] {
        let url = Url::parse(scheme).expect("a valid scheme URL");
        logstore_factories().insert(url, factory.clone());
    }
}

/// Makes [`DynamoDbLogStore`]s over one lock table.
#[derive(Debug)]
pub struct LockTableFactory {
    lock: Arc<LockTable>,
}

impl LockTableFactory {
    pub fn new(lock: Arc<LockTable>) -> Self {
        Self { lock }
    }
}

impl LogStoreFactory for LockTableFactory {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(Arc::new(DynamoDbLogStore::new(
            prefixed_store,
            root_store,
            LogStoreConfig::new(location, options.clone()),
            self.lock.clone(),
        )))
    }
}
