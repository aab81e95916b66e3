//! `verify`: proves, from the digests table and the ingest indexes alone, that the log files
//! behind the tables are the ones CloudTrail delivered, as the AWS CLI's `validate-logs` proves
//! it for the files in S3:
//!
//! 1. each digest's signature ([`signature`]) with the public key it names ([`public_keys`]);
//! 2. the chain: each digest names the previous one's signature and SHA-256, and that digest is
//!    in the table; a digest that names none after an earlier one is a gap (logging or
//!    validation was off), reported but not a failure;
//! 3. every log file a digest lists is ingested, with the same SHA-256;
//! 4. every ingested CloudTrail log file is listed in a digest, where the account and region's
//!    validation was on (a digest covers its delivery time, or the hour before a digest names
//!    its predecessor), once the grace period after its delivery has passed (logs can land
//!    after their digest; backfill digests list late ones).
//!
//! Digests and logs are matched by their keys from `AWSLogs/` on, and by bucket where both are
//! in S3, so a local copy of a bucket verifies too. Digests read from local files carry no
//! signature: a `<digest>.sig` file beside the digest, holding the hex signature, stands for
//! the S3 metadata.

pub mod inputs;
pub mod public_keys;
pub mod signature;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use deltalake::errors::DeltaTableError;
use serde::Serialize;

use self::inputs::{Digest, DigestFilter, ListedLog, ingested_objects, read_digests};
use self::public_keys::{KeyProvider, KeysError, PublicKeys};
use crate::settings::TableUris;
use crate::table::commit::CommitMode;
use crate::table::ingested::IngestedObject;
use cloudtrail_parse::LogKind;
use cloudtrail_parse::route::{account_and_region, delivery_time, layout_key};

/// What to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Digests that end after `start`, and logs delivered from `start`, …
    pub start: DateTime<Utc>,
    /// … to before `end`.
    pub end: DateTime<Utc>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// A log delivered less than this long ago is not yet reported unlisted.
    pub grace: TimeDelta,
    /// The time the grace period counts back from.
    pub now: DateTime<Utc>,
}

impl Scope {
    /// Whole UTC days, `from` through `to`, with a grace period of `grace`.
    pub fn days(from: NaiveDate, to: NaiveDate, grace: TimeDelta) -> Self {
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        Self {
            start: midnight(from),
            end: midnight(to) + TimeDelta::days(1),
            account: None,
            region: None,
            grace,
            now: Utc::now(),
        }
    }

    fn covers(&self, account: Option<&str>, region: Option<&str>) -> bool {
        self.account.as_deref().is_none_or(|a| account == Some(a))
            && self.region.as_deref().is_none_or(|r| region == Some(r))
    }
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A log file a digest lists is not in the tables (deleted, or never ingested).
    Missing,
    /// A log file's SHA-256 differs from the one its digest lists (altered).
    HashMismatch,
    /// An ingested log file no digest lists (planted, or its digest is gone).
    Unlisted,
    /// A digest without a signature.
    Unsigned,
    /// A digest whose signature does not verify, or cannot be checked.
    BadSignature,
    /// A digest whose predecessor is gone or differs from what it names.
    ChainBreak,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::HashMismatch => "hash-mismatch",
            FindingKind::Unlisted => "unlisted",
            FindingKind::Unsigned => "unsigned",
            FindingKind::BadSignature => "bad-signature",
            FindingKind::ChainBreak => "chain-break",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The log file or digest it is about (a URI where ingested, else the key a digest names).
    pub object: String,
    /// The digest that lists the log file, for log findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub detail: String,
}

/// A stretch where one chain of digests stopped and started again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Gap {
    /// The digest that names no predecessor.
    pub digest: String,
    /// The last digest of the same trail, account and region before it.
    pub after: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub digests: usize,
    pub digests_valid: usize,
    pub log_files_listed: usize,
    pub log_files_verified: usize,
    /// Ingested log files in the period (of every table).
    pub log_files_ingested: usize,
    /// Listed log files ingested before their SHA-256 was recorded: present, not checked.
    pub log_files_without_hash: usize,
    /// Ingested log files no digest lists yet, within the grace period.
    pub log_files_pending: usize,
    pub gaps: Vec<Gap>,
    pub findings: Vec<Finding>,
}

impl Verification {
    /// Findings of a kind.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

/// Why verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{table}: {source}")]
    Table {
        table: String,
        source: Box<DeltaTableError>,
    },
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("no digests table is set (DIGEST_TABLE_URI or --digest-table)")]
    NoDigestTable,
}

/// Verifies `scope` against the tables at `uris`.
pub async fn verify(
    uris: &TableUris,
    storage_options: &HashMap<String, String>,
    mode: &CommitMode,
    scope: &Scope,
    keys: &mut KeyProvider,
) -> Result<Verification, VerifyError> {
    let digest_uri = uris.of(LogKind::Digest).ok_or(VerifyError::NoDigestTable)?;
    let table_error = |table: &str| {
        let table = table.to_owned();
        move |source| VerifyError::Table {
            table: table.clone(),
            source: Box::new(source),
        }
    };
    let day = |t: DateTime<Utc>| t.date_naive();
    // Digests a day either side: the predecessors of the first, and the digests (backfill
    // ones too) that list the last logs.
    let digest_days = day(scope.start) - TimeDelta::days(1)..=day(scope.end) + TimeDelta::days(1);
    let log_days = day(scope.start)..=day(scope.end);
    let digests = match crate::maintenance::open(digest_uri, mode)
        .await
        .map_err(table_error(digest_uri))?
    {
        Some(table) => {
            // The digests that can matter: of the scope's account and region, from the hour
            // before its start (the first one's predecessor) to a day after its end
            // (backfills).
            let filter = DigestFilter {
                account: scope.account.as_deref(),
                region: scope.region.as_deref(),
                end_from: (scope.start - TimeDelta::hours(2)).timestamp_micros(),
                end_to: (scope.end + TimeDelta::days(1)).timestamp_micros(),
            };
            let digests = read_digests(&table, &digest_days, &filter)
                .await
                .map_err(table_error(digest_uri))?;
            let hashes = ingested_objects(Some(&table), storage_options, &digest_days)
                .await
                .map_err(table_error(digest_uri))?;
            (digests, hashes)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut logs = Vec::new();
    for (kind, uri) in uris.all() {
        if kind == LogKind::Digest {
            continue;
        }
        let table = crate::maintenance::open(uri, mode)
            .await
            .map_err(table_error(uri))?;
        let objects = ingested_objects(table.as_ref(), storage_options, &log_days)
            .await
            .map_err(table_error(uri))?;
        logs.extend(objects.into_iter().map(|o| (kind, o)));
    }
    let wanted: Vec<(&str, &str)> = digests
        .0
        .iter()
        .filter_map(|d| Some((d.region.as_deref()?, d.fingerprint.as_deref()?)))
        .collect();
    let keys = keys
        .keys_for(
            &wanted,
            (scope.start - TimeDelta::days(2)).timestamp(),
            (scope.end + TimeDelta::days(2)).timestamp(),
        )
        .await?;
    Ok(check(scope, &digests.0, &digests.1, &logs, &keys))
}

/// The checks, over what was read.
pub fn check(
    scope: &Scope,
    digests: &[Digest],
    digest_objects: &[IngestedObject],
    logs: &[(LogKind, IngestedObject)],
    keys: &PublicKeys,
) -> Verification {
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let (start, end) = (micros(scope.start), micros(scope.end));
    let known = KnownDigests::of(digests, digest_objects);
    let ingested: HashMap<&str, Vec<&IngestedObject>> = logs
        .iter()
        .filter_map(|(_, o)| Some((layout_key(o.uri.as_deref()?), o)))
        .fold(HashMap::new(), |mut map, (key, o)| {
            map.entry(key).or_default().push(o);
            map
        });
    let in_scope = |d: &Digest| {
        d.end_micros > start
            && d.start_micros.unwrap_or(d.end_micros) < end
            && scope.covers(d.account.as_deref(), d.region.as_deref())
    };

    let mut result = Verification::default();
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for digest in digests {
        // Every digest read (the period's and its neighbours') lists logs for check 4.
        listed.extend(digest.log_files.iter().map(|f| layout_key(&f.object)));
        if !in_scope(digest) {
            continue;
        }
        result.digests += 1;
        let mut valid = true;
        if let Some(finding) = changed_after_ingest(digest, &known) {
            result.findings.push(finding);
            valid = false;
        }
        if let Some(finding) = check_signature(digest, &known, keys) {
            result.findings.push(finding);
            valid = false;
        }
        match check_chain(digest, &known, start, digests) {
            Ok(Some(gap)) => result.gaps.push(gap),
            Ok(None) => {}
            Err(finding) => {
                result.findings.push(finding);
                valid = false;
            }
        }
        result.digests_valid += usize::from(valid);
        for file in &digest.log_files {
            result.log_files_listed += 1;
            match check_listed(digest, file, &ingested) {
                Listed::Verified => result.log_files_verified += 1,
                Listed::WithoutHash => result.log_files_without_hash += 1,
                Listed::Findings(found) => result.findings.extend(found),
            }
        }
    }

    // 4: ingested CloudTrail logs no digest lists.
    let grace_start = micros(scope.now - scope.grace) / 1_000_000;
    for (kind, object) in logs {
        let Some(uri) = object.uri.as_deref() else {
            continue;
        };
        let (account, region) = account_and_region(uri).unzip();
        let delivered = delivery_time(uri);
        let in_period =
            delivered.is_some_and(|t| (start / 1_000_000..end / 1_000_000).contains(&t));
        if !in_period || !scope.covers(account, region) {
            continue;
        }
        result.log_files_ingested += 1;
        if *kind != LogKind::CloudTrail || listed.contains(layout_key(uri)) {
            continue;
        }
        let delivered = delivered.unwrap_or_default() * 1_000_000;
        if !validated_at(digests, account, region, delivered) {
            continue;
        }
        if delivered / 1_000_000 > grace_start {
            result.log_files_pending += 1;
            continue;
        }
        result.findings.push(Finding {
            kind: FindingKind::Unlisted,
            object: uri.to_owned(),
            digest: None,
            detail: "ingested, but no digest lists it".into(),
        });
    }
    result.findings.sort();
    result.gaps.sort();
    result
}

/// What the tables hold of one log file a digest lists.
enum Listed {
    /// Every version ingested has the SHA-256 the digest lists.
    Verified,
    /// Ingested before hashes were recorded: present, not checked.
    WithoutHash,
    /// Missing, or a version with another SHA-256.
    Findings(Vec<Finding>),
}

/// Checks `file`, listed in `digest`, against the objects the tables hold (by key from
/// `AWSLogs/` on): every version of it, since one overwritten in S3 after its ingest was
/// ingested again (new content, new ingest id).
fn check_listed(
    digest: &Digest,
    file: &ListedLog,
    ingested: &HashMap<&str, Vec<&IngestedObject>>,
) -> Listed {
    let finding = |kind, object: String, detail: String| Finding {
        kind,
        object,
        digest: Some(digest.uri.clone()),
        detail,
    };
    let versions: Vec<&&IngestedObject> = ingested
        .get(layout_key(&file.object))
        .into_iter()
        .flatten()
        .filter(|o| same_bucket(o.uri.as_deref(), file.bucket.as_deref()))
        .collect();
    if versions.is_empty() {
        return Listed::Findings(vec![finding(
            FindingKind::Missing,
            location(file.bucket.as_deref(), &file.object),
            "listed in the digest, not in any table".into(),
        )]);
    }
    let mut mismatches = Vec::new();
    let mut unhashed = false;
    for object in versions {
        match (&object.sha256, &file.hash) {
            (None, _) => unhashed = true,
            (Some(ours), Some(theirs)) if ours.eq_ignore_ascii_case(theirs) => {}
            (Some(ours), theirs) => mismatches.push(finding(
                FindingKind::HashMismatch,
                object.uri.clone().unwrap_or_default(),
                format!(
                    "SHA-256 {ours} ingested, {} listed",
                    theirs.as_deref().unwrap_or("none")
                ),
            )),
        }
    }
    match (mismatches.is_empty(), unhashed) {
        (false, _) => Listed::Findings(mismatches),
        (true, true) => Listed::WithoutHash,
        (true, false) => Listed::Verified,
    }
}

/// Whether the trail's validation was on in `account` and `region` at `time` (µs): a digest
/// of theirs covers it, or the hour before a digest that names a predecessor (which then
/// existed, whether or not it is still in the table).
fn validated_at(
    digests: &[Digest],
    account: Option<&str>,
    region: Option<&str>,
    time: i64,
) -> bool {
    const HOUR: i64 = 3_600_000_000;
    digests
        .iter()
        .filter(|d| d.account.as_deref() == account && d.region.as_deref() == region)
        .any(|d| {
            let start = d.start_micros.unwrap_or(d.end_micros);
            let from = if d.previous_object.is_some() {
                start - HOUR
            } else {
                start
            };
            (from..=d.end_micros).contains(&time)
        })
}

/// What the checks look digests up by, each computed once.
struct KnownDigests<'a> {
    /// By the location each names for itself (bucket, key from `AWSLogs/` on).
    by_location: HashMap<(Option<&'a str>, &'a str), &'a Digest>,
    /// The SHA-256 of each digest object as ingested, by URI: more than one when it was
    /// overwritten after its ingest.
    versions: HashMap<&'a str, BTreeSet<&'a str>>,
    /// Each digest's signature (its metadata, or a local copy's `.sig` file), by URI.
    signatures: HashMap<&'a str, Option<String>>,
}

impl<'a> KnownDigests<'a> {
    fn of(digests: &'a [Digest], objects: &'a [IngestedObject]) -> Self {
        let mut versions: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for object in objects {
            if let (Some(uri), Some(sha256)) = (object.uri.as_deref(), object.sha256.as_deref()) {
                versions.entry(uri).or_default().insert(sha256);
            }
        }
        Self {
            by_location: digests
                .iter()
                .filter_map(|d| Some(((d.bucket.as_deref(), layout_key(d.object.as_deref()?)), d)))
                .collect(),
            versions,
            signatures: digests
                .iter()
                .map(|d| (d.uri.as_str(), signature_of(d)))
                .collect(),
        }
    }

    /// The SHA-256 the digest at `uri` was ingested with (the first, if it was overwritten).
    fn sha256(&self, uri: &str) -> Option<&'a str> {
        self.versions.get(uri).and_then(|v| v.first().copied())
    }

    fn signature(&self, uri: &str) -> Option<&str> {
        self.signatures.get(uri).and_then(Option::as_deref)
    }
}

/// A finding when the digest object was ingested in more than one version: it was overwritten
/// after CloudTrail delivered it (CloudTrail never rewrites a digest).
fn changed_after_ingest(digest: &Digest, known: &KnownDigests) -> Option<Finding> {
    let versions = known.versions.get(digest.uri.as_str())?.len();
    (versions > 1).then(|| Finding {
        kind: FindingKind::BadSignature,
        object: digest.uri.clone(),
        digest: None,
        detail: format!(
            "the object was overwritten after it was ingested: {versions} versions in the table"
        ),
    })
}

/// The digest's signature: its object's metadata, or for a local copy the `.sig` file
/// beside it.
fn signature_of(digest: &Digest) -> Option<String> {
    if digest.signature.is_some() {
        return digest.signature.clone();
    }
    let path = url::Url::parse(&digest.uri).ok()?.to_file_path().ok()?;
    let mut sidecar = path.into_os_string();
    sidecar.push(".sig");
    std::fs::read_to_string(sidecar)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn check_signature(digest: &Digest, known: &KnownDigests, keys: &PublicKeys) -> Option<Finding> {
    let (signature, own_hash) = (known.signature(&digest.uri), known.sha256(&digest.uri));
    let finding = |kind, detail: String| {
        Some(Finding {
            kind,
            object: digest.uri.clone(),
            digest: None,
            detail,
        })
    };
    let Some(signature) = signature else {
        let detail = if digest.signature_source == "unsigned-local" {
            "a local file without a .sig file beside it"
        } else {
            "the object has no signature metadata"
        };
        return finding(FindingKind::Unsigned, detail.into());
    };
    let algorithm = digest
        .signature_algorithm
        .as_deref()
        .unwrap_or(signature::ALGORITHM);
    if algorithm != signature::ALGORITHM {
        return finding(
            FindingKind::BadSignature,
            format!("unknown signature algorithm {algorithm}"),
        );
    }
    let (Some(bucket), Some(object)) = (digest.bucket.as_deref(), digest.object.as_deref()) else {
        return finding(
            FindingKind::BadSignature,
            "the digest names no digestS3Bucket/digestS3Object".into(),
        );
    };
    if layout_key(&digest.uri) != layout_key(object)
        || !same_bucket(Some(&digest.uri), Some(bucket))
    {
        return finding(
            FindingKind::BadSignature,
            format!("the digest names s3://{bucket}/{object}: it was moved, or is not that digest"),
        );
    }
    let Some(fingerprint) = digest.fingerprint.as_deref() else {
        return finding(
            FindingKind::BadSignature,
            "the digest names no public key".into(),
        );
    };
    let Some(key) = keys.get(fingerprint) else {
        return finding(
            FindingKind::BadSignature,
            format!("no public key with fingerprint {fingerprint}"),
        );
    };
    let Some(own_hash) = own_hash else {
        return finding(
            FindingKind::BadSignature,
            "the digest's own SHA-256 is not recorded".into(),
        );
    };
    let text = signature::signed_text(
        &digest.end_text,
        bucket,
        object,
        own_hash,
        digest.previous_signature.as_deref(),
    );
    signature::check(&text, signature, key, fingerprint)
        .err()
        .and_then(|e| finding(FindingKind::BadSignature, e.to_string()))
}

/// The chain: `Err` when the digest's predecessor is gone or differs from what it names;
/// `Ok(Some(gap))` when it names none after an earlier digest of its chain.
fn check_chain(
    digest: &Digest,
    known: &KnownDigests,
    period_start: i64,
    all: &[Digest],
) -> Result<Option<Gap>, Finding> {
    let broken = |detail: String| Finding {
        kind: FindingKind::ChainBreak,
        object: digest.uri.clone(),
        digest: None,
        detail,
    };
    let Some(previous_object) = digest.previous_object.as_deref() else {
        // A chain starts here: a gap if an earlier digest of the same chain exists.
        let chain = chain_of(digest);
        let before = all
            .iter()
            .filter(|d| {
                chain_of(d) == chain
                    && d.end_micros <= digest.start_micros.unwrap_or(digest.end_micros)
            })
            .max_by_key(|d| d.end_micros);
        return Ok(before.map(|b| Gap {
            digest: digest.uri.clone(),
            after: b.uri.clone(),
        }));
    };
    let previous = known
        .by_location
        .get(&(
            digest.previous_bucket.as_deref(),
            layout_key(previous_object),
        ))
        .or_else(|| known.by_location.get(&(None, layout_key(previous_object))));
    let Some(previous) = previous else {
        // Before the period and the day read before it: not ours to judge.
        if digest.start_micros.unwrap_or(digest.end_micros) <= period_start {
            return Ok(None);
        }
        return Err(broken(format!(
            "the previous digest {} is not in the digests table",
            location(digest.previous_bucket.as_deref(), previous_object)
        )));
    };
    if let Some(named) = digest.previous_signature.as_deref()
        && known.signature(&previous.uri) != Some(named)
    {
        return Err(broken(format!(
            "previousDigestSignature is not the signature of {}",
            previous.uri
        )));
    }
    match (known.sha256(&previous.uri), digest.previous_hash.as_deref()) {
        (Some(ours), Some(named)) if ours.eq_ignore_ascii_case(named) => Ok(None),
        (ours, named) => Err(broken(format!(
            "previousDigestHashValue {} is not the SHA-256 of {} ({})",
            named.unwrap_or("none"),
            previous.uri,
            ours.unwrap_or("not recorded")
        ))),
    }
}

/// The chain a digest belongs to: its trail's account, region and name (from the file name,
/// `<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<end>.json.gz`).
fn chain_of(digest: &Digest) -> (Option<&str>, Option<&str>, Option<String>) {
    let name = digest
        .object
        .as_deref()
        .unwrap_or(&digest.uri)
        .rsplit('/')
        .next()
        .unwrap_or("");
    let name = name
        .trim_end_matches(".json.gz")
        .trim_end_matches("_backfill");
    let parts: Vec<&str> = name.split('_').collect();
    let trail = (parts.len() >= 6).then(|| parts[3..parts.len() - 2].join("_"));
    (digest.account.as_deref(), digest.region.as_deref(), trail)
}

/// Whether an ingested object's URI is in `bucket` (always, for a local copy).
fn same_bucket(uri: Option<&str>, bucket: Option<&str>) -> bool {
    match (
        uri.and_then(|u| u.strip_prefix("s3://").or_else(|| u.strip_prefix("s3a://"))),
        bucket,
    ) {
        (Some(rest), Some(bucket)) => rest.split('/').next() == Some(bucket),
        _ => true,
    }
}

fn location(bucket: Option<&str>, key: &str) -> String {
    match bucket {
        Some(bucket) => format!("s3://{bucket}/{key}"),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(object: &str, start_hour: i64, previous: Option<&str>) -> Digest {
        const HOUR: i64 = 3_600_000_000;
        let (account, region) = account_and_region(object).unzip();
        Digest {
            uri: format!("s3://b/{object}"),
            account: account.map(str::to_owned),
            region: region.map(str::to_owned),
            bucket: Some("b".into()),
            object: Some(object.into()),
            start_micros: Some(start_hour * HOUR),
            end_micros: (start_hour + 1) * HOUR,
            end_text: String::new(),
            fingerprint: None,
            previous_bucket: previous.map(|_| "b".into()),
            previous_object: previous.map(str::to_owned),
            previous_hash: None,
            previous_signature: None,
            signature: None,
            signature_algorithm: None,
            signature_source: "s3-metadata".into(),
            log_files: Vec::new(),
        }
    }

    const KEY: &str = "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/1_CloudTrail-Digest_us-east-1_my_trail_us-east-1_20240430T230000Z.json.gz";

    #[test]
    fn a_chain_is_its_trail_account_and_region_backfills_included() {
        let plain = digest(KEY, 22, None);
        let backfill = digest(&KEY.replace(".json.gz", "_backfill.json.gz"), 22, None);
        let expected = (Some("1"), Some("us-east-1"), Some("my_trail".to_owned()));
        assert_eq!(chain_of(&plain), expected);
        assert_eq!(chain_of(&backfill), expected);
    }

    #[test]
    fn validation_was_on_where_a_digest_covers_or_names_a_predecessor() {
        const HOUR: i64 = 3_600_000_000;
        let starting = [digest(KEY, 22, None)];
        let (account, region) = (Some("1"), Some("us-east-1"));
        assert!(validated_at(&starting, account, region, 22 * HOUR + 1));
        assert!(!validated_at(&starting, account, region, 21 * HOUR + 1));
        assert!(!validated_at(&starting, Some("2"), region, 22 * HOUR + 1));
        let chained = [digest(KEY, 22, Some("AWSLogs/earlier.json.gz"))];
        assert!(validated_at(&chained, account, region, 21 * HOUR + 1));
        assert!(!validated_at(&chained, account, region, 20 * HOUR));
    }

    #[test]
    fn a_local_copy_is_in_any_bucket() {
        assert!(same_bucket(Some("s3://b/AWSLogs/x"), Some("b")));
        assert!(!same_bucket(Some("s3://other/AWSLogs/x"), Some("b")));
        assert!(same_bucket(Some("file:///tmp/AWSLogs/x"), Some("b")));
    }
}
