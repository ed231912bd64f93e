//! Test support, for this crate's tests and the binary's: runs a test again inside a fresh
//! network namespace, where multicast cannot leave the machine and the standard ports (3702,
//! 5357, 5353) are free whatever the host runs.
//!
//! Inside: multicast on `lo`, and a veth pair v0/v1 with documentation-range addresses
//! (203.0.113.0/24, fd99::/64) standing in for a LAN. Nothing there has a route out.

use std::process::Command;

/// Set in the environment of the re-run test.
pub const ENV: &str = "LANSHARE_DISCOVERY_IN_NETNS";

/// The LAN-like addresses of the two ends of the veth pair.
pub const V0_V4: &str = "203.0.113.1";
pub const V1_V4: &str = "203.0.113.2";
pub const V1_V6: &str = "fd99::2";

const SETUP: &str = "sysctl -qw net.ipv6.conf.default.accept_dad=0 && \
    sysctl -qw net.ipv6.conf.all.accept_dad=0 && \
    ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && \
    ip link add v0 type veth peer name v1 && \
    ip addr add 203.0.113.1/24 dev v0 && ip addr add 203.0.113.2/24 dev v1 && \
    ip -6 addr add fd99::1/64 dev v0 nodad && ip -6 addr add fd99::2/64 dev v1 nodad && \
    ip link set v0 up && ip link set v1 up && exec \"$0\" \"$@\"";

/// True inside the namespace [`rerun`] made.
pub fn inside() -> bool {
    std::env::var_os(ENV).is_some()
}

/// How to make a network namespace here: as root a plain one; otherwise inside a user
/// namespace (`unshare -rn`), where we are root too. `None`: neither works.
fn unshare_flags() -> Option<&'static [&'static str]> {
    let works = |flags: &[&str]| {
        Command::new("unshare")
            .args(flags)
            .arg("true")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    [&["--net"][..], &["-r", "--net"][..]]
        .into_iter()
        .find(|f| works(f))
}

/// Re-runs test `name` (its full path, e.g. `tests::x`) of the current test binary in a new
/// network namespace and panics unless it passes there. Panics too when no namespace can be
/// made (no `unshare`, or neither root nor user namespaces): the test needs one and must not
/// pass without checking anything.
pub fn rerun(name: &str) {
    let Some(flags) = unshare_flags() else {
        panic!(
            "{name} needs a network namespace: run as root, or allow user namespaces (`unshare -rn true` must work), with `unshare` and `ip` (util-linux, iproute2) installed"
        );
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("cannot find the test binary: {e}"),
    };
    let status = Command::new("unshare")
        .args(flags)
        .args(["sh", "-c", SETUP])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV, "1")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{name} failed inside the network namespace: {s}"),
        Err(e) => panic!("cannot run unshare: {e}"),
    }
}
