//! Process-wide memory settings, applied by the binaries before they start work.

/// Keeps the resident size of a long ingest flat.
///
/// glibc's malloc raises its mmap threshold each time a large block is freed, so the
/// multi-megabyte buffers of Parquet encoding and uploads end up carved from the heap, where
/// freed space fragments instead of returning to the OS, and a long ingest's resident size
/// grows. A fixed threshold stops that; 4 MiB rather than a lower one keeps the many
/// mid-sized buffers on the heap, which spares their page faults. An explicit
/// `MALLOC_MMAP_THRESHOLD_` in the environment wins.
pub fn keep_rss_flat() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator tuning; any value is valid for this option.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
    }
}

/// Hands the pages of freed memory back to the OS (glibc's `malloc_trim`). Called between
/// units of work (an invocation, a batch), once their buffers are dropped.
///
/// Each commit loads, decodes and drops several megabytes (log entries, checkpoint reads,
/// Parquet buffers) on whichever threads the runtime picks; the freed space stays mapped in
/// each thread's malloc arena, and a long-lived process's resident size would creep up with
/// every commit, far above its live heap.
pub fn return_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
