//! What a sync did, for the one-line summary and `--json`.

use diffcopy_core::Delta;
use serde::Serialize;

use super::rebuild::Written;

/// The outcome of one sync.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `upload`, `download` or `copy`.
    pub direction: &'static str,
    /// `v2`, `v1`, `pdiffcopy`, or `local` for a local copy.
    pub protocol: &'static str,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Blocks in the source.
    pub total_blocks: u64,
    /// Blocks sent (or, in a dry run, that would be).
    pub blocks_sent: u64,
    /// Source size in bytes.
    pub total_bytes: u64,
    /// Bytes of the file's content sent (or that would be): the changed
    /// blocks (v1, pdiffcopy), the literal data before compression (v2).
    pub bytes_sent: u64,
    /// Every request and response body of the sync: signatures and hashes,
    /// the content as it travelled (compressed where that paid).
    pub payload_bytes: u64,
    /// Share of the source already in place, percent.
    pub similarity_percent: f64,
    /// Wall time.
    pub seconds: f64,
    /// How a download or local copy wrote the local target: `clone`,
    /// `in_place` or `new_file` (docs/cli.md); absent when it wrote nothing,
    /// and for an upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_as: Option<&'static str>,
    /// The bytes of file data the client wrote to its disk meanwhile, as the
    /// kernel counts them (`write_bytes`); absent where `written_as` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_bytes_written: Option<u64>,
}

impl Summary {
    /// What sending `delta` does: its blocks and bytes, its similarity; the
    /// time is filled in by the caller.
    pub(crate) fn of(direction: &'static str, protocol: &'static str, dry_run: bool, delta: &Delta) -> Self {
        Self {
            direction,
            protocol,
            dry_run,
            total_blocks: delta.total_blocks(),
            blocks_sent: delta.blocks_to_send(),
            total_bytes: delta.layout().file_size(),
            bytes_sent: delta.bytes_to_send(),
            payload_bytes: delta.bytes_to_send(),
            similarity_percent: delta.similarity_percent(),
            seconds: 0.0,
            written_as: None,
            disk_bytes_written: None,
        }
    }

    /// The same, with how the local target was written.
    pub(super) fn written(self, written: Written) -> Self {
        Self { written_as: Some(written.way), disk_bytes_written: written.disk_bytes, ..self }
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let verb = if self.dry_run { "would send" } else { "sent" };
        let rate = if self.seconds > 0.0 { self.total_bytes as f64 / self.seconds } else { 0.0 };
        if self.protocol == "v2" {
            return format!(
                "{} {verb} {} of {} ({} in all, protocol v2); {:.1}% already in place; {:.2} s; {}/s",
                self.direction,
                human(self.bytes_sent as f64),
                human(self.total_bytes as f64),
                human(self.payload_bytes as f64),
                self.similarity_percent,
                self.seconds,
                human(rate),
            );
        }
        format!(
            "{} {verb} {} of {} blocks ({} of {}); {:.1}% already in place; {:.2} s; {}/s",
            self.direction,
            self.blocks_sent,
            self.total_blocks,
            human(self.bytes_sent as f64),
            human(self.total_bytes as f64),
            self.similarity_percent,
            self.seconds,
            human(rate),
        )
    }
}

/// Bytes in binary units: `12.0 MiB`.
pub(super) fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} {}", UNITS[0]) } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0.0), "0 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(12.0 * 1048576.0), "12.0 MiB");
    }
}
