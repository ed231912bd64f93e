//! File-system payloads carried by QUERY_INFO, SET_INFO, QUERY_DIRECTORY and CHANGE_NOTIFY
//! ([MS-FSCC] 2.4 file information classes, 2.5 file system information classes, 2.7.1
//! FILE_NOTIFY_INFORMATION) and security descriptors ([MS-DTYP] 2.4).
//!
//! Times are FILETIME values kept as `u64` (100 ns since 1601); in SET_INFO inputs 0 means
//! "leave unchanged" and `u64::MAX` (-1) "stop updating this time" ([MS-FSCC] 2.4.7).
//!
//! Layout:
//! - [`file_info`]: the per-file classes (Basic, Standard, All, NetworkOpen, Stream, Rename,
//!   Disposition, EndOfFile, ...), encoders and, for SET_INFO classes, decoders.
//! - [`fs_info`]: the file system classes (Volume, Size, FullSize, Device, Attribute, ...).
//! - [`dir`]: directory entries and [`dir::DirWriter`], which fills a QUERY_DIRECTORY buffer
//!   up to the client's exact limit.
//! - [`notify`]: FILE_NOTIFY_INFORMATION entries for CHANGE_NOTIFY.
//! - [`security`]: SIDs, ACLs, ACEs and self-relative security descriptors.

pub mod dir;
pub mod file_info;
pub mod fs_info;
pub mod notify;
pub mod security;

pub use dir::{DirEntry, DirWriter};
pub use file_info::*;
pub use fs_info::*;
pub use security::{Ace, Acl, SecurityDescriptor, Sid};
