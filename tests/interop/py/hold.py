#!/usr/bin/env python3
"""A long-lived, authenticated, signed SMB client driven over stdin, for tests/hostile.rs.

It connects (3.1.1 unless --dialect says otherwise), authenticates, connects the tree, prints
"READY", then for each stdin line "echo" sends a signed ECHO and prints "OK" (or "FAIL ...").
A line "badsig" sends one ECHO whose signature is corrupted and prints what the server did:
"REJECTED 0x<status>", "CLOSED", "TIMEOUT" (no answer), "BAD-REPLY-SIGNATURE" (the error
reply's own signature did not verify) or "ACCEPTED" (executed anyway).
End of input: tree disconnect, logoff, and exit 0. While hostile traffic hits the server on
other connections, every ECHO on this one must still be answered.
"""

import argparse
import sys
import uuid

from smbtest import DIALECTS, server_args  # first: it checks that smbprotocol is installed

from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBConnectionClosed, SMBException, SMBResponseException
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

# Corrupts the signature of the next request sent (response=False); verification of the
# server's responses (response=True) is left alone.
corrupt_next = [False]
_orig_generate = Connection._generate_signature


def _generate(self, b_header, signing_key, message_id, response, command):
    sig = _orig_generate(self, b_header, signing_key, message_id, response, command)
    if corrupt_next[0] and not response:
        corrupt_next[0] = False
        sig = bytes(b ^ 0x5A for b in sig)
    return sig


Connection._generate_signature = _generate


def main():
    p = argparse.ArgumentParser()
    server_args(p)
    p.add_argument("--dialect", choices=sorted(DIALECTS), default="3.1.1")
    a = p.parse_args()

    conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=True)
    conn.connect(dialect=DIALECTS[a.dialect], timeout=30)
    try:
        session = Session(conn, a.user, a.password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
        tree.connect()
        print("READY", flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "echo":
                try:
                    conn.echo(sid=session.session_id, timeout=10)
                    print("OK", flush=True)
                except Exception as e:  # noqa: BLE001 - reported to the driving test
                    print(f"FAIL {type(e).__name__}: {e}", flush=True)
            elif cmd == "badsig":
                corrupt_next[0] = True
                try:
                    conn.echo(sid=session.session_id, timeout=10)
                    print("ACCEPTED", flush=True)
                except SMBResponseException as e:
                    print(f"REJECTED {e.status:#010x}", flush=True)
                except SMBConnectionClosed:
                    print("CLOSED", flush=True)
                    return
                except SMBException as e:
                    text = str(e).lower()
                    if "closed" in text or "not running" in text:
                        print("CLOSED", flush=True)
                    elif "signature" in text:
                        print(f"BAD-REPLY-SIGNATURE {e}", flush=True)
                    else:
                        print(f"TIMEOUT {e}", flush=True)
                    return
        tree.disconnect()
        session.disconnect()
    finally:
        conn.disconnect(True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
