//! The block hash algorithms and an incremental hasher over them.

use core::fmt;
use core::str::FromStr;

use sha1::Digest as _;

use crate::digest::Digest;
use crate::error::ParseAlgorithmError;

/// A block hash algorithm. SHA-1 is the default, as in pdiffcopy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (20 bytes); uses SHA-NI where the CPU has it.
    #[default]
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// BLAKE3 (32 bytes).
    Blake3,
}

impl HashAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 3] = [Self::Sha1, Self::Sha256, Self::Blake3];

    /// The name used on the command line, in URLs and by pdiffcopy's `method`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Blake3 => "blake3",
        }
    }

    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 | Self::Blake3 => 32,
        }
    }

    /// The algorithm's id in the binary signature encoding.
    pub fn wire_id(self) -> u8 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Blake3 => 3,
        }
    }

    /// The algorithm with the given binary id.
    pub fn from_wire_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.wire_id() == id)
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Self::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Self::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Self::Blake3 => Hasher::Blake3(blake3::Hasher::new()),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = ParseAlgorithmError;

    /// Parses a name case-insensitively; `sha-1` and `sha-256` are accepted too.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let known = |n: &str| name.eq_ignore_ascii_case(n);
        if known("sha1") || known("sha-1") {
            Ok(Self::Sha1)
        } else if known("sha256") || known("sha-256") {
            Ok(Self::Sha256)
        } else if known("blake3") {
            Ok(Self::Blake3)
        } else {
            Err(ParseAlgorithmError::new(name))
        }
    }
}

/// An incremental hasher for one of the [`HashAlgorithm`]s.
// BLAKE3's state is ~1.9 KB against SHA's ~100 bytes. Kept inline: a hasher
// lives on the stack or in a builder, and boxing would cost an allocation per
// block hashed for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Hasher {
    /// SHA-1 state.
    Sha1(sha1::Sha1),
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// BLAKE3 state.
    Blake3(blake3::Hasher),
}

impl Hasher {
    /// Feeds more bytes.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
            Self::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// The digest of everything fed so far; the hasher starts over afterwards.
    pub fn finalize_reset(&mut self) -> Digest {
        let digest = match self {
            Self::Sha1(h) => Digest::from_slice(&h.finalize_reset()),
            Self::Sha256(h) => Digest::from_slice(&h.finalize_reset()),
            Self::Blake3(h) => {
                let digest = Digest::from_slice(h.finalize().as_bytes());
                h.reset();
                digest
            }
        };
        match digest {
            Some(digest) => digest,
            None => unreachable!("every algorithm's digest fits MAX_DIGEST_LEN"),
        }
    }

    /// The digest of everything fed.
    pub fn finalize(mut self) -> Digest {
        self.finalize_reset()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self {
            Self::Sha1(_) => HashAlgorithm::Sha1,
            Self::Sha256(_) => HashAlgorithm::Sha256,
            Self::Blake3(_) => HashAlgorithm::Blake3,
        };
        write!(f, "Hasher({algorithm})")
    }
}

/// The digest of one whole block (or any byte string) with `algorithm`.
pub fn hash_block(algorithm: HashAlgorithm, bytes: &[u8]) -> Digest {
    let mut hasher = algorithm.hasher();
    hasher.update(bytes);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// Published vectors: FIPS 180 for SHA-1 and SHA-256, the BLAKE3 paper and
    /// reference implementation for BLAKE3.
    #[test]
    fn published_test_vectors() {
        let cases = [
            (HashAlgorithm::Sha1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (HashAlgorithm::Sha1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlgorithm::Sha1,
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (HashAlgorithm::Sha256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (
                HashAlgorithm::Sha256,
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (HashAlgorithm::Blake3, "", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
            (
                HashAlgorithm::Blake3,
                "abc",
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ];
        for (algorithm, input, expected) in cases {
            assert_eq!(
                hash_block(algorithm, input.as_bytes()).to_string(),
                expected,
                "{algorithm} {input:?}"
            );
        }
    }

    #[test]
    fn million_a_sha1() {
        let input = vec![b'a'; 1_000_000];
        assert_eq!(
            hash_block(HashAlgorithm::Sha1, &input).to_string(),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn names_parse_and_unknown_names_are_refused() {
        for algorithm in HashAlgorithm::ALL {
            assert_eq!(algorithm.name().parse::<HashAlgorithm>(), Ok(algorithm));
            assert_eq!(HashAlgorithm::from_wire_id(algorithm.wire_id()), Some(algorithm));
            assert_eq!(hash_block(algorithm, b"").len(), algorithm.digest_len());
        }
        assert_eq!("SHA-256".parse::<HashAlgorithm>(), Ok(HashAlgorithm::Sha256));
        let err = "md5".parse::<HashAlgorithm>().unwrap_err();
        assert_eq!(err.to_string(), "unknown hash algorithm \"md5\" (expected sha1, sha256 or blake3)");
        assert_eq!(HashAlgorithm::from_wire_id(0), None);
    }

    #[test]
    fn finalize_reset_starts_over() {
        let mut hasher = HashAlgorithm::Sha1.hasher();
        hasher.update(b"junk");
        let _ = hasher.finalize_reset();
        hasher.update(b"abc");
        assert_eq!(hasher.finalize(), hash_block(HashAlgorithm::Sha1, b"abc"));
    }
}
