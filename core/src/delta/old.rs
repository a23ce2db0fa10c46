//! Files as the delta reads them: random access by offset, so the same code
//! runs over a file on disk, a range of an object, or bytes in memory. The
//! old side's search reads its old file so; the new side hashes pieces so.

use core::convert::Infallible;

/// Random-access reading of a file.
pub trait ReadAt {
    /// Why a read failed.
    type Error;

    /// The file's length in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset` (the range lies in the file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// A file held in memory.
#[derive(Clone, Copy, Debug)]
pub struct SliceFile<'a>(pub &'a [u8]);

impl ReadAt for SliceFile<'_> {
    type Error = Infallible;

    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Infallible> {
        let start = offset as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
        Ok(())
    }
}
