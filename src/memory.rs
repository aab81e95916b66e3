//! Process-wide memory settings, applied by the binaries before they start work.

/// Keeps the resident size of a long ingest flat.
///
/// glibc's malloc raises its mmap threshold each time a large block is freed, so the
/// multi-megabyte buffers of Parquet encoding and uploads end up carved from the heap, where
/// freed space fragments instead of returning to the OS: ingesting a 1 GB log peaked at
/// 97 MB RSS against 61 MB with a fixed 256 KiB threshold, for the same heap use and no
/// measurable time. An explicit `MALLOC_MMAP_THRESHOLD_` in the environment wins.
pub fn keep_rss_flat() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator tuning; any value is valid for this option.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}
