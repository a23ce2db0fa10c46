//! The old side's search: where in the old file is each piece of the new one?
//!
//! Level 0 (blocks): the same offset first, then the offset that continues
//! a neighbour's match, then one rolling pass over the old file's bytes that
//! no match covers, each hit extended to the following blocks. Finer levels
//! try, for each piece of an unmatched parent, the offsets that continue the
//! nearest matches on either side and the same offset; no rolling.
//!
//! A block left unmatched is refined once; below that, a piece is refined
//! only when a sibling matched (its parent was partly there), so a block
//! rewritten whole costs one level of hashes and then travels as it is.
//!
//! # Bounds
//!
//! The rolling pass moves only forward and probes a region no match covers
//! one block in every eight (at its start, after each hit, then every
//! eighth block), so it rolls over at most an eighth of the old file plus
//! a block per region and per hit. A shifted run of nine blocks or more is
//! always found; shorter ones only where a probe starts. Every strong hash of old bytes is paid from a budget of
//! `8 × (old + new size) + 64 MiB` bytes; once spent, the search stops
//! looking and what is left unmatched travels as literal data. Memory is one
//! block plus a read buffer and a few words per piece.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use super::blocks::BlockHashes;
use super::error::{DeltaError, MatchError};
use super::need::Need;
use super::old::ReadAt;
use super::params::DeltaParams;
use super::pieces::{PieceHashes, pieces_of};
use super::plan::Plan;
use super::strong::{block_hash, block_match_hash, piece_hash};
use super::weak::{WeakSum, anchor_len};

/// Blocks between the starts of two probes of the rolling pass in an old
/// region no match covers. Every probe rolls over one block of window
/// starts, so the pass reads at most 1/`PROBE_STRIDE` of such a region,
/// plus a block at its start and after each hit.
const PROBE_STRIDE: u64 = 8;
/// Window starts per read of a rolling pass near a parent: what bounds its
/// memory, however long the parent.
const NEAR_CHUNK: u64 = 4 << 20;

/// What a search did, for benchmarks and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Window positions the rolling pass over the old file (level 0) tested.
    pub rolled: u64,
    /// Window positions the searches near unmatched parents (below level 0) tested.
    pub rolled_near: u64,
    /// Old bytes hashed to check candidates.
    pub hashed: u64,
    /// Rolling positions whose weak sum equals an unmatched block's.
    pub weak_hits: u64,
    /// Pieces found, all levels.
    pub matched: u64,
    /// Whether the budget ran out.
    pub exhausted: bool,
}

/// The search state of one delta, from the first block hashes to the plan.
#[derive(Clone, Debug)]
pub struct Matcher {
    params: DeltaParams,
    old_len: u64,
    /// Matched new ranges: new start -> (new end, old start).
    matches: BTreeMap<u64, (u64, u64)>,
    /// The full block hash of each block matched whole at level 0, by index.
    block_hashes: BTreeMap<u64, u128>,
    /// The level the next hashes are for and the ranges they cover; `None`
    /// once the search is over.
    next: Option<(u8, Vec<Range<u64>>)>,
    budget: u64,
    stats: SearchStats,
    scratch: Vec<u8>,
}

impl Matcher {
    /// A search for the new file of `params` in an old file of `old_len` bytes.
    pub fn new(params: DeltaParams, old_len: u64) -> Self {
        let whole: Vec<Range<u64>> =
            (params.file_size > 0).then_some(0..params.file_size).into_iter().collect();
        let budget = old_len.saturating_add(params.file_size).saturating_mul(8).saturating_add(64 << 20);
        Self {
            params,
            old_len,
            matches: BTreeMap::new(),
            block_hashes: BTreeMap::new(),
            next: Some((0, whole)),
            budget,
            stats: SearchStats::default(),
            scratch: Vec::new(),
        }
    }

    /// The parameters searched for.
    pub fn params(&self) -> &DeltaParams {
        &self.params
    }

    /// The level whose hashes come next and the ranges they cover; `None`
    /// once the search is over.
    pub fn expected(&self) -> Option<(u8, &[Range<u64>])> {
        self.next.as_ref().map(|(level, ranges)| (*level, ranges.as_slice()))
    }

    /// What the search did so far.
    pub fn stats(&self) -> SearchStats {
        self.stats
    }

    /// The block hash (all 128 bits) of each block of the new file that was
    /// found whole at level 0, by block index; `None` for the others. The
    /// old side checks the rebuilt file with these, rehashing only the rest.
    pub fn known_block_hashes(&self) -> Vec<Option<u128>> {
        let block = u64::from(self.params.levels.block_size());
        let mut known = vec![None; self.params.block_count() as usize];
        for (&start, &hash) in &self.block_hashes {
            if let Some(slot) = known.get_mut((start / block) as usize) {
                *slot = Some(hash);
            }
        }
        known
    }

    /// The plan, once the search is over.
    pub fn plan(&self) -> Option<Plan> {
        self.next.is_none().then(|| Plan::from_matches(self.params.file_size, &self.matches))
    }

    fn turn(&self, level: u8) -> Result<&[Range<u64>], DeltaError> {
        match &self.next {
            Some((expected, ranges)) if *expected == level => Ok(ranges),
            other => Err(DeltaError::OutOfTurn { level, expected: other.as_ref().map(|(l, _)| *l) }),
        }
    }

    /// Level 0: the new file's block hashes. `aligned`, when given, holds the
    /// [`block_hash`] of each of the old file's blocks at the same offsets
    /// (computed ahead, for example on several threads while the new side
    /// hashed); the search then reads the old file only where those miss.
    pub fn blocks<F: ReadAt>(
        &mut self,
        hashes: &BlockHashes,
        old: &mut F,
        aligned: Option<&[u128]>,
    ) -> Result<Need, MatchError<F::Error>> {
        self.turn(0)?;
        if *hashes.params() != self.params {
            return Err(DeltaError::ParamsMismatch.into());
        }
        let block = u64::from(self.params.levels.block_size());
        let pieces: Vec<Range<u64>> = (0..hashes.len()).map(|i| self.params.block_range(i)).collect();
        let mut weak = Vec::with_capacity(pieces.len());
        let mut strong = Vec::with_capacity(pieces.len());
        for i in 0..hashes.len() {
            let (w, s) = hashes.block(i).unwrap_or_default();
            weak.push(w);
            strong.push(s);
        }
        if self.old_len > 0 {
            for (i, piece) in pieces.iter().enumerate() {
                let len = piece.end - piece.start;
                if piece.end > self.old_len {
                    continue;
                }
                let old_block_len = block.min(self.old_len - piece.start);
                let found = match aligned.and_then(|a| a.get(i)) {
                    Some(&hash) if old_block_len == len => {
                        Some(hash).filter(|&h| block_match_hash(h) == strong[i])
                    }
                    _ => self.check(old, 0, piece.start, len, strong[i])?,
                };
                if let Some(hash) = found {
                    self.add(piece, piece.start, Some(hash));
                }
            }
            self.neighbours(old, 0, &pieces, &strong)?;
            self.roll(old, &pieces, &weak, &strong)?;
        }
        let whole = 0..self.params.file_size;
        Ok(self.decide(0, core::slice::from_ref(&whole), &pieces))
    }

    /// A finer level: the hashes of the pieces the last [`Need`] asked to refine.
    pub fn pieces<F: ReadAt>(
        &mut self,
        hashes: &PieceHashes,
        old: &mut F,
    ) -> Result<Need, MatchError<F::Error>> {
        if hashes.level == 0 {
            return Err(DeltaError::OutOfTurn { level: 0, expected: self.next.as_ref().map(|n| n.0) }.into());
        }
        let parents = self.turn(hashes.level)?.to_vec();
        let pieces: Vec<Range<u64>> = pieces_of(&self.params, hashes.level, &parents).collect();
        if pieces.len() != hashes.hashes.len() || hashes.weak.len() != hashes.hashes.len() {
            return Err(DeltaError::BadCount {
                found: hashes.hashes.len().min(hashes.weak.len()) as u64,
                expected: pieces.len() as u64,
            }
            .into());
        }
        let level = hashes.level;
        self.neighbours(old, level, &pieces, &hashes.hashes)?;
        self.roll_near(old, level, &parents, &pieces, &hashes.weak, &hashes.hashes)?;
        // What the local search found continues to its neighbours.
        self.neighbours(old, level, &pieces, &hashes.hashes)?;
        Ok(self.decide(level, &parents, &pieces))
    }

    fn is_matched(&self, piece: &Range<u64>) -> bool {
        self.matches.contains_key(&piece.start)
    }

    /// Records a match; `block_hash` is the full hash of a block found whole.
    fn add(&mut self, piece: &Range<u64>, old: u64, block_hash: Option<u128>) {
        self.matches.insert(piece.start, (piece.end, old));
        if let Some(hash) = block_hash {
            self.block_hashes.insert(piece.start, hash);
        }
        self.stats.matched += 1;
    }

    /// Whether the old bytes at `at` (as long as `len`) hash to `want` at
    /// `level`: their hash if so (a block's full 128 bits at level 0).
    fn check<F: ReadAt>(
        &mut self,
        old: &mut F,
        level: u8,
        at: u64,
        len: u64,
        want: u64,
    ) -> Result<Option<u128>, MatchError<F::Error>> {
        if at.checked_add(len).is_none_or(|end| end > self.old_len) || !self.spend(len) {
            return Ok(None);
        }
        self.scratch.resize(len as usize, 0);
        old.read_at(at, &mut self.scratch).map_err(MatchError::Read)?;
        let hash = strong_of(self.params.seed, level, &self.scratch);
        Ok(Some(hash).filter(|&h| compared(level, h) == want))
    }

    /// Takes `bytes` from the budget; false (and the search winds down) once it is spent.
    fn spend(&mut self, bytes: u64) -> bool {
        if self.budget < bytes {
            self.stats.exhausted = true;
            return false;
        }
        self.budget -= bytes;
        self.stats.hashed += bytes;
        true
    }

    /// For each unmatched piece, the offset that continues the nearest
    /// match before it (and, above level 0, the same offset: level 0 tried
    /// it already); then, from the end, the offset that continues the
    /// nearest match after it. No offset is tried twice for one piece.
    fn neighbours<F: ReadAt>(
        &mut self,
        old: &mut F,
        level: u8,
        pieces: &[Range<u64>],
        strong: &[u64],
    ) -> Result<(), MatchError<F::Error>> {
        let tried = |level: u8, piece: &Range<u64>, at: u64, before: Option<u64>| {
            at == piece.start || (level > 0 && Some(at) == before)
        };
        let mut befores = Vec::with_capacity(pieces.len());
        for (piece, &want) in pieces.iter().zip(strong) {
            let before = self.shifted(piece.start, self.matches.range(..piece.start).next_back());
            befores.push(before);
            if self.is_matched(piece) {
                continue;
            }
            let same = (level > 0).then_some(piece.start);
            let candidates =
                [before.filter(|&at| level > 0 || at != piece.start), same.filter(|&s| Some(s) != before)];
            for at in candidates.into_iter().flatten() {
                if let Some(hash) = self.check(old, level, at, piece.end - piece.start, want)? {
                    self.add(piece, at, (level == 0).then_some(hash));
                    break;
                }
            }
        }
        for ((piece, &want), before) in pieces.iter().zip(strong).zip(befores).rev() {
            if self.is_matched(piece) {
                continue;
            }
            let after = self.shifted(piece.start, self.matches.range(piece.start..).next());
            if let Some(at) = after.filter(|&at| !tried(level, piece, at, before))
                && let Some(hash) = self.check(old, level, at, piece.end - piece.start, want)?
            {
                self.add(piece, at, (level == 0).then_some(hash));
            }
        }
        Ok(())
    }

    /// Where `start` lies in the old file if the data is shifted as in `near`.
    fn shifted(&self, start: u64, near: Option<(&u64, &(u64, u64))>) -> Option<u64> {
        let (&new, &(_, old)) = near?;
        let at = i128::from(start) + i128::from(old) - i128::from(new);
        u64::try_from(at).ok()
    }

    /// The old ranges the matches copy, merged and sorted.
    fn covered(&self) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = self.matches.iter().map(|(&s, &(e, o))| o..o + (e - s)).collect();
        ranges.sort_unstable_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// One forward rolling pass over the old bytes no match covers, looking
    /// for the unmatched full-size blocks by the weak sum of their anchor
    /// (first bytes); each hit is checked with the whole block's strong hash
    /// and extended to the following (and preceding) blocks at its shift.
    fn roll<F: ReadAt>(
        &mut self,
        old: &mut F,
        pieces: &[Range<u64>],
        weak: &[u32],
        strong: &[u64],
    ) -> Result<(), MatchError<F::Error>> {
        let block = u64::from(self.params.levels.block_size());
        if self.old_len < block {
            return Ok(());
        }
        let mut table: Vec<(u32, u32)> = pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.end - p.start == block && !self.is_matched(p))
            .map(|(i, _)| (weak[i], i as u32))
            .collect();
        if table.is_empty() {
            return Ok(());
        }
        table.sort_unstable();
        let filter = Filter::new(&table);
        let anchor = anchor_len(block as usize);
        let covered = self.covered();
        let mut next_covered = 0;
        let mut buf = Vec::new();
        let last_start = self.old_len - block; // the last block-sized window's start
        let b = block as usize;
        let mut p = 0u64;
        while p <= last_start && !self.stats.exhausted {
            while covered.get(next_covered).is_some_and(|c| c.end <= p) {
                next_covered += 1;
            }
            let after_cover = next_covered > 0 && covered[next_covered - 1].end == p;
            let gap_end = match covered.get(next_covered) {
                Some(c) if c.start <= p => {
                    p = c.end;
                    continue;
                }
                // A hole of at most one block between matches: in place,
                // the old side of an edited block. Windows there straddle
                // the matched data beside it, which a new block repeats
                // rarely; the finer levels look near it instead.
                Some(c) if after_cover && c.start - p <= block => {
                    p = c.start;
                    continue;
                }
                Some(c) => c.start.min(last_start + 1),
                None => last_start + 1,
            };
            // A probe: up to one block of window starts from here.
            let probe_end = gap_end.min(p + block);
            let load = (self.old_len - p).min(block + (probe_end - p));
            buf.resize(load as usize, 0);
            old.read_at(p, &mut buf).map_err(MatchError::Read)?;
            let starts = (probe_end - p) as usize;
            let mut rel = skip_uniform(&buf, anchor, starts, &filter);
            let mut sum = WeakSum::new(&buf[rel.min(buf.len() - anchor)..][..anchor]);
            let mut jump = None;
            while rel < starts {
                rel += scan(&buf[rel..], anchor, starts - rel, &mut sum, &filter);
                if rel == starts {
                    break;
                }
                let at = p + rel as u64;
                if let Some(end) =
                    self.hit(old, &table, sum.value(), at, &buf[rel..rel + b], pieces, strong)?
                {
                    jump = Some(end);
                    break;
                }
                rel += 1;
                if rel < starts {
                    sum.roll(buf[rel - 1], buf[rel - 1 + anchor]);
                }
            }
            self.stats.rolled += rel as u64;
            // After a hit, probe again where its extension ended; else a
            // stride further into the gap (or at its end).
            p = jump.unwrap_or_else(|| gap_end.min(p + PROBE_STRIDE * block));
        }
        Ok(())
    }

    /// Below level 0: for each parent with unmatched full-size pieces, one
    /// rolling pass over the old bytes near where those pieces should be
    /// (each piece's range shifted as the parent's nearest matches are, and
    /// by nothing, widened by two pieces on either side; the ranges merged).
    /// Finds the pieces of a parent whose data moved by less than that,
    /// which its neighbours' shifts do not; a parent with one edited piece
    /// costs a few pieces of rolling, not the whole parent.
    fn roll_near<F: ReadAt>(
        &mut self,
        old: &mut F,
        level: u8,
        parents: &[Range<u64>],
        pieces: &[Range<u64>],
        weak: &[u32],
        strong: &[u64],
    ) -> Result<(), MatchError<F::Error>> {
        let size = u64::from(self.params.levels.size(usize::from(level)).unwrap_or(u32::MAX));
        let mut table: Vec<(u32, u32)> = pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.end - p.start == size && !self.is_matched(p))
            .map(|(i, _)| (weak[i], i as u32))
            .collect();
        if table.is_empty() || self.old_len < size {
            return Ok(());
        }
        table.sort_unstable();
        let filter = Filter::new(&table);
        let anchor = anchor_len(size as usize);
        let margin = 2 * size;
        let mut buf = Vec::new();
        for parent in parents {
            let first = pieces.partition_point(|p| p.start < parent.start);
            let children = &pieces[first..];
            let children = &children[..children.partition_point(|p| p.end <= parent.end)];
            if children.iter().all(|p| p.end - p.start != size || self.is_matched(p)) || self.stats.exhausted
            {
                continue;
            }
            let mut shifts = [0i128; 3];
            for (slot, near) in shifts.iter_mut().zip([
                self.matches.range(..parent.start).next_back(),
                self.matches.range(parent.end..).next(),
            ]) {
                if let Some((&new, &(_, at))) = near {
                    *slot = i128::from(at) - i128::from(new);
                }
            }
            let (low, high) =
                (shifts.iter().min().copied().unwrap_or(0), shifts.iter().max().copied().unwrap_or(0));
            let old_len = i128::from(self.old_len);
            let mut windows: Vec<Range<u64>> = Vec::new();
            for child in children.iter().filter(|p| p.end - p.start == size && !self.is_matched(p)) {
                let start = (i128::from(child.start) + low - i128::from(margin)).clamp(0, old_len) as u64;
                let end = (i128::from(child.end) + high + i128::from(margin)).clamp(0, old_len) as u64;
                match windows.last_mut() {
                    Some(last) if start <= last.end => last.end = last.end.max(end),
                    _ => windows.push(start..end),
                }
            }
            for window in windows {
                // In chunks of window starts, so a long run of pieces costs
                // no more memory than a short one.
                let mut from = window.start;
                while from + size <= window.end && !self.stats.exhausted {
                    let until = window.end.min(from + NEAR_CHUNK + size - 1);
                    buf.resize((until - from) as usize, 0);
                    old.read_at(from, &mut buf).map_err(MatchError::Read)?;
                    let table = (table.as_slice(), &filter);
                    from += self.roll_chunk(&buf, from, size as usize, anchor, table, pieces, strong).max(1);
                }
            }
        }
        Ok(())
    }

    /// One chunk of [`roll_near`](Self::roll_near): every window start in
    /// `buf` (the old bytes from `from`) that leaves a whole piece. Returns
    /// how far the next chunk starts from `from`.
    #[allow(clippy::too_many_arguments)]
    fn roll_chunk(
        &mut self,
        buf: &[u8],
        from: u64,
        piece_len: usize,
        anchor: usize,
        (table, filter): (&[(u32, u32)], &Filter),
        pieces: &[Range<u64>],
        strong: &[u64],
    ) -> u64 {
        let starts = buf.len() - piece_len + 1;
        let mut rel = skip_uniform(buf, anchor, starts, filter);
        let mut sum = WeakSum::new(&buf[rel.min(buf.len() - anchor)..][..anchor]);
        while rel < starts && !self.stats.exhausted {
            rel += scan(&buf[rel..], anchor, starts - rel, &mut sum, filter);
            if rel == starts {
                break;
            }
            let window = &buf[rel..rel + piece_len];
            if let Some(i) = self.piece_hit(table, sum.value(), window, pieces, strong) {
                self.add(&pieces[i], from + rel as u64, None);
                // Go on after it, the window summed afresh.
                rel += piece_len;
                if rel < starts {
                    sum = WeakSum::new(&buf[rel..rel + anchor]);
                }
                continue;
            }
            rel += 1;
            if rel < starts {
                sum.roll(buf[rel - 1], buf[rel - 1 + anchor]);
            }
        }
        self.stats.rolled_near += rel.min(starts) as u64;
        rel.max(starts) as u64
    }

    /// A window whose weak sum is a piece's (at a level below 0): the first
    /// unmatched piece with that sum whose strong hash is the window's.
    fn piece_hit(
        &mut self,
        table: &[(u32, u32)],
        weak: u32,
        window: &[u8],
        pieces: &[Range<u64>],
        strong: &[u64],
    ) -> Option<usize> {
        let first = table.partition_point(|e| e.0 < weak);
        let mut hash = None;
        for i in table[first..].iter().take_while(|e| e.0 == weak).map(|e| e.1 as usize) {
            if self.is_matched(&pieces[i]) {
                continue;
            }
            let hash = match hash {
                Some(hash) => hash,
                None if self.spend(window.len() as u64) => *hash.insert(piece_hash(self.params.seed, window)),
                None => return None,
            };
            if hash == strong[i] {
                self.stats.weak_hits += 1;
                return Some(i);
            }
        }
        None
    }

    /// A window whose weak sum is a block's: checks the strong hash against
    /// the unmatched blocks with that sum; on a match extends it to the
    /// neighbours and returns where the rolling pass goes on.
    #[allow(clippy::too_many_arguments)]
    fn hit<F: ReadAt>(
        &mut self,
        old: &mut F,
        table: &[(u32, u32)],
        weak: u32,
        at: u64,
        window: &[u8],
        pieces: &[Range<u64>],
        strong: &[u64],
    ) -> Result<Option<u64>, MatchError<F::Error>> {
        let first = table.partition_point(|e| e.0 < weak);
        if table.get(first).is_some_and(|e| e.0 == weak) {
            self.stats.weak_hits += 1;
        }
        let candidates = table[first..].iter().take_while(|e| e.0 == weak).map(|e| e.1 as usize);
        let mut window_hash = None;
        for i in candidates {
            if self.is_matched(&pieces[i]) {
                continue;
            }
            let hash = match window_hash {
                Some(hash) => hash,
                None if self.spend(window.len() as u64) => {
                    *window_hash.insert(strong_of(self.params.seed, 0, window))
                }
                None => return Ok(None),
            };
            if compared(0, hash) != strong[i] {
                continue;
            }
            self.add(&pieces[i], at, Some(hash));
            let mut end = at + window.len() as u64;
            for j in i + 1..pieces.len() {
                let len = pieces[j].end - pieces[j].start;
                if self.is_matched(&pieces[j]) {
                    break;
                }
                let Some(hash) = self.check(old, 0, end, len, strong[j])? else { break };
                self.add(&pieces[j], end, Some(hash));
                end += len;
            }
            let mut start = at;
            for j in (0..i).rev() {
                let len = pieces[j].end - pieces[j].start;
                let Some(before) = start.checked_sub(len) else { break };
                if self.is_matched(&pieces[j]) {
                    break;
                }
                let Some(hash) = self.check(old, 0, before, len, strong[j])? else { break };
                self.add(&pieces[j], before, Some(hash));
                start = before;
            }
            return Ok(Some(end));
        }
        Ok(None)
    }

    /// The answer to a round at `level`: for each parent, its unmatched
    /// pieces are refined (a block always once, a finer piece when a
    /// sibling matched) or sent as literal data.
    fn decide(&mut self, level: u8, parents: &[Range<u64>], pieces: &[Range<u64>]) -> Need {
        let finer = usize::from(level) + 1 < self.params.levels.count() && self.old_len > 0;
        let mut need = Need { level: level + 1, refine: Vec::new(), literal: Vec::new() };
        // A parent range is a run of the previous level's unmatched pieces;
        // each of those is judged on its own children: refined further only
        // where some of them matched, so a long run of new data (with a
        // match at one end) is not refined all the way down.
        let whole = level
            .checked_sub(1)
            .and_then(|l| self.params.levels.size(usize::from(l)))
            .map_or(u64::MAX, u64::from);
        let mut i = 0;
        for parent in parents {
            let mut from = parent.start;
            while from < parent.end {
                let until = parent.end.min(from.saturating_add(whole));
                let start = i;
                while i < pieces.len() && pieces[i].end <= until {
                    i += 1;
                }
                let children = &pieces[start..i];
                let partly_there = level == 0 || children.iter().any(|p| self.is_matched(p));
                let list = if finer && partly_there { &mut need.refine } else { &mut need.literal };
                for child in children.iter().filter(|p| !self.is_matched(p)) {
                    match list.last_mut() {
                        Some(last) if last.end == child.start => last.end = child.end,
                        _ => list.push(child.clone()),
                    }
                }
                from = until;
            }
        }
        if need.refine.is_empty() {
            need.level = 0;
            self.next = None;
        } else {
            self.next = Some((level + 1, need.refine.clone()));
        }
        need
    }
}

/// Where a rolling pass over `buf` may start: past the window starts whose
/// windows lie in a leading run of one byte value (a zeroed or sparse
/// region of the old file), when that run's one weak sum is no piece's.
fn skip_uniform(buf: &[u8], anchor: usize, starts: usize, filter: &Filter) -> usize {
    let run = uniform_run(buf);
    if run < anchor || filter.maybe(WeakSum::new(&buf[..anchor]).value()) {
        return 0;
    }
    (run - anchor + 1).min(starts)
}

/// How many of `buf`'s first bytes equal its first byte.
fn uniform_run(buf: &[u8]) -> usize {
    let Some(&first) = buf.first() else { return 0 };
    let pattern = [first; 256];
    let mut run = 0;
    for chunk in buf.chunks(pattern.len()) {
        // A slice comparison: memcmp, many bytes at a time.
        if chunk != &pattern[..chunk.len()] {
            return run + chunk.iter().position(|&b| b != first).unwrap_or(0);
        }
        run += chunk.len();
    }
    run
}

/// Rolls a weak sum over `data`'s windows of `anchor` bytes (`sum` holds
/// the first's) and returns the first of the `starts` window starts whose
/// sum passes `filter`, or `starts` if none does; `sum` is then that window's.
#[inline]
fn scan(data: &[u8], anchor: usize, starts: usize, sum: &mut WeakSum, filter: &Filter) -> usize {
    if filter.maybe(sum.value()) {
        return 0;
    }
    let outgoing = &data[..starts - 1];
    let incoming = &data[anchor..anchor + starts - 1];
    // A copy in registers; written back once.
    let mut local = *sum;
    let mut found = starts;
    for (i, (&out, &inn)) in outgoing.iter().zip(incoming).enumerate() {
        local.roll(out, inn);
        if filter.maybe(local.value()) {
            found = i + 1;
            break;
        }
    }
    *sum = local;
    found
}

/// The strong hash of old bytes at `level`: a block's full hash at level
/// 0, a piece hash below.
fn strong_of(seed: u64, level: u8, bytes: &[u8]) -> u128 {
    if level == 0 { block_hash(seed, bytes) } else { u128::from(piece_hash(seed, bytes)) }
}

/// The part of [`strong_of`] that travels and is compared.
fn compared(level: u8, hash: u128) -> u64 {
    if level == 0 { block_match_hash(hash) } else { hash as u64 }
}

/// A byte per slot over the table's weak sums: most windows are rejected
/// with one load. Its size is fixed, so the index needs no bounds check.
struct Filter {
    slots: Box<[u8; FILTER_SLOTS]>,
}

/// Slots of the filter (1 MiB): about one false positive in a thousand
/// windows for a thousand blocks (a 1 GiB file in 1 MiB blocks).
const FILTER_SLOTS: usize = 1 << 20;

impl Filter {
    fn new(table: &[(u32, u32)]) -> Self {
        let zeroed = vec![0u8; FILTER_SLOTS].into_boxed_slice();
        let mut slots: Box<[u8; FILTER_SLOTS]> = match zeroed.try_into() {
            Ok(slots) => slots,
            Err(_) => unreachable!("the vector has FILTER_SLOTS bytes"),
        };
        for &(weak, _) in table {
            slots[Self::index(weak)] = 1;
        }
        Self { slots }
    }

    #[inline]
    fn index(weak: u32) -> usize {
        (weak.wrapping_mul(0x9E37_79B1) >> (32 - FILTER_SLOTS.trailing_zeros())) as usize & (FILTER_SLOTS - 1)
    }

    #[inline]
    fn maybe(&self, weak: u32) -> bool {
        self.slots[Self::index(weak)] != 0
    }
}
