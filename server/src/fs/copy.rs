//! Copying byte ranges between open files, in the kernel where it can.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::io::Errno;

/// Copies `len` bytes at `src_offset` of `src` to `dst_offset` of `dst`.
///
/// Uses `copy_file_range(2)`, which stays in the kernel and shares extents
/// (a reflink) on file systems that can; falls back to reading and writing
/// where the kernel refuses.
pub(crate) fn copy_range(
    src: &File,
    src_offset: u64,
    dst: &File,
    dst_offset: u64,
    len: u64,
) -> io::Result<()> {
    let (mut src_off, mut dst_off) = (src_offset, dst_offset);
    let end = src_offset + len;
    while src_off < end {
        let want = usize::try_from(end - src_off).unwrap_or(usize::MAX).min(1 << 30);
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
        copy_with_buffer(&src, 0, &dst, 6000, 100).unwrap();
        let out = std::fs::read(dir.join("dst")).unwrap();
        let expected: Vec<u8> = (0..10_000u32)
            .map(|i| match i {
                1000..4000 | 9000.. => i as u8,
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
