//! cargo-fuzz target `transform`: see `lanshare_fuzz::transform`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::transform(data));
