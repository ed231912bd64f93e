//! cargo-fuzz target `auth_step`: see `lanshare_fuzz::auth_step`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::auth_step(data));
