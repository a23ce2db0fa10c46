//! Fault injection for tests: named points in the server's work, and in
//! the client's commit of a local file in place, where a test can pause a
//! request or make the process exit hard.
//!
//! In-process tests set [`ServerConfig::fault_hook`](crate::ServerConfig);
//! tests of a `diffcopy serve` or `diffcopy` process set
//! `DIFFCOPY_FAULT=exit-at:POINT` (POINT as [`FaultPoint::name`] prints it),
//! which exits with status 86 without unwinding, flushing or cleaning up,
//! as a crash would, or `DIFFCOPY_FAULT=pause-at:POINT@FIFO`, which opens
//! the named pipe FIFO there and reads one byte from it: the test's open of
//! its writing end returns once the request has reached POINT, and the
//! request goes on when the test writes (or closes).

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
    /// A commit finished the step it names (`replace-fsynced`,
    /// `journal-committed`, ...; docs/api.md lists them).
    Commit(&'static str),
}

impl FaultPoint {
    /// The point's name for `DIFFCOPY_FAULT`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BlockWrite { .. } => "block-write",
            Self::DataWrite { .. } => "data-write",
            Self::FileHashCheck => "file-hash-check",
            Self::Commit(step) => step,
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

    /// The hook `DIFFCOPY_FAULT` asks for, if any: `exit-at:POINT`, or
    /// `exit-at:POINT#N` for its Nth passage (1 is the first), or
    /// `pause-at:POINT@FIFO` (see the module's docs).
    pub fn from_env() -> Option<Self> {
        let spec = std::env::var("DIFFCOPY_FAULT").ok()?;
        if let Some(rest) = spec.strip_prefix("pause-at:") {
            let (name, fifo) = rest.split_once('@')?;
            let (name, fifo) = (name.to_owned(), std::path::PathBuf::from(fifo));
            tracing::warn!("fault injection: pausing at {name} on {}", fifo.display());
            return Some(Self::new(move |at| {
                if at.name() == name {
                    let mut byte = [0u8; 1];
                    if let Ok(mut pipe) = std::fs::File::open(&fifo) {
                        let _ = std::io::Read::read(&mut pipe, &mut byte);
                    }
                }
            }));
        }
        let point = spec.strip_prefix("exit-at:")?;
        let (name, nth) = match point.split_once('#') {
            Some((name, n)) => (name.to_owned(), n.parse::<u64>().ok()?),
            None => (point.to_owned(), 1),
        };
        tracing::warn!("fault injection: exiting at passage {nth} of {name}");
        let passed = std::sync::atomic::AtomicU64::new(0);
        Some(Self::new(move |at| {
            if at.name() == name && passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
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
