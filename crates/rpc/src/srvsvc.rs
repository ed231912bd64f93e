//! srvsvc, the Server Service Remote Protocol ([MS-SRVS]), interface
//! 4b324fc8-1670-01d3-1278-5a47bf6ee188 v3.0: the three operations that share browsing uses.
//!
//! - NetrShareEnum (opnum 15, [MS-SRVS] 3.1.4.8) levels 0, 1, 2, 501, 502, and
//!   NetrShareEnumSticky (opnum 36, 3.1.4.9, which rpcclient's `netshareenum` calls): the
//!   same, without IPC$ and `$` shares, which are not "sticky" (persistent) shares;
//! - NetrShareGetInfo (opnum 16, 3.1.4.10) levels 0, 1, 2, 501, 502, 1005;
//! - NetrServerGetInfo (opnum 21, 3.1.4.17) levels 100, 101, 102.
//!
//! Every other opnum is `nca_s_op_rng_error`; every other level is ERROR_INVALID_LEVEL.
//! The ServerName argument (`\\1.2.3.4`, `\\name`, or NULL) is read and ignored, as Windows
//! accepts any of them.

use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::pdu::SyntaxId;
use crate::pipe::CallError;
use crate::{RpcContext, ServerInfo, ShareInfo, ShareKind};

/// The srvsvc abstract syntax.
pub(crate) const SYNTAX: SyntaxId = SyntaxId::new(
    0x4b32_4fc8,
    0x1670,
    0x01d3,
    [0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88],
    3,
    0,
);

const OP_NETR_SHARE_ENUM: u16 = 15;
const OP_NETR_SHARE_GET_INFO: u16 = 16;
const OP_NETR_SERVER_GET_INFO: u16 = 21;
const OP_NETR_SHARE_ENUM_STICKY: u16 = 36;

/// Win32 and LAN Manager error codes returned as NET_API_STATUS ([MS-ERREF] 2.2).
pub(crate) mod status {
    pub(crate) const SUCCESS: u32 = 0;
    pub(crate) const ERROR_INVALID_LEVEL: u32 = 124;
    pub(crate) const NERR_NET_NAME_NOT_FOUND: u32 = 2310;
}

/// `shi*_type` values ([MS-SRVS] 2.2.2.4).
const STYPE_DISKTREE: u32 = 0;
const STYPE_IPC: u32 = 3;
const STYPE_SPECIAL: u32 = 0x8000_0000;

/// `sv*_platform_id` for Windows NT and its successors ([MS-SRVS] 2.2.2.6).
pub(crate) const PLATFORM_ID_NT: u32 = 500;

/// `sv101_type` ([MS-SRVS] 2.2.2.7): a workstation and server running Windows NT that is not
/// a domain controller. No print queues, no browser roles, no DFS root.
const SV_TYPE: u32 = 0x0000_0001 /* WORKSTATION */
    | 0x0000_0002 /* SERVER */
    | 0x0000_1000 /* NT */
    | 0x0000_8000 /* SERVER_NT */;

/// No more shares than this are listed: it keeps counts inside `u32` and the response bounded.
const MAX_LISTED: usize = 65_536;

pub(crate) fn call(
    opnum: u16,
    stub: NdrReader<'_>,
    ctx: &dyn RpcContext,
) -> Result<Vec<u8>, CallError> {
    match opnum {
        OP_NETR_SHARE_ENUM => share_enum(stub, ctx, false),
        OP_NETR_SHARE_ENUM_STICKY => share_enum(stub, ctx, true),
        OP_NETR_SHARE_GET_INFO => share_get_info(stub, ctx),
        OP_NETR_SERVER_GET_INFO => server_get_info(stub, ctx),
        _ => Err(CallError::OpRange),
    }
}

/// Levels for which SHARE_ENUM_UNION ([MS-SRVS] 2.2.3.6) has an arm, a pointer; for any
/// other level the union is empty on the wire.
fn enum_has_arm(level: u32) -> bool {
    matches!(level, 0 | 1 | 2 | 501 | 502 | 503)
}

/// Levels for which SHARE_INFO ([MS-SRVS] 2.2.3.5) has an arm.
fn share_info_has_arm(level: u32) -> bool {
    matches!(
        level,
        0 | 1 | 2 | 501 | 502 | 503 | 1004 | 1005 | 1006 | 1501
    )
}

/// Levels for which SERVER_INFO ([MS-SRVS] 2.2.3.7) has an arm.
fn server_info_has_arm(level: u32) -> bool {
    matches!(
        level,
        100 | 101 | 102 | 103 | 502 | 503 | 599 | 1005 | 1010 | 1016 | 1017 | 1018 | 1107
    ) || (1501..=1556).contains(&level)
}

/// The shares, with IPC$ added when the context has none.
fn all_shares(ctx: &dyn RpcContext) -> Vec<ShareInfo> {
    let mut shares = ctx.shares();
    if !shares.iter().any(|s| s.kind == ShareKind::Ipc) {
        shares.push(ShareInfo {
            name: "IPC$".into(),
            comment: "Remote IPC".into(),
            kind: ShareKind::Ipc,
            hidden_from_list: false,
            path: String::new(),
            max_uses: u32::MAX,
            current_uses: 0,
        });
    }
    shares
}

fn share_type(s: &ShareInfo) -> u32 {
    let base = match s.kind {
        ShareKind::Disk => STYPE_DISKTREE,
        ShareKind::Ipc => STYPE_IPC,
    };
    if s.name.ends_with('$') {
        base | STYPE_SPECIAL
    } else {
        base
    }
}

/// The fixed part of SHARE_INFO_0/1/2/501/502 ([MS-SRVS] 2.2.4.22–2.2.4.26); the strings
/// its pointers refer to follow in [`share_deferred`].
fn share_fixed(w: &mut NdrWriter, level: u32, s: &ShareInfo) {
    w.pointer(true); // netname
    if level == 0 {
        return;
    }
    w.u32(share_type(s));
    w.pointer(true); // remark
    match level {
        501 => w.u32(0), // shi501_flags: manual caching (CSC policy 0), nothing else
        2 | 502 => {
            w.u32(0); // permissions: share-level security is not used
            w.u32(s.max_uses);
            w.u32(s.current_uses);
            w.pointer(true); // path
            // passwd: share-level passwords do not exist. Windows sends NULL, Samba an empty
            // string; rpcclient prints the latter more nicely.
            w.pointer(true);
            if level == 502 {
                w.u32(0); // shi502_reserved: the security descriptor's length
                w.pointer(false); // shi502_security_descriptor: none given
            }
        }
        _ => {}
    }
}

fn share_deferred(w: &mut NdrWriter, level: u32, s: &ShareInfo) {
    w.wstring(&s.name);
    if level == 0 {
        return;
    }
    w.wstring(&s.comment);
    if matches!(level, 2 | 502) {
        w.wstring(&s.path);
        w.wstring("");
    }
}

fn share_enum(
    mut r: NdrReader<'_>,
    ctx: &dyn RpcContext,
    sticky: bool,
) -> Result<Vec<u8>, CallError> {
    let _server = r.unique_wstring()?;
    // InfoStruct: SHARE_ENUM_STRUCT { Level; [switch_is(Level)] SHARE_ENUM_UNION }, aligned
    // like the pointer in its union.
    r.align_pointer()?;
    let level = r.u32()?;
    // The union is aligned like its pointer arms (NDR64 pads before the switch).
    r.align_pointer()?;
    if r.u32()? != level {
        return Err(NdrError::Invalid("union switch differs from Level").into());
    }
    if enum_has_arm(level) && r.pointer()? {
        let _entries_read = r.u32()?;
        // Clients send an empty container; an input array would have to be skipped entry by
        // entry for no purpose.
        if r.pointer()? {
            return Err(NdrError::Invalid("NetrShareEnum with an input share array").into());
        }
    }
    let _prefered_maximum_length = r.u32()?;
    let resume = if r.pointer()? { Some(r.u32()?) } else { None };

    let mut w = NdrWriter::after(&r);
    w.u32(level);
    w.align_pointer();
    w.u32(level);
    let (total, status) = if matches!(level, 0 | 1 | 2 | 501 | 502) {
        let shares = all_shares(ctx);
        let listed: Vec<&ShareInfo> = shares
            .iter()
            .filter(|s| {
                if sticky {
                    !s.hidden_from_list && s.kind == ShareKind::Disk && !s.name.ends_with('$')
                } else {
                    !s.hidden_from_list || s.kind == ShareKind::Ipc
                }
            })
            .take(MAX_LISTED)
            .collect();
        // MAX_LISTED keeps this inside u32.
        let n = u32::try_from(listed.len()).unwrap_or(0);
        w.pointer(true); // the container
        w.u32(n); // EntriesRead
        w.pointer(n > 0); // Buffer
        if n > 0 {
            w.size(n); // conformant array: maximum count
            for s in &listed {
                share_fixed(&mut w, level, s);
            }
            for s in &listed {
                share_deferred(&mut w, level, s);
            }
        }
        (n, status::SUCCESS)
    } else {
        if enum_has_arm(level) {
            w.pointer(false);
        }
        (0, status::ERROR_INVALID_LEVEL)
    };
    w.u32(total); // TotalEntries: everything fits in one answer
    // The whole list is always returned, so the resume handle comes back as 0.
    w.pointer(resume.is_some());
    if resume.is_some() {
        w.u32(0);
    }
    w.u32(status);
    Ok(w.into_bytes())
}

fn share_get_info(mut r: NdrReader<'_>, ctx: &dyn RpcContext) -> Result<Vec<u8>, CallError> {
    let _server = r.unique_wstring()?;
    let netname = r.wstring()?; // [in, string] WCHAR*: a reference pointer, no referent id
    let level = r.u32()?;

    let mut w = NdrWriter::after(&r);
    w.u32(level);
    let status = if !matches!(level, 0 | 1 | 2 | 501 | 502 | 1005) {
        status::ERROR_INVALID_LEVEL
    } else {
        let shares = all_shares(ctx);
        let wanted = netname.to_lowercase();
        match shares.iter().find(|s| s.name.to_lowercase() == wanted) {
            None => status::NERR_NET_NAME_NOT_FOUND,
            Some(s) => {
                w.pointer(true);
                if level == 1005 {
                    w.u32(0); // shi1005_flags: CSC policy 0 (manual caching), nothing else
                } else {
                    share_fixed(&mut w, level, s);
                    share_deferred(&mut w, level, s);
                }
                status::SUCCESS
            }
        }
    };
    if status != status::SUCCESS && share_info_has_arm(level) {
        w.pointer(false);
    }
    w.u32(status);
    Ok(w.into_bytes())
}

/// `sv102_disc`: the auto-disconnect time in minutes that Windows uses by default.
const AUTODISCONNECT_MINUTES: u32 = 15;
/// `sv102_announce` and `sv102_anndelta`: Windows' browser announcement defaults
/// (seconds and milliseconds).
const ANNOUNCE_SECONDS: u32 = 240;
const ANNOUNCE_DELTA_MS: u32 = 3000;

fn server_get_info(mut r: NdrReader<'_>, ctx: &dyn RpcContext) -> Result<Vec<u8>, CallError> {
    let _server = r.unique_wstring()?;
    let level = r.u32()?;
    let info: ServerInfo = ctx.server();

    let mut w = NdrWriter::after(&r);
    w.u32(level);
    let status = match level {
        100..=102 => {
            w.pointer(true);
            w.u32(PLATFORM_ID_NT);
            w.pointer(true); // name
            if level >= 101 {
                w.u32(info.version_major);
                w.u32(info.version_minor);
                w.u32(SV_TYPE);
                w.pointer(true); // comment
            }
            if level == 102 {
                w.u32(u32::MAX); // sv102_users: no limit on users
                w.u32(AUTODISCONNECT_MINUTES);
                w.u32(0); // sv102_hidden: visible in browse lists
                w.u32(ANNOUNCE_SECONDS);
                w.u32(ANNOUNCE_DELTA_MS);
                w.u32(0); // sv102_licenses: unused since NT
                w.pointer(true); // userpath
            }
            w.wstring(&info.name);
            if level >= 101 {
                w.wstring(&info.comment);
            }
            if level == 102 {
                w.wstring("C:\\");
            }
            status::SUCCESS
        }
        _ => {
            if server_info_has_arm(level) {
                w.pointer(false);
            }
            status::ERROR_INVALID_LEVEL
        }
    };
    w.u32(status);
    Ok(w.into_bytes())
}
