//! What a running process needs besides the pipeline: the time and memory an invocation may
//! spend ([`budget`]), allocator settings ([`memory`]), figures as CloudWatch metrics
//! ([`metrics`]), the points where tests stop it ([`crash`]), and [`cpu_bound`] work kept off
//! the async workers.

pub mod budget;
pub mod crash;
pub mod memory;
pub mod metrics;

/// Runs CPU-bound `work` (Parquet encoding) from async code without holding up the runtime's
/// other tasks (S3 reads, uploads): on a multi-thread runtime the worker hands its tasks to
/// another thread first and becomes a blocking thread for the time of `work`
/// (`tokio::task::block_in_place`); elsewhere (a current-thread runtime, as in tests) `work`
/// just runs.
pub fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
