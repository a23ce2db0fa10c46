//! The weak rolling sum: cheap to slide by one byte, so the old side can
//! look for a block at every offset of its file. It covers a block's anchor,
//! its first [`ANCHOR`] bytes: enough to find the block, and the new side
//! spends almost nothing on it.
//!
//! Over a window `x[0..n]`: `s1 = Σ x[j]` and `s2 = Σ (n - j)·x[j]`, both
//! wrapping at 2^32; the sum is `s1 mod 2^16 | s2 << 16`, as rsync's.
//! Sliding out `a` and in `b`: `s1 += b - a`, `s2 += s1 - n·a`.

/// The bytes of a block its weak sum covers (the whole block if shorter).
pub const ANCHOR: usize = 4096;

/// The length of a `block_len`-byte block's anchor.
pub fn anchor_len(block_len: usize) -> usize {
    block_len.min(ANCHOR)
}

/// The state of a weak sum over a window of fixed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeakSum {
    s1: u32,
    s2: u32,
    len: u32,
}

impl WeakSum {
    /// The sum over all of `window`.
    pub fn new(window: &[u8]) -> Self {
        let len = window.len() as u32;
        // s2 = n·s1 - Σ j·x[j]; the weighted sum runs in chunks the compiler vectorizes.
        const CHUNK: usize = 64;
        let (mut s1, mut weighted) = (0u32, 0u32);
        let mut base = 0u32;
        let mut chunks = window.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            let (mut sum, mut inner) = (0u32, 0u32);
            for (k, &x) in chunk.iter().enumerate() {
                sum = sum.wrapping_add(u32::from(x));
                inner = inner.wrapping_add((k as u32).wrapping_mul(u32::from(x)));
            }
            weighted = weighted.wrapping_add(base.wrapping_mul(sum)).wrapping_add(inner);
            s1 = s1.wrapping_add(sum);
            base = base.wrapping_add(CHUNK as u32);
        }
        for (k, &x) in chunks.remainder().iter().enumerate() {
            s1 = s1.wrapping_add(u32::from(x));
            weighted = weighted.wrapping_add(base.wrapping_add(k as u32).wrapping_mul(u32::from(x)));
        }
        Self { s1, s2: len.wrapping_mul(s1).wrapping_sub(weighted), len }
    }

    /// The 32-bit weak sum that travels and is looked up.
    #[inline]
    pub fn value(&self) -> u32 {
        (self.s1 & 0xffff) | (self.s2 << 16)
    }

    /// Slides the window one byte: `out` leaves at the front, `inn` enters at the end.
    #[inline]
    pub fn roll(&mut self, out: u8, inn: u8) {
        self.s1 = self.s1.wrapping_sub(u32::from(out)).wrapping_add(u32::from(inn));
        self.s2 = self.s2.wrapping_sub(self.len.wrapping_mul(u32::from(out))).wrapping_add(self.s1);
    }
}

/// The weak sum of `window`.
pub fn weak_sum(window: &[u8]) -> u32 {
    WeakSum::new(window).value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn naive(window: &[u8]) -> u32 {
        let n = window.len() as u32;
        let (mut s1, mut s2) = (0u32, 0u32);
        for (j, &x) in window.iter().enumerate() {
            s1 = s1.wrapping_add(u32::from(x));
            s2 = s2.wrapping_add((n - j as u32).wrapping_mul(u32::from(x)));
        }
        (s1 & 0xffff) | (s2 << 16)
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect()
    }

    #[test]
    fn the_chunked_sum_is_the_definition() {
        for len in [0, 1, 63, 64, 65, 200, 4096, 4099] {
            let data = bytes(len);
            assert_eq!(weak_sum(&data), naive(&data), "len {len}");
        }
    }

    #[test]
    fn rolling_equals_summing_afresh() {
        let data = bytes(3000);
        for n in [1usize, 7, 64, 1000] {
            let mut sum = WeakSum::new(&data[..n]);
            for p in 1..=data.len() - n {
                sum.roll(data[p - 1], data[p + n - 1]);
                assert_eq!(sum.value(), naive(&data[p..p + n]), "n {n} p {p}");
            }
        }
    }
}
