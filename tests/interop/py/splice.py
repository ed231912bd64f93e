#!/usr/bin/env python3
"""Large unsigned WRITEs, the kind lanshare takes from the socket straight into a file in
memory, for tests/splice.rs: data round trips, and refused WRITEs (a read-only open, a range
locked by another open, a DataOffset that lies about the frame) get their status while the next
request on the same connection still works.

SMB 3.0.2 without signing (the server under test must not require it). Prints one line per
check and "PASS" at the end; "FAIL ..." and exit 1 on the first failure.
"""

import argparse
import os

from smbtest import connect, fail, server_args, status_of  # first: it checks that smbprotocol is installed
from smbprotocol.exceptions import SMBConnectionClosed, SMBException, SMBResponseException
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    LockFlags,
    Open,
    ShareAccess,
    SMB2LockElement,
    SMB2WriteRequest,
)

ACCESS_DENIED = 0xC0000022
FILE_LOCK_CONFLICT = 0xC0000054
MIB = 1024 * 1024


def connect_unsigned(a):
    conn, session, tree = connect(a, "3.0.2", signing=False, timeout=60)
    if session.signing_required:
        fail("the session signs: this script needs a server that does not require signing")
    return conn, session, tree


def open_file(tree, name, access, disposition=CreateDisposition.FILE_OPEN_IF):
    f = Open(tree, name)
    f.create(
        ImpersonationLevel.Impersonation,
        access,
        0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
        disposition,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
    )
    return f


RW = FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE


def read_all(f, length):
    out = b""
    while len(out) < length:
        chunk = f.read(len(out), min(MIB, length - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def main():
    p = argparse.ArgumentParser()
    server_args(p)
    a = p.parse_args()

    conn, session, tree = connect_unsigned(a)

    # 1. Round trip: 1 MiB at 0, 300 KiB after a gap, 64 KiB (the smallest spliced size).
    data = os.urandom(MIB)
    tail = os.urandom(300 * 1024)
    small = os.urandom(64 * 1024)
    f = open_file(tree, "splice.bin", RW, CreateDisposition.FILE_OVERWRITE_IF)
    f.write(data, 0)
    f.write(tail, 2 * MIB + 7)
    f.write(small, MIB // 2)
    want = bytearray(data) + bytes(MIB + 7) + tail
    want[MIB // 2 : MIB // 2 + len(small)] = small
    got = read_all(f, len(want))
    if got != bytes(want):
        fail(f"read back {len(got)} bytes that differ from the {len(want)} written")
    print("round trip: 3 large writes read back equal", flush=True)

    # 2. A read-only open: the WRITE is refused, its data discarded, and the connection goes on.
    ro = open_file(tree, "splice.bin", FilePipePrinterAccessMask.GENERIC_READ)
    s = status_of(lambda: ro.write(os.urandom(256 * 1024), 0))
    if s != ACCESS_DENIED:
        fail(f"a large WRITE on a read-only open gave {s:#x}, not STATUS_ACCESS_DENIED")
    if read_all(ro, 4096) != bytes(want[:4096]):
        fail("after the refused WRITE, a READ on the same connection returned other bytes")
    conn.echo(sid=session.session_id, timeout=30)
    print("read-only open: STATUS_ACCESS_DENIED, then READ and ECHO answered", flush=True)

    # 3. A range locked by another open: FILE_LOCK_CONFLICT, the file unchanged, then a
    # WRITE outside the range succeeds on the same connection.
    lock = SMB2LockElement()
    lock["offset"] = 0
    lock["length"] = 10
    lock["flags"] = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    f.lock([lock])
    other = open_file(tree, "splice.bin", RW)
    s = status_of(lambda: other.write(os.urandom(128 * 1024), 0))
    if s != FILE_LOCK_CONFLICT:
        fail(f"a large WRITE over another open's locked range gave {s:#x}, not STATUS_FILE_LOCK_CONFLICT")
    more = os.urandom(128 * 1024)
    other.write(more, 64 * 1024)
    want[64 * 1024 : 64 * 1024 + len(more)] = more
    # Read through the lock's owner: the other open may not read the locked bytes.
    if read_all(f, len(want)) != bytes(want):
        fail("after the refused WRITE the file holds other bytes than expected")
    print("locked range: STATUS_FILE_LOCK_CONFLICT, then a WRITE beside it succeeded", flush=True)
    other.close()
    ro.close()

    # 4. A WRITE whose DataOffset puts its data partly beyond the frame: refused (or the
    # connection ended); the server goes on serving new connections either way.
    req = SMB2WriteRequest()
    req["data_offset"] = 0x70 + 4096
    req["offset"] = 0
    req["file_id"] = f.file_id
    req["buffer"] = os.urandom(256 * 1024)
    try:
        sent = conn.send(req, sid=session.session_id, tid=tree.tree_connect_id)
        conn.receive(sent, timeout=30)
        fail("a WRITE whose DataOffset lies about the frame succeeded")
    except SMBResponseException as e:
        print(f"lying DataOffset: refused with {e.status:#x}", flush=True)
    except (SMBConnectionClosed, SMBException, OSError) as e:
        print(f"lying DataOffset: connection ended ({type(e).__name__})", flush=True)
    conn2, _, tree2 = connect_unsigned(a)
    g = open_file(tree2, "splice.bin", RW)
    # From byte 16: the first 10 are still locked by the first connection's open.
    if g.read(16, 4080) != bytes(want[16:4096]):
        fail("after the lying WRITE the file's first bytes changed")
    g.close()
    conn2.disconnect()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
