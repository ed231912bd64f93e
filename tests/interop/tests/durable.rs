//! Durable handles through a client nobody here wrote (issue 7, Done-when): Python
//! smbprotocol (`py/durable.py`) opens a file with a v2 durable handle and a lease, writes it,
//! locks a range, and loses its TCP connection without a LOGOFF. Another client's read of the
//! locked range fails while the open is detached; the first client comes back on a new
//! connection and session, is refused with a wrong CreateGuid, reclaims the same FileId with
//! the right one, and reads its data; the other client's conflicting lock fails while the
//! reclaimed open holds the range and succeeds once that handle is gone.

use lanshare_interop::clients::{smbprotocol_script, tail};
use lanshare_interop::{ServerOptions, TestServer};

#[test]
fn durable_open_survives_a_dropped_connection() {
    let server = TestServer::start(ServerOptions::default()).expect("start the server under test");
    let out = smbprotocol_script(&server, "durable.py", &[]).expect("run py/durable.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict.starts_with("PASS"),
        "durable.py against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        out.describe(),
        tail(&server.diagnostics(), 30)
    );
}
