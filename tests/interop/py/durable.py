#!/usr/bin/env python3
"""A durable handle survives a dropped TCP connection, through Python smbprotocol.

Used by tests/durable.rs; runnable by hand:

    python3 durable.py --host 127.0.0.1 --port 4455 --user u --password p --share share

Client A opens `durable.bin` with a v2 lease (read+handle caching) and a v2 durable handle
request, writes to it and takes an exclusive byte-range lock on its first 10 bytes. Then A's
TCP connection is dropped without LOGOFF. Client B (another ClientGuid, same user) opens the
file and fails to read the locked bytes (the lock outlived A's connection). A comes back on a
new connection and a new session: a reconnect naming the wrong CreateGuid is refused with
STATUS_OBJECT_NAME_NOT_FOUND, the right one returns the same FileId and the lease. A reads
its data through the reclaimed handle; B's conflicting lock fails while A holds it, and
succeeds once A's handle is gone.

Exit status 0 and a last line starting with PASS when all held; 1 and FAIL otherwise; 2 when
smbprotocol is missing.
"""

import argparse
import time
import uuid

from smbtest import connect, fail, server_args, status_of  # first: it checks that smbprotocol is installed
from smbprotocol.create_contexts import (
    CreateContextName,
    LeaseState,
    SMB2CreateContextRequest,
    SMB2CreateDurableHandleReconnectV2,
    SMB2CreateDurableHandleRequestV2,
    SMB2CreateDurableHandleResponseV2,
    SMB2CreateRequestLeaseV2,
    SMB2CreateResponseLeaseV2,
)
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    LockFlags,
    Open,
    RequestedOplockLevel,
    ShareAccess,
    SMB2LockElement,
)

NAME = "durable.bin"
DATA = b"durable data survives a dropped connection"
OBJECT_NAME_NOT_FOUND = 0xC0000034
FILE_LOCK_CONFLICT = 0xC0000054
LOCK_NOT_GRANTED = 0xC0000055


def connect_as(a, client_guid):
    conn, _, tree = connect(a, client_guid=client_guid, timeout=60)
    return conn, tree


def context(name, data):
    c = SMB2CreateContextRequest()
    c["buffer_name"] = name
    c["buffer_data"] = data
    return c


def lease_context(key):
    lease = SMB2CreateRequestLeaseV2()
    lease["lease_key"] = key
    lease["lease_state"] = LeaseState.SMB2_LEASE_READ_CACHING | LeaseState.SMB2_LEASE_HANDLE_CACHING
    lease["parent_lease_key"] = b"\x00" * 16
    lease["epoch"] = b"\x00\x00"
    return context(CreateContextName.SMB2_CREATE_REQUEST_LEASE_V2, lease)


def open_durable(tree, key, create_guid):
    dh = SMB2CreateDurableHandleRequestV2()
    dh["create_guid"] = create_guid
    f = Open(tree, NAME)
    out = f.create(
        ImpersonationLevel.Impersonation,
        FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
        0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
        CreateDisposition.FILE_OVERWRITE_IF,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
        [lease_context(key), context(CreateContextName.SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2, dh)],
        RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE,
    )
    return f, out or []


def reconnect(tree, key, file_id, create_guid):
    dh = SMB2CreateDurableHandleReconnectV2()
    dh["file_id"] = file_id
    dh["create_guid"] = create_guid
    f = Open(tree, NAME)
    out = f.create(
        ImpersonationLevel.Impersonation,
        FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
        0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
        [lease_context(key), context(CreateContextName.SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2, dh)],
        RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE,
    )
    return f, out or []


def lock_element(flags):
    e = SMB2LockElement()
    e["offset"] = 0
    e["length"] = 10
    e["flags"] = flags
    return e


EXCLUSIVE = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY


def main():
    p = argparse.ArgumentParser()
    server_args(p)
    a = p.parse_args()

    guid_a = uuid.uuid4()
    key = uuid.uuid4().bytes
    create_guid = uuid.uuid4()

    conn_a, tree_a = connect_as(a, guid_a)
    fa, out = open_durable(tree_a, key, create_guid)
    granted = [c for c in out if isinstance(c, SMB2CreateDurableHandleResponseV2)]
    if not granted:
        fail(f"no durable handle granted (response contexts: {[type(c).__name__ for c in out]})")
    timeout_ms = granted[0]["timeout"].get_value()
    if timeout_ms == 0:
        fail("durable handle granted with a zero timeout")
    fa.write(DATA, 0)
    fa.lock([lock_element(EXCLUSIVE)])
    file_id = fa.file_id
    print(f"A: durable open {file_id.hex()} granted for {timeout_ms} ms, locked 0..10", flush=True)

    # Drop A's TCP connection: no LOGOFF, no CLOSE.
    conn_a.disconnect(close=False)

    conn_b, tree_b = connect_as(a, uuid.uuid4())
    fb = Open(tree_b, NAME)
    fb.create(
        ImpersonationLevel.Impersonation,
        FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
        0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
    )
    s = status_of(lambda: fb.read(0, 10))
    if s != FILE_LOCK_CONFLICT:
        fail(f"B read the locked range of the disconnected durable open: status {s:#x}")
    print("B: the lock held while A was away (read: STATUS_FILE_LOCK_CONFLICT)", flush=True)

    # A comes back: new connection, new session, same user and ClientGuid (the lease's).
    conn_a2, tree_a2 = connect_as(a, guid_a)
    s = status_of(lambda: reconnect(tree_a2, key, file_id, uuid.uuid4()))
    if s != OBJECT_NAME_NOT_FOUND:
        fail(f"a reconnect with the wrong CreateGuid gave {s:#x}, not STATUS_OBJECT_NAME_NOT_FOUND")
    # The server may not have seen A's connection end yet: retry for a while.
    deadline = time.monotonic() + 60
    while True:
        try:
            fa2, out = reconnect(tree_a2, key, file_id, create_guid)
            break
        except SMBResponseException as e:
            if time.monotonic() > deadline:
                fail(f"durable reconnect failed: {e}")
            time.sleep(0.2)
    if fa2.file_id != file_id:
        fail(f"reconnect returned FileId {fa2.file_id.hex()}, not {file_id.hex()}")
    leases = [c for c in out if isinstance(c, SMB2CreateResponseLeaseV2)]
    if not leases or leases[0]["lease_key"].get_value() != key:
        fail("reconnect did not return the lease")
    got = fa2.read(0, len(DATA))
    if got != DATA:
        fail(f"read through the reclaimed handle: {got!r}")
    print("A: reclaimed the same FileId and lease, read its data", flush=True)

    s = status_of(lambda: fb.lock([lock_element(EXCLUSIVE)]))
    if s != LOCK_NOT_GRANTED:
        fail(f"B's conflicting lock while A holds it: status {s:#x}, not STATUS_LOCK_NOT_GRANTED")
    print("B: lock refused while A holds it", flush=True)

    # B's lock broke A's lease; smbprotocol cannot take an unsolicited lease break, so A's
    # client is done. Its connection drops with the break unanswered: the server closes
    # the open then (nobody could acknowledge it) and B's lock goes through.
    try:
        conn_a2.disconnect(close=False)
    except Exception:  # noqa: BLE001 - the client's reader thread already failed
        pass
    deadline = time.monotonic() + 60
    while True:
        s = status_of(lambda: fb.lock([lock_element(EXCLUSIVE)]))
        if s == 0:
            break
        if s != LOCK_NOT_GRANTED or time.monotonic() > deadline:
            fail(f"B's lock after A's handle went: status {s:#x}")
        time.sleep(0.2)
    print("B: lock granted once A's handle was gone", flush=True)

    fb.close()
    conn_b.disconnect()
    print("PASS durable open reclaimed with its lock and data after a dropped connection", flush=True)


if __name__ == "__main__":
    main()
