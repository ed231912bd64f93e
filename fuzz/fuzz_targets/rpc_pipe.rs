//! cargo-fuzz target `rpc_pipe`: see `lanshare_fuzz::rpc_pipe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lanshare_fuzz::rpc_pipe(data));
