#!/usr/bin/env python3
"""Connect to an SMB server with smbprotocol's low-level API and check one expectation.

Used by tests/smbprotocol.rs; runnable by hand:

    python3 connect.py --host 127.0.0.1 --port 4455 --user u --password p --share share \
        --dialect 3.1.1 --expect ok

--expect ok               negotiate exactly --dialect with signing required, authenticate, check
                          the session is signed and not guest, tree connect (3.0/3.0.2: with
                          FSCTL_VALIDATE_NEGOTIATE_INFO), ECHO, tree disconnect, logoff; every
                          response after authentication must carry a valid signature.
--expect logon-failure    SESSION_SETUP must fail with STATUS_LOGON_FAILURE.
--expect bad-network-name TREE_CONNECT must fail with STATUS_BAD_NETWORK_NAME.

Exit status 0 and a last line starting with PASS when the expectation held; 1 and FAIL otherwise;
2 when smbprotocol is missing.
"""

import argparse
import sys
import uuid

try:
    from smbprotocol.connection import Connection, Dialects, SigningAlgorithms
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.header import Commands, NtStatus, Smb2Flags
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect
except ImportError as e:  # a missing module is a failure that names the fix
    print(f"FAIL smbprotocol is not importable ({e}): python3 -m pip install smbprotocol pyspnego")
    sys.exit(2)

DIALECTS = {
    "2.0.2": Dialects.SMB_2_0_2,
    "2.1": Dialects.SMB_2_1_0,
    "3.0": Dialects.SMB_3_0_0,
    "3.0.2": Dialects.SMB_3_0_2,
    "3.1.1": Dialects.SMB_3_1_1,
}
SIGNING = {
    "hmac-sha256": SigningAlgorithms.HMAC_SHA256,
    "aes-cmac": SigningAlgorithms.AES_CMAC,
    "aes-gmac": SigningAlgorithms.AES_GMAC,
}
STATUS_LOGON_FAILURE = 0xC000006D
STATUS_BAD_NETWORK_NAME = 0xC00000CC
SESSION_FLAG_IS_GUEST = 0x0001
SESSION_FLAG_IS_NULL = 0x0002

# smbprotocol checks a response's signature only when the SIGNED flag is set, so a server that
# forgot to sign would pass unnoticed: record every response that should have been signed.
unsigned = []
_orig_verify = Connection.verify_signature


def _strict_verify(self, header, session_id, force=False):
    command = header["command"].get_value()
    status = header["status"].get_value()
    message_id = header["message_id"].get_value()
    session = self.session_table.get(session_id)
    if (
        session is not None
        and session.signing_required
        and session.signing_key
        and command != Commands.SMB2_SESSION_SETUP
        and status != NtStatus.STATUS_PENDING
        and message_id != 0xFFFFFFFFFFFFFFFF
        and not header["flags"].has_flag(Smb2Flags.SMB2_FLAGS_SIGNED)
    ):
        unsigned.append(f"command {command} message {message_id}")
    return _orig_verify(self, header, session_id, force)


Connection.verify_signature = _strict_verify


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def status_of(exc):
    try:
        return exc.status
    except Exception:  # noqa: BLE001 - any failure to read it means "no status"
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--share", required=True)
    p.add_argument("--dialect", choices=sorted(DIALECTS), required=True)
    p.add_argument("--signing-algo", choices=sorted(SIGNING), help="3.1.1: offer only this one")
    p.add_argument(
        "--auth",
        choices=["negotiate", "ntlm"],
        default="negotiate",
        help="negotiate: NTLMSSP inside SPNEGO; ntlm: raw NTLMSSP tokens",
    )
    p.add_argument("--expect", choices=["ok", "logon-failure", "bad-network-name"], default="ok")
    a = p.parse_args()

    want = DIALECTS[a.dialect]
    conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=True)
    algos = [SIGNING[a.signing_algo]] if a.signing_algo else None
    conn.connect(dialect=want, timeout=30, preferred_signing_algos=algos)
    try:
        if conn.dialect != want:
            fail(f"asked for dialect {want:#06x} only, server chose {conn.dialect:#06x}")
        if a.signing_algo and conn.signing_algorithm_id != SIGNING[a.signing_algo]:
            fail(f"offered only {a.signing_algo}, server chose signing algorithm {conn.signing_algorithm_id}")
        print(f"negotiated dialect={conn.dialect:#06x} signing_algorithm={conn.signing_algorithm_id}")

        session = Session(conn, a.user, a.password, require_encryption=False, auth_protocol=a.auth)
        try:
            session.connect()
        except SMBResponseException as e:
            if a.expect == "logon-failure" and status_of(e) == STATUS_LOGON_FAILURE:
                print("PASS session setup failed with STATUS_LOGON_FAILURE")
                return
            fail(f"session setup failed: {e} (status {status_of(e)!r})")
        if a.expect == "logon-failure":
            fail("session setup succeeded with a wrong password")
        # session_flags are not kept by smbprotocol; a guest/null session has no signing key.
        if not session.signing_required or not session.signing_key:
            fail("session is not signed (guest or null session?)")
        print(f"session id={session.session_id:#x} auth={a.auth} signing_required={session.signing_required}")

        tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
        try:
            tree.connect(require_secure_negotiate=True)
        except SMBResponseException as e:
            if a.expect == "bad-network-name" and status_of(e) == STATUS_BAD_NETWORK_NAME:
                print("PASS tree connect failed with STATUS_BAD_NETWORK_NAME")
                session.disconnect()
                return
            fail(f"tree connect failed: {e} (status {status_of(e)!r})")
        if a.expect == "bad-network-name":
            fail(f"tree connect to unknown share {a.share!r} succeeded")
        print(f"tree id={tree.tree_connect_id:#x}")

        conn.echo(sid=session.session_id, timeout=30)
        tree.disconnect()
        session.disconnect()
        if unsigned:
            fail(f"unsigned responses on a signed session: {unsigned}")
        print(f"PASS dialect={conn.dialect:#06x} tree connected, echo, tree disconnect, logoff, all signed")
    finally:
        conn.disconnect(True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - report any client error as a test failure
        print(f"FAIL {type(e).__name__}: {e}")
        sys.exit(1)
