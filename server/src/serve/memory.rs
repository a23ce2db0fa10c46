//! Keeping the server's resident memory near what it uses.
//!
//! glibc's malloc serves requests of 128 KiB and more with their own
//! mmap, but each time such a buffer is freed it raises that threshold to
//! the buffer's size (up to 32 MiB). From then on the server's 1-4 MiB
//! block, literal and search buffers come from per-thread arenas, which
//! keep the memory after a free: measured with `scripts/bench-compare`,
//! the resident set grew from about 30 MiB to 70-82 MiB over a series of
//! 1 GiB uploads, above the 64 MiB the design allows, while the memory in
//! use stayed near 30 MiB. Measured on tmpfs (six 1 GiB uploads, peak RSS
//! over the server's life): glibc's defaults 49-54 MiB; at most two arenas
//! 34 MiB at the same CPU; a fixed 256 KiB mmap threshold 18 MiB but 40%
//! more server CPU in page faults. So: two arenas ([`limit_arenas`]), and
//! `malloc_trim` hands what is free back after each commit and whenever
//! the connections have gone quiet ([`trim_when_idle`]).

use std::sync::Arc;
use std::time::Duration;

use crate::serve::stats::Stats;

/// How long the wire must be quiet before freed memory is returned.
const IDLE: Duration = Duration::from_millis(250);

/// Returns freed memory to the system each time the server has moved
/// bytes and then been idle for [`IDLE`]; runs until aborted.
pub(super) async fn trim_when_idle(stats: Arc<Stats>) {
    let moved = || {
        let now = stats.snapshot();
        now.wire_bytes_in + now.wire_bytes_out
    };
    let mut last = moved();
    let mut trimmed = true;
    let mut tick = tokio::time::interval(IDLE);
    loop {
        tick.tick().await;
        let now = moved();
        if now != last {
            (last, trimmed) = (now, false);
        } else if !trimmed {
            trimmed = true;
            release_freed().await;
        }
    }
}

/// At most two malloc arenas for all the server's threads (glibc makes up
/// to eight per core, each keeping what was freed in it). Call before the
/// blocking threads start allocating (threads that already have an arena
/// keep it).
pub(super) fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointers and is thread-safe; it only sets a
    // malloc tunable. One of the three measured needs for unsafe in this
    // crate (see the module's comment).
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed memory to the system now (after a commit: the upload's
/// buffers are free); a few milliseconds on a blocking thread.
pub(super) async fn release_freed() {
    let _ = tokio::task::spawn_blocking(trim).await;
}

/// Hands the free memory of every malloc arena back to the system.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is thread-safe; it only
    // releases free pages. One of the three measured needs for unsafe in this
    // crate (see the module's comment).
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
