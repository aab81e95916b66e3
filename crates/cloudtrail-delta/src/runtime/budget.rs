//! What an ingest may spend: time until a deadline, and resident memory up to a ceiling.
//!
//! A Lambda invocation is killed at its timeout and at its memory size, wherever it is. An
//! ingest that checks its [`Budget`] stops first, before committing anything, and says why and
//! what to change, instead of leaving a timeout or an out-of-memory kill in the logs. The
//! checks run once per Arrow batch (a few MB of JSON) and while waiting on a stalled read.

use std::time::{Duration, Instant, SystemTime};

/// Limits on time and memory for the ingests of one invocation or command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// Stop before this instant (the invocation's deadline less a reserve for committing).
    pub deadline: Option<Instant>,
    /// Stop when the process' resident memory passes this many bytes.
    pub max_resident_bytes: Option<u64>,
}

/// Why an ingest stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error(
        "out of time: stopped before the invocation's deadline, with nothing committed; raise \
         the function's Timeout, or ingest this object with the CLI"
    )]
    Time,
    #[error(
        "out of memory: resident memory reached {resident_mb} MB, past the ceiling of \
         {ceiling_mb} MB, with nothing committed; raise the function's MemorySize"
    )]
    Memory { resident_mb: u64, ceiling_mb: u64 },
}

impl Budget {
    /// The budget of a Lambda invocation: its deadline less a reserve to commit and answer
    /// (a fifth of the time left, at most 10 s), and 90% of the function's memory size.
    ///
    /// A deadline that is not in the future at the start is no deadline (Lambda always gives
    /// one ahead; some local emulators send 0): then time is not limited.
    pub fn for_invocation(deadline: SystemTime, memory_mb: Option<u64>) -> Self {
        let left = deadline
            .duration_since(SystemTime::now())
            .ok()
            .filter(|left| !left.is_zero());
        let deadline = left.map(|left| {
            let reserve = (left / 5).min(Duration::from_secs(10));
            Instant::now() + (left - reserve)
        });
        Self {
            deadline,
            max_resident_bytes: memory_mb.map(|mb| mb * (1 << 20) / 10 * 9),
        }
    }

    /// Fails if the deadline has passed or resident memory is over the ceiling.
    pub fn check(&self) -> Result<(), OverBudget> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(OverBudget::Time);
        }
        if let Some(ceiling) = self.max_resident_bytes
            && let Some(resident) = resident_bytes()
            && resident > ceiling
        {
            return Err(OverBudget::Memory {
                resident_mb: resident >> 20,
                ceiling_mb: ceiling >> 20,
            });
        }
        Ok(())
    }
}

/// The process' resident set size, where the platform tells it (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(size) = u64::try_from(size)
            && size > 0
        {
            return size;
        }
    }
    4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_budget_never_stops() {
        assert_eq!(Budget::default().check(), Ok(()));
    }

    #[test]
    fn an_invocation_keeps_a_reserve_before_its_deadline() {
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let budget = Budget::for_invocation(in_a_minute, None);
        let stop = budget.deadline.expect("a deadline");
        // 10 s (the most) kept for the commit: the budget ends about 50 s from now.
        let left = stop.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(48) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        assert_eq!(budget.check(), Ok(()));
        // A short invocation keeps a fifth.
        let soon = Budget::for_invocation(SystemTime::now() + Duration::from_secs(5), None);
        let left = soon.deadline.unwrap().duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(3) && left <= Duration::from_secs(4),
            "{left:?}"
        );
    }

    #[test]
    fn a_passed_deadline_stops() {
        let budget = Budget {
            deadline: Some(Instant::now()),
            ..Budget::default()
        };
        assert_eq!(budget.check(), Err(OverBudget::Time));
    }

    #[test]
    fn no_deadline_ahead_means_no_time_limit() {
        for deadline in [
            SystemTime::UNIX_EPOCH,
            SystemTime::now() - Duration::from_secs(1),
        ] {
            assert_eq!(Budget::for_invocation(deadline, None).deadline, None);
        }
    }

    #[test]
    fn memory_over_the_ceiling_stops() {
        let resident = resident_bytes().expect("Linux reports resident memory");
        assert!(resident > 1 << 20, "resident {resident}");
        let low = Budget {
            max_resident_bytes: Some(1 << 20),
            ..Budget::default()
        };
        assert!(matches!(
            low.check(),
            Err(OverBudget::Memory { ceiling_mb: 1, .. })
        ));
        // 90% of a 10 GB function: far above this test's memory.
        let roomy = Budget::for_invocation(SystemTime::UNIX_EPOCH, Some(10_240));
        assert_eq!(roomy.max_resident_bytes, Some(9_216 << 20)); // 90% of 10 240 MB
        assert_eq!(roomy.check(), Ok(()));
    }
}
