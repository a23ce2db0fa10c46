//! Benchmark mode (`-B COUNT`), as pdiffcopy's: mutate a growing share of the
//! local target, resync, and tabulate the bytes sent and the time taken, with
//! rsync's time beside it when an rsync daemon is named.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::error::ClientError;
use super::location::Location;
use super::options::SyncOptions;
use super::summary::human;
use super::sync::sync;

/// Where rsync's copy of the source is: `rsync://SERVER/MODULE/<source
/// path relative to ROOT>`.
#[derive(Clone, Debug)]
pub struct RsyncPeer {
    /// Host (and `:port`) of the rsync daemon.
    pub server: String,
    /// The daemon's module.
    pub module: String,
    /// The local directory the module serves.
    pub root: PathBuf,
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct BenchmarkRow {
    /// Share of the target mutated, percent.
    pub delta_percent: f64,
    /// Block bytes diffcopy sent.
    pub bytes_sent: u64,
    /// diffcopy's wall time.
    pub seconds: f64,
    /// rsync's wall time, when a peer was given.
    pub rsync_seconds: Option<f64>,
}

/// Runs `count` rounds against a local target and returns the rows.
pub async fn run_benchmark(
    options: &SyncOptions,
    count: u32,
    rsync: Option<&RsyncPeer>,
) -> Result<Vec<BenchmarkRow>, ClientError> {
    let Location::Local(target) = &options.target else {
        return Err(ClientError::Usage("benchmark mode needs a local TARGET to mutate".into()));
    };
    let rsync_source = match rsync {
        Some(peer) => Some(rsync_url(peer, &options.source)?),
        None => None,
    };
    sync(options).await?; // level the playing field
    let mut rows = Vec::new();
    for round in 1..=count {
        let percent = 100.0 / f64::from(count) * f64::from(round);
        mutate(target, percent)?;
        let started = Instant::now();
        let summary = sync(options).await?;
        let seconds = started.elapsed().as_secs_f64();
        let rsync_seconds = match &rsync_source {
            Some(url) => {
                mutate(target, percent)?;
                Some(run_rsync(url, target)?)
            }
            None => None,
        };
        rows.push(BenchmarkRow {
            delta_percent: percent,
            bytes_sent: summary.bytes_sent,
            seconds,
            rsync_seconds,
        });
    }
    Ok(rows)
}

/// The rsync URL of the source. A local source must lie below the peer's
/// root; a remote source's path is taken as relative to the module (the
/// module serves the diffcopy server's root).
fn rsync_url(peer: &RsyncPeer, source: &Location) -> Result<String, ClientError> {
    let relative = match source {
        Location::Local(path) => {
            let absolute = super::options::absolute(path);
            absolute.strip_prefix(&peer.root).map(Path::to_path_buf).map_err(|_| {
                ClientError::Usage(format!(
                    "{} is not below the rsync root {}",
                    absolute.display(),
                    peer.root.display()
                ))
            })?
        }
        Location::Remote { path, .. } => PathBuf::from(path),
    };
    Ok(format!("rsync://{}/{}/{}", peer.server, peer.module, relative.display()))
}

/// Overwrites the first `percent` of the file with zeros, in 1 MiB blocks
/// for files over 1 GiB and 256 KiB blocks otherwise (pdiffcopy's pattern).
fn mutate(path: &Path, percent: f64) -> Result<(), ClientError> {
    let file = File::options().write(true).open(path).map_err(|e| ClientError::io(path.display(), e))?;
    let size = file.metadata().map_err(|e| ClientError::io(path.display(), e))?.len();
    let block: u64 = if size > 1 << 30 { 1 << 20 } else { 256 << 10 };
    let count = (size as f64 * percent / 100.0 / block as f64) as u64;
    let zeros = vec![0u8; block as usize];
    for i in 0..count {
        file.write_all_at(&zeros, i * block).map_err(|e| ClientError::io(path.display(), e))?;
    }
    Ok(())
}

fn run_rsync(url: &str, target: &Path) -> Result<f64, ClientError> {
    let started = Instant::now();
    let status = Command::new("rsync")
        .arg("--inplace")
        .arg(url)
        .arg(target)
        .status()
        .map_err(|e| ClientError::io("running rsync", e))?;
    if !status.success() {
        return Err(ClientError::Local(format!("rsync {url} failed: {status}")));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The Markdown table pdiffcopy prints, plus rsync's column when measured.
pub fn table(rows: &[BenchmarkRow]) -> String {
    let with_rsync = rows.iter().any(|r| r.rsync_seconds.is_some());
    let mut out = String::from("| Delta size | Data transferred | Runtime of diffcopy |");
    out.push_str(if with_rsync {
        " Runtime of rsync |\n|---:|---:|---:|---:|\n"
    } else {
        "\n|---:|---:|---:|\n"
    });
    for row in rows {
        out.push_str(&format!(
            "| {:.0}% | {} | {:.2} s |",
            row.delta_percent,
            human(row.bytes_sent as f64),
            row.seconds
        ));
        if let Some(r) = row.rsync_seconds {
            out.push_str(&format!(" {r:.2} s |"));
        }
        out.push('\n');
    }
    out
}
