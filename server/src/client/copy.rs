//! Local copies: both files hashed at once, changed runs copied from the
//! source in the kernel into a new version beside the target.

use std::path::Path;
use std::sync::Arc;

use super::error::ClientError;
use super::local::{open_existing, sign_file};
use super::options::{SyncOptions, nothing_to_do, open_source, plan, sign_target};
use super::rebuild::Rebuild;
use super::summary::Summary;

/// Copies the local `source` over the local `target`.
pub(super) async fn copy_local(
    options: &SyncOptions,
    source: &Path,
    target: &Path,
) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let existing = open_existing(target)?.map(Arc::new);
    let (source_sig, mine) = tokio::join!(
        sign_file(file.clone(), options.algorithm, options.block_size, &options.progress, "hashing"),
        sign_target(options, existing.clone())
    );
    let (source_sig, mine) = (source_sig?, mine?);
    let delta = plan(options, &source_sig, mine.as_ref())?;
    let done = Summary::of("copy", "local", options.dry_run, &delta);
    if nothing_to_do(options, &delta) {
        return Ok(done);
    }
    let kept = delta.unchanged_byte_runs().into_iter().map(|r| (r.start, r)).collect();
    let rebuild = Rebuild::start(target, source_sig.file_size(), existing, kept).await?;
    // No bytes pass through this process: the kernel copies both kinds of run.
    let bar = options.progress.bar("copying", delta.bytes_to_send());
    rebuild.copy_from(&file, delta.layout().byte_runs(delta.blocks().iter().copied())).await?;
    bar.inc(delta.bytes_to_send());
    bar.finish_and_clear();
    Ok(done.written(rebuild.finish().await?))
}
