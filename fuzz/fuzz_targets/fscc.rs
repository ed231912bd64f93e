//! cargo-fuzz target `fscc`: see `lanshare_fuzz::fscc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::fscc(data));
