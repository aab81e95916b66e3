//! Routing a log object to its table by its key, as CloudTrail lays keys out:
//!
//! ```text
//! [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
//! [prefix/]AWSLogs/<o-orgid>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
//! …/CloudTrail-NetworkActivity/…   network activity events (VPC endpoint calls): the CloudTrail table
//! …/CloudTrail-Insight/…   Insights events
//! …/CloudTrail-Aggregated/…   aggregated events (summaries of data events)
//! …/CloudTrail-Digest/…    integrity digests: the digests table
//! ```

use crate::schema::LogKind;

/// Where a log object goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Ingest(LogKind),
    Skip(SkipReason),
}

/// Why an object is not ingested. Skipping is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A key ending in `/` (a folder marker).
    FolderMarker,
    /// Not a `.json.gz` or `.json` file under a `CloudTrail/`, `CloudTrail-NetworkActivity/`,
    /// `CloudTrail-Insight/`, `CloudTrail-Aggregated/` or `CloudTrail-Digest/` folder.
    NotALog,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::FolderMarker => "folder marker",
            SkipReason::NotALog => "not a CloudTrail log file (.json.gz/.json under CloudTrail/, CloudTrail-NetworkActivity/, CloudTrail-Insight/, CloudTrail-Aggregated/ or CloudTrail-Digest/)",
        })
    }
}

/// The folders CloudTrail writes under an account's folder, and the table of each. Network
/// activity events have the management and data events' record shape.
const KIND_FOLDERS: [(&str, LogKind); 5] = [
    ("CloudTrail", LogKind::CloudTrail),
    ("CloudTrail-NetworkActivity", LogKind::CloudTrail),
    ("CloudTrail-Insight", LogKind::Insights),
    ("CloudTrail-Aggregated", LogKind::Aggregated),
    ("CloudTrail-Digest", LogKind::Digest),
];

/// The log kind whose folder `folder` is, if it is one.
fn kind_of_folder(folder: &str) -> Option<LogKind> {
    KIND_FOLDERS
        .iter()
        .find_map(|(name, kind)| (*name == folder).then_some(*kind))
}

/// Routes an object by its key (or local path).
pub fn route(key: &str) -> Route {
    if key.is_empty() || key.ends_with('/') {
        return Route::Skip(SkipReason::FolderMarker);
    }
    // The folder nearest to the file decides (a prefix may itself contain such names).
    let kind = key.rsplit('/').skip(1).find_map(kind_of_folder);
    match kind {
        Some(kind) if key.ends_with(".json.gz") || key.ends_with(".json") => Route::Ingest(kind),
        _ => Route::Skip(SkipReason::NotALog),
    }
}

/// The delivery date of a log by its key, `YYYY/MM/DD` (the folders after the region), if
/// the key has CloudTrail's layout. Records of a log fall on that date or, around midnight,
/// the day before: batches of objects group by it to keep few partitions open at once.
pub fn delivery_date(key: &str) -> Option<&str> {
    let folders: Vec<&str> = key.rsplit('/').skip(1).collect();
    // Nearest folders first: DD, MM, YYYY, region, the kind's folder.
    match folders.as_slice() {
        [day, month, year, _region, kind, ..]
            if kind_of_folder(kind).is_some()
                && [(year, 4), (month, 2), (day, 2)].iter().all(|(part, len)| {
                    part.len() == *len && part.bytes().all(|b| b.is_ascii_digit())
                }) =>
        {
            let end = key.len() - key.rsplit('/').next().map_or(0, str::len) - 1;
            Some(&key[end - 10..end])
        }
        _ => None,
    }
}

/// The account and region of an object by its key (the folders around its kind's folder),
/// if the key has CloudTrail's layout.
pub fn account_and_region(key: &str) -> Option<(&str, &str)> {
    let folders: Vec<&str> = key.split('/').collect();
    let kind = folders
        .iter()
        .rposition(|folder| kind_of_folder(folder).is_some())?;
    match (kind.checked_sub(1), folders.get(kind + 1)) {
        (Some(account), Some(region)) if kind + 1 < folders.len() - 1 => {
            Some((folders[account], region))
        }
        _ => None,
    }
}

/// When CloudTrail delivered an object, by the `YYYYMMDDTHHMMZ` (logs) or `YYYYMMDDTHHMMSSZ`
/// (digests: their end time) in its file name, in seconds since the epoch.
pub fn delivery_time(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    name.split(['_', '.']).find_map(|part| {
        let format = match part.len() {
            14 => "%Y%m%dT%H%MZ",
            16 => "%Y%m%dT%H%M%SZ",
            _ => return None,
        };
        chrono::NaiveDateTime::parse_from_str(part, format)
            .ok()
            .map(|t| t.and_utc().timestamp())
    })
}

/// The part of a key CloudTrail's layout fixes: from `AWSLogs/` on (what follows the trail's
/// prefix), so that a digest's `s3Object` and the URI of a copy elsewhere compare.
pub fn layout_key(key: &str) -> &str {
    if key.starts_with("AWSLogs/") {
        return key;
    }
    key.rfind("/AWSLogs/").map_or(key, |at| &key[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_both_layouts_under_any_prefix() {
        let ct = Route::Ingest(LogKind::CloudTrail);
        assert_eq!(
            route("AWSLogs/123456789012/CloudTrail/us-east-1/2024/04/30/x.json.gz"),
            ct
        );
        assert_eq!(
            route("p/q/AWSLogs/o-abc123/123456789012/CloudTrail/eu-west-1/2024/04/30/x.json.gz"),
            ct
        );
        assert_eq!(
            route("/tmp/logs/AWSLogs/1/CloudTrail/us-east-1/2024/04/30/x.json"),
            ct
        );
        assert_eq!(
            route("AWSLogs/1/CloudTrail-Insight/us-east-1/2024/04/30/x.json.gz"),
            Route::Ingest(LogKind::Insights)
        );
        for key in [
            "AWSLogs/1/CloudTrail-NetworkActivity/us-east-1/2024/04/30/x.json.gz",
            "t/AWSLogs/o-abc123/1/CloudTrail-NetworkActivity/us-east-1/2024/04/30/x.json.gz",
        ] {
            assert_eq!(route(key), ct, "{key}");
            assert_eq!(delivery_date(key), Some("2024/04/30"), "{key}");
        }
        for key in [
            "AWSLogs/1/CloudTrail-Aggregated/us-west-2/2025/11/17/x.json.gz",
            "t/AWSLogs/o-abc123/1/CloudTrail-Aggregated/us-west-2/2025/11/17/x.json.gz",
        ] {
            assert_eq!(route(key), Route::Ingest(LogKind::Aggregated), "{key}");
            assert_eq!(delivery_date(key), Some("2025/11/17"), "{key}");
        }
    }

    #[test]
    fn routes_digests_of_both_layouts_to_their_table() {
        for key in [
            "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/1_CloudTrail-Digest_us-east-1_t_us-east-1_20240430T230000Z.json.gz",
            "p/AWSLogs/o-abc123/1/CloudTrail-Digest/us-east-1/2024/04/30/x_backfill.json.gz",
        ] {
            assert_eq!(route(key), Route::Ingest(LogKind::Digest), "{key}");
            assert_eq!(delivery_date(key), Some("2024/04/30"), "{key}");
        }
        assert_eq!(
            route("AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/x.sig"),
            Route::Skip(SkipReason::NotALog)
        );
    }

    #[test]
    fn skips_folders_and_other_files() {
        assert_eq!(
            route("AWSLogs/1/CloudTrail/us-east-1/"),
            Route::Skip(SkipReason::FolderMarker)
        );
        assert_eq!(
            route("AWSLogs/1/CloudTrail/us-east-1/x.txt"),
            Route::Skip(SkipReason::NotALog)
        );
        assert_eq!(
            route("AWSLogs/1/Config/us-east-1/x.json.gz"),
            Route::Skip(SkipReason::NotALog)
        );
        assert_eq!(route("x.json.gz"), Route::Skip(SkipReason::NotALog));
        // The nearest folder decides.
        assert_eq!(
            route("CloudTrail/AWSLogs/1/CloudTrail-Digest/r/2024/04/30/x.json.gz"),
            Route::Ingest(LogKind::Digest)
        );
    }

    #[test]
    fn account_region_and_time_are_read_from_the_key() {
        let log = "p/AWSLogs/o-a1/123456789012/CloudTrail/us-east-1/2024/04/30/123456789012_CloudTrail_us-east-1_20240430T2205Z_AbC.json.gz";
        assert_eq!(account_and_region(log), Some(("123456789012", "us-east-1")));
        assert_eq!(delivery_time(log), Some(1_714_514_700));
        assert_eq!(layout_key(log), &log[2..]);
        assert_eq!(layout_key(&format!("file:///tmp/x/{log}")), &log[2..]);
        let digest = "AWSLogs/1/CloudTrail-Digest/eu-west-1/2024/04/30/1_CloudTrail-Digest_eu-west-1_main_eu-west-1_20240430T230000Z.json.gz";
        assert_eq!(account_and_region(digest), Some(("1", "eu-west-1")));
        assert_eq!(delivery_time(digest), Some(1_714_518_000));
        assert_eq!(layout_key(digest), digest);
        assert_eq!(account_and_region("AWSLogs/1/CloudTrail/x.json.gz"), None);
        assert_eq!(delivery_time("AWSLogs/1/CloudTrail/r/x.json.gz"), None);
    }

    #[test]
    fn delivery_date_is_read_from_the_layout() {
        assert_eq!(
            delivery_date("p/AWSLogs/o-a/1/CloudTrail/us-east-1/2024/04/30/x.json.gz"),
            Some("2024/04/30")
        );
        assert_eq!(
            delivery_date("AWSLogs/1/CloudTrail-Insight/eu-west-1/2023/12/01/x.json.gz"),
            Some("2023/12/01")
        );
        assert_eq!(
            delivery_date("AWSLogs/1/CloudTrail/us-east-1/x.json.gz"),
            None
        );
        assert_eq!(delivery_date("logs/2024/04/30/x.json.gz"), None);
        assert_eq!(
            delivery_date("AWSLogs/1/CloudTrail/r/24/4/30/x.json.gz"),
            None
        );
        assert_eq!(delivery_date("x.json.gz"), None);
    }
}
