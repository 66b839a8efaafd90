//! How the broker's process uses glibc's allocator, set once at start before any thread runs.
//!
//! A replicated partition allocates a few buffers of a producer batch's size (100 KiB to a few
//! MiB) per batch on every replica: the replication request's encoding, its decoding, the raft
//! record. glibc serves allocations above its dynamic mmap threshold with `mmap` and gives the
//! top of a heap back to the kernel above a trim threshold of twice that, so each such buffer
//! came back as fresh pages, and every page is a fault and a zeroing: 26 page faults per batch
//! on each node of a 3-node cluster, none of them needed. With the thresholds below it is 3, and
//! the brokers spent 3–8 % less CPU per message (docs/benchmarks.md, "Cluster", 2026-12-06).
//! The cost is memory the process keeps instead of returning: at most [`TRIM_THRESHOLD`] free at
//! the top of each heap.

/// Allocations below this come from the heaps, not from `mmap` (glibc's largest value for it).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the top of a heap beyond this goes back to the kernel.
pub const TRIM_THRESHOLD: usize = 128 << 20;

/// Sets the thresholds; call it before starting any thread. `false` when glibc refused them,
/// or when the process does not run on glibc (nothing to set).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; both values are in glibc's range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_thresholds() {
        assert!(super::keep_freed_memory());
    }
}
