//! What `verify` reads: the digests table's rows (one digest each, its listed log files
//! gathered), and the objects each table's ingest index and recent commits record with their
//! SHA-256. Never the log rows.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::NaiveDate;
use deltalake::DeltaTable;
use deltalake::errors::{DeltaResult, DeltaTableError};

use crate::table::ingest_index::IngestIndex;
use crate::table::ingested::{IngestedObject, RecentIngests, delivery_day};
use cloudtrail_parse::route::account_and_region;
use cloudtrail_parse::schema::digest::{SIGNATURE_SOURCE, canonical_time};
use cloudtrail_parse::schema::{EVENT_DATE, RESCUED_DATA, SOURCE_URI};

/// One log file a digest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLog {
    pub bucket: Option<String>,
    pub object: String,
    pub hash: Option<String>,
}

/// One digest, as its rows in the digests table hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Where it was ingested from (`_source_uri`).
    pub uri: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub object: Option<String>,
    pub start_micros: Option<i64>,
    pub end_micros: i64,
    /// `digestEndTime` as the file wrote it (the signature covers the text).
    pub end_text: String,
    pub fingerprint: Option<String>,
    pub previous_bucket: Option<String>,
    pub previous_object: Option<String>,
    pub previous_hash: Option<String>,
    pub previous_signature: Option<String>,
    /// From the object's metadata; `None` for a local file (see `signature_source`).
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
    pub signature_source: String,
    pub log_files: Vec<ListedLog>,
}

/// Which digests to read: those of an account and region (when set) that end between
/// `end_from` and `end_to` (microseconds). Files whose statistics in the Delta log (minimum
/// and maximum of `awsAccountId`, `digestS3Object`, `digestEndTime`) rule them out are not
/// read: before compaction each digest is a file of its own, so a verification of one
/// account-region hour reads a few dozen files, not every digest of an organization.
#[derive(Debug, Clone, Default)]
pub struct DigestFilter<'a> {
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub end_from: i64,
    pub end_to: i64,
}

impl DigestFilter<'_> {
    /// Whether a file with these statistics (the `add` action's JSON) may hold a wanted
    /// digest; true when they say too little.
    fn may_hold(&self, stats: Option<&str>) -> bool {
        let Some(stats) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        else {
            return true;
        };
        let bound = |which: &str, column: &str| {
            stats
                .get(which)
                .and_then(|v| v.get(column))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let time = |which: &str| {
            bound(which, "digestEndTime")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp_micros())
        };
        // Statistics keep times to the millisecond: a second of slack either side.
        if time("maxValues").is_some_and(|max| max + 1_000_000 < self.end_from)
            || time("minValues").is_some_and(|min| min - 1_000_000 > self.end_to)
        {
            return false;
        }
        if let Some(account) = self.account
            && let (Some(min), Some(max)) = (
                bound("minValues", "awsAccountId"),
                bound("maxValues", "awsAccountId"),
            )
            && !(min.as_str() <= account && account <= max.as_str())
        {
            return false;
        }
        // A file of digests of one account and region (its first and last keys agree) holds
        // only theirs.
        if let (Some(min), Some(max)) = (
            bound("minValues", "digestS3Object"),
            bound("maxValues", "digestS3Object"),
        ) && let (Some(first), Some(last)) = (account_and_region(&min), account_and_region(&max))
            && first == last
        {
            let (account, region) = first;
            return self.account.is_none_or(|a| a == account)
                && self.region.is_none_or(|r| r == region);
        }
        true
    }
}

/// The digests whose `event_date` (the UTC date of `digestEndTime`) is in `days` and that
/// `filter` wants.
pub async fn read_digests(
    table: &DeltaTable,
    days: &RangeInclusive<NaiveDate>,
    filter: &DigestFilter<'_>,
) -> DeltaResult<Vec<Digest>> {
    let store = table.log_store().object_store(None);
    let mut by_uri: BTreeMap<String, Digest> = BTreeMap::new();
    for file in table.snapshot()?.log_data().iter() {
        let day = file
            .partition_values_map()
            .get(EVENT_DATE)
            .cloned()
            .flatten()
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        if !day.is_some_and(|d| days.contains(&d)) || !filter.may_hold(file.stats().as_deref()) {
            continue;
        }
        for batch in crate::table::read_whole_file(store.as_ref(), &file).await? {
            add_rows(&batch?, &mut by_uri)?;
        }
    }
    Ok(by_uri.into_values().collect())
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> DeltaResult<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| {
            DeltaTableError::Generic(format!("the digests table has no string column {name}"))
        })
}

fn value(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_owned())
}

/// Adds the rows of one of the table's files (all of one `event_date`, which files do not
/// hold: the partition says it) to the digests they belong to.
fn add_rows(batch: &RecordBatch, by_uri: &mut BTreeMap<String, Digest>) -> DeltaResult<()> {
    let column = |name: &str| strings(batch, name);
    let times = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| {
                DeltaTableError::Generic(format!("the digests table has no time column {name}"))
            })
    };
    let (uris, rescued, account) = (
        column(SOURCE_URI)?,
        column(RESCUED_DATA)?,
        column("awsAccountId")?,
    );
    let (bucket, object, fingerprint) = (
        column("digestS3Bucket")?,
        column("digestS3Object")?,
        column("digestPublicKeyFingerprint")?,
    );
    let (previous_bucket, previous_object, previous_hash, previous_signature) = (
        column("previousDigestS3Bucket")?,
        column("previousDigestS3Object")?,
        column("previousDigestHashValue")?,
        column("previousDigestSignature")?,
    );
    let (signature, algorithm, source) = (
        column("signature")?,
        column("signatureAlgorithm")?,
        column(SIGNATURE_SOURCE)?,
    );
    let (starts, ends) = (times("digestStartTime")?, times("digestEndTime")?);
    let log_file = batch
        .column_by_name("logFile")
        .and_then(|c| c.as_struct_opt())
        .ok_or_else(|| {
            DeltaTableError::Generic("the digests table has no logFile column".into())
        })?;
    let file_column = |name: &str| {
        log_file
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| DeltaTableError::Generic(format!("logFile has no {name}")))
    };
    let (file_bucket, file_object, file_hash) = (
        file_column("s3Bucket")?,
        file_column("s3Object")?,
        file_column("hashValue")?,
    );
    for row in 0..batch.num_rows() {
        let (Some(uri), true) = (value(uris, row), ends.is_valid(row)) else {
            continue;
        };
        let end_micros = ends.value(row);
        let digest = by_uri.entry(uri.clone()).or_insert_with(|| {
            // The file's own text of the end time, if it was not in CloudTrail's form.
            let raw_end = value(rescued, row)
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| {
                    v.get("digestEndTime")
                        .and_then(|t| t.as_str())
                        .map(str::to_owned)
                });
            let key = value(object, row).unwrap_or_else(|| uri.clone());
            let (account_of_key, region) = account_and_region(&key)
                .map(|(a, r)| (Some(a.to_owned()), Some(r.to_owned())))
                .unwrap_or_default();
            Digest {
                account: value(account, row).or(account_of_key),
                region,
                bucket: value(bucket, row),
                object: value(object, row),
                start_micros: starts.is_valid(row).then(|| starts.value(row)),
                end_micros,
                end_text: raw_end
                    .or_else(|| canonical_time(end_micros))
                    .unwrap_or_default(),
                fingerprint: value(fingerprint, row),
                previous_bucket: value(previous_bucket, row),
                previous_object: value(previous_object, row),
                previous_hash: value(previous_hash, row),
                previous_signature: value(previous_signature, row),
                signature: value(signature, row),
                signature_algorithm: value(algorithm, row),
                signature_source: value(source, row).unwrap_or_default(),
                log_files: Vec::new(),
                uri,
            }
        });
        if log_file.is_valid(row)
            && let Some(object) = value(file_object, row)
        {
            digest.log_files.push(ListedLog {
                bucket: value(file_bucket, row),
                object,
                hash: value(file_hash, row),
            });
        }
    }
    Ok(())
}

/// Every object the table at `uri` records with a delivery date in `days`: those its ingest
/// index holds and those of the commits after the index's watermark. Empty where there is no
/// table.
pub async fn ingested_objects(
    table: Option<&DeltaTable>,
    storage_options: &HashMap<String, String>,
    days: &RangeInclusive<NaiveDate>,
) -> DeltaResult<Vec<IngestedObject>> {
    let Some(table) = table else {
        return Ok(Vec::new());
    };
    let index = IngestIndex::open(table.table_url(), storage_options).await?;
    let version = table.version().unwrap_or(0);
    let watermark = index.watermark().await?;
    let mut objects = index.objects(Some(days)).await?;
    let recent = RecentIngests::load(table.log_store().as_ref(), watermark, version)
        .await?
        .ok_or_else(|| {
            DeltaTableError::Generic(
                "the table's checkpoint is of a kind this reader cannot read".into(),
            )
        })?;
    objects.extend(recent.through(version).into_iter().filter(|o| {
        o.uri
            .as_deref()
            .and_then(delivery_day)
            .is_some_and(|d| days.contains(&d))
    }));
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn stats(account: &str, key: &str, end: &str) -> String {
        serde_json::json!({
            "numRecords": 3,
            "minValues": {"awsAccountId": account, "digestS3Object": key, "digestEndTime": end},
            "maxValues": {"awsAccountId": account, "digestS3Object": key, "digestEndTime": end},
        })
        .to_string()
    }

    #[test]
    fn a_file_is_skipped_only_when_its_statistics_rule_it_out() {
        let key = "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/d.json.gz";
        let end = "2024-04-30T23:00:00.000Z";
        let at_end = 1_714_518_000_000_000;
        let filter = DigestFilter {
            account: Some("1"),
            region: Some("us-east-1"),
            end_from: at_end - HOUR,
            end_to: at_end + HOUR,
        };
        assert!(filter.may_hold(Some(&stats("1", key, end))));
        assert!(filter.may_hold(None), "no statistics: read it");
        assert!(!filter.may_hold(Some(&stats("2", &key.replace("/1/", "/2/"), end))));
        assert!(!filter.may_hold(Some(&stats(
            "1",
            &key.replace("us-east-1", "eu-west-1"),
            end
        ))));
        assert!(!filter.may_hold(Some(&stats("1", key, "2024-04-30T20:00:00.000Z"))));
        assert!(!filter.may_hold(Some(&stats("1", key, "2024-05-01T02:00:00.000Z"))));
        // A compacted file of many accounts and regions is read.
        let mixed = serde_json::json!({
            "minValues": {"awsAccountId": "0", "digestS3Object": "AWSLogs/0/CloudTrail-Digest/a/x"},
            "maxValues": {"awsAccountId": "9", "digestS3Object": "AWSLogs/9/CloudTrail-Digest/z/x"},
        })
        .to_string();
        assert!(filter.may_hold(Some(&mixed)));
        assert!(
            DigestFilter {
                end_to: i64::MAX,
                ..Default::default()
            }
            .may_hold(Some(&stats("7", key, end)))
        );
    }
}
