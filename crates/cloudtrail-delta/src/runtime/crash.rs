//! Crash points: named places where tests can kill the process, as a Lambda timeout or an
//! out-of-memory kill would, to check that an interrupted ingest or commit is recovered.
//!
//! Set `CLOUDTRAIL_DELTA_CRASH_AT` to a point's name and the process aborts on reaching it.
//! Unset (always, in production) a crash point costs one cached environment lookup.

use std::sync::OnceLock;

/// The environment variable naming the crash point to die at.
pub const CRASH_AT: &str = "CLOUDTRAIL_DELTA_CRASH_AT";

/// After the Parquet files are written (uploaded), before the commit.
pub const BEFORE_COMMIT: &str = "before-commit";
/// The lock table's points (see `delta_dynamodb_logstore::crash_points`), which reach
/// [`point`] once [`install`] has run.
pub use delta_dynamodb_logstore::crash_points::{
    AFTER_LOCK_CLAIM, AFTER_LOG_ENTRY, BEFORE_LOCK_CLAIM,
};
/// After the commit, before the invocation or command reports it.
pub const AFTER_COMMIT: &str = "after-commit";

/// Every crash point, in the order an ingest reaches them.
pub const ALL: [&str; 5] = [
    BEFORE_COMMIT,
    BEFORE_LOCK_CLAIM,
    AFTER_LOCK_CLAIM,
    AFTER_LOG_ENTRY,
    AFTER_COMMIT,
];

/// Further variable: the chance, from 0 to 1, that a named point aborts when reached
/// (default 1: always). Soak tests name several points and kill a share of invocations.
pub const CRASH_RATE: &str = "CLOUDTRAIL_DELTA_CRASH_RATE";

struct Target {
    points: Vec<String>,
    rate: f64,
}

/// Makes the lock table's commits stop at their crash points too.
pub fn install() {
    delta_dynamodb_logstore::crash_points::set_hook(point);
}

/// Aborts the process if `CLOUDTRAIL_DELTA_CRASH_AT` names `point` (and the dice say so).
pub fn point(point: &str) {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    let target = TARGET.get_or_init(|| {
        let points = std::env::var(CRASH_AT).ok()?;
        let rate = std::env::var(CRASH_RATE)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1.0);
        Some(Target {
            points: points.split(',').map(|p| p.trim().to_owned()).collect(),
            rate,
        })
    });
    let Some(target) = target else { return };
    if target.points.iter().any(|p| p == point) && roll() < target.rate {
        eprintln!("{CRASH_AT}={point}: aborting here");
        std::process::abort();
    }
}

/// A uniform number in [0, 1) from the system's randomness.
fn roll() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}
