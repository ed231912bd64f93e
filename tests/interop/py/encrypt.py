"""Encrypted round trip through smbprotocol, offering exactly one cipher.

Connects with SMB 3.1.1 (or 3.0.2/3.0 with --dialect), offers only --cipher, requires
encryption for the session, writes --size random bytes to a new file, reads them back and
compares. Prints "CIPHER <id>" (the cipher the server chose) and "OK" on success; any failure
raises, which exits non-zero with the traceback.
"""

import argparse
import os
import uuid

from smbprotocol.connection import Ciphers, Connection, Dialects
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

DIALECTS = {"3.0": Dialects.SMB_3_0_0, "3.0.2": Dialects.SMB_3_0_2, "3.1.1": Dialects.SMB_3_1_1}

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--user", required=True)
p.add_argument("--password", required=True)
p.add_argument("--share", required=True)
p.add_argument("--cipher", choices=["AES_128_CCM", "AES_128_GCM", "AES_256_CCM", "AES_256_GCM"], required=True)
p.add_argument("--dialect", choices=sorted(DIALECTS), default="3.1.1")
p.add_argument("--size", type=int, default=1 << 20)
a = p.parse_args()

conn = Connection(uuid.uuid4(), a.host, a.port)
conn.connect(DIALECTS[a.dialect], preferred_encryption_algos=[getattr(Ciphers, a.cipher)])
print(f"CIPHER {conn.cipher_id}", flush=True)
session = Session(conn, a.user, a.password, require_encryption=True)
session.connect()
tree = TreeConnect(session, rf"\\{a.host}\{a.share}")
tree.connect()
f = Open(tree, f"encrypted-{a.cipher}.bin")
f.create(
    ImpersonationLevel.Impersonation,
    FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
    FileAttributes.FILE_ATTRIBUTE_NORMAL,
    ShareAccess.FILE_SHARE_READ,
    CreateDisposition.FILE_OVERWRITE_IF,
    CreateOptions.FILE_NON_DIRECTORY_FILE,
)
data = os.urandom(a.size)
chunk = 1 << 16
for off in range(0, len(data), chunk):
    f.write(data[off : off + chunk], off)
back = b"".join(f.read(off, min(chunk, len(data) - off)) for off in range(0, len(data), chunk))
assert back == data, "data read back differs from data written"
f.close()
tree.disconnect()
session.disconnect()
conn.disconnect()
print("OK", flush=True)
