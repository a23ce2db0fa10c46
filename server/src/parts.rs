//! Length-prefixed parts: a 4-byte little-endian length, then that many
//! bytes. The framing of `POST /api/v2/multi`'s requests and answers, and
//! of the manifest that opens a `POST /api/v2/batch`, written and read by
//! both sides.

use bytes::Bytes;

/// Appends `bytes` as one part.
pub(crate) fn push_part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The part at `*at` of `all` (and `*at` moved past it); `None` when the
/// length or the part runs past the end.
pub(crate) fn next_part(all: &Bytes, at: &mut usize) -> Option<Bytes> {
    let len = all.get(*at..at.checked_add(4)?)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let start = *at + 4;
    let end = start.checked_add(len).filter(|&e| e <= all.len())?;
    *at = end;
    Some(all.slice(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_short_ones_are_none() {
        let mut out = Vec::new();
        for part in [&b""[..], b"a", b"bc"] {
            push_part(&mut out, part);
        }
        let all = Bytes::from(out);
        let mut at = 0;
        let mut got = Vec::new();
        while at < all.len() {
            got.push(next_part(&all, &mut at).unwrap());
        }
        assert_eq!(got, [&b""[..], b"a", b"bc"]);
        for cut in 1..all.len() {
            let short = all.slice(..cut);
            let mut at = 0;
            let mut whole = true;
            while at < short.len() {
                if next_part(&short, &mut at).is_none() {
                    whole = false;
                    break;
                }
            }
            // A cut between parts reads whole; any other cut is None.
            assert_eq!(whole, [4, 9, 15].contains(&cut), "cut at {cut}");
        }
    }
}
