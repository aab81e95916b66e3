//! The DynamoDB commit lock table, in the layout of Delta's `S3DynamoDBLogStore`.
//!
//! One item per claimed commit:
//!
//! | attribute    | type | meaning                                                        |
//! |--------------|------|----------------------------------------------------------------|
//! | `tablePath`  | S    | hash key: the table URI (`s3://bucket/prefix`, no trailing `/`) |
//! | `fileName`   | S    | range key: the commit file, `00000000000000000042.json`         |
//! | `tempPath`   | S    | the commit's temporary file, relative to `_delta_log/`          |
//! | `complete`   | S    | `"true"` once `_delta_log/<fileName>` holds the commit          |
//! | `expireTime` | N    | epoch seconds, set on completion: the table's TTL attribute     |
//!
//! Spark jobs using Delta's `S3DynamoDBLogStore` on the same table URI read and write the
//! same items, so both can commit to one table.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

const TABLE_PATH: &str = "tablePath";
const FILE_NAME: &str = "fileName";
const TEMP_PATH: &str = "tempPath";
const COMPLETE: &str = "complete";
const EXPIRE_TIME: &str = "expireTime";

/// The default lock table name, as Delta's log stores use it.
pub const DEFAULT_TABLE_NAME: &str = "delta_log";

/// How long a completed entry stays before DynamoDB's TTL removes it: a day, as in Delta.
/// (Entries are only needed until the commit file is surely visible to every reader.)
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// One claimed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub version: u64,
    /// The temporary commit file, relative to `_delta_log/`.
    pub temp_path: String,
    pub complete: bool,
}

/// The result of claiming a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Another writer holds this version.
    Taken,
}

/// The result of marking an entry complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    AlreadyComplete,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "DynamoDB lock table {table} not found: create it (see template.yaml) or set DELTA_DYNAMO_TABLE_NAME"
    )]
    TableNotFound { table: String },
    #[error("DynamoDB lock table {table}: {operation} failed: {message}")]
    Request {
        table: String,
        operation: &'static str,
        message: String,
    },
    #[error("DynamoDB lock table {table}: unexpected item: {reason}")]
    BadItem { table: String, reason: String },
}

/// A client of the lock table.
#[derive(Debug, Clone)]
pub struct LockTable {
    client: Client,
    name: String,
    expiry: Duration,
}

impl LockTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            expiry: DEFAULT_EXPIRY,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Claims `version` of the table: succeeds for exactly one writer.
    ///
    /// A claim whose response was lost (a timeout, a dropped connection, a 5xx after DynamoDB
    /// wrote the item) is retried by the SDK and then fails its condition on our own item.
    /// So a refused claim looks at the item that refused it (returned with the refusal, no
    /// extra request): if it names our temporary file, the claim is ours. Taking it for
    /// another writer's would leave our commit decided in the lock table while we go on to
    /// commit the same actions again at the next version.
    pub async fn claim(
        &self,
        table_path: &str,
        version: u64,
        temp_path: &str,
    ) -> Result<Claim, LockError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .item(TABLE_PATH, s(table_path))
            .item(FILE_NAME, s(commit_file_name(version)))
            .item(TEMP_PATH, s(temp_path))
            .item(COMPLETE, s("false"))
            .condition_expression("attribute_not_exists(#f)")
            .expression_attribute_names("#f", FILE_NAME)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let holder = match &result {
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refusal)) => refusal.item(),
                _ => None,
            },
            Ok(_) => None,
        };
        let ours = match holder {
            Some(item) => self.parse(item)?.temp_path == temp_path,
            None => false,
        };
        match self.conditional("PutItem", result, Claim::Claimed, Claim::Taken)? {
            Claim::Taken if ours => Ok(Claim::Claimed),
            claim => Ok(claim),
        }
    }

    /// The entry of `version`, if claimed.
    pub async fn entry(
        &self,
        table_path: &str,
        version: u64,
    ) -> Result<Option<CommitEntry>, LockError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(TABLE_PATH, s(table_path))
            .key(FILE_NAME, s(commit_file_name(version)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failure("GetItem", e))?;
        output.item.map(|item| self.parse(&item)).transpose()
    }

    /// The entry with the highest version of the table, if any.
    pub async fn latest(&self, table_path: &str) -> Result<Option<CommitEntry>, LockError> {
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", TABLE_PATH)
            .expression_attribute_values(":t", s(table_path))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failure("Query", e))?;
        output
            .items
            .unwrap_or_default()
            .first()
            .map(|item| self.parse(item))
            .transpose()
    }

    /// Marks `version` complete (its commit file is in place) and starts its expiry clock.
    pub async fn complete(&self, table_path: &str, version: u64) -> Result<Completion, LockError> {
        let expire_at = SystemTime::now()
            .checked_add(self.expiry)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(TABLE_PATH, s(table_path))
            .key(FILE_NAME, s(commit_file_name(version)))
            .update_expression("SET #c = :true, #e = :expire")
            .condition_expression("#c = :false")
            .expression_attribute_names("#c", COMPLETE)
            .expression_attribute_names("#e", EXPIRE_TIME)
            .expression_attribute_values(":true", s("true"))
            .expression_attribute_values(":false", s("false"))
            .expression_attribute_values(":expire", AttributeValue::N(expire_at.to_string()))
            .send()
            .await;
        self.conditional(
            "UpdateItem",
            result,
            Completion::Completed,
            Completion::AlreadyComplete,
        )
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<CommitEntry, LockError> {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| self.bad_item(format!("no string attribute {name}")))
        };
        let file_name = text(FILE_NAME)?;
        let version = file_name
            .strip_suffix(".json")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                self.bad_item(format!("fileName {file_name:?} is not <version>.json"))
            })?;
        Ok(CommitEntry {
            version,
            temp_path: text(TEMP_PATH)?.clone(),
            complete: text(COMPLETE)? == "true",
        })
    }

    fn bad_item(&self, reason: String) -> LockError {
        LockError::BadItem {
            table: self.name.clone(),
            reason,
        }
    }

    /// The outcome of a conditional write: `done`, or `refused` when its condition failed.
    fn conditional<T, O, E, R>(
        &self,
        operation: &'static str,
        result: Result<O, SdkError<E, R>>,
        done: T,
        refused: T,
    ) -> Result<T, LockError>
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        match result {
            Ok(_) => Ok(done),
            Err(e)
                if e.as_service_error().and_then(|e| e.code())
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(refused)
            }
            Err(e) => Err(self.failure(operation, e)),
        }
    }

    /// A failed request: the lock table is missing, or anything else.
    fn failure<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> LockError
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let table = self.name.clone();
        if error.as_service_error().and_then(|e| e.code()) == Some("ResourceNotFoundException") {
            return LockError::TableNotFound { table };
        }
        LockError::Request {
            table,
            operation,
            message: DisplayErrorContext(&error).to_string(),
        }
    }
}

/// `00000000000000000042.json`: a commit's file name in `_delta_log/`.
pub fn commit_file_name(version: u64) -> String {
    format!("{version:020}.json")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_file_names_are_zero_padded() {
        assert_eq!(commit_file_name(0), "00000000000000000000.json");
        assert_eq!(commit_file_name(42), "00000000000000000042.json");
    }
}
