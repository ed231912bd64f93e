//! The bounded reader and the back-patching writer that every decoder and encoder uses.
//!
//! All integers on the SMB2 wire are little-endian ([MS-SMB2] 1.8). Decoders never index a
//! slice directly: they go through [`Reader`], whose every read is bounds-checked and reports
//! what was being read when it fails, or through [`slice_at`] for the offset/length pairs that
//! SMB2 uses to locate variable buffers relative to the start of the header.

use crate::error::{Result, WireError};

/// A cursor over a byte slice whose reads cannot run past its end.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`; `what` names the structure in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    /// A reader over `buf`, positioned at `offset` (which may equal `buf.len()`).
    pub fn at(buf: &'a [u8], offset: usize, what: &'static str) -> Result<Self> {
        if offset > buf.len() {
            return Err(WireError::Truncated {
                what,
                need: offset,
                have: buf.len(),
            });
        }
        Ok(Reader {
            buf,
            pos: offset,
            what,
        })
    }

    /// The name used in errors.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The current position from the start of the underlying slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread rest, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The whole underlying slice.
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    fn truncated(&self, n: usize) -> WireError {
        WireError::Truncated {
            what: self.what,
            need: self.pos.saturating_add(n),
            have: self.buf.len(),
        }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated(n))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated(n))?;
        self.pos = end;
        Ok(s)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Skips `n` bytes (reserved fields, padding).
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// Moves to an absolute position (which may equal the length).
    pub fn seek(&mut self, pos: usize) -> Result<()> {
        if pos > self.buf.len() {
            return Err(WireError::Truncated {
                what: self.what,
                need: pos,
                have: self.buf.len(),
            });
        }
        self.pos = pos;
        Ok(())
    }

    /// Skips padding up to the next multiple of `align` (counted from the slice start). Padding
    /// past the end is tolerated only if nothing follows: the position stops at the end.
    pub fn align(&mut self, align: usize) -> Result<()> {
        let target = align_up(self.pos, align);
        self.pos = target.min(self.buf.len());
        Ok(())
    }

    /// A reader over the next `n` bytes, consuming them here.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>> {
        let s = self.bytes(n)?;
        Ok(Reader::new(s, what))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian i64 (FILETIME-style signed times, offsets).
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A 16-byte GUID kept in wire order.
    pub fn guid(&mut self) -> Result<[u8; 16]> {
        self.array()
    }

    /// `count` little-endian u16 values, with the count capped before allocating.
    pub fn u16_vec(&mut self, count: usize, max: usize) -> Result<Vec<u16>> {
        if count > max {
            return Err(WireError::TooMany {
                what: self.what,
                count,
                max,
            });
        }
        let raw = self.bytes(
            count
                .checked_mul(2)
                .ok_or_else(|| self.truncated(usize::MAX))?,
        )?;
        Ok(raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two or any non-zero value).
pub const fn align_up(n: usize, align: usize) -> usize {
    if align <= 1 {
        return n;
    }
    match n % align {
        0 => n,
        r => n + (align - r),
    }
}

/// The `len` bytes at `offset` of `pdu` (offsets in SMB2 count from the header start).
///
/// A zero length yields an empty slice whatever the offset, because clients leave the offset
/// of an empty buffer at 0 or pointing at the fixed part. A non-zero buffer must start at or
/// after `min_offset` (the end of the fixed part) so it cannot alias the header or the fields.
pub fn slice_at<'a>(
    pdu: &'a [u8],
    offset: usize,
    len: usize,
    min_offset: usize,
    what: &'static str,
) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if offset < min_offset {
        return Err(WireError::BadOffset { what });
    }
    let end = offset
        .checked_add(len)
        .ok_or(WireError::BadOffset { what })?;
    pdu.get(offset..end).ok_or(WireError::BadOffset { what })
}

/// An appending writer over a `Vec<u8>` whose positions are indices into that vec, so an
/// offset written on the wire is simply `pos()` when the vec starts at the SMB2 header.
#[derive(Debug)]
pub struct Writer<'v> {
    buf: &'v mut Vec<u8>,
}

impl<'v> Writer<'v> {
    /// Appends to `buf`.
    pub fn new(buf: &'v mut Vec<u8>) -> Self {
        Writer { buf }
    }

    /// The current length of the vec, i.e. the offset of the next byte written.
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian i64.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Pads with zeros to a multiple of `align` (counted from the vec start).
    pub fn align(&mut self, align: usize) {
        let target = align_up(self.buf.len(), align);
        self.buf.resize(target, 0);
    }

    /// Pads with zeros until the distance from `base` is a multiple of `align` (entry lists
    /// aligned relative to the start of their buffer).
    pub fn align_from(&mut self, base: usize, align: usize) {
        let rel = self.buf.len().saturating_sub(base);
        let target = base + align_up(rel, align);
        self.buf.resize(target.max(self.buf.len()), 0);
    }

    /// Appends a u16 placeholder and returns its position for [`Writer::patch_u16`].
    pub fn reserve_u16(&mut self) -> usize {
        let at = self.pos();
        self.u16(0);
        at
    }

    /// Appends a u32 placeholder and returns its position for [`Writer::patch_u32`].
    pub fn reserve_u32(&mut self) -> usize {
        let at = self.pos();
        self.u32(0);
        at
    }

    /// Overwrites two bytes written earlier. Positions come from `reserve_*`, so they are in
    /// range; an out-of-range position is ignored rather than panicking.
    pub fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(s) = self.buf.get_mut(at..at.saturating_add(2)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Overwrites four bytes written earlier (see [`Writer::patch_u16`]).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(s) = self.buf.get_mut(at..at.saturating_add(4)) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Access to the underlying vec.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

/// Converts a length or offset to a u16 wire field, failing instead of truncating.
pub fn to_u16(v: usize, what: &'static str) -> Result<u16> {
    u16::try_from(v).map_err(|_| WireError::TooLarge { what, value: v })
}

/// Converts a length or offset to a u32 wire field, failing instead of truncating.
pub fn to_u32(v: usize, what: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| WireError::TooLarge { what, value: v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_little_endian_and_stops_at_end() {
        let data = [1u8, 2, 3, 4, 5, 6, 7];
        let mut r = Reader::new(&data, "t");
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert_eq!(r.u32().unwrap(), 0x06050403);
        assert_eq!(r.remaining(), 1);
        let e = r.u16().unwrap_err();
        assert_eq!(
            e,
            WireError::Truncated {
                what: "t",
                need: 8,
                have: 7
            }
        );
        // a failed read consumes nothing
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.is_empty());
    }

    #[test]
    fn bytes_with_huge_length_fails_cleanly() {
        let data = [0u8; 4];
        let mut r = Reader::new(&data, "t");
        r.skip(1).unwrap();
        assert!(r.bytes(usize::MAX).is_err());
        assert!(r.u16_vec(usize::MAX / 2 + 1, usize::MAX).is_err());
        assert!(matches!(r.u16_vec(10, 4), Err(WireError::TooMany { .. })));
    }

    #[test]
    fn slice_at_checks_bounds_and_minimum() {
        let pdu = [0u8; 100];
        assert_eq!(slice_at(&pdu, 0, 0, 72, "x").unwrap().len(), 0);
        assert_eq!(slice_at(&pdu, 80, 20, 72, "x").unwrap().len(), 20);
        assert!(slice_at(&pdu, 80, 21, 72, "x").is_err());
        assert!(slice_at(&pdu, 70, 2, 72, "x").is_err());
        assert!(slice_at(&pdu, usize::MAX, 2, 72, "x").is_err());
    }

    #[test]
    fn writer_patches_and_aligns() {
        let mut v = vec![0xAA; 3];
        let mut w = Writer::new(&mut v);
        let at = w.reserve_u16();
        w.align(8);
        assert_eq!(w.pos(), 8);
        w.patch_u16(at, 0x1234);
        w.patch_u32(1000, 1); // ignored, no panic
        assert_eq!(v, [0xAA, 0xAA, 0xAA, 0x34, 0x12, 0, 0, 0]);
        assert_eq!(align_up(9, 8), 16);
        assert_eq!(align_up(0, 8), 0);
    }
}
