//! lanshare-rpc (being written)
