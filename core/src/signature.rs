//! A file's signature: its header and one digest per block, in block order.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::digest::Digest;
use crate::error::SignatureError;
use crate::hash::HashAlgorithm;
use crate::layout::BlockLayout;

/// What a signature describes: the algorithm, block size and file size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignatureHeader {
    algorithm: HashAlgorithm,
    layout: BlockLayout,
}

impl SignatureHeader {
    /// A header for a file of `file_size` bytes hashed in `block_size` blocks.
    pub fn new(algorithm: HashAlgorithm, block_size: u32, file_size: u64) -> Result<Self, SignatureError> {
        Ok(Self { algorithm, layout: BlockLayout::new(file_size, block_size)? })
    }

    /// The block hash algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.layout.block_size()
    }

    /// The file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.layout.file_size()
    }

    /// How the file splits into blocks.
    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// The number of blocks, and so of digests in a complete signature.
    pub fn block_count(&self) -> u64 {
        self.layout.block_count()
    }
}

/// A header plus the digests of the file's blocks, in block order.
///
/// A signature may be filled a digest at a time ([`Signature::push_digest`]),
/// for example from threads hashing blocks in parallel; it is *complete* once
/// it has a digest for every block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    header: SignatureHeader,
    /// The digests back to back, `algorithm.digest_len()` bytes each.
    digests: Vec<u8>,
}

impl Signature {
    /// An empty signature for `header`, to be filled with [`push_digest`](Self::push_digest).
    pub fn new(header: SignatureHeader) -> Self {
        Self { header, digests: Vec::new() }
    }

    /// A signature from its header and its digests back to back.
    pub fn from_parts(header: SignatureHeader, digests: Vec<u8>) -> Result<Self, SignatureError> {
        let digest_len = header.algorithm.digest_len();
        if digests.len() % digest_len != 0 {
            return Err(SignatureError::DigestLength {
                expected: digest_len,
                actual: digests.len() % digest_len,
            });
        }
        if (digests.len() / digest_len) as u64 > header.block_count() {
            return Err(SignatureError::TooManyDigests { block_count: header.block_count() });
        }
        Ok(Self { header, digests })
    }

    /// Reserves room for the remaining digests (at most 16 MiB up front; the
    /// vector grows past that as digests arrive).
    pub fn reserve_digests(&mut self) {
        let total = usize::try_from(self.header.block_count())
            .unwrap_or(usize::MAX)
            .saturating_mul(self.header.algorithm.digest_len());
        let wanted = total.min(16 << 20).saturating_sub(self.digests.len());
        self.digests.reserve(wanted);
    }

    /// Appends the digest of the next block.
    pub fn push_digest(&mut self, digest: &[u8]) -> Result<(), SignatureError> {
        let expected = self.header.algorithm.digest_len();
        if digest.len() != expected {
            return Err(SignatureError::DigestLength { expected, actual: digest.len() });
        }
        if self.is_complete() {
            return Err(SignatureError::TooManyDigests { block_count: self.header.block_count() });
        }
        self.digests.extend_from_slice(digest);
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> &SignatureHeader {
        &self.header
    }

    /// The block hash algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.header.algorithm
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.header.block_size()
    }

    /// The file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.header.file_size()
    }

    /// How the file splits into blocks.
    pub fn layout(&self) -> BlockLayout {
        self.header.layout
    }

    /// How many digests the signature holds so far.
    pub fn digest_count(&self) -> u64 {
        (self.digests.len() / self.header.algorithm.digest_len()) as u64
    }

    /// Whether every block has its digest.
    pub fn is_complete(&self) -> bool {
        self.digest_count() == self.header.block_count()
    }

    /// The digest of block `index`, if it has one.
    pub fn block_digest(&self, index: u64) -> Option<&[u8]> {
        nth_digest(&self.digests, self.header.algorithm.digest_len(), index)
    }

    /// The digests in block order.
    pub fn digests(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.digests.chunks_exact(self.header.algorithm.digest_len())
    }

    /// The digests back to back, as in the binary encoding.
    pub fn digest_bytes(&self) -> &[u8] {
        &self.digests
    }

    /// A digest of the whole file: the algorithm's hash of this signature's
    /// binary encoding. Two files with equal signatures have equal file
    /// digests, and computing it costs one hash over the digests, not a second
    /// pass over the file.
    pub fn file_digest(&self) -> Digest {
        let mut hasher = self.header.algorithm.hasher();
        hasher.update(&crate::wire::encode_header(&self.header));
        hasher.update(&self.digests);
        hasher.finalize()
    }

    /// pdiffcopy's text form: `"<offset>\t<hexdigest>\n"` for each block, in
    /// block order. [`parse_text`](crate::parse_text) reads it back.
    pub fn to_text(&self) -> String {
        let block_size = u64::from(self.block_size());
        let mut text = String::with_capacity(self.digests.len() * 2 + self.digest_count() as usize * 12);
        for (i, digest) in self.digests().enumerate() {
            let mut buf = [0u8; 2 * crate::MAX_DIGEST_LEN];
            let hex = crate::hex::encode_to_slice(digest, &mut buf);
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{}\t{hex}", i as u64 * block_size);
        }
        text
    }
}

/// Digest `index` of `len`-byte digests stored back to back, if present.
pub(crate) fn nth_digest(digests: &[u8], len: usize, index: u64) -> Option<&[u8]> {
    let start = usize::try_from(index).ok()?.checked_mul(len)?;
    digests.get(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_block;

    fn header(size: u64) -> SignatureHeader {
        SignatureHeader::new(HashAlgorithm::Sha1, 4, size).unwrap()
    }

    #[test]
    fn push_checks_length_and_count() {
        let mut sig = Signature::new(header(5));
        let d = hash_block(HashAlgorithm::Sha1, b"abcd");
        assert_eq!(
            sig.push_digest(&d.as_bytes()[..19]),
            Err(SignatureError::DigestLength { expected: 20, actual: 19 })
        );
        sig.push_digest(d.as_bytes()).unwrap();
        assert!(!sig.is_complete());
        sig.push_digest(d.as_bytes()).unwrap();
        assert!(sig.is_complete());
        assert_eq!(sig.push_digest(d.as_bytes()), Err(SignatureError::TooManyDigests { block_count: 2 }));
        assert_eq!(sig.block_digest(1), Some(d.as_bytes()));
        assert_eq!(sig.block_digest(2), None);
        assert_eq!(sig.block_digest(u64::MAX), None);
    }

    #[test]
    fn from_parts_checks_lengths() {
        assert!(Signature::from_parts(header(5), alloc::vec![0; 40]).is_ok());
        assert!(Signature::from_parts(header(5), alloc::vec![0; 41]).is_err());
        assert!(Signature::from_parts(header(5), alloc::vec![0; 60]).is_err());
    }

    #[test]
    fn text_form_lists_offsets_in_block_order() {
        let mut sig = Signature::new(header(5));
        sig.push_digest(hash_block(HashAlgorithm::Sha1, b"abcd").as_bytes()).unwrap();
        sig.push_digest(hash_block(HashAlgorithm::Sha1, b"e").as_bytes()).unwrap();
        let text = sig.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("0\t"));
        assert!(lines[1].starts_with("4\t58e6b3a414a1e090dfc6029add0f3555ccba127f"));
    }

    #[test]
    fn file_digest_depends_on_header_and_digests() {
        let empty_a = Signature::new(header(0));
        let empty_b = Signature::new(SignatureHeader::new(HashAlgorithm::Sha1, 8, 0).unwrap());
        assert_ne!(empty_a.file_digest(), empty_b.file_digest());
        assert_eq!(empty_a.file_digest(), empty_a.clone().file_digest());
    }
}
