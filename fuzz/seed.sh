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
#   rpc_pipe        the client side of each DCE/RPC capture in crates/rpc/tests/vectors, behind
#                   the selector byte of lanshare_rpc::fuzz_pipe (pipe, WRITE size)
#   wsd             hand-written WS-Discovery Probe, Resolve and metadata Get messages, and an
#                   HTTP POST head for the metadata endpoint
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

python3 - "$tmp/cap" "$here/corpus" "$here/../crates/rpc/tests/vectors" <<'EOF'
import os, struct, sys
from collections import defaultdict

cap, out, rpc_vectors = sys.argv[1], sys.argv[2], sys.argv[3]
MAX = 65536
SMB2, TRANSFORM = b"\xfeSMB", b"\xfdSMB"
NEGOTIATE, SESSION_SETUP = 0x00, 0x01
# CREATE, IOCTL, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO
FSCC_COMMANDS = {0x05, 0x0B, 0x0E, 0x0F, 0x10, 0x11}
TARGETS = ["netbios_frame", "pdu_decode", "fscc", "transform", "smb1_negotiate",
           "auth_step", "connection", "rpc_pipe", "wsd"]
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

# rpc_pipe: selector bit 0 = pipe (0 srvsvc, 1 wkssvc), bits 1-7 = WRITE size / 8; each
# capture goes in whole (size 127 * 8) and cut into 8-byte WRITEs.
if os.path.isdir(rpc_vectors):
    for name in sorted(os.listdir(rpc_vectors)):
        if not name.endswith(".txt"):
            continue
        streams = defaultdict(bytes)
        with open(os.path.join(rpc_vectors, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] == "c2s" and parts[0] in ("srvsvc", "wkssvc"):
                    streams[parts[0]] += bytes.fromhex(parts[2])
        for pipe, data in streams.items():
            bit = 0 if pipe == "srvsvc" else 1
            stem = name[:-4] + "." + pipe
            put("rpc_pipe", stem + ".whole", bytes([0xFE | bit]) + data)
            put("rpc_pipe", stem + ".pieces", bytes([0x02 | bit]) + data)
else:
    print("seed.sh: no %s, rpc_pipe starts empty" % rpc_vectors, file=sys.stderr)

# wsd: SOAP-over-UDP messages as Windows sends them ([WS-Discovery] 5.2 Probe, 6.1 Resolve;
# [DPWS] metadata exchange Get), and the HTTP head in front of a Get.
NS = ('xmlns:soap="http://www.w3.org/2003/05/soap-envelope" '
      'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
      'xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
      'xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"')
def soap(to, action, body):
    return ('<?xml version="1.0" encoding="utf-8"?><soap:Envelope %s><soap:Header>'
            '<wsa:To>%s</wsa:To><wsa:Action>%s</wsa:Action>'
            '<wsa:MessageID>urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</wsa:MessageID>'
            '</soap:Header><soap:Body>%s</soap:Body></soap:Envelope>' % (NS, to, action, body)
            ).encode()
DISCOVERY = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery/"
probe = soap(DISCOVERY, WSD + "Probe", "<wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe>")
put("wsd", "probe", probe)
put("wsd", "probe-any", soap(DISCOVERY, WSD + "Probe", "<wsd:Probe/>"))
put("wsd", "resolve", soap(DISCOVERY, WSD + "Resolve",
    "<wsd:Resolve><wsa:EndpointReference><wsa:Address>"
    "urn:uuid:00000000-0000-0000-0000-000000000000</wsa:Address></wsa:EndpointReference>"
    "</wsd:Resolve>"))
get = soap("urn:uuid:00000000-0000-0000-0000-000000000000",
           "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", "")
put("wsd", "get", get)
put("wsd", "http-get", b"POST /00000000-0000-0000-0000-000000000000 HTTP/1.1\r\n"
    b"Content-Type: application/soap+xml\r\nHost: 127.0.0.1:5357\r\n"
    b"Content-Length: %d\r\n\r\n" % len(get) + get)

for t in TARGETS:
    print("%-16s %5d inputs" % (t, len(os.listdir(os.path.join(out, t)))))
EOF
