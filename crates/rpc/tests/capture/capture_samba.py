#!/usr/bin/env python3
"""Capture the DCE/RPC PDUs that smbclient/rpcclient exchange with a private Samba smbd.

Why a proxy instead of tshark: it needs no packet-capture privileges or extra packages, and
parsing SMB2 just far enough to pull pipe payloads out of WRITE/READ/IOCTL is short.

Usage: capture_samba.py OUTDIR
Writes OUTDIR/<client-run>.txt: `#` lines with the command and (`#|`) its output, then one
line `PIPE DIR HEX` per SMB2 WRITE/READ/IOCTL(FSCTL_PIPE_TRANSCEIVE) payload on a pipe, in
wire order; DIR is c2s (client to server) or s2c. With MANY_SHARES=N in the environment,
smb.conf gets N more shares with long comments, so that share lists need several fragments.
Needs root (smbd, useradd) and the Debian packages samba + smbclient.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

USER = "lsinterop"
PASSWORD = "Secret.123"
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
ROOT = "/tmp/rpc-capture-samba"
MANY_SHARES = int(os.environ.get("MANY_SHARES", "0"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def smb_conf(root, port):
    d = lambda sub: os.path.join(root, sub)
    share = d("share")
    return f"""[global]
\tnetbios name = SAMBATEST
\tworkgroup = WORKGROUP
\tserver string = Samba test server
\tserver role = standalone server
\tsmb ports = {port}
\tinterfaces = 127.0.0.1
\tbind interfaces only = yes
\tdisable netbios = yes
\tprivate dir = {d("private")}
\tlock directory = {d("lock")}
\tstate directory = {d("state")}
\tcache directory = {d("cache")}
\tpid directory = {d("pid")}
\tncalrpc dir = {d("ncalrpc")}
\tlog file = {d("log")}/log.%m
\tlog level = 1
\tpassdb backend = tdbsam
\tserver min protocol = SMB2_02
\tmap to guest = never
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes

[share]
\tpath = {share}
\tcomment = The test share
\tread only = no

[hidden$]
\tpath = {share}
\tcomment = Hidden by its dollar

[unlisted]
\tpath = {share}
\tcomment = Not browseable
\tbrowseable = no
""" + "".join(
        f"\n[many{i:03}]\n\tpath = {share}\n\tcomment = {'A fairly long comment to fill fragments ' * 2}{i}\n"
        for i in range(MANY_SHARES))


class Recorder:
    """Byte streams of one proxied TCP connection, both directions, in arrival order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.chunks = []  # (dir, bytes)

    def add(self, direction, data):
        with self.lock:
            self.chunks.append((direction, data))


def pump(src, dst, rec, direction):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            rec.add(direction, data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def proxy(listen_sock, target_port, recorders, stop):
    listen_sock.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = listen_sock.accept()
        except socket.timeout:
            continue
        s = socket.create_connection(("127.0.0.1", target_port))
        rec = Recorder()
        recorders.append(rec)
        threading.Thread(target=pump, args=(c, s, rec, "c2s"), daemon=True).start()
        threading.Thread(target=pump, args=(s, c, rec, "s2c"), daemon=True).start()


def frames(stream):
    """NetBIOS session frames of one direction's byte stream."""
    off = 0
    while off + 4 <= len(stream):
        length = int.from_bytes(stream[off + 1 : off + 4], "big")
        yield stream[off + 4 : off + 4 + length]
        off += 4 + length


def smb2_pdus(frame):
    """SMB2 PDUs in one frame, following NextCommand through a compound."""
    off = 0
    while True:
        pdu = frame[off:]
        if pdu[:4] != b"\xfeSMB":
            return
        nxt = struct.unpack_from("<I", pdu, 20)[0]
        yield pdu[: nxt] if nxt else pdu
        if not nxt:
            return
        off += nxt


def extract(rec):
    """Pipe payloads of one connection, request and response matched by MessageId."""
    c2s = b"".join(d for (dr, d) in rec.chunks if dr == "c2s")
    s2c = b"".join(d for (dr, d) in rec.chunks if dr == "s2c")
    requests = {}
    order = []
    for fr in frames(c2s):
        for p in smb2_pdus(fr):
            cmd = struct.unpack_from("<H", p, 12)[0]
            mid = struct.unpack_from("<Q", p, 24)[0]
            requests[mid] = (cmd, p)
            order.append(mid)
    responses = {}
    for fr in frames(s2c):
        for p in smb2_pdus(fr):
            mid = struct.unpack_from("<Q", p, 24)[0]
            status = struct.unpack_from("<I", p, 8)[0]
            if status == 0x103:  # STATUS_PENDING interim
                continue
            responses[mid] = p
    file_names = {}
    out = []
    for mid in order:
        cmd, req = requests[mid]
        rsp = responses.get(mid)
        body = req[64:]
        if cmd == 5:  # CREATE
            name_off, name_len = struct.unpack_from("<HH", body, 44)
            name = req[name_off : name_off + name_len].decode("utf-16-le")
            if rsp is not None and struct.unpack_from("<I", rsp, 8)[0] == 0:
                fid = rsp[64 + 64 : 64 + 80]
                file_names[fid] = name
        elif cmd == 9:  # WRITE
            data_off, length = struct.unpack_from("<HI", body, 2)
            fid = body[16:32]
            if fid in file_names:
                out.append({"pipe": file_names[fid], "dir": "c2s",
                            "hex": req[data_off : data_off + length].hex()})
        elif cmd == 8:  # READ
            fid = body[16:32]
            if fid in file_names and rsp is not None:
                status = struct.unpack_from("<I", rsp, 8)[0]
                if status in (0, 0x80000005):
                    rb = rsp[64:]
                    doff, dlen = rb[2], struct.unpack_from("<I", rb, 4)[0]
                    out.append({"pipe": file_names[fid], "dir": "s2c",
                                "status": status, "hex": rsp[doff : doff + dlen].hex()})
        elif cmd == 11:  # IOCTL
            ctl = struct.unpack_from("<I", body, 4)[0]
            fid = body[8:24]
            if ctl == FSCTL_PIPE_TRANSCEIVE and fid in file_names:
                ioff, ilen = struct.unpack_from("<II", body, 24)
                out.append({"pipe": file_names[fid], "dir": "c2s",
                            "hex": req[ioff : ioff + ilen].hex()})
                if rsp is not None:
                    rb = rsp[64:]
                    status = struct.unpack_from("<I", rsp, 8)[0]
                    if len(rb) >= 48:
                        ooff, olen = struct.unpack_from("<II", rb, 32)
                        out.append({"pipe": file_names[fid], "dir": "s2c", "status": status,
                                    "hex": rsp[ooff : ooff + olen].hex()})
    return out


NDR20 = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + (2).to_bytes(4, "little")
NDR64 = bytes.fromhex("33057171babe37498319b5dbef9ccc36") + (1).to_bytes(4, "little")
BTFN = bytes.fromhex("2c1cb76c12984045") + bytes([3, 0, 0, 0, 0, 0, 0, 0]) + (1).to_bytes(4, "little")
SRVSVC = bytes.fromhex("c84f324b7016d30112785a47bf6ee188") + (3).to_bytes(4, "little")
UNKNOWN_IF = bytes.fromhex("78563412341234121234123456789abc") + (1).to_bytes(4, "little")


def pdu(ptype, flags, call_id, body):
    hdr = bytes([5, 0, ptype, flags, 0x10, 0, 0, 0])
    return hdr + struct.pack("<HHI", 16 + len(body), 0, call_id) + body


def bind_body(contexts, assoc=0):
    """contexts: list of (context id, abstract syntax, [transfer syntaxes])"""
    b = struct.pack("<HHIB3x", 4280, 4280, assoc, len(contexts))
    for cid, abstract, transfers in contexts:
        b += struct.pack("<HBx", cid, len(transfers)) + abstract + b"".join(transfers)
    return b


def impacket_run(pport):
    """Hand-built binds the Samba tools never send: what Windows sends (NDR20 + NDR64 +
    bind-time feature negotiation), an unknown interface, an ALTER_CONTEXT, a bad opnum."""
    from impacket.smb3structs import SMB2_DIALECT_21
    from impacket.smbconnection import SMBConnection
    # SMB 2.1: impacket encrypts on 3.x when the server offers it, which hides the payloads.
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=pport,
                         preferredDialect=SMB2_DIALECT_21)
    conn.login(USER, PASSWORD)
    tid = conn.connectTree("IPC$")

    def exchange(pkt):
        fid = state["fid"]
        conn.writeFile(tid, fid, pkt)
        try:
            conn.readFile(tid, fid, 0, 65536)
        except Exception as e:  # noqa: BLE001 - a fault still ends up in the capture
            print("read:", e)

    state = {}
    for variant in ("windows-bind", "unknown-if", "alter"):
        state["fid"] = conn.openFile(tid, "\\srvsvc", desiredAccess=0x12019F,
                                     creationOption=0x40, fileAttributes=0x80)
        if variant == "windows-bind":
            exchange(pdu(11, 3, 1, bind_body([(0, SRVSVC, [NDR20]), (1, SRVSVC, [NDR64]),
                                               (2, SRVSVC, [BTFN])])))
            # opnum 200 on the bound context, and a call on context id 7 that was never bound
            exchange(pdu(0, 3, 2, struct.pack("<IHH", 4, 0, 200) + b"\0" * 4))
            exchange(pdu(0, 3, 3, struct.pack("<IHH", 4, 7, 15) + b"\0" * 4))
            # NetrShareEnum with a truncated stub
            exchange(pdu(0, 3, 4, struct.pack("<IHH", 4, 0, 15) + b"\0" * 4))
        elif variant == "unknown-if":
            exchange(pdu(11, 3, 1, bind_body([(0, UNKNOWN_IF, [NDR20]), (1, SRVSVC, [NDR64])])))
        else:
            exchange(pdu(11, 3, 1, bind_body([(0, SRVSVC, [NDR20])])))
            exchange(pdu(14, 3, 2, bind_body([(1, SRVSVC, [NDR64, NDR20]),
                                               (2, UNKNOWN_IF, [NDR20])])))
        conn.closeFile(tid, state["fid"])
    conn.logoff()


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    # A fixed root, so that the share paths Samba reports (C:\tmp\rpc-capture-samba\share)
    # are the same in every capture and the tests can name them.
    root = ROOT
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    os.chmod(root, 0o755)
    for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc", "log", "share"]:
        os.makedirs(os.path.join(root, sub))
    os.chmod(os.path.join(root, "share"), 0o777)
    port = free_port()
    conf = os.path.join(root, "smb.conf")
    with open(conf, "w") as f:
        f.write(smb_conf(root, port))
    subprocess.run(["smbpasswd", "-c", conf, "-s", "-a", USER],
                   input=f"{PASSWORD}\n{PASSWORD}\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)
    smbd = subprocess.Popen(["smbd", "--foreground", "--no-process-group",
                             f"--configfile={conf}"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("smbd did not start")
                time.sleep(0.1)
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        pport = lsock.getsockname()[1]
        stop = threading.Event()
        runs = {
            "smbclient-L-smb2": ["smbclient", "-L", "//127.0.0.1", "-p", str(pport),
                                 "-U", f"{USER}%{PASSWORD}", "-m", "SMB2_02"],
            "smbclient-L-smb3": ["smbclient", "-L", "//127.0.0.1", "-p", str(pport),
                                 "-U", f"{USER}%{PASSWORD}", "-m", "SMB3_11"],
            "rpcclient-srvsvc": ["rpcclient", "-U", f"{USER}%{PASSWORD}", "127.0.0.1",
                                 "-p", str(pport), "-c",
                                 "netshareenumall; netshareenum 0; netshareenum 1; "
                                 "netshareenumall 2; netsharegetinfo share; "
                                 "netsharegetinfo share 0; netsharegetinfo share 2; "
                                 "netsharegetinfo share 501; netsharegetinfo share 1005; "
                                 "netsharegetinfo nosuch; srvinfo"],
            "rpcclient-wkssvc": ["rpcclient", "-U", f"{USER}%{PASSWORD}", "127.0.0.1",
                                 "-p", str(pport), "-c", "wkssvc_wkstagetinfo"],
        }
        runs["impacket-binds"] = None
        for name, cmd in runs.items():
            recorders = []
            stop.clear()
            t = threading.Thread(target=proxy, args=(lsock, port, recorders, stop),
                                 daemon=True)
            t.start()
            if cmd is None:
                impacket_run(pport)
                cmd = ["impacket", "-", "-"]
                res = subprocess.CompletedProcess(cmd, 0, "", "")
            else:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            time.sleep(0.3)
            stop.set()
            t.join()
            pdus = []
            for rec in recorders:
                pdus.extend(extract(rec))
            with open(os.path.join(outdir, f"{name}.txt"), "w") as f:
                f.write(f"# {' '.join(c.replace(PASSWORD, '***') for c in cmd)}\n")
                f.write("".join(f"#| {line}\n" for line in res.stdout.splitlines()))
                for p in pdus:
                    f.write(f"{p['pipe']} {p['dir']} {p['hex']}\n")
            print(f"{name}: rc={res.returncode}, {len(pdus)} pipe payloads")
    finally:
        smbd.stdin.close()
        try:
            smbd.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(smbd.pid, 9)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
