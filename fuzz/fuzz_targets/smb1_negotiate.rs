//! cargo-fuzz target `smb1_negotiate`: see `lanshare_fuzz::smb1_negotiate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::smb1_negotiate(data));
