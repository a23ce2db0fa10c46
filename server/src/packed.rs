//! Bodies compressed with zstd (`Content-Encoding: zstd`): listings and
//! multi requests and answers, whose JSON repeats itself. Both sides use
//! these; a body that unpacks to more than its limit is refused, so a
//! small body cannot make either side hold gigabytes.

use std::io::{self, Read};

/// `bytes` compressed (level 3: a page of a listing in well under a millisecond).
pub(crate) fn pack(bytes: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(bytes, 3)
}

/// `bytes` decompressed, at most `limit` bytes of it (else an error).
pub(crate) fn unpack(bytes: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    zstd::stream::Decoder::new(bytes)?.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::other(format!("it unpacks to more than {limit} bytes")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_the_limit_only() {
        let text = b"{\"path\":\"a/b\",\"size\":1}".repeat(100);
        let packed = pack(&text).unwrap();
        assert!(packed.len() < text.len() / 10);
        assert_eq!(unpack(&packed, text.len() as u64).unwrap(), text);
        assert!(unpack(&packed, text.len() as u64 - 1).is_err());
        assert!(unpack(b"not zstd", 100).is_err());
    }
}
