//! The `lanshare` binary: everything lives in the library so that tests can call it.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lanshare::cli::main()
}
