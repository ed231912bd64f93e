"""An independent NTLM / SPNEGO initiator (pyspnego) driven line by line by tests/pyspnego.rs.

Usage: pyspnego_client.py MODE USER PASSWORD
MODE is "ntlm" (raw NTLMSSP), "negotiate" (SPNEGO as pyspnego sends it) or "krb-first"
(a hand-built SPNEGO exchange whose first mech is Kerberos, with NTLM second, so that the
acceptor must pick NTLM and the mechListMIC becomes mandatory); "krb-first-late-mic" sends
the mechListMIC only after the acceptor's, "krb-first-bad-mic" sends a wrong one.

Protocol on stdout: "TOKEN <hex>" for each initiator token; on stdin the test answers
"CONTINUE <hex>", "DONE [<hex>]" or "FAIL". After DONE the final token (if any) is processed and
"COMPLETE <session-key-hex> <server-mic-checked 0|1>" is printed. Any failure prints "ERROR ..."
and exits non-zero.
"""

import sys
import traceback

import spnego
from spnego._spnego import NegTokenInit, NegTokenResp, pack_mech_type_list, unpack_token

KRB5_OID = "1.2.840.113554.1.2.2"
NTLM_OID = "1.3.6.1.4.1.311.2.2.10"


def send(token):
    print("TOKEN " + (token or b"").hex(), flush=True)


def recv():
    line = sys.stdin.readline().split()
    if not line:
        raise SystemExit("test closed stdin")
    kind = line[0]
    data = bytes.fromhex(line[1]) if len(line) > 1 else b""
    return kind, data


def plain(mode, user, password):
    ctx = spnego.client(user, password, hostname="lanshare", service="cifs", protocol=mode)
    send(ctx.step())
    while True:
        kind, data = recv()
        if kind == "CONTINUE":
            send(ctx.step(data))
        elif kind == "DONE":
            mic_checked = 0
            if data:
                parsed = unpack_token(data)
                mic_checked = int(bool(getattr(parsed, "mech_list_mic", None)))
                # Verifies the acceptor's mechListMIC; raises if it is wrong.
                out = ctx.step(data)
                if out:
                    raise RuntimeError("initiator wanted to send more after completion")
            if not ctx.complete:
                raise RuntimeError("initiator not complete after the final token")
            print("COMPLETE %s %d" % (ctx.session_key.hex(), mic_checked), flush=True)
            return
        else:
            raise SystemExit(1)


def krb_first(user, password, variant):
    """variant: "" (MIC with AUTHENTICATE), "late-mic" (MIC only after the acceptor's), or
    "bad-mic" (a MIC over the wrong bytes)."""
    ntlm = spnego.client(user, password, hostname="lanshare", service="cifs", protocol="ntlm")
    # Ask the NTLM context to put a MIC in AUTHENTICATE, as pyspnego's own SPNEGO layer does.
    ntlm._requires_mech_list_mic
    mech_types = [KRB5_OID, NTLM_OID]
    mech_list = pack_mech_type_list(mech_types)
    send(NegTokenInit(mech_types=mech_types, mech_token=b"\x60\x03\x06\x01\x00").pack())
    kind, data = recv()
    resp = unpack_token(data)
    if kind != "CONTINUE" or resp.supported_mech != NTLM_OID or resp.response_token:
        raise RuntimeError("expected accept-incomplete naming NTLM, got %r" % (resp,))
    send(NegTokenResp(response_token=ntlm.step()).pack())
    kind, data = recv()
    resp = unpack_token(data)
    if kind != "CONTINUE":
        raise SystemExit(1)
    auth = ntlm.step(resp.response_token)
    if variant == "late-mic":
        send(NegTokenResp(response_token=auth).pack())
        kind, data = recv()
        resp = unpack_token(data)
        if kind != "CONTINUE" or resp.neg_state != 1 or not resp.mech_list_mic or resp.response_token:
            raise RuntimeError("expected accept-incomplete with the acceptor's MIC, got %r" % (resp,))
        ntlm.verify(mech_list, resp.mech_list_mic)
        send(NegTokenResp(mech_list_mic=ntlm.sign(mech_list)).pack())
    else:
        covered = mech_list + b"x" if variant == "bad-mic" else mech_list
        send(NegTokenResp(response_token=auth, mech_list_mic=ntlm.sign(covered)).pack())
    kind, data = recv()
    if kind != "DONE":
        raise SystemExit(1)
    resp = unpack_token(data)
    if resp.neg_state != 0:
        raise RuntimeError("expected accept-completed, got %r" % (resp.neg_state,))
    if variant == "late-mic":
        checked = 1
    else:
        if not resp.mech_list_mic:
            raise RuntimeError("acceptor sent no mechListMIC although NTLM was not the first mech")
        ntlm.verify(mech_list, resp.mech_list_mic)
        checked = 1
    print("COMPLETE %s %d" % (ntlm.session_key.hex(), checked), flush=True)


def main():
    mode, user, password = sys.argv[1:4]
    try:
        if mode.startswith("krb-first"):
            krb_first(user, password, mode[len("krb-first-"):])
        else:
            plain(mode, user, password)
    except SystemExit:
        raise
    except Exception:
        print("ERROR " + traceback.format_exc().replace("\n", " | "), flush=True)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
