//! cargo-fuzz target `netbios_frame`: see `lanshare_fuzz::netbios_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::netbios_frame(data));
