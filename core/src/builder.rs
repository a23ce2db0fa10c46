//! Streaming signature construction: bytes in, one digest per block out.

use alloc::vec::Vec;

use crate::error::SignatureError;
use crate::hash::{HashAlgorithm, Hasher};
use crate::layout::check_block_size;
use crate::signature::{Signature, SignatureHeader, nth_digest};

/// Builds a [`Signature`] from a file's bytes fed in chunks of any size.
///
/// The result is the same however the bytes are chunked, and equals hashing
/// each block on its own with [`hash_block`](crate::hash_block).
#[derive(Clone, Debug)]
pub struct SignatureBuilder {
    algorithm: HashAlgorithm,
    block_size: u32,
    hasher: Hasher,
    /// Bytes of the current, unfinished block already fed to `hasher`.
    in_block: u32,
    total: u64,
    digests: Vec<u8>,
}

impl SignatureBuilder {
    /// A builder for blocks of `block_size` bytes hashed with `algorithm`.
    pub fn new(algorithm: HashAlgorithm, block_size: u32) -> Result<Self, SignatureError> {
        check_block_size(block_size)?;
        Ok(Self {
            algorithm,
            block_size,
            hasher: algorithm.hasher(),
            in_block: 0,
            total: 0,
            digests: Vec::new(),
        })
    }

    /// Reserves room for the digests of a file of `file_size` bytes.
    pub fn reserve_for(&mut self, file_size: u64) {
        let blocks = file_size.div_ceil(u64::from(self.block_size));
        let bytes = usize::try_from(blocks).unwrap_or(usize::MAX).saturating_mul(self.algorithm.digest_len());
        self.digests.reserve(bytes.saturating_sub(self.digests.len()));
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = (self.block_size - self.in_block) as usize;
            let (head, rest) = bytes.split_at(room.min(bytes.len()));
            self.hasher.update(head);
            self.in_block += head.len() as u32;
            if self.in_block == self.block_size {
                self.digests.extend_from_slice(self.hasher.finalize_reset().as_bytes());
                self.in_block = 0;
            }
            bytes = rest;
        }
    }

    /// How many bytes were fed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.total
    }

    /// How many blocks are complete and have their digest.
    pub fn completed_blocks(&self) -> u64 {
        (self.digests.len() / self.algorithm.digest_len()) as u64
    }

    /// The digest of block `index`, once that block is complete.
    pub fn block_digest(&self, index: u64) -> Option<&[u8]> {
        nth_digest(&self.digests, self.algorithm.digest_len(), index)
    }

    /// Ends the file: the last, possibly short, block gets its digest.
    pub fn finish(mut self) -> Signature {
        if self.in_block > 0 {
            self.digests.extend_from_slice(self.hasher.finalize_reset().as_bytes());
        }
        let header = match SignatureHeader::new(self.algorithm, self.block_size, self.total) {
            Ok(header) => header,
            Err(_) => unreachable!("the block size was checked in new()"),
        };
        match Signature::from_parts(header, self.digests) {
            Ok(signature) => signature,
            Err(_) => unreachable!("one digest per block by construction"),
        }
    }
}

#[cfg(feature = "std")]
impl std::io::Write for SignatureBuilder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "std")]
impl Signature {
    /// Reads `reader` to its end and returns its signature.
    pub fn from_reader(
        algorithm: HashAlgorithm,
        block_size: u32,
        mut reader: impl std::io::Read,
    ) -> std::io::Result<Self> {
        let mut builder = SignatureBuilder::new(algorithm, block_size)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        std::io::copy(&mut reader, &mut builder)?;
        Ok(builder.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_block;

    #[test]
    fn edge_sizes_match_per_block_hashing() {
        const B: u32 = 64;
        let b = B as usize;
        for size in [0, 1, b - 1, b, b + 1, 3 * b + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            for algorithm in HashAlgorithm::ALL {
                let mut builder = SignatureBuilder::new(algorithm, B).unwrap();
                builder.update(&data);
                let sig = builder.finish();
                assert_eq!(sig.file_size(), size as u64);
                assert_eq!(sig.digest_count(), size.div_ceil(b) as u64);
                assert!(sig.is_complete());
                for (i, chunk) in data.chunks(b).enumerate() {
                    assert_eq!(sig.block_digest(i as u64), Some(hash_block(algorithm, chunk).as_bytes()));
                }
            }
        }
    }

    #[test]
    fn completed_blocks_grow_as_bytes_arrive() {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, 4).unwrap();
        builder.update(b"abc");
        assert_eq!(builder.completed_blocks(), 0);
        builder.update(b"de");
        assert_eq!(builder.completed_blocks(), 1);
        assert_eq!(builder.block_digest(0), Some(hash_block(HashAlgorithm::Sha1, b"abcd").as_bytes()));
        assert_eq!(builder.bytes_hashed(), 5);
    }

    #[test]
    fn zero_block_size_is_refused() {
        assert_eq!(
            SignatureBuilder::new(HashAlgorithm::Sha1, 0).unwrap_err(),
            SignatureError::InvalidBlockSize { block_size: 0 }
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_reader_equals_update() {
        let data = [9u8; 1000];
        let sig = Signature::from_reader(HashAlgorithm::Blake3, 100, &data[..]).unwrap();
        let mut builder = SignatureBuilder::new(HashAlgorithm::Blake3, 100).unwrap();
        builder.update(&data);
        assert_eq!(sig, builder.finish());
    }
}
