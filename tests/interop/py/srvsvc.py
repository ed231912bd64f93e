#!/usr/bin/env python3
"""List shares and server information over SMB with Impacket's srvsvc client, as `net view`,
Explorer and Impacket's own tools do, and print what came back as one JSON object.

Used by tests/browse.rs, which compares it with the server's configuration; runnable by hand:

    python3 srvsvc.py --host 127.0.0.1 --port 4455 --user u --password p \
        --dialect 3.0 --get-share docs --get-share 'data$'

Connects (a dialect from --dialect; an empty --user for an anonymous session), tree-connects
IPC$, opens \\srvsvc, binds, and calls NetrShareEnum at levels 1 and 2, NetrShareGetInfo at
level 2 for each --get-share, and NetrServerGetInfo at level 101.

Output: one JSON line {"dialect": ..., "enum1": [[name, type, remark]...],
"enum2": [[name, type, remark, path, max_uses, current_uses]...],
"get": {name: [type, remark, path] or "error text"}, "server101": {...}}, then a last line
starting with PASS. Exit status 1 and a last line starting with FAIL on any error; 2 when
Impacket is missing.
"""

import argparse
import json
import sys

try:
    from impacket import smb3structs
    from impacket.dcerpc.v5 import srvs, transport
    from impacket.dcerpc.v5.rpcrt import DCERPCException
    from impacket.smbconnection import SMBConnection
except ImportError as e:  # a missing module is a failure that names the fix
    print(f"FAIL impacket is not importable ({e}): python3 -m pip install impacket")
    sys.exit(2)

DIALECTS = {
    "2.0.2": smb3structs.SMB2_DIALECT_002,
    "2.1": smb3structs.SMB2_DIALECT_21,
    "3.0": smb3structs.SMB2_DIALECT_30,
}


def text(v):
    """An NDR wide string as Impacket returns it, without the terminating NUL."""
    return str(v).rstrip("\x00")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--dialect", choices=sorted(DIALECTS), default="3.0")
    ap.add_argument("--get-share", action="append", default=[])
    a = ap.parse_args()

    conn = SMBConnection(
        a.host, a.host, sess_port=a.port, timeout=30, preferredDialect=DIALECTS[a.dialect]
    )
    conn.login(a.user, a.password)
    rpc = transport.SMBTransport(
        a.host, a.port, filename=r"\srvsvc", smb_connection=conn
    )
    dce = rpc.get_dce_rpc()
    dce.connect()
    dce.bind(srvs.MSRPC_UUID_SRVS)

    out = {"dialect": hex(conn.getDialect())}
    r = srvs.hNetrShareEnum(dce, 1)
    out["enum1"] = [
        [text(e["shi1_netname"]), e["shi1_type"], text(e["shi1_remark"])]
        for e in r["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"]
    ]
    r = srvs.hNetrShareEnum(dce, 2)
    out["enum2"] = [
        [
            text(e["shi2_netname"]),
            e["shi2_type"],
            text(e["shi2_remark"]),
            text(e["shi2_path"]),
            e["shi2_max_uses"],
            e["shi2_current_uses"],
        ]
        for e in r["InfoStruct"]["ShareInfo"]["Level2"]["Buffer"]
    ]
    out["get"] = {}
    for name in a.get_share:
        try:
            r = srvs.hNetrShareGetInfo(dce, name + "\x00", 2)
            i = r["InfoStruct"]["ShareInfo2"]
            out["get"][name] = [
                i["shi2_type"],
                text(i["shi2_remark"]),
                text(i["shi2_path"]),
            ]
        except DCERPCException as e:
            out["get"][name] = f"error: {e}"
    r = srvs.hNetrServerGetInfo(dce, 101)
    i = r["InfoStruct"]["ServerInfo101"]
    out["server101"] = {
        "platform_id": i["sv101_platform_id"],
        "name": text(i["sv101_name"]),
        "version_major": i["sv101_version_major"],
        "version_minor": i["sv101_version_minor"],
        "type": i["sv101_type"],
        "comment": text(i["sv101_comment"]),
    }
    dce.disconnect()
    conn.logoff()
    print(json.dumps(out))
    print("PASS srvsvc answered every call")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # every failure is a verdict line for the Rust side
        print(f"FAIL {type(e).__name__}: {e}")
        sys.exit(1)
