//! Per-open state ([MS-SMB2] 3.3.1.10 Open) and the one mapping from storage errors to NTSTATUS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lanshare_vfs::{Vfs, VfsError, VfsHandle, VfsPath};
use smb_wire::{FileId, NtStatus};

pub(crate) struct Open {
    pub file_id: FileId,
    pub tree_id: u32,
    pub path: VfsPath,
    pub handle: Arc<dyn VfsHandle>,
    pub vfs: Arc<dyn Vfs>,
    pub is_dir: bool,
    /// Open.GrantedAccess.
    pub access: u32,
    pub delete_on_close: AtomicBool,
    /// Set by the first close; later closes (logoff racing CLOSE) do nothing.
    pub closed: AtomicBool,
}

impl Open {
    /// Release the open once; delete-on-close removes the object now.
    ///
    /// Blocking (a filesystem call): callers on the async side wrap it in spawn_blocking.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.delete_on_close.load(Ordering::Acquire) {
            let r = if self.is_dir {
                self.vfs.remove_dir(&self.path)
            } else {
                self.vfs.remove_file(&self.path)
            };
            if let Err(e) = r {
                tracing::warn!(path = %self.path, error = %e, "delete-on-close failed");
            }
        }
    }

    pub fn has_access(&self, mask: u32) -> bool {
        self.access & mask != 0
    }
}

/// The one place a storage error becomes an NTSTATUS ([MS-ERREF] 2.3; the choices follow what
/// Windows returns for the same condition, per [MS-FSA]).
pub(crate) fn vfs_status(e: &VfsError) -> NtStatus {
    match e {
        VfsError::NotFound => NtStatus::OBJECT_NAME_NOT_FOUND,
        VfsError::PathNotFound => NtStatus::OBJECT_PATH_NOT_FOUND,
        VfsError::Exists => NtStatus::OBJECT_NAME_COLLISION,
        VfsError::NotEmpty => NtStatus::DIRECTORY_NOT_EMPTY,
        VfsError::IsADirectory => NtStatus::FILE_IS_A_DIRECTORY,
        VfsError::NotADirectory => NtStatus::NOT_A_DIRECTORY,
        VfsError::AccessDenied => NtStatus::ACCESS_DENIED,
        VfsError::ReadOnly => NtStatus::MEDIA_WRITE_PROTECTED,
        VfsError::SharingViolation => NtStatus::SHARING_VIOLATION,
        VfsError::LockConflict => NtStatus::FILE_LOCK_CONFLICT,
        VfsError::DeletePending => NtStatus::DELETE_PENDING,
        VfsError::NoSpace => NtStatus::DISK_FULL,
        VfsError::FileTooLarge => NtStatus::DISK_FULL,
        VfsError::NameTooLong => NtStatus::OBJECT_NAME_INVALID,
        VfsError::InvalidName => NtStatus::OBJECT_NAME_INVALID,
        VfsError::StreamNotSupported => NtStatus::OBJECT_NAME_NOT_FOUND,
        VfsError::InvalidParameter => NtStatus::INVALID_PARAMETER,
        VfsError::CrossDevice => NtStatus::NOT_SAME_DEVICE,
        VfsError::TooManyOpenFiles => NtStatus::TOO_MANY_OPENED_FILES,
        VfsError::NotSupported => NtStatus::NOT_SUPPORTED,
        _ => NtStatus::UNEXPECTED_IO_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vfs_error_table() {
        let table = [
            (VfsError::NotFound, 0xC000_0034u32),
            (VfsError::PathNotFound, 0xC000_003A),
            (VfsError::Exists, 0xC000_0035),
            (VfsError::NotEmpty, 0xC000_0101),
            (VfsError::IsADirectory, 0xC000_00BA),
            (VfsError::NotADirectory, 0xC000_0103),
            (VfsError::AccessDenied, 0xC000_0022),
            (VfsError::SharingViolation, 0xC000_0043),
            (VfsError::DeletePending, 0xC000_0056),
            (VfsError::NoSpace, 0xC000_007F),
            (VfsError::InvalidName, 0xC000_0033),
            (VfsError::TooManyOpenFiles, 0xC000_011F),
        ];
        for (e, code) in table {
            assert_eq!(vfs_status(&e).0, code, "{e:?}");
        }
    }
}
