//! Progress bars on a terminal; nothing otherwise (the summary line remains).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes one bar per phase, visible only when stderr is a terminal.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Bars shown when `visible` (a terminal, not quiet).
    pub fn new(visible: bool) -> Self {
        Self { visible }
    }

    /// A counter with a message (a tree's files, and the one last begun).
    pub fn counter(&self, label: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>10} {pos} done, {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar
    }

    /// A byte-counting bar for a phase such as "hashing" or "uploading".
    pub fn bar(&self, label: &str, total: u64) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar
    }
}
