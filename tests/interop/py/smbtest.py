"""What the smbprotocol scripts in this folder share: the check that smbprotocol is installed
(a missing client is a failure that names the fix, never a skip), the server arguments every
script takes, one way to connect a session and a tree, and the failure and status helpers.

Imported by the scripts next to it (Python puts a script's own folder first on sys.path).
"""

import sys
import uuid

try:
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect
except ImportError as e:
    print(f"FAIL smbprotocol is not importable ({e}): python3 -m pip install smbprotocol pyspnego", flush=True)
    sys.exit(2)

DIALECTS = {
    "2.0.2": Dialects.SMB_2_0_2,
    "2.1": Dialects.SMB_2_1_0,
    "3.0": Dialects.SMB_3_0_0,
    "3.0.2": Dialects.SMB_3_0_2,
    "3.1.1": Dialects.SMB_3_1_1,
}


def fail(msg):
    """Ends the script: exit status 1 and a last line the driving test shows."""
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def server_args(p, share=True):
    """The arguments that say which server, account (and share) to use."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    if share:
        p.add_argument("--share", required=True)


def status_of(call):
    """The NTSTATUS `call()` ended with: 0 when it succeeded."""
    try:
        call()
    except SMBResponseException as e:
        return e.status
    return 0


def connect(a, dialect="3.1.1", signing=True, encryption=False, client_guid=None, timeout=30):
    """A connection, an authenticated session and a connected tree on `a.share`.

    `dialect` is a key of DIALECTS, or None for the highest both sides know. `signing`
    is what the client requires (the server may still require it)."""
    conn = Connection(client_guid or uuid.uuid4(), a.host, a.port, require_signing=signing)
    conn.connect(dialect=DIALECTS[dialect] if dialect else None, timeout=timeout)
    session = Session(conn, a.user, a.password, require_encryption=encryption)
    session.connect()
    tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
    tree.connect()
    return conn, session, tree
