#!/usr/bin/env python3
"""Bench clients built on smbprotocol's low-level API, driven by bench/harness.py.

Subcommands (each prints one JSON object on its last line of stdout):
  small   4 KiB files: create+write+close, then open+read+close, then delete, N of each,
          one request at a time on one session; rates in operations per second.
  many    create+close N empty files in one new folder; seconds taken.
  hold    open K authenticated, tree-connected sessions (one TCP connection each), print
          READY, then on each stdin line "echo" send one ECHO on every session and print how
          many answered; exit at end of input. Used by the idle-session row.
  stream  multi-stream large-file copy: S processes, one TCP connection and session each,
          each reads (get) or writes (put) its own 1/S of a --bytes file with --depth 1 MiB
          requests in flight; protection off (SMB 3.0.2, unsigned), sign or encrypt (3.1.1).
          Times the data phase only (after every stream has logged on and opened the file).

smbprotocol runs one receiver thread per connection and waits with select(), so one process
cannot hold more than about 1,000 connections: the harness spreads `hold` over processes.
"""

import argparse
import json
import os
import sys
import time
import uuid

try:
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.open import (
        CreateDisposition,
        CreateOptions,
        FileAttributes,
        ImpersonationLevel,
        Open,
        ShareAccess,
    )
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect
except ImportError as e:  # the harness checks this first; say it clearly anyway
    print(f"smbprotocol is not importable ({e}): python3 -m pip install smbprotocol", file=sys.stderr)
    sys.exit(2)

# Access masks ([MS-SMB2] 2.2.13.1.1); smbprotocol's enum names differ between versions.
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
DELETE = 0x00010000
FILE_READ_ATTRIBUTES = 0x80
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE


def connect(a, protection="sign"):
    if protection == "off":
        # SMB 3.0.2: no signed TREE_CONNECT is required below 3.1.1, so nothing is signed.
        conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=False)
        conn.connect(dialect=Dialects.SMB_3_0_2, timeout=30)
        session = Session(conn, a.user, a.password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
        tree.connect()
        return conn, session, tree
    if protection == "encrypt":
        conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=True)
        conn.connect(timeout=30)
        session = Session(conn, a.user, a.password, require_encryption=True)
        session.connect()
        tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
        tree.connect()
        return conn, session, tree
    # Signed: on SMB 3.1.1 a client must sign TREE_CONNECT ([MS-SMB2] 3.2.4.1.1), and Samba
    # refuses an unsigned one with STATUS_ACCESS_DENIED.
    conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=True)
    conn.connect(timeout=30)
    session = Session(conn, a.user, a.password, require_encryption=False)
    session.connect()
    tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
    tree.connect()
    return conn, session, tree


def open_file(tree, name, access, disposition, options=0, attrs=FileAttributes.FILE_ATTRIBUTE_NORMAL):
    f = Open(tree, name)
    f.create(
        ImpersonationLevel.Impersonation,
        access,
        attrs,
        SHARE_ALL,
        disposition,
        options | CreateOptions.FILE_NON_DIRECTORY_FILE,
    )
    return f


def make_dir(tree, name):
    d = Open(tree, name)
    d.create(
        ImpersonationLevel.Impersonation,
        GENERIC_READ | GENERIC_WRITE,
        FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
        SHARE_ALL,
        CreateDisposition.FILE_OPEN_IF,
        CreateOptions.FILE_DIRECTORY_FILE,
    )
    d.close()


def cmd_small(a):
    conn, session, tree = connect(a)
    make_dir(tree, a.dir)
    data = os.urandom(a.size)
    names = [f"{a.dir}\\s{i:06d}.bin" for i in range(a.count)]
    out = {}

    # Client CPU over wall time: near 100 % means this client, not the server, set the pace.
    cpu = time.process_time()
    wall = time.perf_counter()
    t = time.perf_counter()
    for n in names:
        f = open_file(tree, n, GENERIC_READ | GENERIC_WRITE, CreateDisposition.FILE_OVERWRITE_IF)
        f.write(data, 0)
        f.close()
    out["create_write"] = a.count / (time.perf_counter() - t)

    t = time.perf_counter()
    for n in names:
        f = open_file(tree, n, GENERIC_READ, CreateDisposition.FILE_OPEN)
        got = f.read(0, a.size)
        f.close()
        if len(got) != a.size:
            raise SystemExit(f"read {len(got)} bytes of {n}, wrote {a.size}")
    out["open_read"] = a.count / (time.perf_counter() - t)

    t = time.perf_counter()
    for n in names:
        f = open_file(
            tree, n, DELETE | FILE_READ_ATTRIBUTES, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DELETE_ON_CLOSE
        )
        f.close()
    out["delete"] = a.count / (time.perf_counter() - t)
    out["client_cpu"] = (time.process_time() - cpu) / (time.perf_counter() - wall)
    conn.disconnect(True)
    print(json.dumps(out))


def cmd_many(a):
    conn, session, tree = connect(a)
    make_dir(tree, a.dir)
    cpu = time.process_time()
    t = time.perf_counter()
    for i in range(a.count):
        f = open_file(tree, f"{a.dir}\\m{i:06d}", GENERIC_READ | GENERIC_WRITE, CreateDisposition.FILE_CREATE)
        f.close()
    secs = time.perf_counter() - t
    conn.disconnect(True)
    print(json.dumps({"seconds": secs, "client_cpu": (time.process_time() - cpu) / secs}))


def cmd_hold(a):
    # Wait for the go signal so that interpreter start-up is not counted in the setup rate.
    print("STARTED", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    held = []
    failed = 0
    first_error = ""
    cpu = time.process_time()
    t = time.perf_counter()
    for _ in range(a.count):
        # A time budget keeps a slow server (Samba forks one process per connection) from
        # holding up the whole run: the harness reports how many were set up in time.
        if a.deadline and time.perf_counter() - t > a.deadline:
            break
        try:
            held.append(connect(a))
        except Exception as e:  # noqa: BLE001 - counted and reported to the harness
            failed += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
    secs = time.perf_counter() - t
    cpu = time.process_time() - cpu
    print(
        json.dumps({"ready": len(held), "failed": failed, "seconds": secs, "cpu": cpu, "error": first_error}),
        flush=True,
    )
    for line in sys.stdin:
        if line.strip() != "echo":
            continue
        ok = 0
        err = ""
        for conn, session, _tree in held:
            try:
                conn.echo(sid=session.session_id, timeout=30)
                ok += 1
            except Exception as e:  # noqa: BLE001 - counted
                err = err or f"{type(e).__name__}: {e}"
        print(json.dumps({"echo_ok": ok, "echo_failed": len(held) - ok, "error": err}), flush=True)
    # Close sockets without logging off: the harness is tearing the server down anyway.
    for conn, _s, _t in held:
        try:
            conn.disconnect(False)
        except Exception:  # noqa: BLE001, S110 - best effort at exit
            pass


MIB = 1 << 20


def stream_worker(a, index, ready, go, results):
    """One stream: log on, open, wait for the start signal, move this stream's slice."""
    try:
        conn, session, tree = connect(a, a.protection)
        # 1 MiB requests charge 16 credits each; ask for enough to keep `depth` in flight
        # (smbprotocol otherwise only asks for what each request costs).
        conn.echo(sid=session.session_id, credit_request=16 * a.depth + 16)
        share = a.bytes // a.streams
        start = index * share
        end = a.bytes if index == a.streams - 1 else start + share
        if a.mode == "get":
            f = open_file(tree, a.file, GENERIC_READ, CreateDisposition.FILE_OPEN)
        else:
            f = open_file(tree, a.file, GENERIC_READ | GENERIC_WRITE, CreateDisposition.FILE_OPEN_IF)
        chunk = min(MIB, conn.max_read_size if a.mode == "get" else conn.max_write_size)
        data = os.urandom(chunk) if a.mode == "put" else b""
        ready.put(index)
        go.wait()
        cpu = time.process_time()
        moved = 0
        inflight = []
        pos = start
        sid, tid = session.session_id, tree.tree_connect_id
        while pos < end or inflight:
            while pos < end and len(inflight) < a.depth:
                n = min(chunk, end - pos)
                if a.mode == "get":
                    msg, recv = f.read(pos, n, send=False)
                else:
                    msg, recv = f.write(data[:n], pos, send=False)
                inflight.append((conn.send(msg, sid, tid), recv, n))
                pos += n
            req, recv, n = inflight.pop(0)
            got = recv(req)
            got = len(got) if a.mode == "get" else got
            if got != n:
                raise RuntimeError(f"{a.mode}: {got} bytes moved of {n}")
            moved += got
        results.put((index, moved, time.process_time() - cpu, ""))
        f.close()
        conn.disconnect(True)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        ready.put(index)
        results.put((index, 0, 0.0, f"{type(e).__name__}: {e}"))


def cmd_stream(a):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=stream_worker, args=(a, i, ready, go, results)) for i in range(a.streams)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    t = time.perf_counter()
    go.set()
    got = [results.get(timeout=900) for _ in procs]
    secs = time.perf_counter() - t
    for p in procs:
        p.join(timeout=60)
    errors = [e for _, _, _, e in got if e]
    if errors:
        raise SystemExit(errors[0])
    moved = sum(m for _, m, _, _ in got)
    if moved != a.bytes:
        raise SystemExit(f"{a.mode}: {moved} bytes moved of {a.bytes}")
    cpu = sum(c for _, _, c, _ in got)
    print(json.dumps({"seconds": secs, "bytes": moved, "client_cpu": cpu / secs}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["small", "many", "hold", "stream"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--share", required=True)
    p.add_argument("--dir", default="bench")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--deadline", type=float, default=0, help="hold: stop opening sessions after this many seconds")
    p.add_argument("--streams", type=int, default=1, help="stream: connections in parallel")
    p.add_argument("--bytes", type=int, default=1 << 30, help="stream: bytes to move in all")
    p.add_argument("--mode", choices=["get", "put"], default="get")
    p.add_argument("--file", default="big.bin", help="stream: file on the share")
    p.add_argument("--protection", choices=["off", "sign", "encrypt"], default="off")
    p.add_argument("--depth", type=int, default=8, help="stream: 1 MiB requests in flight per stream")
    a = p.parse_args()
    {"small": cmd_small, "many": cmd_many, "hold": cmd_hold, "stream": cmd_stream}[a.command](a)


if __name__ == "__main__":
    main()
