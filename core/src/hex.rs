//! Lowercase hex encoding and case-insensitive decoding without the heap.

use alloc::string::String;

use crate::error::HexError;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into the front of `out` and returns that
/// text. Panics if `out` is shorter than `2 * bytes.len()`.
pub fn encode_to_slice<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    let out = &mut out[..2 * bytes.len()];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    match core::str::from_utf8(out) {
        Ok(text) => text,
        Err(_) => unreachable!("hex digits are ASCII"),
    }
}

/// `bytes` as a new lowercase hex string.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    let mut pair = [0u8; 2];
    for &byte in bytes {
        out.push_str(encode_to_slice(&[byte], &mut pair));
    }
    out
}

/// Decodes `text` (exactly `2 * out.len()` hex digits, either case) into `out`.
pub fn decode_to_slice(text: &[u8], out: &mut [u8]) -> Result<(), HexError> {
    if text.len() != 2 * out.len() {
        return Err(HexError::InvalidLength { expected: 2 * out.len(), actual: text.len() });
    }
    for (i, (pair, byte)) in text.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        let high = nibble(pair[0]).ok_or(HexError::InvalidChar { position: 2 * i, byte: pair[0] })?;
        let low = nibble(pair[1]).ok_or(HexError::InvalidChar { position: 2 * i + 1, byte: pair[1] })?;
        *byte = (high << 4) | low;
    }
    Ok(())
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let bytes: [u8; 256] = core::array::from_fn(|i| i as u8);
        let mut text = [0u8; 512];
        let encoded = encode_to_slice(&bytes, &mut text);
        assert!(encoded.starts_with("000102"));
        assert!(encoded.ends_with("fdfeff"));
        let mut back = [0u8; 256];
        decode_to_slice(encoded.as_bytes(), &mut back).unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn encode_allocates_the_same_text() {
        let mut buf = [0u8; 6];
        assert_eq!(encode(&[0, 0xab, 0xff]), encode_to_slice(&[0, 0xab, 0xff], &mut buf));
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn bad_digits_report_their_position() {
        let mut out = [0u8; 2];
        assert_eq!(
            decode_to_slice(b"0g00", &mut out),
            Err(HexError::InvalidChar { position: 1, byte: b'g' })
        );
    }
}
