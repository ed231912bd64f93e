//! The portable halves of the data-moving handle methods ([`crate::VfsHandle::copy_from`],
//! `zero_range`, `allocated_ranges`): positioned reads and writes through the handles, used
//! by back-ends without a better way (MemFs, named streams) and by LocalFs when the kernel
//! refuses an in-kernel copy (another filesystem, no `copy_file_range`).

use crate::{VfsError, VfsHandle};

/// Bytes moved per read/write round: the largest copy-chunk a client may ask for, so one
/// chunk is one round and the buffer stays small.
const BLOCK: u64 = 1 << 20;

/// Copies through a buffer. When `src` and `dst` are one file and the destination range
/// starts inside the source range, the blocks are copied from the end backwards so that no
/// byte is overwritten before it was read (memmove semantics).
pub(crate) fn buffered<S, D>(
    src: &S,
    dst: &D,
    src_offset: u64,
    offset: u64,
    len: u64,
) -> Result<u64, VfsError>
where
    S: VfsHandle + ?Sized,
    D: VfsHandle + ?Sized,
{
    if len == 0 {
        return Ok(0);
    }
    offset.checked_add(len).ok_or(VfsError::FileTooLarge)?;
    let src_meta = src.metadata()?;
    let same = src_meta.identity() == dst.metadata()?.identity();
    let overlapping_forward = same && offset > src_offset && offset - src_offset < len;
    let mut buf = vec![0u8; len.min(BLOCK) as usize];
    if overlapping_forward {
        // Only what the source holds can be copied; the size is known up front here.
        let len = len.min(src_meta.size.saturating_sub(src_offset));
        let mut left = len;
        while left > 0 {
            let n = left.min(BLOCK);
            let at = left - n;
            let b = buf
                .get_mut(..n as usize)
                .ok_or(VfsError::InvalidParameter)?;
            let got = src.read_at(b, src_offset + at)?;
            let b = b.get(..got).ok_or(VfsError::InvalidParameter)?;
            dst.write_at(b, offset + at)?;
            left = at;
        }
        return Ok(len);
    }
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(BLOCK) as usize;
        let b = buf.get_mut(..n).ok_or(VfsError::InvalidParameter)?;
        let got = src.read_at(b, src_offset + done)?;
        if got == 0 {
            break;
        }
        let b = b.get(..got).ok_or(VfsError::InvalidParameter)?;
        dst.write_at(b, offset + done)?;
        done += got as u64;
        if got < n {
            break;
        }
    }
    Ok(done)
}

/// Writes zeros over the part of `[offset, offset + len)` below the end of file.
pub(crate) fn write_zeros<H: VfsHandle + ?Sized>(
    h: &H,
    offset: u64,
    len: u64,
) -> Result<(), VfsError> {
    let size = h.metadata()?.size;
    let end = offset.saturating_add(len).min(size);
    if end <= offset {
        return Ok(());
    }
    let zeros = vec![0u8; (end - offset).min(BLOCK) as usize];
    let mut at = offset;
    while at < end {
        let n = (end - at).min(BLOCK) as usize;
        h.write_at(zeros.get(..n).ok_or(VfsError::InvalidParameter)?, at)?;
        at += n as u64;
    }
    Ok(())
}

/// The whole of `[offset, offset + len)` below the end of file as one allocated range.
pub(crate) fn whole_range<H: VfsHandle + ?Sized>(
    h: &H,
    offset: u64,
    len: u64,
    max: usize,
) -> Result<Vec<(u64, u64)>, VfsError> {
    let size = h.metadata()?.size;
    let end = offset.saturating_add(len).min(size);
    if end <= offset || max == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![(offset, end - offset)])
}
