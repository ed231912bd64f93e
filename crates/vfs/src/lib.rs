//! lanshare-vfs (placeholder, being written)
