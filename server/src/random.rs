//! Unpredictable names and seeds: upload session ids, staging-file names,
//! protocol v2's seeds.

use std::fs::File;
use std::io::{self, Read};

/// `bytes` random bytes from the kernel, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(diffcopy_core::hex::encode(&buf))
}

/// A random seed for protocol v2's hashes; 500 `internal` if the kernel
/// gives no randomness.
pub(crate) fn random_seed() -> crate::serve::AppResult<u64> {
    let hex = random_hex(8).map_err(|e| crate::serve::AppError::internal("making a seed", e))?;
    u64::from_str_radix(&hex, 16).map_err(|e| crate::serve::AppError::internal("making a seed", e))
}

#[cfg(test)]
mod tests {
    use super::random_hex;

    #[test]
    fn hex_of_the_asked_length_and_never_the_same() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16).unwrap());
    }
}
