//! wkssvc, the Workstation Service Remote Protocol ([MS-WKST]), interface
//! 6bffd098-a112-3610-9833-46c3f87e345a v1.0: NetrWkstaGetInfo (opnum 0, [MS-WKST] 3.2.4.1)
//! at level 100, which `net view`-style browsing and rpcclient ask for. Every other opnum is
//! `nca_s_op_rng_error`, every other level ERROR_INVALID_LEVEL.

use crate::RpcContext;
use crate::ndr::{NdrReader, NdrWriter};
use crate::pdu::SyntaxId;
use crate::pipe::CallError;
use crate::srvsvc::{PLATFORM_ID_NT, status};

/// The wkssvc abstract syntax.
pub(crate) const SYNTAX: SyntaxId = SyntaxId::new(
    0x6bff_d098,
    0xa112,
    0x3610,
    [0x98, 0x33, 0x46, 0xc3, 0xf8, 0x7e, 0x34, 0x5a],
    1,
    0,
);

const OP_NETR_WKSTA_GET_INFO: u16 = 0;

/// Levels for which WKSTA_INFO ([MS-WKST] 2.2.4.1) has an arm.
fn wksta_info_has_arm(level: u32) -> bool {
    matches!(level, 100 | 101 | 102 | 502 | 1013 | 1018 | 1046)
}

pub(crate) fn call(
    opnum: u16,
    stub: NdrReader<'_>,
    ctx: &dyn RpcContext,
) -> Result<Vec<u8>, CallError> {
    match opnum {
        OP_NETR_WKSTA_GET_INFO => wksta_get_info(stub, ctx),
        _ => Err(CallError::OpRange),
    }
}

fn wksta_get_info(mut r: NdrReader<'_>, ctx: &dyn RpcContext) -> Result<Vec<u8>, CallError> {
    let _server = r.unique_wstring()?;
    let level = r.u32()?;

    let mut w = NdrWriter::after(&r);
    w.u32(level);
    let status = if level == 100 {
        let info = ctx.server();
        // WKSTA_INFO_100 ([MS-WKST] 2.2.5.1).
        w.pointer(true);
        w.u32(PLATFORM_ID_NT);
        w.pointer(true); // wki100_computername
        w.pointer(true); // wki100_langroup
        w.u32(info.version_major);
        w.u32(info.version_minor);
        w.wstring(&info.name);
        w.wstring(&info.domain);
        status::SUCCESS
    } else {
        if wksta_info_has_arm(level) {
            w.pointer(false);
        }
        status::ERROR_INVALID_LEVEL
    };
    w.u32(status);
    Ok(w.into_bytes())
}
