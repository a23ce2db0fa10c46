//! pdiffcopy's text signature: `"<offset>\t<hexdigest>\n"` lines in any order.

use alloc::vec::Vec;

use crate::digest::Digest;
use crate::error::TextError;
use crate::hash::HashAlgorithm;
use crate::signature::{Signature, SignatureHeader};

/// Parses pdiffcopy's text form of the signature of a file of `file_size`
/// bytes hashed with `algorithm` in `block_size` blocks.
///
/// Lines may come in any order (pdiffcopy's server sends them as its workers
/// finish); `\r\n` endings and blank lines are accepted. Every block of the
/// file must have exactly one line, and every offset must be a block start
/// inside the file. Memory grows with the text, never with the declared size.
pub fn parse_text(
    text: &str,
    algorithm: HashAlgorithm,
    block_size: u32,
    file_size: u64,
) -> Result<Signature, TextError> {
    let header = SignatureHeader::new(algorithm, block_size, file_size)
        .map_err(|_| TextError::InvalidBlockSize { block_size })?;
    let layout = header.layout();
    let mut entries: Vec<(u64, usize, Digest)> = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        let line_no = number + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (offset, digest) = line.split_once('\t').ok_or(TextError::MalformedLine { line: line_no })?;
        let offset: u64 = parse_decimal(offset).ok_or(TextError::BadOffset { line: line_no })?;
        let index =
            layout.block_at_offset(offset).ok_or(TextError::UnexpectedOffset { line: line_no, offset })?;
        let digest = Digest::from_hex(digest, algorithm.digest_len())
            .map_err(|error| TextError::BadDigest { line: line_no, error })?;
        entries.push((index, line_no, digest));
    }
    entries.sort_unstable_by_key(|&(index, line, _)| (index, line));
    let mut signature = Signature::new(header);
    for (expected, &(index, line, digest)) in (0u64..).zip(&entries) {
        if index < expected {
            return Err(TextError::DuplicateOffset { line, offset: index * u64::from(block_size) });
        }
        if index > expected {
            return Err(TextError::MissingBlock { offset: expected * u64::from(block_size) });
        }
        if signature.push_digest(digest.as_bytes()).is_err() {
            unreachable!("digest lengths and block indexes were checked");
        }
    }
    if !signature.is_complete() {
        return Err(TextError::MissingBlock { offset: signature.digest_count() * u64::from(block_size) });
    }
    Ok(signature)
}

/// A plain decimal number: ASCII digits only, no sign, no overflow.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignatureBuilder;
    use alloc::format;
    use alloc::string::String;

    fn sample() -> Signature {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, 4).unwrap();
        builder.update(b"0123456789");
        builder.finish()
    }

    #[test]
    fn round_trip_in_any_order() {
        let sig = sample();
        let text = sig.to_text();
        assert_eq!(parse_text(&text, HashAlgorithm::Sha1, 4, 10), Ok(sig.clone()));
        let reversed: String = text.lines().rev().map(|l| format!("{l}\r\n")).collect();
        assert_eq!(parse_text(&reversed, HashAlgorithm::Sha1, 4, 10), Ok(sig));
    }

    #[test]
    fn empty_file_has_empty_text() {
        let sig = parse_text("", HashAlgorithm::Sha256, 4, 0).unwrap();
        assert_eq!(sig.digest_count(), 0);
        assert!(sig.is_complete());
    }

    #[test]
    fn bad_lines_name_their_line() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        let digest = lines[0].split_once('\t').unwrap().1;
        let parse = |t: &str| parse_text(t, HashAlgorithm::Sha1, 4, 10).unwrap_err();
        assert_eq!(parse("0 abc\n"), TextError::MalformedLine { line: 1 });
        assert_eq!(parse(&format!("{}\n-4\t{digest}\n", lines[0])), TextError::BadOffset { line: 2 });
        assert_eq!(parse(&format!("3\t{digest}\n")), TextError::UnexpectedOffset { line: 1, offset: 3 });
        assert_eq!(parse(&format!("12\t{digest}\n")), TextError::UnexpectedOffset { line: 1, offset: 12 });
        assert!(matches!(parse("0\tzz\n"), TextError::BadDigest { line: 1, .. }));
        assert_eq!(
            parse(&format!("{}\n{}\n", lines[0], lines[0])),
            TextError::DuplicateOffset { line: 2, offset: 0 }
        );
        assert_eq!(parse(&format!("{}\n{}\n", lines[0], lines[2])), TextError::MissingBlock { offset: 4 });
        assert_eq!(parse(&format!("{}\n{}\n", lines[0], lines[1])), TextError::MissingBlock { offset: 8 });
    }

    #[test]
    fn a_huge_declared_size_does_not_allocate() {
        let err = parse_text("", HashAlgorithm::Sha1, 1, u64::MAX).unwrap_err();
        assert_eq!(err, TextError::MissingBlock { offset: 0 });
    }
}
