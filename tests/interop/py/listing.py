#!/usr/bin/env python3
"""One directory enumeration whose information class changes between queries, through Python
smbprotocol's low-level API.

Used by tests/smbprotocol.rs; runnable by hand against a share holding `DIR` with `--count`
files:

    python3 listing.py --host 127.0.0.1 --port 4455 --user u --password p --share share \\
        --dir big --count 3000

The server reads entries ahead of the query that returns them and prepares them in the class
the last query asked for. This lists the folder in one enumeration, switching between
FileIdBothDirectoryInformation and FileNamesInformation (and pausing so that the read-ahead
has time to fill), and requires every name exactly once, each entry well formed in the class
asked.

Exit status 0 and a last line starting with PASS when all held; 1 and FAIL otherwise; 2 when
smbprotocol is missing.
"""

import argparse
import time

from smbtest import connect, fail, server_args  # first: it checks that smbprotocol is installed
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    ImpersonationLevel,
    Open,
    ShareAccess,
)

ID_BOTH = 0x25
NAMES = 0x0C
STATUS_NO_MORE_FILES = 0x80000006


def main():
    p = argparse.ArgumentParser()
    server_args(p)
    p.add_argument("--dir", required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()

    conn, session, tree = connect(a, dialect=None)
    d = Open(tree, a.dir)
    d.create(
        ImpersonationLevel.Impersonation,
        DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES,
        FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_DIRECTORY_FILE,
    )

    # The class of each query in turn (the last one repeats until the end): each switch
    # meets entries the server prepared in the class before.
    plan = [ID_BOTH, ID_BOTH, NAMES, NAMES, ID_BOTH, NAMES, ID_BOTH]
    seen = {}
    queries = 0
    while True:
        cls = plan[min(queries, len(plan) - 1)]
        try:
            entries = d.query_directory("*", cls, max_output=16384)
        except SMBResponseException as e:
            if e.status == STATUS_NO_MORE_FILES and queries > 0:
                break
            fail(f"query {queries} (class {cls:#x}): status {e.status:#x}")
        queries += 1
        if not entries:
            fail(f"query {queries}: an empty success")
        for ent in entries:
            name = ent["file_name"].get_value().decode("utf-16-le")
            if ent["file_name_length"].get_value() != 2 * len(name):
                fail(f"query {queries}: FileNameLength does not match {name!r}")
            if cls == ID_BOTH and name not in (".", ".."):
                if ent["end_of_file"].get_value() != 4:
                    fail(f"query {queries}: {name!r} has EndOfFile {ent['end_of_file'].get_value()}")
            seen[name] = seen.get(name, 0) + 1
        # Time for the read-ahead to fill its window in this query's class.
        time.sleep(0.2)
        if queries > 1000:
            fail("more than 1000 queries")

    files = {n for n in seen if n not in (".", "..")}
    twice = sorted(n for n, c in seen.items() if c > 1)
    if twice:
        fail(f"listed more than once: {twice[:5]}")
    want = {f"entry{i:05}.dat" for i in range(a.count)}
    if files != want:
        fail(f"missing {sorted(want - files)[:5]}, unexpected {sorted(files - want)[:5]}")
    d.close()
    tree.disconnect()
    session.disconnect()
    conn.disconnect()
    print(f"PASS {len(files)} names in {queries} queries, switching classes")


if __name__ == "__main__":
    main()
