#!/usr/bin/env bash
# Recreates fuzz/corpus/<target>/ from the captured Samba 4.17 corpus
# (../shared/corpus/smb2-samba417-capture.tar.xz beside the repository, or $LANSHARE_CORPUS).
#
# Each target gets the inputs in the shape its body expects (see fuzz/src/lib.rs):
#   netbios_frame   every payload behind its 4-byte direct-TCP header
#   pdu_decode      every plain SMB2 payload (requests and responses, compounds included)
#   fscc            payloads of CREATE, IOCTL, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO
#   transform       the encrypted (0xFD 'SMB') payloads
#   smb1_negotiate  hand-built SMB1 NEGOTIATEs (the capture has none)
#   auth_step       the SESSION_SETUP security tokens of one connection per file, in order,
#                   each behind a 16-bit little-endian length
#   connection      runs of 8 client frames of one connection (NEGOTIATE left out: the harness
#                   sends its own), each behind a 16-bit little-endian length
# Payloads above 64 KiB are left out: they only slow the fuzzer down.
#
# Files already in the corpus stay (the fuzzer's own finds live there too); seeds are named
# after their capture file, so a second run changes nothing. Needs tar, xz and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tarball=${LANSHARE_CORPUS:-$here/../../shared/corpus/smb2-samba417-capture.tar.xz}
[[ -f $tarball ]] || { echo "seed.sh: corpus tarball not found: $tarball" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp"

python3 - "$tmp/cap" "$here/corpus" <<'EOF'
import os, struct, sys
from collections import defaultdict

cap, out = sys.argv[1], sys.argv[2]
MAX = 65536
SMB2, TRANSFORM = b"\xfeSMB", b"\xfdSMB"
NEGOTIATE, SESSION_SETUP = 0x00, 0x01
# CREATE, IOCTL, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO
FSCC_COMMANDS = {0x05, 0x0B, 0x0E, 0x0F, 0x10, 0x11}
TARGETS = ["netbios_frame", "pdu_decode", "fscc", "transform", "smb1_negotiate",
           "auth_step", "connection"]
for t in TARGETS:
    os.makedirs(os.path.join(out, t), exist_ok=True)

def put(target, name, data):
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

def command(frame):
    return struct.unpack_from("<H", frame, 12)[0] if len(frame) >= 14 else None

by_conn = defaultdict(list)  # connection -> client frames in capture order
for name in sorted(os.listdir(cap)):
    with open(os.path.join(cap, name), "rb") as f:
        frame = f.read()
    if len(frame) > MAX:
        continue
    put("netbios_frame", name, struct.pack(">I", len(frame)) + frame)
    if frame.startswith(TRANSFORM):
        put("transform", name, frame)
    elif frame.startswith(SMB2):
        put("pdu_decode", name, frame)
        if command(frame) in FSCC_COMMANDS:
            put("fscc", name, frame)
    if name.endswith(".bin"):
        by_conn[name.split("_")[0]].append(frame)

for conn, frames in by_conn.items():
    # auth_step: SecurityBufferOffset/Length sit at 76/78 of a SESSION_SETUP request.
    tokens = b""
    for fr in frames:
        if fr.startswith(SMB2) and command(fr) == SESSION_SETUP and len(fr) >= 80:
            off, n = struct.unpack_from("<HH", fr, 76)
            tok = fr[off:off + n]
            tokens += struct.pack("<H", len(tok)) + tok
    if tokens:
        put("auth_step", conn + ".tokens", tokens)
    # connection: the harness negotiates itself; frames must fit a 16-bit length.
    usable = [fr for fr in frames
              if len(fr) < 65536 and not (fr.startswith(SMB2) and command(fr) == NEGOTIATE)]
    for run in range(0, len(usable), 8):
        data = b"".join(struct.pack("<H", len(fr)) + fr for fr in usable[run:run + 8])
        put("connection", "%s.run%d" % (conn, run // 8), data)

# smb1_negotiate: SMB_COM_NEGOTIATE ([MS-CIFS] 2.2.4.52.1) with dialect lists like the ones
# Windows and smbclient send.
def smb1(dialects):
    body = b"".join(b"\x02" + d + b"\x00" for d in dialects)
    # Protocol, command, Status, Flags, Flags2, PIDHigh, SecurityFeatures, Reserved, TID,
    # PIDLow, UID, MID, WordCount, ByteCount.
    hdr = struct.pack("<4sBIBHH8sHHHHHBH", b"\xffSMB", 0x72, 0, 0x18, 0xC853, 0, b"", 0, 0,
                      0xFEFF, 0, 0, 0, len(body))
    return hdr + body
put("smb1_negotiate", "windows", smb1([b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"]))
put("smb1_negotiate", "nt1-only", smb1([b"NT LM 0.12"]))
put("smb1_negotiate", "smbclient", smb1([
    b"PC NETWORK PROGRAM 1.0", b"MICROSOFT NETWORKS 1.03", b"MICROSOFT NETWORKS 3.0",
    b"LANMAN1.0", b"LM1.2X002", b"DOS LANMAN2.1", b"LANMAN2.1", b"Samba", b"NT LANMAN 1.0",
    b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"]))

for t in TARGETS:
    print("%-16s %5d inputs" % (t, len(os.listdir(os.path.join(out, t)))))
EOF
