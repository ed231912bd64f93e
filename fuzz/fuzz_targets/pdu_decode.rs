//! cargo-fuzz target `pdu_decode`: see `lanshare_fuzz::pdu_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::pdu_decode(data));
