//! cargo-fuzz target `wsd`: see `lanshare_fuzz::wsd`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::wsd(data));
