//! The compact binary signature encoding.
//!
//! ```text
//! offset size field
//!      0    4 magic "DCSG"
//!      4    1 format version (1)
//!      5    1 algorithm id (1 sha1, 2 sha256, 3 blake3)
//!      6    2 flags, little endian (0; reserved for later refinements
//!             such as sub-block digests)
//!      8    4 block size, little endian
//!     12    8 file size, little endian
//!     20    8 block count, little endian (must equal ceil(file size / block size))
//!     28    … block count × digest length bytes of digests, in block order
//! ```
//!
//! # Security
//!
//! Decoding checks every field and length before it allocates, and allocates
//! no more than the input's own length: a hostile header cannot make it
//! reserve memory for a huge block count.

use alloc::vec::Vec;

use crate::error::DecodeError;
use crate::hash::HashAlgorithm;
use crate::signature::{Signature, SignatureHeader};

/// The first four bytes of an encoded signature.
pub const MAGIC: [u8; 4] = *b"DCSG";
/// The format version this crate writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// The length of the encoded header, before the digests.
pub const HEADER_LEN: usize = 28;

pub(crate) fn encode_header(header: &SignatureHeader) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..4].copy_from_slice(&MAGIC);
    out[4] = WIRE_VERSION;
    out[5] = header.algorithm().wire_id();
    out[6..8].copy_from_slice(&0u16.to_le_bytes());
    out[8..12].copy_from_slice(&header.block_size().to_le_bytes());
    out[12..20].copy_from_slice(&header.file_size().to_le_bytes());
    out[20..28].copy_from_slice(&header.block_count().to_le_bytes());
    out
}

impl SignatureHeader {
    /// The encoded header: what a streamed signature sends before its digests.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        encode_header(self)
    }

    /// Decodes a header from the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            if bytes.len() >= 4 && bytes[..4] != MAGIC {
                return Err(DecodeError::BadMagic);
            }
            return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: bytes.len() as u64 });
        };
        if bytes[0..4] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if bytes[4] != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion { version: bytes[4] });
        }
        let algorithm =
            HashAlgorithm::from_wire_id(bytes[5]).ok_or(DecodeError::UnknownAlgorithm { id: bytes[5] })?;
        let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
        if flags != 0 {
            return Err(DecodeError::UnknownFlags { flags });
        }
        let block_size = u32::from_le_bytes(le_array(&bytes[8..12]));
        let file_size = u64::from_le_bytes(le_array(&bytes[12..20]));
        let declared = u64::from_le_bytes(le_array(&bytes[20..28]));
        let header = SignatureHeader::new(algorithm, block_size, file_size)
            .map_err(|_| DecodeError::InvalidBlockSize { block_size })?;
        if declared != header.block_count() {
            return Err(DecodeError::BlockCountMismatch { declared, expected: header.block_count() });
        }
        Ok(header)
    }

    /// The length of the complete encoding of a signature with this header.
    pub fn encoded_len(&self) -> u64 {
        (HEADER_LEN as u64)
            .saturating_add(self.block_count().saturating_mul(self.algorithm().digest_len() as u64))
    }
}

impl Signature {
    /// The binary encoding. Only complete signatures should be sent; an
    /// incomplete one encodes but does not decode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.digest_bytes().len());
        out.extend_from_slice(&encode_header(self.header()));
        out.extend_from_slice(self.digest_bytes());
        out
    }

    /// Decodes a complete signature, checking every length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = SignatureHeader::decode(bytes)?;
        let needed = header.encoded_len();
        let available = bytes.len() as u64;
        if available < needed {
            return Err(DecodeError::Truncated { needed, available });
        }
        if available > needed {
            return Err(DecodeError::TrailingBytes { extra: available - needed });
        }
        // `needed == bytes.len()`, so the digests fit in memory already.
        let digests = bytes[HEADER_LEN..].to_vec();
        match Signature::from_parts(header, digests) {
            Ok(signature) => Ok(signature),
            Err(_) => unreachable!("lengths were checked against the header"),
        }
    }
}

fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignatureBuilder;

    fn sample() -> Signature {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, 4096).unwrap();
        builder.update(&[5u8; 3 * 4096 + 17]);
        builder.finish()
    }

    #[test]
    fn round_trip() {
        let sig = sample();
        let bytes = sig.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 4 * 20);
        assert_eq!(Signature::decode(&bytes), Ok(sig));
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Signature::decode(&bytes[..len]).unwrap_err();
            assert!(matches!(err, DecodeError::Truncated { .. }), "len {len}: {err:?}");
        }
    }

    #[test]
    fn corrupt_headers_are_refused() {
        let good = sample().encode();
        let with = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            Signature::decode(&bytes).unwrap_err()
        };
        assert_eq!(with(0, b"X"), DecodeError::BadMagic);
        assert_eq!(with(4, &[2]), DecodeError::UnsupportedVersion { version: 2 });
        assert_eq!(with(5, &[9]), DecodeError::UnknownAlgorithm { id: 9 });
        assert_eq!(with(6, &[1]), DecodeError::UnknownFlags { flags: 1 });
        assert_eq!(with(8, &[0, 0, 0, 0]), DecodeError::InvalidBlockSize { block_size: 0 });
        assert_eq!(
            with(20, &u64::MAX.to_le_bytes()),
            DecodeError::BlockCountMismatch { declared: u64::MAX, expected: 4 }
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Signature::decode(&long), Err(DecodeError::TrailingBytes { extra: 1 }));
    }

    #[test]
    fn a_huge_declared_file_does_not_allocate() {
        let header = SignatureHeader::new(HashAlgorithm::Blake3, 1, u64::MAX).unwrap();
        let bytes = header.encode();
        assert!(matches!(Signature::decode(&bytes), Err(DecodeError::Truncated { .. })));
    }
}
