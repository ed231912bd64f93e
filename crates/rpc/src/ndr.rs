//! NDR 2.0 transfer syntax ([C706] chapter 14, [MS-RPCE] 2.2.5), little-endian only, just as
//! much as srvsvc and wkssvc need: primitives with natural alignment, unique pointers as
//! referent ids, and conformant varying UTF-16 strings. The same code speaks NDR64
//! ([MS-RPCE] 2.2.5.3) when the context negotiated it: pointers (referent ids) and the
//! counts of conformant and varying arrays are then 8 bytes, aligned to 8; everything else
//! srvsvc and wkssvc use (u32 fields, UTF-16 units) is encoded alike, and structures holding
//! pointers start at an 8-byte boundary, which the pointer alignment gives.
//!
//! Alignment is relative to the start of the stub ([C706] 14.2.2), which is why both the
//! reader and the writer work on the stub alone, never on the whole PDU.

/// Why a stub could not be unmarshalled. Every one becomes the fault `nca_s_fault_ndr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NdrError {
    /// The stub ends before the value does.
    #[error("stub too short: needed {needed} bytes at offset {at}, {len} in the stub")]
    Short {
        at: usize,
        needed: usize,
        len: usize,
    },
    /// A value is out of its allowed range (counts, offsets, switch values).
    #[error("invalid NDR: {0}")]
    Invalid(&'static str),
}

/// A bounds-checked cursor over a request stub. Nothing it returns is allocated before the
/// bytes backing it were found to be present.
pub(crate) struct NdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Non-NULL pointers read so far; see [`NdrWriter::after`].
    pointers: u32,
    ndr64: bool,
}

impl<'a> NdrReader<'a> {
    #[cfg(test)]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self::with_syntax(buf, false)
    }

    /// A reader for NDR64 when `ndr64`, else NDR 2.0.
    pub(crate) fn with_syntax(buf: &'a [u8], ndr64: bool) -> Self {
        NdrReader {
            buf,
            pos: 0,
            pointers: 0,
            ndr64,
        }
    }

    fn u64(&mut self) -> Result<u64, NdrError> {
        self.align(8)?;
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| NdrError::Invalid("u64"))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Skips to the alignment of a pointer, which is also that of a structure or union that
    /// holds one.
    pub(crate) fn align_pointer(&mut self) -> Result<(), NdrError> {
        self.align(if self.ndr64 { 8 } else { 4 })
    }

    /// A conformance or variance count: u32 in NDR 2.0, u64 in NDR64 (a value beyond u32 is
    /// refused, as nothing here can be that large).
    fn size(&mut self) -> Result<u32, NdrError> {
        if self.ndr64 {
            u32::try_from(self.u64()?).map_err(|_| NdrError::Invalid("count beyond 32 bits"))
        } else {
            self.u32()
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        let short = NdrError::Short {
            at: self.pos,
            needed: n,
            len: self.buf.len(),
        };
        let end = self.pos.checked_add(n).ok_or(short.clone())?;
        let bytes = self.buf.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Skips the padding before a value of alignment `n` (a power of two).
    pub(crate) fn align(&mut self, n: usize) -> Result<(), NdrError> {
        let pad = self.pos.wrapping_neg() & (n - 1);
        self.take(pad).map(|_| ())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, NdrError> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A unique or full pointer's referent id: `true` when the pointee follows.
    pub(crate) fn pointer(&mut self) -> Result<bool, NdrError> {
        let present = if self.ndr64 {
            self.u64()? != 0
        } else {
            self.u32()? != 0
        };
        if present {
            self.pointers = self.pointers.saturating_add(1);
        }
        Ok(present)
    }

    #[cfg(test)]
    pub(crate) fn size_for_tests(&mut self) -> Result<u32, NdrError> {
        self.size()
    }

    #[cfg(test)]
    pub(crate) fn remaining_for_tests(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// A `[string] wchar_t*` pointee: conformant varying array of UTF-16 code units
    /// ([C706] 14.3.4.2), maximum count, offset, actual count, then the units. The terminating
    /// NUL is removed when present; a string without one is accepted, as Windows does.
    pub(crate) fn wstring(&mut self) -> Result<String, NdrError> {
        let max_count = self.size()?;
        let offset = self.size()?;
        let actual = self.size()?;
        if offset > max_count || actual > max_count - offset {
            return Err(NdrError::Invalid("string bounds exceed its maximum count"));
        }
        // Checked against the bytes present before anything is allocated for it.
        let units = usize::try_from(actual).map_err(|_| NdrError::Invalid("string length"))?;
        let bytes = self.take(
            units
                .checked_mul(2)
                .ok_or(NdrError::Invalid("string length"))?,
        )?;
        let mut code_units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        if code_units.last() == Some(&0) {
            code_units.pop();
        }
        Ok(String::from_utf16_lossy(&code_units))
    }

    /// A top-level `[unique, string] wchar_t*` parameter: its referent follows at once, since
    /// a top-level parameter's deferred data ends with the parameter ([C706] 14.3.12.3).
    pub(crate) fn unique_wstring(&mut self) -> Result<Option<String>, NdrError> {
        if self.pointer()? {
            self.wstring().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Strings longer than this many UTF-16 units are cut: nothing srvsvc returns comes near, and
/// it keeps every count well inside `u32`.
const MAX_STRING_UNITS: usize = 1 << 16;

/// The first referent id Windows and Samba use; any non-zero unique values would do.
const FIRST_REFERENT: u32 = 0x0002_0000;

/// Builds a response stub. Infallible: every length it writes comes from data it was given,
/// and strings are capped at [`MAX_STRING_UNITS`].
pub(crate) struct NdrWriter {
    buf: Vec<u8>,
    next_referent: u32,
    ndr64: bool,
}

impl NdrWriter {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        NdrWriter {
            buf: Vec::new(),
            next_referent: FIRST_REFERENT,
            ndr64: false,
        }
    }

    /// A writer for the response to the request `req` has read. Its referent ids continue
    /// the numbering of the request's pointers, as Samba's server does: any distinct
    /// non-zero values are valid NDR, and this choice makes our stubs byte-comparable with
    /// Samba's in the tests.
    pub(crate) fn after(req: &NdrReader<'_>) -> Self {
        NdrWriter {
            buf: Vec::new(),
            next_referent: FIRST_REFERENT.wrapping_add(req.pointers.wrapping_mul(4)),
            ndr64: req.ndr64,
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn align(&mut self, n: usize) {
        let pad = self.buf.len().wrapping_neg() & (n - 1);
        self.buf.resize(self.buf.len() + pad, 0);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Pads to the alignment of a pointer, which is also that of a structure or union that
    /// holds one.
    pub(crate) fn align_pointer(&mut self) {
        self.align(if self.ndr64 { 8 } else { 4 });
    }

    fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A conformance or variance count (u32 in NDR 2.0, u64 in NDR64).
    pub(crate) fn size(&mut self, v: u32) {
        if self.ndr64 {
            self.u64(u64::from(v));
        } else {
            self.u32(v);
        }
    }

    /// A unique pointer: a fresh referent id when `present`, else NULL (0). In NDR64 every
    /// unique pointer carries the same id, 0x20000, as Windows writes them: a unique pointer
    /// never aliases another, so the id only says "present", and some clients (the Rust `smb`
    /// crate) accept no other value.
    pub(crate) fn pointer(&mut self, present: bool) {
        let id = if present && self.ndr64 {
            FIRST_REFERENT
        } else if present {
            let id = self.next_referent;
            self.next_referent = self.next_referent.wrapping_add(4);
            id
        } else {
            0
        };
        if self.ndr64 {
            self.u64(u64::from(id));
        } else {
            self.u32(id);
        }
    }

    /// A conformant varying string with its terminating NUL counted, as `[string]` requires.
    pub(crate) fn wstring(&mut self, s: &str) {
        let mut units: Vec<u16> = s.encode_utf16().take(MAX_STRING_UNITS).collect();
        units.push(0);
        // At most MAX_STRING_UNITS + 1, so the conversion cannot fail.
        let count = u32::try_from(units.len()).unwrap_or(u32::MAX);
        self.size(count);
        self.size(0);
        self.size(count);
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wstring_round_trip_with_padding() {
        let mut w = NdrWriter::new();
        w.pointer(true);
        w.wstring("share");
        w.u32(7);
        let bytes = w.into_bytes();
        // referent, max 6, offset 0, actual 6, 12 bytes of UTF-16, then the u32 at 28.
        assert_eq!(&bytes[..4], &FIRST_REFERENT.to_le_bytes());
        assert_eq!(&bytes[4..8], &6u32.to_le_bytes());
        assert_eq!(bytes.len(), 32);
        let mut r = NdrReader::new(&bytes);
        assert_eq!(r.unique_wstring().unwrap().as_deref(), Some("share"));
        assert_eq!(r.u32().unwrap(), 7);
    }

    #[test]
    fn wstring_rejects_bounds_beyond_maximum() {
        // max 2, offset 0, actual 3
        let b = [
            2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x41, 0, 0x42, 0, 0x43, 0, 0, 0,
        ];
        assert!(matches!(
            NdrReader::new(&b).wstring(),
            Err(NdrError::Invalid(_))
        ));
        // max 0xffffffff, offset 1, actual 0xffffffff: offset + actual overflows max.
        let b = [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(NdrReader::new(&b).wstring().is_err());
    }

    #[test]
    fn huge_actual_count_fails_without_allocating() {
        let b = [
            0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0x41, 0,
        ];
        assert!(matches!(
            NdrReader::new(&b).wstring(),
            Err(NdrError::Short { .. })
        ));
    }

    #[test]
    fn alignment_is_relative_to_the_stub() {
        let mut w = NdrWriter::new();
        w.align(4);
        w.wstring("");
        w.u32(2);
        // max 1, offset 0, actual 1, one NUL unit, 2 bytes of padding, then the u32.
        assert_eq!(w.into_bytes().len(), 20);
        let b = [1, 0, 0xaa, 0xbb, 2, 0, 0, 0];
        let mut r = NdrReader::new(&b);
        r.take(2).unwrap();
        assert_eq!(r.u32().unwrap(), 2);
        let mut r = NdrReader::new(&b[..6]);
        r.take(2).unwrap();
        assert!(r.u32().is_err());
    }
}
