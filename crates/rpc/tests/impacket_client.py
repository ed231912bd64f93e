#!/usr/bin/env python3
"""An independent client for tests/impacket.rs: Impacket's DCE/RPC runtime and its srvsvc and
wkssvc stubs, talking to a lanshare `Pipe` through a line protocol on stdin/stdout.

Impacket encodes every BIND and REQUEST (fragmenting requests when told to), and decodes,
reassembles and unmarshals every answer with its own NDR engine; the checks below compare what
it decoded with the fixture that tests/impacket.rs serves. Protocol, one line each:
  to Rust:   "OPEN <pipe>", "W <hex>" (a write), "R <max>" (a read), "DONE <n>", "FAIL <text>"
  from Rust: after R, "<hex> <more 0|1>"; after OPEN and W, "ok" or "err <text>"
"""

import sys
import traceback

from impacket.dcerpc.v5 import rpcrt, srvs, wkst
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.dcerpc.v5.transport import DCERPCTransport

# The fixture of tests/impacket.rs.
BULK = 150
EXPECTED_LISTED = (
    [("docs", 0, "Documents"), ("Ümlaut 日本 😀", 0, "Unicode: Grüße 😀")]
    + [(f"bulk{i:03}", 0, f"bulk share number {i} with a longer comment") for i in range(BULK)]
    + [("IPC$", 0x80000003, "Remote IPC")]
)
SERVER = ("LANSHARE", "A lanshare server", 10, 0, "WORKGROUP")


def tell(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hear():
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("the Rust side went away")
    return line.rstrip("\n")


class PipeTransport(DCERPCTransport):
    """A named pipe in message mode, as SMB2 READ/WRITE offer it."""

    def __init__(self, pipe):
        DCERPCTransport.__init__(self, "lanshare", 0)
        self.pipe = pipe
        self.truncated_reads = 0

    def connect(self):
        tell(f"OPEN {self.pipe}")
        reply = hear()
        if reply != "ok":
            raise DCERPCException(reply)
        return 1

    def disconnect(self):
        return 1

    def send(self, data, forceWriteAndx=0, forceRecv=0):
        tell(f"W {bytes(data).hex()}")
        reply = hear()
        if reply != "ok":
            raise DCERPCException(reply)

    def recv(self, forceRecv=0, count=0):
        # count 0: a whole message. Otherwise what a TCP-like reader asks for, which makes the
        # pipe cut a message and report the rest.
        tell(f"R {count or 65536}")
        hexdata, more = hear().split(" ")
        if more == "1":
            self.truncated_reads += 1
        return bytes.fromhex(hexdata)

    def get_dce_rpc(self):
        return rpcrt.DCERPC_v5(self)


checks = 0


def check(what, got, want):
    global checks
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
    checks += 1


def s(v):
    """An NDR string field as Python text, without its terminating NUL."""
    return str(v).rstrip("\x00")


NDR20 = ("8a885d04-1ceb-11c9-9fe8-08002b104860", "2.0")
NDR64 = ("71710533-BEBA-4937-8319-B5DBEF9CCC36", "1.0")


def srvsvc_checks(syntax):
    """Every check over a context bound with `syntax`: Impacket marshals the requests and
    unmarshals the answers in that transfer syntax."""
    t = PipeTransport("srvsvc")
    dce = t.get_dce_rpc()
    dce.connect()
    dce.bind(srvs.MSRPC_UUID_SRVS, transfer_syntax=syntax)

    for level in (0, 1, 2, 501, 502):
        resp = srvs.hNetrShareEnum(dce, level, serverName="\\\\192.0.2.7")
        info = resp["InfoStruct"]["ShareInfo"][f"Level{level}"]
        buf = info["Buffer"]
        check(f"enum {level} count", info["EntriesRead"], len(EXPECTED_LISTED))
        check(f"enum {level} total", resp["TotalEntries"], len(EXPECTED_LISTED))
        for entry, (name, typ, remark) in zip(buf, EXPECTED_LISTED):
            prefix = f"shi{level}_"
            check(f"enum {level} name", s(entry[prefix + "netname"]), name)
            if level != 0:
                check(f"enum {level} type of {name}", entry[prefix + "type"], typ)
                check(f"enum {level} remark of {name}", s(entry[prefix + "remark"]), remark)
            if level in (2, 502):
                check(f"enum {level} max uses", entry[prefix + "max_uses"], 0xFFFFFFFF)
                want_path = "" if name == "IPC$" else f"C:\\{name}"
                check(f"enum {level} path", s(entry[prefix + "path"]), want_path)
    check("enum transport cut messages", t.truncated_reads > 0, True)

    # NetrShareEnumSticky: no IPC$.
    resp = srvs.hNetrShareEnumSticky(dce, 1)
    check("sticky count", resp["InfoStruct"]["ShareInfo"]["Level1"]["EntriesRead"],
          len(EXPECTED_LISTED) - 1)

    for level in (0, 1, 2, 501, 502):
        resp = srvs.hNetrShareGetInfo(dce, "SECRET$\x00", level)
        info = resp["InfoStruct"][f"ShareInfo{level}"]
        check(f"getinfo {level} name", s(info[f"shi{level}_netname"]), "secret$")
        if level != 0:
            check(f"getinfo {level} type", info[f"shi{level}_type"], 0x80000000)
            check(f"getinfo {level} remark", s(info[f"shi{level}_remark"]), "hidden, still served")
        if level in (2, 502):
            check(f"getinfo {level} current uses", info[f"shi{level}_current_uses"], 3)
        if level == 502:
            check("getinfo 502 sd", len(info["shi502_security_descriptor"]), 0)
    resp = srvs.hNetrShareGetInfo(dce, "docs\x00", 1005)
    check("getinfo 1005 flags", resp["InfoStruct"]["ShareInfo1005"]["shi1005_flags"], 0)
    try:
        srvs.hNetrShareGetInfo(dce, "nosuch\x00", 1)
        raise AssertionError("getinfo of an unknown share succeeded")
    except srvs.DCERPCSessionError as e:
        check("getinfo unknown share", e.get_error_code(), 2310)

    name, comment, major, minor, _ = SERVER
    resp = srvs.hNetrServerGetInfo(dce, 100)
    check("server 100 name", s(resp["InfoStruct"]["ServerInfo100"]["sv100_name"]), name)
    resp = srvs.hNetrServerGetInfo(dce, 101)
    i = resp["InfoStruct"]["ServerInfo101"]
    check("server 101", (i["sv101_platform_id"], s(i["sv101_name"]), i["sv101_version_major"],
                         i["sv101_version_minor"], i["sv101_type"], s(i["sv101_comment"])),
          (500, name, major, minor, 0x9003, comment))
    resp = srvs.hNetrServerGetInfo(dce, 102)
    i = resp["InfoStruct"]["ServerInfo102"]
    check("server 102", (s(i["sv102_name"]), s(i["sv102_comment"]), i["sv102_hidden"],
                         s(i["sv102_userpath"])), (name, comment, 0, "C:\\"))
    try:
        srvs.hNetrServerGetInfo(dce, 103)
        raise AssertionError("server level 103 succeeded")
    except srvs.DCERPCSessionError as e:
        check("server level 103", e.get_error_code(), 124)

    # Requests fragmented by the client: 16 stub bytes per fragment.
    dce.set_max_fragment_size(16)
    resp = srvs.hNetrShareGetInfo(dce, "Ümlaut 日本 😀\x00", 1)
    check("fragmented request", s(resp["InfoStruct"]["ShareInfo1"]["shi1_remark"]),
          "Unicode: Grüße 😀")
    dce.set_max_fragment_size(0)

    # An operation we do not serve: a fault, and the pipe goes on.
    try:
        srvs.hNetrRemoteTOD(dce)
        raise AssertionError("NetrRemoteTOD succeeded")
    except DCERPCException as e:
        check("unserved opnum", "nca_s_op_rng_error" in str(e), True)
    resp = srvs.hNetrServerGetInfo(dce, 100)
    check("after a fault", resp["ErrorCode"], 0)


def wkssvc_checks(syntax):
    dce = PipeTransport("wkssvc").get_dce_rpc()
    dce.connect()
    dce.bind(wkst.MSRPC_UUID_WKST, transfer_syntax=syntax)
    resp = wkst.hNetrWkstaGetInfo(dce, 100)
    i = resp["WkstaInfo"]["WkstaInfo100"]
    name, _, major, minor, domain = SERVER
    check("wkssvc 100", (i["wki100_platform_id"], s(i["wki100_computername"]),
                         s(i["wki100_langroup"]), i["wki100_ver_major"], i["wki100_ver_minor"]),
          (500, name, domain, major, minor))


def main():
    try:
        for syntax in (NDR20, NDR64):
            srvsvc_checks(syntax)
            wkssvc_checks(syntax)
    except Exception:  # noqa: BLE001 - every failure goes back to the Rust test
        tell("FAIL " + traceback.format_exc().replace("\n", " | "))
        return 1
    tell(f"DONE {checks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
