//! Deciding, block by block, what to upload while both signatures still arrive.
//!
//! The local file is hashed in block order and the server streams its
//! signature in block order, both at their own pace. Block `i` is decided as
//! soon as both digests are known (or the server's signature is known to end
//! before it): sent when it differs, by the core's rule (same length and same
//! digest means unchanged). So uploads start long before hashing ends, and
//! the decisions equal `diffcopy_core::diff` on the finished signatures.
//!
//! Pure Rust, no JS: tested natively.

use std::ops::Range;

use diffcopy_core::{BlockLayout, HEADER_LEN, HashAlgorithm, Signature, SignatureHeader, in_runs};

use crate::error::{ErrorCode, WebError};

/// What is known of the server's signature.
#[derive(Debug)]
enum Target {
    /// Bytes of its header so far (the response is still arriving).
    Header(Vec<u8>),
    /// The header and the digests so far; `complete` once the body ended.
    Digests { header: SignatureHeader, digests: Vec<u8>, complete: bool },
    /// The target does not exist.
    Absent,
}

/// The block-by-block upload plan.
#[derive(Debug)]
pub(crate) struct Planner {
    algorithm: HashAlgorithm,
    layout: BlockLayout,
    local: Vec<u8>,
    target: Target,
    next: u64,
    /// Runs of blocks an earlier attempt uploaded, sorted.
    received: Vec<Range<u64>>,
    /// Changed blocks that an earlier attempt uploaded already.
    pub(crate) resumed_blocks: u64,
    /// Changed blocks queued for upload so far, and their bytes.
    pub(crate) queued_blocks: u64,
    pub(crate) queued_bytes: u64,
}

impl Planner {
    /// A plan for a source of `layout`, hashed with `algorithm`; `received`
    /// are runs of blocks the session already has.
    pub(crate) fn new(algorithm: HashAlgorithm, layout: BlockLayout, mut received: Vec<Range<u64>>) -> Self {
        received.sort_unstable_by_key(|run| run.start);
        Self {
            algorithm,
            layout,
            local: Vec::new(),
            target: Target::Header(Vec::new()),
            next: 0,
            received,
            resumed_blocks: 0,
            queued_blocks: 0,
            queued_bytes: 0,
        }
    }

    /// The target does not exist: every block is sent.
    pub(crate) fn target_absent(&mut self) {
        self.target = Target::Absent;
    }

    /// The next bytes of the server's binary signature.
    pub(crate) fn target_bytes(&mut self, mut bytes: &[u8]) -> Result<(), WebError> {
        if let Target::Header(head) = &mut self.target {
            let take = (HEADER_LEN - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if head.len() < HEADER_LEN {
                return Ok(());
            }
            let header = SignatureHeader::decode(head).map_err(|e| bad(format!("{e}")))?;
            if header.algorithm() != self.algorithm || header.block_size() != self.layout.block_size() {
                return Err(bad(format!(
                    "it uses {} in blocks of {} where {} in blocks of {} was asked for",
                    header.algorithm(),
                    header.block_size(),
                    self.algorithm,
                    self.layout.block_size()
                )));
            }
            self.target = Target::Digests { header, digests: Vec::new(), complete: false };
        }
        if let Target::Digests { header, digests, .. } = &mut self.target {
            let room = (header.encoded_len() - HEADER_LEN as u64).saturating_sub(digests.len() as u64);
            if bytes.len() as u64 > room {
                return Err(bad("it is longer than its header says".to_owned()));
            }
            digests.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// The length of the server's whole signature, once its header arrived.
    pub(crate) fn target_len(&self) -> Option<u64> {
        match &self.target {
            Target::Digests { header, .. } => Some(header.encoded_len()),
            _ => None,
        }
    }

    /// The server's signature ended; fails when it is incomplete.
    pub(crate) fn target_end(&mut self) -> Result<(), WebError> {
        match &mut self.target {
            Target::Header(_) => Err(bad("it ended inside its header".to_owned())),
            Target::Digests { header, digests, complete } => {
                if digests.len() as u64 + HEADER_LEN as u64 != header.encoded_len() {
                    return Err(bad("it ended before its last digest".to_owned()));
                }
                *complete = true;
                Ok(())
            }
            Target::Absent => Ok(()),
        }
    }

    /// The digest of the next local block.
    pub(crate) fn local_digest(&mut self, digest: &[u8]) {
        self.local.extend_from_slice(digest);
    }

    /// The digest of local block `index`, once hashed.
    pub(crate) fn local_block_digest(&self, index: u64) -> Option<&[u8]> {
        let len = self.algorithm.digest_len();
        let start = usize::try_from(index).ok()? * len;
        self.local.get(start..start + len)
    }

    /// Decides every block that can be decided now; calls `send(index)` for
    /// each changed block the session lacks, in order.
    pub(crate) fn decide(&mut self, mut send: impl FnMut(u64)) {
        let len = self.algorithm.digest_len();
        let hashed = (self.local.len() / len) as u64;
        while self.next < hashed {
            let i = self.next;
            let unchanged = match &self.target {
                Target::Header(_) => break,
                Target::Absent => false,
                Target::Digests { header, digests, complete } => {
                    let known = (digests.len() / len) as u64;
                    if i < known {
                        let start = i as usize * len;
                        header.layout().block_len(i) == self.layout.block_len(i)
                            && digests[start..start + len] == self.local[start..start + len]
                    } else if *complete {
                        false
                    } else {
                        break;
                    }
                }
            };
            self.next += 1;
            if unchanged {
                continue;
            }
            if in_runs(&self.received, i) {
                self.resumed_blocks += 1;
            } else {
                self.queued_blocks += 1;
                self.queued_bytes += u64::from(self.layout.block_len(i).unwrap_or(0));
                send(i);
            }
        }
    }

    /// Whether every block is decided.
    pub(crate) fn is_done(&self) -> bool {
        self.next == self.layout.block_count()
    }

    /// The server's signature, once complete (`None` for an absent target).
    pub(crate) fn target_signature(&self) -> Result<Option<Signature>, WebError> {
        match &self.target {
            Target::Digests { header, digests, complete: true } => {
                Signature::from_parts(*header, digests.clone()).map(Some).map_err(|e| bad(format!("{e}")))
            }
            Target::Absent => Ok(None),
            _ => Err(bad("it is incomplete".to_owned())),
        }
    }
}

fn bad(detail: String) -> WebError {
    WebError::new(ErrorCode::BadResponse, format!("the server's signature is not usable: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::{SignatureBuilder, diff};

    const B: u32 = 16;

    fn sign(bytes: &[u8]) -> Signature {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, B).unwrap();
        builder.update(bytes);
        builder.finish()
    }

    /// Feeds both signatures interleaved in the given chunk sizes and returns
    /// the blocks sent.
    fn run(
        source: &[u8],
        target: Option<&[u8]>,
        received: Vec<Range<u64>>,
        chunk: usize,
    ) -> (Vec<u64>, Planner) {
        let src = sign(source);
        let mut plan = Planner::new(HashAlgorithm::Sha1, src.layout(), received);
        let mut sent = Vec::new();
        let target_bytes = target.map(|t| sign(t).encode());
        if target_bytes.is_none() {
            plan.target_absent();
        }
        let mut local = src.digests();
        let mut remote = target_bytes.as_deref().unwrap_or(&[]).chunks(chunk);
        loop {
            let l = local.next();
            if let Some(d) = l {
                plan.local_digest(d);
            }
            let r = if target_bytes.is_some() { remote.next() } else { None };
            if let Some(bytes) = r {
                plan.target_bytes(bytes).unwrap();
            }
            plan.decide(|i| sent.push(i));
            if l.is_none() && r.is_none() {
                break;
            }
        }
        if target_bytes.is_some() {
            plan.target_end().unwrap();
        }
        plan.decide(|i| sent.push(i));
        assert!(plan.is_done());
        (sent, plan)
    }

    #[test]
    fn decisions_equal_the_core_diff() {
        let old: Vec<u8> = (0..100u8).collect();
        let mut changed = old.clone();
        changed[20] ^= 1;
        changed[90] ^= 1;
        let cases: [(&[u8], Option<&[u8]>); 6] = [
            (&changed, Some(&old)),
            (&old, Some(&old)),
            (&old[..40], Some(&old)),
            (&old, Some(&old[..40])),
            (&old, None),
            (&[], Some(&old)),
        ];
        for (source, target) in cases {
            let expected = diff(&sign(source), target.map(sign).as_ref()).unwrap();
            for chunk in [1, 7, 28, 1000] {
                let (sent, plan) = run(source, target, Vec::new(), chunk);
                assert_eq!(sent, expected.blocks(), "chunk {chunk}");
                assert_eq!(plan.queued_bytes, expected.bytes_to_send());
                assert_eq!(plan.target_signature().unwrap(), target.map(sign));
            }
        }
    }

    #[test]
    fn received_blocks_are_not_sent_again() {
        let data: Vec<u8> = (0..100u8).collect();
        let (sent, plan) = run(&data, None, vec![3..5, 0..1], 5);
        assert_eq!(sent, [1, 2, 5, 6]);
        assert_eq!(plan.resumed_blocks, 3);
    }

    #[test]
    fn a_signature_of_another_shape_is_refused() {
        let mut plan = Planner::new(HashAlgorithm::Sha1, BlockLayout::new(100, 32).unwrap(), Vec::new());
        let err = plan.target_bytes(&sign(b"abc").encode()).unwrap_err();
        assert_eq!(err.code(), "bad_response");
        let mut plan = Planner::new(HashAlgorithm::Sha1, BlockLayout::new(100, B).unwrap(), Vec::new());
        let encoded = sign(&[1; 40]).encode();
        plan.target_bytes(&encoded[..encoded.len() - 1]).unwrap();
        assert!(plan.target_end().is_err());
        let mut long = encoded.clone();
        long.push(0);
        let mut plan = Planner::new(HashAlgorithm::Sha1, BlockLayout::new(100, B).unwrap(), Vec::new());
        assert!(plan.target_bytes(&long).is_err());
    }
}
