"""Password guessing from a chosen source address, to test logon throttling.

--source binds the client socket (e.g. 127.0.0.2, an attacker on the same LAN), --tries wrong
passwords are tried for --user, one session setup each on a fresh connection. Prints one line
per try: "TRY <n> <status-hex> <seconds>", then, with --then-password, one legitimate logon
"LEGIT <OK|status-hex>" from --legit-source (default 127.0.0.1).
"""

import argparse
import socket
import time
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.session import Session

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--user", required=True)
p.add_argument("--tries", type=int, default=12)
p.add_argument("--source", default="127.0.0.2")
p.add_argument("--then-user")
p.add_argument("--then-password")
p.add_argument("--legit-source", default="127.0.0.1")
a = p.parse_args()

_orig = socket.create_connection
source = [a.source]


def bound(address, timeout=None, source_address=None, **kw):
    return _orig(address, timeout, (source[0], 0), **kw)


socket.create_connection = bound


def logon(user, password):
    conn = Connection(uuid.uuid4(), a.host, a.port)
    conn.connect(Dialects.SMB_3_1_1)
    try:
        Session(conn, user, password).connect()
        return "OK"
    except SMBResponseException as e:
        return f"{e.status:#010x}"
    finally:
        conn.disconnect(True)


for n in range(1, a.tries + 1):
    t = time.monotonic()
    status = logon(a.user, f"wrong-guess-{n}")
    print(f"TRY {n} {status} {time.monotonic() - t:.3f}", flush=True)

if a.then_user:
    source[0] = a.legit_source
    print(f"LEGIT {logon(a.then_user, a.then_password)}", flush=True)
