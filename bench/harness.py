#!/usr/bin/env python3
"""lanshare benchmark harness: Samba, the `smb-server` crate and lanshare, side by side.

Started by bench/run (which checks the tools and builds the binaries); see bench/README.md.
Every server serves a share named "bench" from its own folder of one fresh tmpfs directory,
to one user, on a loopback port. Each row group runs its client against the three servers in
turn (samba, peer, lanshare, samba, peer, lanshare, ...), so that machine noise spreads over
all of them, and the table shows the median with min-max and lanshare's ratio to the better
of the other two (above 1.00: lanshare wins).
A cell that cannot be measured says "n/a (<server>: <why>)"; the harness goes on.
"""

import argparse
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = ["samba", "peer", "lanshare"]
TITLES = {"samba": "Samba", "peer": "smb-server crate", "lanshare": "lanshare", "base": "lanshare (before)"}
USER = "lsbench"
SHARE = "bench"
# Samba's second name for the same folder, with writes done in smbd itself rather than on its
# thread pool (see Samba.start): what the native client's multi-stream groups use on Samba.
SYNC_SHARE = "benchsync"
# smbprotocol waits with select(): keep each client process well under FD_SETSIZE (1024).
# How many sessions the native client sets up at once (each one TCP connection, negotiate,
# two SESSION_SETUPs, TREE_CONNECT): enough to keep a server busy, few enough that a server
# forking per connection (Samba) does not thrash.
SESSION_CONCURRENCY = 32


class NA(Exception):
    """A cell that cannot be measured; the message says why (short, one line)."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def short(text, limit=90):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ------------------------------------------------------------------------------------------
# Memory: PSS summed over a process and all its descendants (Samba forks one per client).


def descendants(root_pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid follows the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def pss_kib(root_pid):
    total, count = 0, 0
    for pid in descendants(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        count += 1
                        break
        except OSError:
            continue
    return total, count


def cpu_secs(root_pid):
    """CPU time (user + system) of a server: its process, the children it reaped (Samba's
    per-connection smbd) and those still running. Unlike throughput on a shared machine, the
    server's CPU per byte moved hardly depends on what else runs."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in descendants(root_pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # utime, stime, cutime, cstime (fields 14-17 of proc(5); 12-15 after pid and comm)
        total += sum(int(x) for x in fields[11:15])
    return total / tick


def op_cpu(ctx, srv, row, ops, fn):
    """Runs fn() and records the server's CPU microseconds per operation under `row`; `ops`
    is a number or a function of fn's result (the operations it did)."""
    before = cpu_secs(srv.proc.pid) if srv.proc else None
    r = fn()
    if before is not None:
        used = cpu_secs(srv.proc.pid) - before
        n = ops(r) if callable(ops) else ops
        if n:
            ctx.op_cpu.setdefault(row, {}).setdefault(srv.name, []).append(1e6 * used / n)
    return r


def timed_cpu(ctx, srv, row, nbytes, fn):
    """Runs fn() and records the server's CPU seconds per GiB moved under `row`."""
    before = cpu_secs(srv.proc.pid) if srv.proc else None
    r = fn()
    if before is not None:
        used = cpu_secs(srv.proc.pid) - before
        ctx.server_cpu.setdefault(row, {}).setdefault(srv.name, []).append(used / (nbytes / (1 << 30)))
    return r


# ------------------------------------------------------------------------------------------
# The servers.


class Server:
    name = ""

    def __init__(self, ctx):
        self.ctx = ctx
        self.share_dir = ctx.work / f"share-{self.name}"
        self.proc = None
        self.port = None
        self.error = None
        self.log_path = ctx.work / "logs" / f"{self.name}.log"

    def start(self):
        raise NotImplementedError

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # Samba's children, and anything else left in the group; wait until they are gone,
        # or a new smbd could find the old one's pid file and state still locked.
        pgid = self.proc.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                break
            try:
                os.waitpid(-pgid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        # The stdout drain ends at the server's end of file.
        drain, self.drain = getattr(self, "drain", None), None
        if drain is not None:
            try:
                drain.wait(timeout=5)
            except subprocess.TimeoutExpired:
                drain.kill()
                drain.wait()

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=5):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Samba(Server):
    name = "samba"

    def start(self):
        d = self.ctx.work / "samba"
        for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc", "log"]:
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "private", 0o700)
        self.port = free_port()
        conf = d / "smb.conf"
        conf.write_text(
            f"""[global]
\tnetbios name = BENCHSAMBA
\tworkgroup = WORKGROUP
\tserver role = standalone server
\tsmb ports = {self.port}
\tinterfaces = 127.0.0.1
\tbind interfaces only = yes
\tdisable netbios = yes
\tprivate dir = {d}/private
\tlock directory = {d}/lock
\tstate directory = {d}/state
\tcache directory = {d}/cache
\tpid directory = {d}/pid
\tncalrpc dir = {d}/ncalrpc
\tlog file = {d}/log/log.%m
\tlog level = 0
\tpassdb backend = tdbsam
\tserver min protocol = SMB2_02
\tserver signing = auto
\tmap to guest = never
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes

[{SHARE}]
\tpath = {self.share_dir}
\tread only = no
\tguest ok = no

# A WRITE that smbd hands to its thread pool and that takes over 0.5 ms gets an interim
# STATUS_PENDING answer first ([MS-SMB2] 3.3.4.2), with the credits granted on the interim. The
# smb crate 0.12.1 (the native client) counts only the final answer's credits, so under load it
# runs out of credits and its stream stalls (seen on every 4-stream signed write). Writes done
# in smbd itself never go async; smbclient, which handles interims, keeps the default share.
[{SYNC_SHARE}]
\tpath = {self.share_dir}
\tread only = no
\tguest ok = no
\taio write size = 0
"""
        )
        pw = f"{self.ctx.password}\n{self.ctx.password}\n"
        r = subprocess.run(
            ["smbpasswd", "-c", str(conf), "-s", "-a", USER], input=pw, capture_output=True, text=True
        )
        if r.returncode != 0:
            raise NA(f"smbpasswd failed: {short(r.stderr or r.stdout)}")
        logf = open(self.log_path, "a")
        # A foreground smbd stops when its stdin closes: hold a pipe open for its lifetime.
        self.proc = subprocess.Popen(
            ["smbd", "--foreground", "--no-process-group", f"--configfile={conf}"],
            stdin=subprocess.PIPE,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )
        if not wait_port(self.port, self.proc):
            raise NA(f"smbd did not start: {short(self.log_tail())}")


class Peer(Server):
    name = "peer"

    def start(self):
        logf = open(self.log_path, "a")
        args = [
            str(self.ctx.peer_bin),
            "--listen",
            "127.0.0.1:0",
            "--root",
            str(self.share_dir),
            "--share",
            SHARE,
            "--user",
            USER,
            "--password",
            self.ctx.password,
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf, text=True, start_new_session=True
        )
        self.port = read_listening(self.proc, "peer listening on ", self)


class Lanshare(Server):
    name = "lanshare"

    def binary(self):
        return self.ctx.lanshare_bin

    def start(self):
        d = self.ctx.work / self.name
        d.mkdir(exist_ok=True)
        users = d / "users"
        if not users.exists():
            r = subprocess.run(
                [str(self.binary()), "user", "add", USER, "--password-stdin", "--users-file", str(users)],
                input=self.ctx.password + "\n",
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                raise NA(f"lanshare user add failed: {short(r.stderr or r.stdout)}")
        conf = d / "lanshare.toml"
        # Signing "enabled": clients that ask for it get it, as with Samba's "auto" and the
        # crate's default; the signed rows ask from the client side. Every limit unlimited.
        conf.write_text(
            f"""[server]
name = "BENCHLS"
listen = ["127.0.0.1:0"]
users_file = "{users}"
log = "warn"

[security]
signing = "enabled"

[limits]
max_sessions = 0
max_connections = 0
max_connections_per_ip = 0
max_open_files = 0
max_open_files_per_session = 0
idle_timeout = 0
max_inflight = 0
handshake_timeout = 0

[[share]]
name = "{SHARE}"
path = "{self.share_dir}"
"""
        )
        logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [str(self.binary()), "serve", "--config", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=logf,
            text=True,
            start_new_session=True,
        )
        self.port = read_listening(self.proc, "lanshare listening on ", self)


class Base(Lanshare):
    """--base-bin: an earlier lanshare build, measured in the same run for a before/after
    figure. It is not one of the "others" in the ratio column."""

    name = "base"

    def binary(self):
        return self.ctx.base_bin


def read_listening(proc, prefix, server, timeout=30):
    """Reads the server's stdout up to its `... listening on ADDR` line; returns the port."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        m = re.search(re.escape(prefix) + r"(\S+):(\d+)", line)
        if m:
            sel.unregister(proc.stdout)
            # Keep draining stdout so the server never blocks on a full pipe.
            drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=open(server.log_path, "a"))
            server.drain = drain
            return int(m.group(2))
    proc.kill()
    raise NA(f"no '{prefix.strip()}' line: {short(' | '.join(seen[-3:]) or server.log_tail())}")


# ------------------------------------------------------------------------------------------
# Clients.


class Ctx:
    pass


def smbclient(ctx, srv, commands, protection="off", timeout=600, cpu_row=None):
    """Runs one smbclient process; with `cpu_row`, records its CPU time over wall time under
    that row (the notes' "client CPU" list: whether smbclient itself set the pace)."""
    args = [
        "smbclient",
        f"//127.0.0.1/{SHARE}",
        "-p",
        str(srv.port),
        "-U",
        f"{USER}%{ctx.password}",
        f"--client-protection={protection}",
        "-c",
        commands,
    ]
    t = time.perf_counter()
    # The servers are children too, but still running: only smbclient is reaped in between.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NA(f"smbclient timed out after {timeout}s") from None
    secs = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu_row and secs > 0:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        ctx.client_cpu.setdefault((cpu_row, "smbclient", srv.name), []).append(cpu / secs)
    errs = re.findall(r"NT_STATUS_[A-Z_]+", r.stdout + r.stderr)
    if r.returncode != 0 or errs:
        raise NA(errs[0] if errs else f"smbclient exit {r.returncode}: {short(r.stderr or r.stdout)}")
    return secs, r.stdout + r.stderr


def native(ctx, srv, *args, timeout=900, share=SHARE):
    """Runs the native client (bench/client, the Rust smb crate); returns its last JSON line."""
    return run_client(ctx, srv, [str(ctx.client_bin), *args], timeout, share)


def smbops(ctx, srv, *args, timeout=900, share=SHARE):
    """Runs bench/smbops.py (smbprotocol); returns its last JSON line."""
    return run_client(ctx, srv, [sys.executable, str(HERE / "smbops.py"), *args], timeout, share)


def run_client(ctx, srv, cmd, timeout, share=SHARE):
    """Runs a client that takes the server's address and account as flags and prints JSON
    lines; returns the last one, or raises NA with the client's last error line."""
    cmd = [*cmd, "--port", str(srv.port), "--user", USER, "--password", ctx.password,
           "--share", share]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NA(f"client timed out after {timeout}s") from None
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()
        raise NA(short(tail[-1] if tail else f"exit {r.returncode}"))
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# Row groups. Each measure function returns {row_id: value} for one server and one repetition.

MB = 1e6


def make_file(path, size):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


def large(ctx, srv, rep, protection):
    size = ctx.large_size
    src = ctx.work / "src" / "big.bin"
    remote_up = f"up-{protection}-{rep}.bin"
    secs, _ = timed_cpu(
        ctx, srv, f"put-{protection}", size, lambda: smbclient(ctx, srv, f"put {src} {remote_up}", protection, cpu_row=f"put-{protection}")
    )
    landed = srv.share_dir / remote_up
    got = landed.stat().st_size if landed.exists() else -1
    landed.unlink(missing_ok=True)
    if got != size:
        raise NA(f"put wrote {got} bytes of {size}")
    out = {f"put-{protection}": size / secs / MB}
    secs, stdout = timed_cpu(
        ctx, srv, f"get-{protection}", size, lambda: smbclient(ctx, srv, "get big.bin /dev/null", protection, cpu_row=f"get-{protection}")
    )
    if f"of size {size}" not in stdout:  # smbclient says it on stderr; smbclient() joins both
        raise NA(f"get: unexpected output {short(stdout)}")
    out[f"get-{protection}"] = size / secs / MB
    return out


def multi(ctx, srv, rep, protection):
    """Multi-stream rows: 1, 2 and 4 connections moving one file, put then get."""
    out = {}
    for n in ctx.stream_counts:
        name = f"mput-{protection}-{n}-{rep}.bin"
        for mode, fname in (("put", name), ("get", "big.bin")):
            # The smb crate signs every authenticated session: unsigned rows stay on smbprotocol.
            run = smbops if protection == "off" else native
            share = SYNC_SHARE if run is native and srv.name == "samba" else SHARE
            r = timed_cpu(
                ctx, srv, f"m{mode}-{protection}-{n}", ctx.multi_size,
                lambda m=mode, f=fname, run=run, share=share: run(
                    ctx, srv, "stream", "--mode", m, "--file", f, "--streams", str(n),
                    "--bytes", str(ctx.multi_size), "--protection", protection, timeout=600,
                    share=share,
                ),
            )
            who = "smbprotocol" if run is smbops else "native"
            if r.get("negotiated") and (protection, srv.name) not in ctx.negotiated:
                ctx.negotiated[(protection, srv.name)] = r["negotiated"]
                ctx.notes.append(f"multi-{protection} {srv.name}: the native client negotiated {r['negotiated']}")
            ctx.client_cpu.setdefault((f"multi-{protection}", who, srv.name), []).append(r["client_cpu"])
            client_gib(ctx, f"multi-{protection}", who, srv, r)
            out[f"m{mode}-{protection}-{n}"] = r["bytes"] / r["seconds"] / MB
        landed = srv.share_dir / name
        got = landed.stat().st_size if landed.exists() else -1
        landed.unlink(missing_ok=True)
        if got != ctx.multi_size:
            raise NA(f"multi-stream put left {got} bytes of {ctx.multi_size}")
    return out


def client_gib(ctx, group, who, srv, r):
    """Records a stream client's CPU seconds per GiB moved (its CPU over wall time, times the
    data phase, over the bytes): what the client costs, whatever the pace."""
    if r.get("bytes"):
        ctx.client_gib.setdefault((group, who, srv.name), []).append(r["client_cpu"] * r["seconds"] / (r["bytes"] / (1 << 30)))


def raw_stream(ctx, srv, rep, protection):
    """The raw groups: the multi-stream rows (same sizes, streams and depth) with the native
    client's stream client written on the wire (bench/client/src/raw/stream.rs), which is
    cheap enough on the client's side that the rows measure the servers. It handles Samba's
    interim answers to WRITE (their credits count), so it uses the plain share everywhere."""
    out = {}
    for n in ctx.stream_counts:
        name = f"rput-{protection}-{n}-{rep}.bin"
        for mode, fname in (("put", name), ("get", "big.bin")):
            r = timed_cpu(
                ctx, srv, f"r{mode}-{protection}-{n}", ctx.multi_size,
                lambda m=mode, f=fname: native(
                    ctx, srv, "stream", "--client", "raw", "--mode", m, "--file", f, "--streams", str(n),
                    "--bytes", str(ctx.multi_size), "--protection", protection, timeout=600,
                ),
            )
            if r.get("negotiated") and (f"raw-{protection}", srv.name) not in ctx.negotiated:
                ctx.negotiated[(f"raw-{protection}", srv.name)] = r["negotiated"]
                ctx.notes.append(f"raw-{protection} {srv.name}: the raw stream client negotiated {r['negotiated']}")
            ctx.client_cpu.setdefault((f"raw-{protection}", "native-raw", srv.name), []).append(r["client_cpu"])
            client_gib(ctx, f"raw-{protection}", "native-raw", srv, r)
            key = (f"raw-{protection}", srv.name)
            ctx.interims[key] = ctx.interims.get(key, 0) + r.get("interims", 0)
            out[f"r{mode}-{protection}-{n}"] = r["bytes"] / r["seconds"] / MB
        landed = srv.share_dir / name
        got = landed.stat().st_size if landed.exists() else -1
        landed.unlink(missing_ok=True)
        if got != ctx.multi_size:
            raise NA(f"raw multi-stream put left {got} bytes of {ctx.multi_size}")
    return out


def small(ctx, srv, rep):
    # Three operations a file: create+write+close, open+read+close, delete.
    r = op_cpu(
        ctx, srv, "small", 3 * ctx.small_count,
        lambda: native(ctx, srv, "small", "--dir", f"small{rep}", "--count", str(ctx.small_count)),
    )
    ctx.client_cpu.setdefault(("small", "native", srv.name), []).append(r["client_cpu"])
    return {"small-create": r["create_write"], "small-read": r["open_read"], "small-delete": r["delete"]}


def many(ctx, srv, rep):
    r = op_cpu(
        ctx, srv, "many", ctx.many_count,
        lambda: native(ctx, srv, "many", "--dir", f"many{rep}", "--count", str(ctx.many_count)),
    )
    ctx.client_cpu.setdefault(("many", "native", srv.name), []).append(r["client_cpu"])
    return {"many": r["seconds"]}


def listing(ctx, srv, rep, count):
    secs, stdout = op_cpu(ctx, srv, f"list{count}", count, lambda: smbclient(ctx, srv, f"cd list{count}; ls", cpu_row=f"list{count}"))
    # One line per entry plus "." and "..", and a free-space footer.
    entries = sum(1 for line in stdout.splitlines() if re.match(r"\s+f\d+\.dat\s", line))
    if entries != count:
        raise NA(f"listed {entries} of {count} entries")
    return {f"list{count}": secs}


# smb2.bench.echo and .path-contention-shared print one sample a second per operation:
# "1.00 second: open[num/s=3074,avslat=...] close[num/s=3071,...]"; oplock1 prints a running
# "355.81 ops/second" figure.
NUMS_RE = re.compile(r"second: (\w+)\[num/s=(\d+)")
OPS_RE = re.compile(r"([\d.]+) ops/second")


def parse_torture(text):
    """Operations per second: the mean of the per-second samples of the first operation
    (echo, or open for path-contention-shared, whose close rate is the same), else the last
    running rate. None when there is neither."""
    samples = NUMS_RE.findall(text)
    if samples:
        first = samples[0][0]
        vals = [int(v) for op, v in samples if op == first]
        return sum(vals) / len(vals)
    ops = OPS_RE.findall(text)
    return float(ops[-1]) if ops else None


def torture(ctx, srv, rep, test):
    tl = ctx.torture_time
    args = [
        "timeout",
        "-k",
        "5",
        str(tl + 60),
        "smbtorture",
        f"//127.0.0.1/{SHARE}",
        "-p",
        str(srv.port),
        "-U",
        f"{USER}%{ctx.password}",
        f"--option=torture:timelimit={tl}",
        "--option=torture:nprocs=4",
        f"smb2.bench.{test}",
    ]
    before = cpu_secs(srv.proc.pid) if srv.proc else None
    r = subprocess.run(args, capture_output=True, text=True)
    used = cpu_secs(srv.proc.pid) - before if before is not None else None
    text = r.stdout + r.stderr
    (ctx.work / "logs" / f"torture-{test}-{srv.name}-{rep}.log").write_text(text)
    rate = parse_torture(text)
    if r.returncode != 0 or rate is None:
        # "failure: oplock1 [\n<reason>\n]": the reason is on the lines inside the brackets.
        why = re.findall(r"(?:failure|error): [\w.-]+ \[\s*([^\]]*)\]", text)
        why = why[-1] if why else f"exit {r.returncode}, no rate: {text[-200:]}"
        # "../../source4/torture/smb2/oplock.c:4332: status was NT_STATUS_X" -> "oplock.c:4332: NT_STATUS_X"
        why = re.sub(r"\S*/([\w.]+:\d+): (?:status was )?", r"\1: ", why.strip())
        raise NA(short(why, 70))
    if used is not None and rate:
        # The operations done, estimated as the reported rate over the time limit.
        ctx.op_cpu.setdefault(f"torture-{test}", {}).setdefault(srv.name, []).append(1e6 * used / (rate * tl))
    return {f"torture-{test}": rate}


def sessions(ctx, srv, rep, n):
    # A fresh server per measurement: an allocator that kept the memory of an earlier run
    # would make the next one look free.
    srv.restart()
    time.sleep(1.0)
    before, _ = pss_kib(srv.proc.pid)
    cpu_before = cpu_secs(srv.proc.pid)
    # One native client process (tokio, one task per session) for all of them: by default the
    # raw client (bench/client/src/raw: on the wire, a real signed ECHO); --sessions-client
    # crate runs the smb crate's version (an open and a close of the root instead of ECHO).
    p = subprocess.Popen(
        [
            str(ctx.client_bin),
            "sessions",
            "--count",
            str(n),
            "--concurrency",
            str(SESSION_CONCURRENCY),
            "--deadline",
            str(ctx.session_deadline),
            "--port",
            str(srv.port),
            "--user",
            USER,
            "--password",
            ctx.password,
            "--share",
            SHARE,
            "--client",
            ctx.sessions_client,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if p.stdout.readline().strip() != "STARTED":
            raise NA(f"the session client did not start: {short(p.stderr.read() if p.poll() is not None else '')}")
        t = time.perf_counter()
        p.stdin.write("go\n")
        p.stdin.flush()
        line = p.stdout.readline()
        secs = time.perf_counter() - t
        cpu_used = cpu_secs(srv.proc.pid) - cpu_before if srv.alive() else None
        if not line:
            raise NA("the session client died")
        r = json.loads(line)
        ready, failed, err, client_cpu = r["ready"], r["failed"], r["error"], r.get("cpu", 0.0)
        retries = r.get("retries", 0)
        if ready == 0:
            raise NA(f"no session set up: {short(err, 60)}")
        if cpu_used is not None:
            ctx.op_cpu.setdefault(f"sessions{n}", {}).setdefault(srv.name, []).append(1e6 * cpu_used / ready)
        ctx.client_cpu.setdefault((f"sessions{n}", f"native-{ctx.sessions_client}", srv.name), []).append(client_cpu / secs)
        time.sleep(2.0)
        after, nprocs = pss_kib(srv.proc.pid) if srv.alive() else (0, 0)
        p.stdin.write("echo\n")
        p.stdin.flush()
        line = p.stdout.readline()
        echo = json.loads(line) if line else {"echo_ok": 0, "error": "the session client died"}
        echo_ok = echo["echo_ok"]
        out = {
            f"sess{n}-up": float(ready),
            f"sess{n}-rate": ready / secs,
            f"sess{n}-mem": (after - before) / ready if after else float("nan"),
            f"sess{n}-echo": 100.0 * echo_ok / ready,
        }
        echo_err = f" (first error: {short(echo['error'], 60)})" if echo.get("error") else ""
        neg = f" ({r['negotiated']})" if r.get("negotiated") else ""
        ctx.notes.append(
            f"sessions N={n} {srv.name} rep {rep + 1}: {ready} set up{neg} ({failed} failed{': ' + short(err, 60) if err else ''}, {retries} retried) in {secs:.1f}s, "
            f"PSS {before} -> {after} KiB over {nprocs} process(es), {echo_ok} answered the echo{echo_err}; "
            f"server CPU {cpu_used if cpu_used is not None else float('nan'):.2f} s; "
            f"the client ({ctx.sessions_client}) used {client_cpu:.2f} CPU-s of the {(os.cpu_count() or 1) * secs:.1f} the machine had "
            f"({1e6 * client_cpu / ready:.0f} us per session)"
        )
        return out
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        # Free the memory now; the next measurement (re)starts the server.
        srv.stop()


def iperf(ctx):
    port = free_port()
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-p", str(port), "-B", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        r = subprocess.run(
            ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(ctx.iperf_time), "-J"],
            capture_output=True,
            text=True,
            timeout=ctx.iperf_time + 30,
        )
        data = json.loads(r.stdout)
        return data["end"]["sum_received"]["bits_per_second"] / 8 / MB
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def start_perf(ctx, srv, group, rep):
    """With --perf, records lanshare's CPU profile during its first repetition of each group
    (not the session groups, which restart the server)."""
    if not ctx.perf or srv.name != "lanshare" or rep != 0 or group.startswith("sessions"):
        return None
    out = ctx.perf_dir / f"perf-{group}.data"
    p = subprocess.Popen(
        # DWARF unwinding: the release build keeps no frame pointers.
        ["perf", "record", "-F", "199", "--call-graph", "dwarf,16384", "-p", str(srv.proc.pid), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return (p, out, group)


def stop_perf(ctx, prof):
    if prof is None:
        return
    p, data, group = prof
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    r = subprocess.run(
        ["perf", "report", "--stdio", "--no-children", "--sort", "symbol", "-g", "none",
         "--percent-limit", "1.5", "-i", str(data)],
        capture_output=True,
        text=True,
    )
    top = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+%)\s+\[(.)\]\s+(\S+)", line)
        if m:
            where = "kernel" if m.group(2) == "k" else "user"
            top.append(f"{m.group(1):>7}  {where:6} {m.group(3)}")
    top = top[:12]
    ctx.profiles.append((group, top))
    (ctx.perf_dir / f"perf-{group}.txt").write_text(r.stdout)


# ------------------------------------------------------------------------------------------
# Rows: (id, label, unit, higher is better). Groups: name -> (rows, measure, repetitions).


def build_rows(ctx):
    L = ctx.large_label
    rows = {}
    groups = []

    def group(name, row_list, fn, reps):
        for r in row_list:
            rows[r[0]] = r
        groups.append((name, [r[0] for r in row_list], fn, reps))

    for prot in ["off", "sign", "encrypt"]:
        tag = {"off": "", "sign": ", signed", "encrypt": ", encrypted"}[prot]
        group(
            f"large-{prot}",
            [
                (f"put-{prot}", f"write {L} (smbclient put{tag})", "MB/s", True),
                (f"get-{prot}", f"read {L} (smbclient get{tag})", "MB/s", True),
            ],
            lambda c, s, rep, p=prot: large(c, s, rep, p),
            ctx.reps,
        )
    # The same transfers twice: with the clients issue 8 names (multi-*), and with the raw client.
    for group_prefix, key_prefix, client_tag, fn in (
        ("multi", "m", "", multi),
        ("raw", "r", ", raw client", raw_stream),
    ):
        for prot in ["off", "sign", "encrypt"]:
            tag = {"off": "", "sign": ", signed", "encrypt": ", encrypted"}[prot]
            row_list = []
            for n in ctx.stream_counts:
                for mode, verb in (("put", "write"), ("get", "read")):
                    label = f"{verb} {ctx.multi_label}, {n} stream{'s' if n > 1 else ''}{client_tag}{tag}"
                    row_list.append((f"{key_prefix}{mode}-{prot}-{n}", label, "MB/s", True))
            group(f"{group_prefix}-{prot}", row_list, lambda c, s, rep, p=prot, f=fn: f(c, s, rep, p), ctx.multi_reps)
    n = ctx.small_count
    group(
        "small",
        [
            ("small-create", f"4 KiB create+write+close ({n} files)", "files/s", True),
            ("small-read", "4 KiB open+read+close", "files/s", True),
            ("small-delete", "delete (open delete-on-close, close)", "files/s", True),
        ],
        small,
        ctx.reps,
    )
    group("many", [("many", f"create {ctx.many_count:,} files in one folder", "s", False)], many, ctx.many_reps)
    for count in ctx.list_counts:
        group(
            f"list{count}",
            [(f"list{count}", f"list a {count:,}-entry folder (smbclient ls)", "s", False)],
            lambda c, s, rep, k=count: listing(c, s, rep, k),
            ctx.reps,
        )
    for test in ["echo", "path-contention-shared", "oplock1"]:
        group(
            f"torture-{test}",
            [(f"torture-{test}", f"smbtorture smb2.bench.{test}", "ops/s", True)],
            lambda c, s, rep, t=test: torture(c, s, rep, t),
            ctx.torture_reps,
        )
    for n, reps in ctx.session_counts:
        group(
            f"sessions{n}",
            [
                (f"sess{n}-up", f"{n:,} idle sessions: set up in {ctx.session_deadline} s", "sessions", True),
                (f"sess{n}-rate", f"{n:,} idle sessions: setup rate", "sess/s", True),
                (f"sess{n}-mem", f"{n:,} idle sessions: PSS per session", "KiB", False),
                (f"sess{n}-echo", f"{n:,} idle sessions: of those, answering ECHO", "%", True),
            ],
            lambda c, s, rep, k=n: sessions(c, s, rep, k),
            reps,
        )
    return rows, groups


# ------------------------------------------------------------------------------------------
# Table.


def fmt_num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cell(values, errors, name):
    if not values:
        why = errors[0] if errors else "not run"
        return f"n/a ({name}: {short(why, 40)})"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt_num(med)
    return f"{fmt_num(med)} ({fmt_num(min(values))}-{fmt_num(max(values))})"


def ratio(results, row, higher, against=("samba", "peer")):
    def med(s):
        vals = results.get(row, {}).get(s, {}).get("values", [])
        vals = [v for v in vals if not math.isnan(v)]
        return statistics.median(vals) if vals else None

    ours = med("lanshare")
    others = [m for m in (med(s) for s in against) if m is not None]
    if ours is None or not others:
        return "-"
    best = max(others) if higher else min(others)
    if higher:
        r = ours / best if best else float("inf")
    else:
        r = best / ours if ours else float("inf")
    mark = "  ok" if r >= 1.2 else ""
    return f"{r:.2f}{mark}"


def print_table(ctx, rows, order, results, out=sys.stdout):
    before = "base" in ctx.servers
    head = ["row", "unit"] + [TITLES[s] for s in ctx.servers] + ["lanshare/best"] + (["after/before"] if before else [])
    lines = []
    for rid in order:
        _, label, unit, higher = rows[rid]
        cols = [label, unit]
        for s in ctx.servers:
            r = results.get(rid, {}).get(s, {"values": [], "errors": []})
            cols.append(cell(r["values"], r["errors"], s))
        cols.append(ratio(results, rid, higher))
        if before:
            cols.append(ratio(results, rid, higher, ("base",)).replace("  ok", ""))
        lines.append(cols)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    def fmt(cols):
        return "  ".join(str(c).ljust(w) for c, w in zip(cols, widths)).rstrip()
    print(fmt(head), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for cols in lines:
        print(fmt(cols), file=out)


# ------------------------------------------------------------------------------------------


def ensure_unix_user():
    r = subprocess.run(["id", USER], capture_output=True)
    if r.returncode == 0:
        return
    r = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.exit(f"bench: Samba needs a Unix account {USER}; useradd failed: {r.stderr.strip()}")


def prepare_shares(ctx, servers):
    (ctx.work / "src").mkdir()
    (ctx.work / "logs").mkdir()
    os.chmod(ctx.work, 0o755)
    make_file(ctx.work / "src" / "big.bin", ctx.large_size)
    for srv in servers.values():
        srv.share_dir.mkdir()
        os.chmod(srv.share_dir, 0o777)
        # Samba writes as the bench user, the others as root: separate folders keep them
        # out of each other's way. The read-only data is the same bytes in each.
        if any(g.startswith(("large", "multi", "raw")) for g in ctx.groups_selected):
            shutil.copyfile(ctx.work / "src" / "big.bin", srv.share_dir / "big.bin")
            os.chmod(srv.share_dir / "big.bin", 0o644)
        for count in ctx.list_counts:
            if f"list{count}" not in ctx.groups_selected:
                continue
            d = srv.share_dir / f"list{count}"
            d.mkdir()
            for i in range(count):
                # Names as a program would make them; sizes 0 keep tmpfs small.
                fd = os.open(d / f"f{i:07d}.dat", os.O_CREAT | os.O_WRONLY, 0o644)
                os.close(fd)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition (CI)")
    p.add_argument("--only", default="", help="comma-separated row groups (see --list)")
    p.add_argument("--list", action="store_true", help="list the row groups and exit")
    p.add_argument("--reps", type=int, help="repetitions per row group (default 3, smoke 1)")
    p.add_argument("--servers", default=",".join(SERVERS), help="subset of samba,peer,lanshare")
    p.add_argument("--lanshare-bin", required=True)
    p.add_argument("--peer-bin", required=True)
    p.add_argument("--client-bin", required=True, help="the native client (bench/client)")
    p.add_argument("--base-bin", help="also measure this earlier lanshare build (column 'lanshare (before)')")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the harness broke: a server did not start, iperf3 failed, or a cell of "
        "Samba or lanshare could not be measured (the crate's cells may be n/a: it lacks some "
        "features); slow figures never fail",
    )
    p.add_argument(
        "--sessions-client",
        choices=["raw", "crate"],
        default="raw",
        help="the sessions rows' client: raw (bench/client/src/raw, a real signed ECHO; default) or "
        "crate (the smb crate, for comparison)",
    )
    p.add_argument("--perf", metavar="DIR", help="profile lanshare with perf in each group; reports into DIR")
    a = p.parse_args()

    ctx = Ctx()
    ctx.smoke = a.smoke
    ctx.reps = a.reps or (1 if a.smoke else 3)
    ctx.large_size = (16 if a.smoke else 1024) << 20
    ctx.large_label = "16 MiB" if a.smoke else "1 GiB"
    # Multi-stream rows: smbprotocol (Python) clients, one process per stream.
    ctx.stream_counts = [1, 2, 4]
    # 18 rows a server: 256 MiB, about 3 seconds a server and repetition; three repetitions
    # (one in smoke), because a single 0.2-second transfer is not a median.
    # Smoke: 4 MiB, because CI runs a dev build of the native client, whose unoptimised AES
    # and SHA move 1-2 MB/s on the encrypted rows.
    ctx.multi_size = (4 if a.smoke else 256) << 20
    ctx.multi_label = "4 MiB" if a.smoke else "256 MiB"
    ctx.multi_reps = a.reps or (1 if a.smoke else 3)
    ctx.small_count = 100 if a.smoke else 1000
    ctx.many_count = 1000 if a.smoke else 10000
    ctx.list_counts = [1000] if a.smoke else [10000, 100000]
    ctx.torture_time = 2 if a.smoke else 10
    ctx.torture_reps = a.reps or (1 if a.smoke else 3)
    # The slow rows get fewer repetitions so that a full run stays under 20 minutes.
    ctx.many_reps = a.reps or 1  # Samba alone takes minutes: it scans the folder per create
    ctx.session_counts = [(200, a.reps or 1)] if a.smoke else [(1000, a.reps or 2), (10000, 1)]
    ctx.iperf_time = 1 if a.smoke else 5
    # Setup budget per session group: Samba needs over 10 minutes for 10,000 on a busy machine.
    ctx.session_deadline = 60 if a.smoke else 240
    ctx.notes = []
    ctx.client_cpu = {}
    ctx.client_gib = {}
    ctx.interims = {}
    ctx.server_cpu = {}
    ctx.op_cpu = {}
    ctx.negotiated = {}
    ctx.profiles = []
    ctx.perf = bool(a.perf)
    if a.perf:
        if not shutil.which("perf"):
            sys.exit("bench: --perf needs perf (apt-get install linux-perf)")
        ctx.perf_dir = Path(a.perf)
        ctx.perf_dir.mkdir(parents=True, exist_ok=True)
    ctx.servers = [s for s in a.servers.split(",") if s]
    ctx.base_bin = Path(a.base_bin) if a.base_bin else None
    if ctx.base_bin and "base" not in ctx.servers:
        # Next to lanshare, so that the two builds are measured back to back.
        ctx.servers.insert(ctx.servers.index("lanshare") if "lanshare" in ctx.servers else len(ctx.servers), "base")
    ctx.lanshare_bin = Path(a.lanshare_bin)
    ctx.peer_bin = Path(a.peer_bin)
    ctx.client_bin = Path(a.client_bin)
    ctx.sessions_client = a.sessions_client
    ctx.password = "Bench." + secrets.token_hex(6)

    rows, groups = build_rows(ctx)
    ctx.group_list = groups
    if a.list:
        for name, ids, _, reps in groups:
            print(f"{name:28} {reps} rep(s): " + ", ".join(rows[i][1] for i in ids))
        print(f"{'tcp':28} iperf3 loopback ceiling")
        return
    only = {g.strip() for g in a.only.split(",") if g.strip()}
    known = {g[0] for g in groups} | {"tcp"}
    # Prefixes select families: "large" = large-off, large-sign, large-encrypt; "sessions" ...
    selected = set()
    for o in only:
        # An exact name selects that group alone (sessions1000 is not sessions10000).
        hits = {o} if o in known else {k for k in known if k.startswith(o)}
        if not hits:
            sys.exit(f"bench: unknown row group {o!r}; known: {', '.join(sorted(known))}")
        selected |= hits
    ctx.groups_selected = selected or known

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 20000:
        log(f"open-files hard limit is {hard}: the 10,000-session row may fail")

    # Other work on the machine (builds, tests) competes for the 2 cores: a higher priority
    # for the servers and clients (all children of this process) keeps its noise down.
    try:
        os.nice(-10)
    except OSError:
        log("could not raise the priority (not root?): other load on the machine will show")
    loads = [os.getloadavg()[0]]

    ensure_unix_user()
    ctx.work = Path(tempfile.mkdtemp(prefix="lanshare-bench.", dir="/dev/shm"))
    log(f"work directory {ctx.work}")
    classes = {"samba": Samba, "peer": Peer, "lanshare": Lanshare, "base": Base}
    servers = {s: classes[s](ctx) for s in ctx.servers}
    results = {}
    order = []
    interrupted = [False]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tcp = None
    t_start = time.monotonic()
    try:
        prepare_shares(ctx, servers)
        for srv in servers.values():
            try:
                srv.start()
                log(f"{srv.name} listening on 127.0.0.1:{srv.port}")
            except NA as e:
                srv.error = str(e)
                log(f"{srv.name} did not start: {e}")
        if "tcp" in ctx.groups_selected:
            try:
                tcp = iperf(ctx)
                log(f"iperf3 loopback: {tcp:,.0f} MB/s")
            except Exception as e:  # noqa: BLE001 - printed in place of the ceiling
                log(f"iperf3 failed: {e}")
        for name, ids, fn, reps in groups:
            if interrupted[0]:
                break
            if name not in ctx.groups_selected:
                continue
            order.extend(ids)
            if not name.startswith("sessions"):
                # Sampled before each group: the session groups' own thousands of processes
                # would inflate it afterwards.
                loads.append(os.getloadavg()[0])
            log(f"group {name}: {reps} rep(s)")
            for rep in range(reps):
                for sname, srv in servers.items():
                    cellres = lambda rid: results.setdefault(rid, {}).setdefault(  # noqa: E731
                        sname, {"values": [], "errors": []}
                    )
                    if not srv.error and not srv.alive():
                        # Stopped after a session group, or it died: bring it back.
                        if srv.proc is not None:
                            log(f"  {sname} had exited ({short(srv.log_tail(2), 60)}): restarting")
                        try:
                            srv.restart()
                        except NA as e:
                            srv.error = str(e)
                    if srv.error:
                        for rid in ids:
                            cellres(rid)["errors"].append(srv.error)
                        continue
                    t = time.perf_counter()
                    prof = start_perf(ctx, srv, name, rep)
                    try:
                        vals = fn(ctx, srv, rep)
                        for rid in ids:
                            if rid in vals:
                                cellres(rid)["values"].append(vals[rid])
                        log(f"  {sname} rep {rep + 1}: " + ", ".join(f"{k}={fmt_num(v)}" for k, v in vals.items())
                            + f" ({time.perf_counter() - t:.1f}s)")
                    except NA as e:
                        for rid in ids:
                            cellres(rid)["errors"].append(str(e))
                        log(f"  {sname} rep {rep + 1}: n/a: {e}")
                    except KeyboardInterrupt:
                        # Stop measuring, but still print what was measured.
                        interrupted[0] = True
                        log("interrupted: printing what was measured so far")
                        break
                    except Exception as e:  # noqa: BLE001 - one broken cell never stops the run
                        for rid in ids:
                            cellres(rid)["errors"].append(f"{type(e).__name__}: {e}")
                        log(f"  {sname} rep {rep + 1}: error {type(e).__name__}: {e}")
                    finally:
                        stop_perf(ctx, prof)
                if interrupted[0]:
                    break
    finally:
        for srv in servers.values():
            srv.stop()
        if not a.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    print()
    print(f"lanshare bench ({'smoke' if a.smoke else 'full'}), {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} cores, {elapsed / 60:.1f} min")
    print(f"load average (1 min) before the groups: median {statistics.median(loads):.1f}, max {max(loads):.1f}"
          + ("  -- the machine was busy with other work: treat the numbers with care"
             if statistics.median(loads) > (os.cpu_count() or 1) + 0.5 else ""))
    if tcp is not None:
        print(f"loopback TCP ceiling (iperf3, 1 stream): {tcp:,.0f} MB/s")
    print("cells: median (min-max) over the repetitions; ratio: lanshare / the better of the others, "
          "inverted for s and KiB rows, so above 1.00 lanshare wins; 'ok' marks the 1.2 target")
    print()
    print_table(ctx, rows, order, results)
    if tcp:
        print()
        for rid in order:
            if rows[rid][2] == "MB/s" and results.get(rid, {}).get("lanshare", {}).get("values"):
                med = statistics.median(results[rid]["lanshare"]["values"])
                print(f"  {rows[rid][1]}: lanshare at {100 * med / tcp:.0f}% of the iperf3 ceiling")
    if ctx.server_cpu:
        print()
        print("  server CPU seconds per GiB moved (median; lower is better; load-independent, unlike MB/s):")
        names = [n for n in ctx.servers]
        print("    " + f"{'row':14}" + "".join(f"{n:>10}" for n in names))
        for rid in order:
            if rid not in ctx.server_cpu:
                continue
            cells = ctx.server_cpu[rid]
            print("    " + f"{rid:14}" + "".join(
                f"{statistics.median(cells[n]):>10.2f}" if n in cells else f"{'-':>10}" for n in names))
    if ctx.op_cpu:
        print()
        print("  server CPU microseconds per operation (median; lower is better; load-independent, unlike rates;")
        print("  /proc counts in 10 ms ticks, so a row whose server used less than a second in all is coarse):")
        print("  sessions: per session set up; small: per file operation (create+write+close, open+read+close,")
        print("  delete: the mean of the three); many: per create; list: per entry; torture: per operation")
        print("  (the reported rate times the time limit); ratio = the better of samba and peer / lanshare")
        names = [n for n in ctx.servers]
        print("    " + f"{'row':32}" + "".join(f"{n:>10}" for n in names) + f"{'ratio':>8}")
        for rid in [g for g, *_ in ctx.group_list if g in ctx.op_cpu]:
            cells = {n: statistics.median(v) for n, v in ctx.op_cpu[rid].items() if v}
            others = [cells[n] for n in ("samba", "peer") if n in cells]
            r = f"{min(others) / cells['lanshare']:.2f}" if others and cells.get("lanshare") else "-"
            print("    " + f"{rid:32}" + "".join(
                f"{cells[n]:>10.1f}" if n in cells else f"{'-':>10}" for n in names) + f"{r:>8}")
    if ctx.client_cpu:
        print()
        print("  client CPU / wall time (near 100 % = the client set the pace, not the server; native =")
        print("  bench/client, the Rust smb crate, native-raw its sessions and stream clients written on the wire;")
        print("  smbprotocol = bench/smbops.py; smbclient: its whole process, connect and logon included):")
        for (g, who, s), v in sorted(ctx.client_cpu.items()):
            print(f"    {g:14} {who:12} {s:9} {100 * statistics.median(v):.0f} %")
    if ctx.client_gib:
        print()
        print("  stream clients' CPU seconds per GiB moved (median over the group's rows; the client's")
        print("  own cost, whatever set the pace; smbprotocol: summed over its processes):")
        for (g, who, s), v in sorted(ctx.client_gib.items()):
            print(f"    {g:14} {who:12} {s:9} {statistics.median(v):.2f}")
    for group, top in ctx.profiles:
        print()
        print(f"  lanshare profile during {group} (perf, self time; full report in {ctx.perf_dir}/perf-{group}.txt):")
        for line in top:
            print("    " + line.strip())
    for (g, s), n in sorted(ctx.interims.items()):
        if n:
            ctx.notes.append(f"{g} {s}: {n} interim (STATUS_PENDING) answers, their credits counted")
    if ctx.notes:
        print()
        for n in ctx.notes:
            print("  " + n)
    if a.json:
        Path(a.json).write_text(json.dumps({"tcp_MBps": tcp, "rows": rows, "results": results, "notes": ctx.notes}, indent=1))
    if a.strict:
        broken = [f"{s.name} did not start: {s.error}" for s in servers.values() if s.error]
        if "tcp" in ctx.groups_selected and tcp is None:
            broken.append("iperf3 failed")
        if interrupted[0]:
            broken.append("interrupted")
        for rid in order:
            for sname, cellv in results.get(rid, {}).items():
                if sname != "peer" and cellv["errors"]:
                    broken.append(f"{rid} on {sname}: {cellv['errors'][0]}")
        if broken:
            print()
            print("bench --strict: the harness or a client broke:")
            for b in broken:
                print("  " + b)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
