//! Crash points: named places where tests can kill the process, as a Lambda timeout or an
//! out-of-memory kill would, to check that an interrupted ingest or commit is recovered.
//!
//! Set `CLOUDTRAIL_DELTA_CRASH_AT` to a point's name and the process aborts on reaching it.
//! Unset (always, in production) a crash point costs one cached environment lookup.

use std::sync::OnceLock;

/// The environment variable naming the crash point to die at.
pub const CRASH_AT: &str = "CLOUDTRAIL_DELTA_CRASH_AT";

/// After the commit's version is claimed in the lock table, before `_delta_log/N.json` exists.
pub const AFTER_LOCK_CLAIM: &str = "after-lock-claim";
/// After the Parquet files are written, before the commit.
pub const BEFORE_COMMIT: &str = "before-commit";

/// Aborts the process if `CLOUDTRAIL_DELTA_CRASH_AT` names `point`.
pub fn point(point: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(CRASH_AT).ok());
    if target.as_deref() == Some(point) {
        eprintln!("{CRASH_AT}={point}: aborting here");
        std::process::abort();
    }
}
