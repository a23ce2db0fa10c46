//! Counters since start, served at `/api/v1/stats` (tests read them too).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::serve::config::CommitMode;

/// Monotonic counters; each is updated with relaxed atomics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    uploads_created: AtomicU64,
    uploads_committed: AtomicU64,
    blocks_received: AtomicU64,
    bytes_received: AtomicU64,
    signatures_computed: AtomicU64,
    signature_cache_hits: AtomicU64,
    pdiffcopy_bytes_written: AtomicU64,
    delta_uploads_created: AtomicU64,
    delta_uploads_committed: AtomicU64,
    literal_bytes_received: AtomicU64,
    literal_bytes_sent: AtomicU64,
    wire_bytes_in: AtomicU64,
    wire_bytes_out: AtomicU64,
    search_bytes_rolled: AtomicU64,
    search_bytes_hashed: AtomicU64,
    commits_reflink: AtomicU64,
    commits_journal: AtomicU64,
    commits_replace: AtomicU64,
    commit_bytes_written: AtomicU64,
    commit_disk_bytes_written: AtomicU64,
    http1_connections: AtomicU64,
    http2_connections: AtomicU64,
    tls_connections: AtomicU64,
    hooks_queued: AtomicU64,
    hooks_delivered: AtomicU64,
    hook_attempts_failed: AtomicU64,
    hooks_abandoned: AtomicU64,
}

/// What became of a webhook delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HookEvent {
    /// Put in the outbox after a commit.
    Queued,
    /// Its receiver answered 2xx.
    Delivered,
    /// An attempt failed; it is tried again later.
    AttemptFailed,
    /// Still failing a day after its commit: dropped.
    Abandoned,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub uploads_created: u64,
    pub uploads_committed: u64,
    pub blocks_received: u64,
    pub bytes_received: u64,
    pub signatures_computed: u64,
    pub signature_cache_hits: u64,
    pub pdiffcopy_bytes_written: u64,
    pub delta_uploads_created: u64,
    pub delta_uploads_committed: u64,
    pub literal_bytes_received: u64,
    pub literal_bytes_sent: u64,
    pub wire_bytes_in: u64,
    pub wire_bytes_out: u64,
    pub search_bytes_rolled: u64,
    pub search_bytes_hashed: u64,
    pub commits_reflink: u64,
    pub commits_journal: u64,
    pub commits_replace: u64,
    pub commit_bytes_written: u64,
    /// Bytes of file data the commits wrote to the disk, as the kernel
    /// counted them (a clone writes none).
    pub commit_disk_bytes_written: u64,
    pub http1_connections: u64,
    pub http2_connections: u64,
    pub tls_connections: u64,
    /// Requests to the object store (a server over a bucket; else 0).
    #[serde(default)]
    pub store_requests: u64,
    /// Of those, writes and listings (AWS's "class A" requests).
    #[serde(default)]
    pub store_write_requests: u64,
    /// Of those, retries (throttles, server errors, lost answers).
    #[serde(default)]
    pub store_retries: u64,
    /// Bytes sent into the object store.
    #[serde(default)]
    pub store_bytes_uploaded: u64,
    /// Bytes the object store copied inside itself.
    #[serde(default)]
    pub store_bytes_copied: u64,
    /// Bytes read from the object store.
    #[serde(default)]
    pub store_bytes_downloaded: u64,
    /// Over a bucket: upload sessions this instance holds in memory (a
    /// matcher, the search's outcome), each forgotten once idle.
    #[serde(default)]
    pub cached_sessions: u64,
    /// Over a bucket: block hashes of data that arrived here, held for
    /// the commit.
    #[serde(default)]
    pub cached_block_hashes: u64,
    /// Webhook deliveries put in the outbox (one per commit, with `--hook-url`).
    #[serde(default)]
    pub hooks_queued: u64,
    /// Deliveries their receiver took (2xx).
    #[serde(default)]
    pub hooks_delivered: u64,
    /// Delivery attempts that failed (each is tried again, with backoff).
    #[serde(default)]
    pub hook_attempts_failed: u64,
    /// Deliveries dropped after a day of failures.
    #[serde(default)]
    pub hooks_abandoned: u64,
}

impl Stats {
    /// An upload session was opened.
    pub(super) fn upload_created(&self) {
        self.uploads_created.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload was committed.
    pub(super) fn upload_committed(&self) {
        self.uploads_committed.fetch_add(1, Ordering::Relaxed);
    }

    /// A block of `len` bytes was accepted.
    pub(super) fn block_received(&self, len: u64) {
        self.blocks_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(len, Ordering::Relaxed);
    }

    /// A signature was computed from the file.
    pub(super) fn signature_computed(&self) {
        self.signatures_computed.fetch_add(1, Ordering::Relaxed);
    }

    /// A signature came from the cache.
    pub(super) fn signature_cache_hit(&self) {
        self.signature_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// pdiffcopy's `POST /blocks` wrote `len` bytes.
    pub(super) fn pdiffcopy_written(&self, len: u64) {
        self.pdiffcopy_bytes_written.fetch_add(len, Ordering::Relaxed);
    }

    /// A protocol v2 upload was opened.
    pub(super) fn delta_upload_created(&self) {
        self.delta_uploads_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A protocol v2 upload was committed.
    pub(super) fn delta_upload_committed(&self) {
        self.delta_uploads_committed.fetch_add(1, Ordering::Relaxed);
    }

    /// Protocol v2 literal data received, `len` bytes as stored (compressed or not).
    pub(super) fn literal_received(&self, len: u64) {
        self.literal_bytes_received.fetch_add(len, Ordering::Relaxed);
    }

    /// Protocol v2 literal data sent to a downloading client, as stored.
    pub(super) fn literal_sent(&self, len: u64) {
        self.literal_bytes_sent.fetch_add(len, Ordering::Relaxed);
    }

    /// Bytes read from connections, headers included.
    pub(super) fn wire_in(&self, len: u64) {
        self.wire_bytes_in.fetch_add(len, Ordering::Relaxed);
    }

    /// Bytes written to connections, headers included.
    pub(super) fn wire_out(&self, len: u64) {
        self.wire_bytes_out.fetch_add(len, Ordering::Relaxed);
    }

    /// A protocol v2 search ended, after rolling over and hashing that many old bytes.
    pub(crate) fn searched(&self, rolled: u64, hashed: u64) {
        self.search_bytes_rolled.fetch_add(rolled, Ordering::Relaxed);
        self.search_bytes_hashed.fetch_add(hashed, Ordering::Relaxed);
    }

    /// A commit installed a new version `how`, writing that many bytes
    /// beyond the upload's own (by its plan), and `disk` bytes of file data
    /// by the kernel's count, where it gives one.
    pub(crate) fn installed(&self, how: CommitMode, bytes_written: u64, disk: Option<u64>) {
        let counter = match how {
            CommitMode::Reflink => &self.commits_reflink,
            CommitMode::Journal => &self.commits_journal,
            CommitMode::Replace | CommitMode::Auto => &self.commits_replace,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.commit_bytes_written.fetch_add(bytes_written, Ordering::Relaxed);
        self.commit_disk_bytes_written.fetch_add(disk.unwrap_or(0), Ordering::Relaxed);
    }

    /// A connection began to be served: over TLS or not, HTTP/2 or HTTP/1.1.
    pub(crate) fn connection(&self, tls: bool, http2: bool) {
        let counter = if http2 { &self.http2_connections } else { &self.http1_connections };
        counter.fetch_add(1, Ordering::Relaxed);
        if tls {
            self.tls_connections.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A webhook delivery moved on.
    pub(crate) fn hook(&self, event: HookEvent) {
        let counter = match event {
            HookEvent::Queued => &self.hooks_queued,
            HookEvent::Delivered => &self.hooks_delivered,
            HookEvent::AttemptFailed => &self.hook_attempts_failed,
            HookEvent::Abandoned => &self.hooks_abandoned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(super) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            uploads_created: get(&self.uploads_created),
            uploads_committed: get(&self.uploads_committed),
            blocks_received: get(&self.blocks_received),
            bytes_received: get(&self.bytes_received),
            signatures_computed: get(&self.signatures_computed),
            signature_cache_hits: get(&self.signature_cache_hits),
            pdiffcopy_bytes_written: get(&self.pdiffcopy_bytes_written),
            delta_uploads_created: get(&self.delta_uploads_created),
            delta_uploads_committed: get(&self.delta_uploads_committed),
            literal_bytes_received: get(&self.literal_bytes_received),
            literal_bytes_sent: get(&self.literal_bytes_sent),
            wire_bytes_in: get(&self.wire_bytes_in),
            wire_bytes_out: get(&self.wire_bytes_out),
            search_bytes_rolled: get(&self.search_bytes_rolled),
            search_bytes_hashed: get(&self.search_bytes_hashed),
            commits_reflink: get(&self.commits_reflink),
            commits_journal: get(&self.commits_journal),
            commits_replace: get(&self.commits_replace),
            commit_bytes_written: get(&self.commit_bytes_written),
            commit_disk_bytes_written: get(&self.commit_disk_bytes_written),
            http1_connections: get(&self.http1_connections),
            http2_connections: get(&self.http2_connections),
            tls_connections: get(&self.tls_connections),
            store_requests: 0,
            store_write_requests: 0,
            store_retries: 0,
            store_bytes_uploaded: 0,
            store_bytes_copied: 0,
            store_bytes_downloaded: 0,
            cached_sessions: 0,
            cached_block_hashes: 0,
            hooks_queued: get(&self.hooks_queued),
            hooks_delivered: get(&self.hooks_delivered),
            hook_attempts_failed: get(&self.hook_attempts_failed),
            hooks_abandoned: get(&self.hooks_abandoned),
        }
    }
}
