#!/usr/bin/env python3
"""Named streams, extended attributes and a security descriptor through Python smbprotocol.

Used by tests/streams.rs; runnable by hand:

    python3 streams.py --host 127.0.0.1 --port 4455 --user u --password p --share share

Writes a file and a named stream `:lanshare-meta` of it and reads both back (the file's data
must be untouched by the stream's); sets two EAs and reads them back; sets a security
descriptor (owner, group, a DACL with one allow and one deny entry) and reads it back, owner
and DACL equal to what was set. Leaves `streams.txt` (with its stream) for the caller to look
at with smbclient `allinfo`.

Exit status 0 and a last line starting with PASS when all held; 1 and FAIL otherwise; 2 when
smbprotocol is missing.
"""

import argparse
import struct

from smbtest import fail  # first: it checks that smbprotocol is installed

import smbclient
from smbclient._io import SMBFileTransaction, SMBRawIO
from smbprotocol.open import (
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2SetInfoRequest,
    SMB2SetInfoResponse,
)

OWNER, GROUP, DACL = 1, 2, 4
READ_CONTROL, WRITE_DAC, WRITE_OWNER = 0x00020000, 0x00040000, 0x00080000
FILE_READ_ATTRIBUTES = 0x80


def sid(authority, *subs):
    return struct.pack("<BB", 1, len(subs)) + authority.to_bytes(6, "big") + b"".join(
        struct.pack("<I", s) for s in subs
    )


def ace(kind, mask, s):
    return struct.pack("<BBHI", kind, 0, 8 + len(s), mask) + s


def acl(aces):
    body = b"".join(aces)
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body


def descriptor(owner, group, dacl):
    # Self-relative: header, owner, group, DACL (SE_SELF_RELATIVE | SE_DACL_PRESENT).
    off_owner = 20
    off_group = off_owner + len(owner)
    off_dacl = off_group + len(group)
    head = struct.pack("<BBHIIII", 1, 0, 0x8004, off_owner, off_group, 0, off_dacl)
    return head + owner + group + dacl


def parts(sd):
    """(owner, group, dacl) bytes of a self-relative descriptor."""
    _, _, _, o, g, _, d = struct.unpack_from("<BBHIIII", sd)

    def sid_at(at):
        if at == 0:
            return None
        n = sd[at + 1]
        return sd[at : at + 8 + 4 * n]

    dacl = None
    if d:
        size = struct.unpack_from("<H", sd, d + 2)[0]
        dacl = sd[d : d + size]
    return sid_at(o), sid_at(g), dacl


def security(path, info, set_to=None, **kw):
    access = READ_CONTROL | FILE_READ_ATTRIBUTES
    if set_to is not None:
        access |= WRITE_DAC | WRITE_OWNER
    raw = SMBRawIO(path, mode="rb", share_access="rwd", desired_access=access, **kw)
    out = []
    with SMBFileTransaction(raw) as t:
        if set_to is not None:
            req = SMB2SetInfoRequest()
            req["info_type"] = 3
            req["file_info_class"] = 0
            req["additional_information"] = info
            req["file_id"] = raw.fd.file_id
            req["buffer"] = set_to

            def on_set(request):
                resp = raw.fd.connection.receive(request)
                r = SMB2SetInfoResponse()
                r.unpack(resp["data"].get_value())

            t += (req, on_set)
        q = SMB2QueryInfoRequest()
        q["info_type"] = 3
        q["file_info_class"] = 0
        q["output_buffer_length"] = 4096
        q["additional_information"] = info
        q["file_id"] = raw.fd.file_id

        def on_query(request):
            resp = raw.fd.connection.receive(request)
            r = SMB2QueryInfoResponse()
            r.unpack(resp["data"].get_value())
            out.append(r["buffer"].get_value())

        t += (q, on_query)
    return out[0]


def main():
    ap = argparse.ArgumentParser()
    for a in ("--host", "--port", "--user", "--password", "--share"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    kw = {"port": int(args.port)}
    smbclient.register_session(
        args.host, username=args.user, password=args.password, port=int(args.port), require_signing=True
    )
    base = rf"\\{args.host}\{args.share}\streams.txt"

    # A file, then a named stream of it.
    with smbclient.open_file(base, mode="wb", **kw) as f:
        f.write(b"main data")
    payload = b"stream data " * 100
    with smbclient.open_file(base + ":lanshare-meta", mode="wb", **kw) as f:
        f.write(payload)
    with smbclient.open_file(base + ":LANSHARE-META:$DATA", mode="rb", **kw) as f:
        got = f.read()
    if got != payload:
        fail(f"stream read back {len(got)} bytes, not the {len(payload)} written")
    with smbclient.open_file(base, mode="rb", **kw) as f:
        main_data = f.read()
    if main_data != b"main data":
        fail(f"the file's own data changed: {main_data[:40]!r}")
    print(f"stream ok ({len(payload)} bytes)")

    # Extended attributes (SET/QUERY_INFO FileFullEaInformation).
    smbclient.setxattr(base, b"LANSHARE.ONE", b"first value", **kw)
    smbclient.setxattr(base, b"LANSHARE.TWO", b"\x00\x01binary", **kw)
    if smbclient.getxattr(base, b"LANSHARE.ONE", **kw) != b"first value":
        fail("EA LANSHARE.ONE not read back")
    if smbclient.getxattr(base, b"LANSHARE.TWO", **kw) != b"\x00\x01binary":
        fail("EA LANSHARE.TWO not read back")
    names = smbclient.listxattr(base, **kw)
    if sorted(names) != [b"LANSHARE.ONE", b"LANSHARE.TWO"]:
        fail(f"EA names listed: {names!r}")
    print(f"eas ok ({len(names)})")

    # A security descriptor: the owner and group as Samba and lanshare name Unix ids, a DACL
    # that allows Everyone to read and denies Everyone WRITE_DAC.
    owner = sid(22, 1, 4242)
    group = sid(22, 2, 4343)
    everyone = sid(1, 0)
    dacl = acl([ace(1, 0x00040000, everyone), ace(0, 0x001200A9, everyone)])
    sd = descriptor(owner, group, dacl)
    back = security(base, OWNER | GROUP | DACL, set_to=sd, **kw)
    o, g, d = parts(back)
    if o != owner or g != group:
        fail(f"owner/group read back {o!r} {g!r}")
    if d != dacl:
        fail(f"DACL read back {d!r}, set {dacl!r}")
    # Only the DACL asked for: no owner in the answer.
    o, g, d = parts(security(base, DACL, **kw))
    if o is not None or g is not None or d != dacl:
        fail("a DACL-only query returned other parts")
    print("security descriptor ok")
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an SMB error is a failure with its message
        fail(f"{type(e).__name__}: {e}")
