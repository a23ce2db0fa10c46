//! An open file as the core's delta reads it: `pread` at any offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use diffcopy_core::delta::ReadAt;

/// `file` read by offset, `len` bytes long.
#[derive(Debug)]
pub(crate) struct FileReader<'a> {
    file: &'a File,
    len: u64,
}

impl<'a> FileReader<'a> {
    /// A reader of `file`, known to be `len` bytes long.
    pub(crate) fn with_len(file: &'a File, len: u64) -> Self {
        Self { file, len }
    }
}

impl ReadAt for FileReader<'_> {
    type Error = io::Error;

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}
