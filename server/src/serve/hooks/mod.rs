//! A webhook after each commit (docs/embedding.md#hearing-about-commits):
//! `--hook-url` gets a signed JSON POST for every upload that lands.
//!
//! Delivery is at least once and never holds a commit back. The commit
//! puts a delivery in an [`Outbox`] kept beside the data (the directory's
//! `.diffcopy-hooks/`, the bucket's `hooks/`) before its client hears that
//! it landed; [`Hooks::deliver_forever`] then POSTs it, and removes it once
//! the receiver answers 2xx. A failed attempt is tried again with backoff
//! (1 s doubling to 10 min, with jitter) for a day, then dropped and
//! logged. A server that restarts finds its outbox where it left it. Over
//! a bucket, instances claim a delivery with a conditional write before
//! they send it, so two instances do not send it at once.
//!
//! The schedule is kept in each delivery (its attempts and next time), not
//! in a retry loop's memory, because it must survive restarts: a retry
//! crate (backon and the like) drives an in-process loop, which is not
//! this.

mod outbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::serve::error::{AppError, AppResult};
use crate::serve::stats::{HookEvent, Stats};
pub(crate) use outbox::{DirOutbox, Outbox, Stored};

/// How long a delivery is tried.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The first retry's delay; each next one doubles, up to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MOST_BACKOFF: Duration = Duration::from_secs(600);
/// How long a claimed delivery is its claimer's before another instance
/// may send it (the claimer died).
const CLAIM: Duration = Duration::from_secs(60);
/// How long a receiver gets to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at with nothing due (deliveries other
/// instances queued, claims that lapsed).
const LOOK_AGAIN: Duration = Duration::from_secs(30);
/// The most deliveries read per look; the next look goes on after the last
/// one read, so that deliveries waiting on their backoff at the front of
/// the outbox never keep newer ones from being seen.
const PER_LOOK: usize = 100;

/// `--hook-url` and the secret its bodies are signed with.
#[derive(Clone)]
pub struct HookTarget {
    url: reqwest::Url,
    secret: Vec<u8>,
}

impl std::fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookTarget").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl HookTarget {
    /// From `--hook-url` and `--hook-secret-file` (its bytes, one trailing
    /// newline removed; at least 16 bytes).
    pub fn new(url: &str, secret_file: &std::path::Path) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("--hook-url {url}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("--hook-url {url}: http:// or https://"));
        }
        Ok(Self { url, secret: crate::secret::read(secret_file, "hook secret", 16)? })
    }

    /// `sha256=<hex HMAC-SHA256 of body>`, the `X-Diffcopy-Signature` header.
    fn signature(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(body);
        format!("sha256={}", diffcopy_core::hex::encode(&mac.finalize().into_bytes()))
    }
}

/// What a commit reports to the hook, from either store and protocol.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) etag: String,
    /// Bytes of the new file that came from the client.
    pub(crate) bytes_received: u64,
    /// `reflink`, `journal`, `replace`, `s3`, or `none` (unchanged).
    pub(crate) commit_mode: &'static str,
}

/// A commit's answer that the webhook reports.
pub(crate) trait Reported {
    /// What the webhook says of it.
    fn committed(&self) -> Committed;
}

/// Runs `commit` to its end even if the request that asked for it goes
/// away meanwhile (a closed tab, a client's timeout, a shutdown's drain),
/// then queues its webhook: a commit that lands is always reported. `sub`
/// opened the upload; `protocol` is `v1` or `v2`.
pub(crate) async fn commit_and_report<T, O>(
    hooks: Option<Arc<Hooks<O>>>,
    sub: Option<String>,
    protocol: &'static str,
    commit: impl Future<Output = AppResult<T>> + Send + 'static,
) -> AppResult<T>
where
    T: Reported + Send + 'static,
    O: Outbox,
{
    let started = Instant::now();
    tokio::spawn(async move {
        let outcome = commit.await?;
        if let Some(hooks) = hooks {
            hooks.committed(&outcome.committed(), sub.as_deref(), protocol, started).await;
        }
        Ok(outcome)
    })
    .await
    .map_err(|e| AppError::internal("committing", e))?
}

/// The body of a delivery.
#[derive(Debug, Serialize)]
struct Event<'a> {
    event: &'static str,
    path: &'a str,
    size: u64,
    etag: &'a str,
    sub: Option<&'a str>,
    protocol: &'static str,
    bytes_received: u64,
    commit_mode: &'static str,
    /// How long the commit took.
    seconds: f64,
    /// When it landed (RFC 3339, UTC).
    time: String,
}

/// A delivery as the outbox keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Delivery {
    /// The body, exactly as signed and sent.
    body: String,
    /// When it was queued (unix milliseconds).
    created: u64,
    attempts: u32,
    /// When it is due (unix milliseconds): the next attempt, or the end of a claim.
    next: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The wait before attempt `attempts + 1`: doubling from [`FIRST_BACKOFF`],
/// at most [`MOST_BACKOFF`], less up to a quarter at random.
fn backoff(attempts: u32, jitter: f64) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1 << attempts.saturating_sub(1).min(20)).min(MOST_BACKOFF);
    full.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

/// The webhook of one server: its target, its outbox, its sender.
#[derive(Debug)]
pub(crate) struct Hooks<O> {
    target: HookTarget,
    outbox: O,
    client: reqwest::Client,
    wake: Notify,
    stats: Arc<Stats>,
    /// Where the next look starts: after this id (`None`: from the oldest).
    cursor: std::sync::Mutex<Option<String>>,
}

impl<O: Outbox> Hooks<O> {
    pub(crate) fn new(target: HookTarget, outbox: O, stats: Arc<Stats>) -> Result<Self, String> {
        let client = crate::http::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(ANSWER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the webhook's HTTP client: {e}"))?;
        Ok(Self { target, outbox, client, wake: Notify::new(), stats, cursor: std::sync::Mutex::default() })
    }

    /// Queues the delivery of a commit that landed (`started` when the
    /// commit began): in the outbox before this returns, sent by
    /// [`Self::deliver_forever`]. A failure to queue is logged and counted,
    /// never the commit's.
    pub(crate) async fn committed(
        &self,
        done: &Committed,
        sub: Option<&str>,
        protocol: &'static str,
        started: Instant,
    ) {
        let event = Event {
            event: "commit",
            path: &done.path,
            size: done.size,
            etag: &done.etag,
            sub,
            protocol,
            bytes_received: done.bytes_received,
            commit_mode: done.commit_mode,
            seconds: started.elapsed().as_secs_f64(),
            time: jiff::Timestamp::now().to_string(),
        };
        let now = unix_ms();
        let delivery = Delivery {
            body: serde_json::to_string(&event).unwrap_or_default(),
            created: now,
            attempts: 0,
            next: now,
        };
        let queued = match crate::random::random_hex(8) {
            Ok(random) => {
                let id = format!("{now:013}-{random}");
                self.outbox.add(&id, encode(&delivery)).await
            }
            Err(e) => Err(e.to_string()),
        };
        match queued {
            Ok(()) => {
                self.stats.hook(HookEvent::Queued);
                self.wake.notify_one();
            }
            Err(e) => {
                tracing::error!(path = %done.path, "the webhook of this commit could not be queued: {e}")
            }
        }
    }

    /// Sends what the outbox holds as it falls due; runs until aborted.
    pub(crate) async fn deliver_forever(self: Arc<Self>) {
        loop {
            let wait = match self.look().await {
                Ok(soonest) => {
                    soonest.map_or(LOOK_AGAIN, |at| Duration::from_millis(at.saturating_sub(unix_ms())))
                }
                Err(e) => {
                    tracing::warn!("reading the webhook outbox: {e}");
                    LOOK_AGAIN
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait.min(LOOK_AGAIN)) => {}
            }
        }
    }

    /// Sends every delivery that is due; returns when the soonest of the
    /// others falls due.
    async fn look(&self) -> Result<Option<u64>, String> {
        let mut soonest: Option<u64> = None;
        let after = self.cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let batch = self.outbox.pending(PER_LOOK, after.as_deref()).await?;
        // A full batch: more may follow, looked at next, at once.
        let next = (batch.len() == PER_LOOK).then(|| batch.last().map(|s| s.id.clone())).flatten();
        if next.is_some() {
            soonest = Some(unix_ms());
        }
        *self.cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        for stored in batch {
            let Some(mut delivery) = decode(&stored.entry) else {
                tracing::error!(id = %stored.id, "a webhook delivery that cannot be read: dropped");
                self.outbox.remove(&stored.id).await?;
                continue;
            };
            let now = unix_ms();
            if delivery.next > now {
                soonest = sooner(soonest, delivery.next);
                continue;
            }
            // Claimed, so that no other instance sends it meanwhile.
            delivery.next = now + CLAIM.as_millis() as u64;
            let Some(version) = self.outbox.replace(&stored, encode(&delivery)).await? else { continue };
            match self.send(&delivery.body).await {
                Ok(()) => {
                    self.outbox.remove(&stored.id).await?;
                    self.stats.hook(HookEvent::Delivered);
                    tracing::info!(id = %stored.id, attempts = delivery.attempts + 1, "webhook delivered");
                }
                Err(e) => {
                    self.stats.hook(HookEvent::AttemptFailed);
                    delivery.attempts += 1;
                    if now.saturating_sub(delivery.created) >= GIVE_UP_AFTER.as_millis() as u64 {
                        self.outbox.remove(&stored.id).await?;
                        self.stats.hook(HookEvent::Abandoned);
                        tracing::error!(id = %stored.id, attempts = delivery.attempts, body = %delivery.body, "webhook abandoned after a day: {e}");
                        continue;
                    }
                    let random =
                        crate::random::random_hex(4).ok().and_then(|h| u32::from_str_radix(&h, 16).ok());
                    let jitter = f64::from(random.unwrap_or(0)) / f64::from(u32::MAX);
                    delivery.next = unix_ms() + backoff(delivery.attempts, jitter).as_millis() as u64;
                    tracing::warn!(id = %stored.id, attempts = delivery.attempts, "webhook not delivered, trying again later: {e}");
                    let claimed = Stored { version, ..stored };
                    self.outbox.replace(&claimed, encode(&delivery)).await?;
                    soonest = sooner(soonest, delivery.next);
                }
            }
        }
        Ok(soonest)
    }

    /// One attempt: a 2xx answer is delivered, anything else is not.
    async fn send(&self, body: &str) -> Result<(), String> {
        let response = self
            .client
            .post(self.target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-diffcopy-signature", self.target.signature(body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", response.status()))
        }
    }
}

/// The earlier of `soonest` (if any) and `at`.
fn sooner(soonest: Option<u64>, at: u64) -> Option<u64> {
    Some(soonest.map_or(at, |s| s.min(at)))
}

fn encode(delivery: &Delivery) -> Bytes {
    Bytes::from(serde_json::to_vec(delivery).unwrap_or_default())
}

fn decode(bytes: &[u8]) -> Option<Delivery> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{HookTarget, backoff};

    #[test]
    fn backoff_doubles_to_ten_minutes_less_its_jitter() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(4, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(10, 0.0), Duration::from_secs(512));
        assert_eq!(backoff(11, 0.0), Duration::from_secs(600));
        assert_eq!(backoff(500, 0.0), Duration::from_secs(600));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(3));
    }

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        let target = HookTarget { url: "http://127.0.0.1/".parse().unwrap(), secret: b"Jefe".to_vec() };
        assert_eq!(
            target.signature(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
