//! Copying byte ranges between open files, in the kernel where it can.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use rustix::io::Errno;

/// Copies `len` bytes at `src_offset` of `src` to `dst_offset` of `dst`.
///
/// Uses `copy_file_range(2)`, which stays in the kernel and, on file
/// systems that can (XFS, Btrfs), shares extents instead of copying: the
/// kernel clones the block-aligned part of a call whose offsets are both on
/// a block boundary, and copies a whole call whose offsets are not. So a
/// range whose offsets sit at the same place within a block goes in two
/// calls: the bytes up to the next boundary (copied), then the rest (cloned
/// but for its unaligned tail). Falls back to reading and writing where the
/// kernel refuses.
pub(crate) fn copy_range(
    src: &File,
    src_offset: u64,
    dst: &File,
    dst_offset: u64,
    len: u64,
) -> io::Result<()> {
    let block = rustix::fs::fstat(dst).map_or(0, |st| u64::try_from(st.st_blksize).unwrap_or(0));
    let head = unaligned_head(src_offset, dst_offset, len, block);
    let (mut src_off, mut dst_off) = (src_offset, dst_offset);
    let end = src_offset + len;
    while src_off < end {
        let until = if src_off < src_offset + head { src_offset + head } else { end };
        let want = usize::try_from(until - src_off).unwrap_or(usize::MAX).min(1 << 30);
        match rustix::fs::copy_file_range(src, Some(&mut src_off), dst, Some(&mut dst_off), want) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "source ended early")),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                return copy_with_buffer(src, src_off, dst, dst_off, end - src_off);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Makes `dst` a clone of `src` (`FICLONE`: shared extents, no data
/// copied); `false`, with nothing done, where the file system cannot clone
/// (ext4, tmpfs) or the two files are on different ones.
pub(crate) fn clone_file(dst: &File, src: &File) -> io::Result<bool> {
    match rustix::fs::ioctl_ficlone(dst, src) {
        Ok(()) => Ok(true),
        Err(Errno::OPNOTSUPP | Errno::XDEV | Errno::INVAL | Errno::NOTTY | Errno::BADF | Errno::PERM) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The bytes to copy on their own before a clone can start: up to the next
/// multiple of `block` when both offsets sit at the same place within a
/// block and the range reaches past that boundary; else none.
fn unaligned_head(src_offset: u64, dst_offset: u64, len: u64, block: u64) -> u64 {
    if !block.is_power_of_two()
        || src_offset % block != dst_offset % block
        || src_offset.is_multiple_of(block)
    {
        return 0;
    }
    let head = block - src_offset % block;
    if head < len { head } else { 0 }
}

/// The bytes of file data a thread or the whole process writes from the
/// moment this is made, as the kernel counts them (`write_bytes` in
/// `/proc/thread-self/io` or `/proc/self/io`: pages dirtied in the page
/// cache, so a clone counts nothing and a copy what it copied; a file system
/// without writeback, tmpfs, counts nothing). The kernel counts the whole
/// folio a write dirties: on a kernel whose ext4 caches large files in
/// folios of up to 2 MiB, 512 bytes written into one count 2 MiB, where the
/// disk writes a block. It is an upper bound on what reaches the disk; the
/// benchmarks read the device's own counters.
#[derive(Debug)]
pub(crate) struct DiskWrites {
    counter: &'static str,
    before: Option<u64>,
}

impl DiskWrites {
    /// Starts counting this thread's writes (on the thread that will do them).
    pub(crate) fn of_thread() -> Self {
        Self::of("/proc/thread-self/io")
    }

    /// Starts counting the writes of every thread of this process.
    pub(crate) fn of_process() -> Self {
        Self::of("/proc/self/io")
    }

    fn of(counter: &'static str) -> Self {
        Self { counter, before: bytes_written(counter) }
    }

    /// The bytes written since it started; `None` where the kernel does not say.
    pub(crate) fn so_far(&self) -> Option<u64> {
        self.before.zip(bytes_written(self.counter)).map(|(before, now)| now.saturating_sub(before))
    }
}

/// The bytes of file data `counter` (a `/proc` io file) says were written
/// so far; `None` where the kernel does not say.
fn bytes_written(counter: &str) -> Option<u64> {
    let io = std::fs::read_to_string(counter).ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes:")).and_then(|n| n.trim().parse().ok())
}

/// Starts writing `range` of `file` back to the disk without waiting for
/// it (`sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`), so that the
/// fsync a commit ends with finds little left to write. Best effort: a
/// kernel that refuses only loses the head start.
pub(crate) fn start_writeback(file: &File, range: Range<u64>) {
    use std::os::fd::AsRawFd as _;
    let (Ok(offset), Ok(len)) = (i64::try_from(range.start), i64::try_from(range.end - range.start)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and
    // sync_file_range only reads its integer arguments. rustix does not wrap
    // it. One of the three measured needs for unsafe in this crate (with
    // serve/memory.rs's two): docs/benchmarks.md, "Early writeback".
    #[allow(unsafe_code)]
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

fn copy_with_buffer(src: &File, mut src_off: u64, dst: &File, mut dst_off: u64, len: u64) -> io::Result<()> {
    let end = src_off + len;
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    while src_off < end {
        let n = buf.len().min((end - src_off) as usize);
        src.read_exact_at(&mut buf[..n], src_off)?;
        dst.write_all_at(&buf[..n], dst_off)?;
        src_off += n as u64;
        dst_off += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_counts_this_threads_writes() {
        let dir = std::env::temp_dir().join(format!("diffcopy-written-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let writes = DiskWrites::of_thread();
        let process = DiskWrites::of_process();
        let file = File::create(dir.join("f")).unwrap();
        file.write_all_at(&vec![7u8; 1 << 20], 0).unwrap();
        let written = writes.so_far().expect("/proc/thread-self/io");
        // tmpfs counts nothing; a disk counts the megabyte.
        assert!(written == 0 || written >= 1 << 20, "{written} bytes counted");
        assert!(process.so_far().expect("/proc/self/io") >= written);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_offsets_alike_within_a_block_split_off_a_head() {
        assert_eq!(unaligned_head(100, 4196, 10_000, 4096), 3996);
        assert_eq!(unaligned_head(100, 4196, 3996, 4096), 0, "nothing would be left to clone");
        assert_eq!(unaligned_head(0, 8192, 10_000, 4096), 0, "aligned already");
        assert_eq!(unaligned_head(100, 200, 10_000, 4096), 0, "never aligned together");
        assert_eq!(unaligned_head(100, 4196, 10_000, 0), 0, "no block size known");
        assert_eq!(unaligned_head(4095, 4095, 2, 4096), 1);
    }

    #[test]
    fn copies_the_range_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("diffcopy-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src_path = dir.join("src");
        std::fs::write(&src_path, (0..10_000u32).map(|i| i as u8).collect::<Vec<_>>()).unwrap();
        let src = File::open(&src_path).unwrap();
        let dst =
            File::options().read(true).write(true).create(true).truncate(true).open(dir.join("dst")).unwrap();
        dst.set_len(10_000).unwrap();
        copy_range(&src, 1000, &dst, 1000, 3000).unwrap();
        copy_with_buffer(&src, 9000, &dst, 9000, 1000).unwrap();
        copy_range(&src, 0, &dst, 5000, 100).unwrap();
        // Offsets alike within a block: a head, then the rest.
        copy_range(&src, 4196, &dst, 4196, 700).unwrap();
        copy_with_buffer(&src, 0, &dst, 6000, 100).unwrap();
        let out = std::fs::read(dir.join("dst")).unwrap();
        let expected: Vec<u8> = (0..10_000u32)
            .map(|i| match i {
                1000..4000 | 4196..4896 | 9000.. => i as u8,
                5000..5100 => (i - 5000) as u8,
                6000..6100 => (i - 6000) as u8,
                _ => 0,
            })
            .collect();
        assert_eq!(out, expected);
        assert!(copy_range(&src, 9000, &dst, 9000, 2000).is_err(), "past the source's end");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
