//! Fault injection for tests: named points in the server's work where a
//! test can pause a request or make the process exit hard.
//!
//! In-process tests set [`ServerConfig::fault_hook`](super::ServerConfig);
//! tests of a `diffcopy serve` process set `DIFFCOPY_FAULT=exit-at:POINT`
//! (POINT as [`FaultPoint::name`] prints it), which exits with status 86
//! without unwinding, flushing or cleaning up, as a crash would.

use std::fmt;
use std::sync::Arc;

/// A step of the server's work where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// An upload's block `index` was admitted and is about to be written.
    BlockWrite {
        /// The block.
        index: u64,
    },
    /// A protocol v2 upload's literal data at `offset` is about to be written.
    DataWrite {
        /// Where it goes in the new file.
        offset: u64,
    },
    /// A protocol v2 commit has built the new file and is about to check its hash.
    FileHashCheck,
}

impl FaultPoint {
    /// The point's name for `DIFFCOPY_FAULT`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BlockWrite { .. } => "block-write",
            Self::DataWrite { .. } => "data-write",
            Self::FileHashCheck => "file-hash-check",
        }
    }
}

/// Called at every [`FaultPoint`]; it may block (it runs on a blocking
/// thread) or end the process.
#[derive(Clone)]
pub struct FaultHook(Arc<dyn Fn(FaultPoint) + Send + Sync>);

impl FaultHook {
    /// A hook that calls `f`.
    pub fn new(f: impl Fn(FaultPoint) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The hook `DIFFCOPY_FAULT` asks for, if any: `exit-at:POINT`.
    pub fn from_env() -> Option<Self> {
        let spec = std::env::var("DIFFCOPY_FAULT").ok()?;
        let point = spec.strip_prefix("exit-at:")?.to_owned();
        tracing::warn!("fault injection: exiting at {point}");
        Some(Self::new(move |at| {
            if at.name() == point {
                std::process::exit(86);
            }
        }))
    }

    pub(crate) fn at(hook: Option<&Self>, point: FaultPoint) {
        if let Some(hook) = hook {
            (hook.0)(point);
        }
    }
}

impl fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultHook")
    }
}
