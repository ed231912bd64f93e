//! cargo-fuzz target `connection`: see `lanshare_fuzz::connection`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::connection(data));
