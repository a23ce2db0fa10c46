//! A block or file digest held inline, without the heap.

use core::fmt;

use crate::error::HexError;
use crate::hex;

/// The longest digest any supported algorithm produces (SHA-256, BLAKE3).
pub const MAX_DIGEST_LEN: usize = 32;

/// A digest of up to [`MAX_DIGEST_LEN`] bytes. `Display` prints lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    len: u8,
    bytes: [u8; MAX_DIGEST_LEN],
}

impl Digest {
    /// A digest holding a copy of `bytes`, or `None` if it is longer than
    /// [`MAX_DIGEST_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut digest = Self { len: u8::try_from(bytes.len()).ok()?, bytes: [0; MAX_DIGEST_LEN] };
        digest.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(digest)
    }

    /// Parses `expected_len` bytes from hex (either case).
    pub fn from_hex(text: &str, expected_len: usize) -> Result<Self, HexError> {
        if expected_len > MAX_DIGEST_LEN || text.len() != 2 * expected_len {
            return Err(HexError::InvalidLength { expected: 2 * expected_len, actual: text.len() });
        }
        let mut bytes = [0; MAX_DIGEST_LEN];
        hex::decode_to_slice(text.as_bytes(), &mut bytes[..expected_len])?;
        Ok(Self { len: expected_len as u8, bytes })
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The digest's length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the digest has no bytes (never true for a computed digest).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 2 * MAX_DIGEST_LEN];
        let text = hex::encode_to_slice(self.as_bytes(), &mut buf);
        f.write_str(text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip() {
        let d = Digest::from_slice(&[0x00, 0xab, 0xFF]).unwrap();
        assert_eq!(d.to_string(), "00abff");
        assert_eq!(Digest::from_hex("00ABff", 3).unwrap(), d);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(Digest::from_slice(&[0; 33]).is_none());
        assert_eq!(Digest::from_hex("abc", 2), Err(HexError::InvalidLength { expected: 4, actual: 3 }));
        assert!(Digest::from_hex(&"00".repeat(33), 33).is_err());
    }
}
