//! Direct-TCP framing ([MS-SMB2] 2.1): a 4-byte header, a zero type byte then a 24-bit
//! big-endian length, before every SMB2 message. Port 139 sessions use the same header with
//! NetBIOS session-service types ([RFC 1002] 4.3), of which only keep-alive (0x85) is
//! tolerated here.

use crate::error::{Result, WireError};

/// The default cap on one frame: an 8 MiB READ/WRITE payload plus 64 KiB for headers,
/// compounds and transform overhead. Callers pass their own cap to [`frame_len`].
pub const MAX_FRAME: usize = 8 * 1024 * 1024 + 64 * 1024;

/// The largest length the 24-bit field can carry.
pub const MAX_ENCODABLE: usize = 0x00FF_FFFF;

/// Session message type ([RFC 1002] 4.3.1).
pub const SESSION_MESSAGE: u8 = 0x00;
/// Session keep-alive type ([RFC 1002] 4.3.7).
pub const SESSION_KEEP_ALIVE: u8 = 0x85;

/// What a 4-byte frame header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    /// A message of this many bytes follows (may be 0; the caller decides what that means).
    Message(usize),
    /// A keep-alive with no payload: read the next header.
    KeepAlive,
}

/// Decodes a frame header, refusing types other than message/keep-alive and lengths above
/// `max` (checked before the caller allocates anything).
pub fn frame_len(hdr: [u8; 4], max: usize) -> Result<FrameHeader> {
    let [kind, a, b, c] = hdr;
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    match kind {
        SESSION_MESSAGE => {
            if len > max {
                Err(WireError::FrameTooLarge { len, max })
            } else {
                Ok(FrameHeader::Message(len))
            }
        }
        // A keep-alive carries no payload; a non-zero length is a malformed peer.
        SESSION_KEEP_ALIVE if len == 0 => Ok(FrameHeader::KeepAlive),
        other => Err(WireError::BadFrameType(other)),
    }
}

/// Writes the header for a `len`-byte message. Lengths above [`MAX_ENCODABLE`] are a caller
/// bug (responses are sized by the engine); use [`try_write_frame_header`] to check.
pub fn write_frame_header(len: usize, out: &mut [u8; 4]) {
    debug_assert!(len <= MAX_ENCODABLE, "frame length {len} exceeds 24 bits");
    let len = len.min(MAX_ENCODABLE);
    out[0] = SESSION_MESSAGE;
    out[1] = (len >> 16) as u8;
    out[2] = (len >> 8) as u8;
    out[3] = len as u8;
}

/// Like [`write_frame_header`] but refuses lengths that do not fit in 24 bits.
pub fn try_write_frame_header(len: usize, out: &mut [u8; 4]) -> Result<()> {
    if len > MAX_ENCODABLE {
        return Err(WireError::FrameTooLarge {
            len,
            max: MAX_ENCODABLE,
        });
    }
    write_frame_header(len, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lengths_and_keepalive() {
        assert_eq!(
            frame_len([0, 0, 0, 0x44], MAX_FRAME),
            Ok(FrameHeader::Message(0x44))
        );
        assert_eq!(
            frame_len([0, 0x01, 0x02, 0x03], MAX_FRAME),
            Ok(FrameHeader::Message(0x010203))
        );
        assert_eq!(
            frame_len([0x85, 0, 0, 0], MAX_FRAME),
            Ok(FrameHeader::KeepAlive)
        );
        assert_eq!(
            frame_len([0x85, 0, 0, 1], MAX_FRAME),
            Err(WireError::BadFrameType(0x85))
        );
        assert_eq!(
            frame_len([0x81, 0, 0, 1], MAX_FRAME),
            Err(WireError::BadFrameType(0x81))
        );
        assert_eq!(
            frame_len([0, 0xFF, 0xFF, 0xFF], MAX_FRAME),
            Err(WireError::FrameTooLarge {
                len: 0xFF_FFFF,
                max: MAX_FRAME
            })
        );
        assert_eq!(
            frame_len([0, 0, 1, 1], 256),
            Err(WireError::FrameTooLarge { len: 257, max: 256 })
        );
        assert_eq!(frame_len([0, 0, 1, 0], 256), Ok(FrameHeader::Message(256)));
    }

    #[test]
    fn writes_round_trip() {
        for len in [0usize, 1, 0x1234, MAX_FRAME, MAX_ENCODABLE] {
            let mut h = [9u8; 4];
            write_frame_header(len, &mut h);
            assert_eq!(frame_len(h, MAX_ENCODABLE), Ok(FrameHeader::Message(len)));
        }
        let mut h = [0u8; 4];
        assert!(try_write_frame_header(MAX_ENCODABLE + 1, &mut h).is_err());
    }
}
