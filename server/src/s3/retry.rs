//! Retries as AWS's standard retry mode makes them: at most three
//! attempts, a delay drawn at random between zero and an exponential
//! ceiling ("full jitter"; 50 ms base for transient errors, 1 s for
//! throttles, 20 s cap), and a retry budget shared by all of a bucket's
//! requests, so that a store that is down is not hammered.
//!
//! Written here rather than taken from a crate: the delay sequence is the
//! small part (backon and others have it), and what matters is S3's
//! classification of errors, the budget, and the recovery of conditional
//! writes whose answer was lost (`bucket.rs`), none of which they cover.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::error::S3Error;

/// Attempts per request, the first included.
pub(super) const MAX_ATTEMPTS: u32 = 3;
const TRANSIENT_BASE: Duration = Duration::from_millis(50);
const THROTTLE_BASE: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The budget's size and its prices, AWS's: a retry costs 5 tokens (10
/// after a timeout), a success puts back what its retry took, or 1.
const BUDGET: u32 = 500;
const RETRY_COST: u32 = 5;
const TIMEOUT_COST: u32 = 10;
const SUCCESS_REFILL: u32 = 1;

/// Why a failed request may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retryable {
    /// The store asked for fewer requests (429, `SlowDown`, ...).
    Throttle,
    /// The request timed out.
    Timeout,
    /// No answer, or a server error.
    Transient,
}

/// The error codes AWS's SDKs count as throttling.
const THROTTLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
];

/// Whether, and why, `error` may go away if the request is sent again.
/// Never a 412: a condition that failed fails again.
pub(super) fn retryable(error: &S3Error) -> Option<Retryable> {
    match error {
        S3Error::Transport(e) if e.is_timeout() => Some(Retryable::Timeout),
        S3Error::Transport(_) => Some(Retryable::Transient),
        S3Error::Status { status, code, .. } => {
            if *status == 429 || THROTTLE_CODES.contains(&code.as_str()) {
                Some(Retryable::Throttle)
            } else if matches!(status, 500 | 502 | 503 | 504)
                || matches!(code.as_str(), "InternalError" | "RequestTimeout" | "ConditionalRequestConflict")
            {
                Some(Retryable::Transient)
            } else {
                None
            }
        }
        S3Error::Protocol(_) | S3Error::Credentials(_) => None,
    }
}

/// The delay before retry `retry` (1 for the first) of a request that
/// failed for `why`, given `unit`, a number drawn in `[0, 1)`.
pub(super) fn delay(why: Retryable, retry: u32, unit: f64) -> Duration {
    let base = if why == Retryable::Throttle { THROTTLE_BASE } else { TRANSIENT_BASE };
    let ceiling = base.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` from the kernel; jitter needs no more.
pub(super) fn unit() -> f64 {
    crate::random::random_hex(4)
        .ok()
        .and_then(|hex| u32::from_str_radix(&hex, 16).ok())
        .map_or(0.5, |n| f64::from(n) / (f64::from(u32::MAX) + 1.0))
}

/// The retry budget of one bucket's requests.
#[derive(Debug)]
pub(super) struct Budget {
    tokens: AtomicU32,
}

impl Default for Budget {
    fn default() -> Self {
        Self { tokens: AtomicU32::new(BUDGET) }
    }
}

impl Budget {
    /// Takes the price of a retry after `why`; `None` if the budget cannot
    /// pay it (the request then fails with its error).
    pub(super) fn take(&self, why: Retryable) -> Option<u32> {
        let cost = if why == Retryable::Timeout { TIMEOUT_COST } else { RETRY_COST };
        self.tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(cost)).ok()?;
        Some(cost)
    }

    /// A request succeeded: `held` is what its last retry took (0 if it
    /// needed none).
    pub(super) fn succeeded(&self, held: u32) {
        let refill = if held == 0 { SUCCESS_REFILL } else { held };
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some((t + refill).min(BUDGET)));
    }

    #[cfg(test)]
    fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str) -> S3Error {
        S3Error::Status { status, code: code.into(), message: String::new() }
    }

    #[test]
    fn classifies_like_the_standard_mode() {
        assert_eq!(retryable(&status(503, "SlowDown")), Some(Retryable::Throttle));
        assert_eq!(retryable(&status(429, "TooManyRequests")), Some(Retryable::Throttle));
        // A throttle or an error inside a 200 answer (a copy, a completion).
        assert_eq!(retryable(&status(200, "SlowDown")), Some(Retryable::Throttle));
        assert_eq!(retryable(&status(200, "InternalError")), Some(Retryable::Transient));
        for s in [500, 502, 503, 504] {
            assert_eq!(retryable(&status(s, "Whatever")), Some(Retryable::Transient), "{s}");
        }
        assert_eq!(retryable(&status(400, "RequestTimeout")), Some(Retryable::Transient));
        assert_eq!(retryable(&status(409, "ConditionalRequestConflict")), Some(Retryable::Transient));
        for (s, code) in
            [(412, "PreconditionFailed"), (404, "NoSuchKey"), (403, "AccessDenied"), (400, "BadDigest")]
        {
            assert_eq!(retryable(&status(s, code)), None, "{s} {code}");
        }
        assert_eq!(retryable(&S3Error::Protocol("?".into())), None);
    }

    #[test]
    fn delays_are_full_jitter_under_a_doubling_ceiling() {
        assert_eq!(delay(Retryable::Transient, 1, 0.0), Duration::ZERO);
        assert_eq!(delay(Retryable::Transient, 1, 1.0), Duration::from_millis(50));
        assert_eq!(delay(Retryable::Transient, 2, 1.0), Duration::from_millis(100));
        assert_eq!(delay(Retryable::Timeout, 2, 0.5), Duration::from_millis(50));
        assert_eq!(delay(Retryable::Throttle, 1, 1.0), Duration::from_secs(1));
        assert_eq!(delay(Retryable::Throttle, 2, 0.5), Duration::from_secs(1));
        assert_eq!(delay(Retryable::Throttle, 9, 1.0), MAX_BACKOFF);
        assert_eq!(delay(Retryable::Throttle, u32::MAX, 1.0), MAX_BACKOFF);
        for _ in 0..100 {
            let u = unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn the_budget_runs_out_and_refills() {
        let budget = Budget::default();
        let mut retries = 0;
        while budget.take(Retryable::Transient).is_some() {
            retries += 1;
        }
        assert_eq!(retries, BUDGET / RETRY_COST, "a dead store gets this many retries, then none");
        assert_eq!(budget.take(Retryable::Timeout), None);
        budget.succeeded(0);
        assert_eq!(budget.tokens(), 1);
        budget.succeeded(RETRY_COST);
        assert_eq!(budget.tokens(), 1 + RETRY_COST);
        for _ in 0..1000 {
            budget.succeeded(0);
        }
        assert_eq!(budget.tokens(), BUDGET, "never more than the budget");
    }
}
