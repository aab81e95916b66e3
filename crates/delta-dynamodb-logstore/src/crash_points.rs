//! Named points in the commit protocol where a test can stop the process, as a timeout or an
//! out-of-memory kill would, to check that other writers complete or ignore what it left.
//!
//! With the `crash-points` feature, [`set_hook`] installs a function the store calls with each
//! point's name as it passes it; the hook decides whether to stop there. Without the feature a
//! point compiles to nothing.

/// The temporary commit file is written, the version not yet claimed.
pub const BEFORE_LOCK_CLAIM: &str = "before-lock-claim";
/// The version is claimed in the lock table, `_delta_log/N.json` not yet in place.
pub const AFTER_LOCK_CLAIM: &str = "after-lock-claim";
/// `_delta_log/N.json` is in place, its lock entry not yet marked complete.
pub const AFTER_LOG_ENTRY: &str = "after-log-entry";

#[cfg(feature = "crash-points")]
static HOOK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Calls `hook` with the name of each crash point this process passes from now on (the first
/// hook set stays).
#[cfg(feature = "crash-points")]
pub fn set_hook(hook: fn(&str)) {
    let _ = HOOK.set(hook);
}

#[inline]
pub(crate) fn reached(point: &str) {
    #[cfg(feature = "crash-points")]
    if let Some(hook) = HOOK.get() {
        hook(point);
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = point;
}
