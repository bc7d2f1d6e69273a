//! Allocator tuning for tensor workloads (glibc only).
//!
//! Every candle op allocates its output, and a training step frees and reallocates buffers of
//! several megabytes hundreds of times. glibc serves blocks above its mmap threshold with fresh
//! `mmap`s and returns them with `munmap`, so every step page-faults its whole working set in
//! again (the kernel zeroes each page). Raising the threshold keeps those blocks in the heap,
//! where they are reused; raising the trim threshold stops glibc from handing the top of the
//! heap back between steps. The price: memory freed after the peak stays with the process.

/// Largest mmap threshold glibc accepts on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Heap top kept before glibc trims it back to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Tunes glibc malloc for tensor workloads: blocks up to 32 MiB come from the reusable heap
/// instead of fresh mmaps, and up to 1 GiB of freed heap is kept. Call once at start-up,
/// before the worker threads start (the `mvlpt` binary and the benchmarks do). Returns whether
/// the settings were applied (false on other allocators and platforms, where it does nothing).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; both values are in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
