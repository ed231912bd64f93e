//! lanshare-auth (placeholder, being written)
