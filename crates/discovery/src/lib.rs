//! lanshare-discovery (being written)
