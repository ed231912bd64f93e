#!/usr/bin/env python3
"""A long-lived smbprotocol client driven over stdin, for tests/limits.rs.

It connects (3.1.1 unless --dialect says otherwise), authenticates, connects the tree and prints
"READY <session id>", then answers one line per command:

  echo              -> "OK" or "FAIL <why>"
  open NAME         -> creates/opens NAME and keeps it open: "OK" or "FAIL <why>"
  close NAME        -> "OK" or "FAIL <why>"
  credits           -> "CREDITS <n>": the credits the client holds now (granted - used)
  notify N          -> opens the share root N more times and starts a CHANGE_NOTIFY on each;
                       waits until each has its interim response (STATUS_PENDING) or a final
                       error: "PENDING <n pending> FAILED <n failed> STATUS <first failure hex>"
  rw N SIZE         -> N times: write SIZE bytes to rw.bin and read them back (each checked):
                       "RW <n ok> <seconds> CREDITS <n>" or "FAIL <why>"
  notified          -> "NOTIFIED <n>": watchers that have completed (with changes or an error)
  cancel            -> cancels every pending watcher: "OK"
  logoff            -> tree disconnect + logoff: "OK"
End of input: close everything, disconnect, exit 0.
"""

import argparse
import sys
import time
import uuid

from smbtest import DIALECTS, server_args  # first: it checks that smbprotocol is installed

from smbprotocol.change_notify import CompletionFilter, FileSystemWatcher
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE


def credits(conn):
    with conn.sequence_lock:
        return conn.sequence_window["high"] - conn.sequence_window["low"]


def open_file(tree, name):
    f = Open(tree, name)
    f.create(
        ImpersonationLevel.Impersonation,
        FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
        FileAttributes.FILE_ATTRIBUTE_NORMAL,
        SHARE_ALL,
        CreateDisposition.FILE_OPEN_IF,
        CreateOptions.FILE_NON_DIRECTORY_FILE,
    )
    return f


def open_root(tree):
    d = Open(tree, "")
    d.create(
        ImpersonationLevel.Impersonation,
        DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES,
        FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
        SHARE_ALL,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_DIRECTORY_FILE,
    )
    return d


def start_watch(conn, d):
    """Starts a CHANGE_NOTIFY and waits for its first answer without consuming the final one."""
    w = FileSystemWatcher(d)
    w.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME | CompletionFilter.FILE_NOTIFY_CHANGE_DIR_NAME)
    req = w._request
    deadline = time.time() + 10
    while time.time() < deadline:
        if req.response is not None:
            status = req.response["status"].get_value()
            return w, status
        if w.response_event.is_set():
            break
        time.sleep(0.005)
    if req.response is not None:
        return w, req.response["status"].get_value()
    return w, None


def main():
    p = argparse.ArgumentParser()
    server_args(p)
    p.add_argument("--dialect", choices=sorted(DIALECTS), default="3.1.1")
    a = p.parse_args()

    conn = Connection(uuid.uuid4(), a.host, a.port, require_signing=True)
    conn.connect(dialect=DIALECTS[a.dialect], timeout=30)
    files = {}
    dirs = []
    watchers = []
    session = None
    tree = None
    try:
        session = Session(conn, a.user, a.password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
        tree.connect()
        print(f"READY {session.session_id}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            cmd, args = words[0], words[1:]
            try:
                if cmd == "echo":
                    conn.echo(sid=session.session_id, timeout=10)
                    print("OK", flush=True)
                elif cmd == "open":
                    files[args[0]] = open_file(tree, args[0])
                    print("OK", flush=True)
                elif cmd == "close":
                    files.pop(args[0]).close()
                    print("OK", flush=True)
                elif cmd == "credits":
                    print(f"CREDITS {credits(conn)}", flush=True)
                elif cmd == "notify":
                    pending = failed = 0
                    first = None
                    for _ in range(int(args[0])):
                        try:
                            d = open_root(tree)
                        except SMBResponseException as e:
                            failed += 1
                            first = first or e.status
                            continue
                        dirs.append(d)
                        w, status = start_watch(conn, d)
                        watchers.append(w)
                        if status == 0x103:
                            pending += 1
                        else:
                            failed += 1
                            first = first or status or 0xFFFFFFFF
                    print(f"PENDING {pending} FAILED {failed} STATUS {(first or 0):#010x}", flush=True)
                elif cmd == "notified":
                    done = sum(1 for w in watchers if w.response_event.is_set())
                    print(f"NOTIFIED {done}", flush=True)
                elif cmd == "rw":
                    n, size = int(args[0]), int(args[1])
                    f = files.get("rw.bin") or open_file(tree, "rw.bin")
                    files["rw.bin"] = f
                    data = bytes((i * 7 + 3) % 251 for i in range(size))
                    start = time.time()
                    ok = 0
                    for i in range(n):
                        f.write(data, 0)
                        back = f.read(0, size)
                        if back != data:
                            raise Exception(f"read {len(back)} bytes that differ from what was written (op {i})")
                        ok += 1
                    print(f"RW {ok} {time.time() - start:.3f} CREDITS {credits(conn)}", flush=True)
                elif cmd == "cancel":
                    for w in watchers:
                        if not w.response_event.is_set():
                            try:
                                w.cancel()
                            except Exception:  # noqa: BLE001 - best effort
                                pass
                    print("OK", flush=True)
                elif cmd == "logoff":
                    tree.disconnect()
                    session.disconnect()
                    tree = session = None
                    print("OK", flush=True)
                else:
                    print(f"FAIL unknown command {cmd}", flush=True)
            except SMBResponseException as e:
                print(f"FAIL status {e.status:#010x}", flush=True)
            except Exception as e:  # noqa: BLE001 - reported to the driving test
                print(f"FAIL {type(e).__name__}: {e}", flush=True)
    finally:
        try:
            conn.disconnect(True)
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
