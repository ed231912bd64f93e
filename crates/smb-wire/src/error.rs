//! The one error type of the codec.

use crate::types::Command;

/// Why a frame, header or message could not be decoded (or encoded).
///
/// Every variant names what was being read, so the engine can log the exact defect and decide
/// between "answer STATUS_INVALID_PARAMETER" and "drop the connection".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before a field did.
    #[error("{what}: truncated, need {need} bytes, have {have}")]
    Truncated {
        /// The structure or field being read.
        what: &'static str,
        /// Bytes needed (from the start of the buffer being read).
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The first four bytes are not `0xFE 'S' 'M' 'B'` (or the protocol id expected there).
    #[error("bad protocol id {0:02X?}")]
    BadProtocolId([u8; 4]),
    /// A StructureSize field does not hold the value the spec fixes for this message.
    #[error("{command}: bad StructureSize {got}, expected {expected}")]
    BadStructureSize {
        /// The command whose body (or the header, as `Command(0xFFFF)`) was wrong.
        command: Command,
        /// The value the spec requires.
        expected: u16,
        /// The value received.
        got: u16,
    },
    /// An offset/length pair points outside the message, overlaps the fixed part, or is
    /// misaligned.
    #[error("{what}: offset or length out of bounds")]
    BadOffset {
        /// The buffer whose offset was wrong.
        what: &'static str,
    },
    /// A compound chain's NextCommand is not 0, is below 64, is not 8-aligned, or runs past the
    /// frame.
    #[error("bad NextCommand {next} at frame offset {at}")]
    BadNextCommand {
        /// Where the PDU with the bad field starts in the frame.
        at: usize,
        /// The NextCommand value.
        next: u32,
    },
    /// A NetBIOS frame announces more than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A NetBIOS session packet type other than session message (0x00) or keep-alive (0x85).
    #[error("bad NetBIOS frame type 0x{0:02X}")]
    BadFrameType(u8),
    /// A UTF-16LE string had an odd byte count or an unpaired surrogate.
    #[error("invalid UTF-16LE string")]
    BadUtf16,
    /// A count field exceeds what this codec accepts before allocating.
    #[error("{what}: count {count} exceeds limit {max}")]
    TooMany {
        /// What was being counted.
        what: &'static str,
        /// The count received.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A field holds a value the spec forbids (reserved bits, impossible combinations).
    #[error("{what}: invalid value {value:#x}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// The value received.
        value: u64,
    },
    /// The PDU's command is not the one the parser was asked to decode.
    #[error("expected a {expected} PDU, got {got}")]
    WrongCommand {
        /// The command the parser handles.
        expected: Command,
        /// The command in the header.
        got: Command,
    },
    /// A value is too large to be represented in its wire field when encoding.
    #[error("{what}: value {value} does not fit its wire field")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The value.
        value: usize,
    },
    /// Something the codec recognises but deliberately does not handle (e.g. a compressed
    /// transform).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// Shorthand for results of this crate.
pub type Result<T, E = WireError> = core::result::Result<T, E>;
