//! CREATE contexts ([MS-SMB2] 2.2.13.2 in requests, 2.2.14.2 in responses): the chained list
//! and typed views of the payloads an SMB server understands.
//!
//! The list keeps every context as a name/data pair, so unknown ones (AAPL, POSIX, ...) survive
//! a parse/encode round trip; the typed structs below decode and build the known payloads.

use crate::codec::{Reader, Writer, align_up, to_u16, to_u32};
use crate::error::{Result, WireError};
use crate::types::{AccessMask, FileId, NtStatus};

/// Contexts accepted in one CREATE before giving up (real clients send up to ~6).
const MAX_CONTEXTS: usize = 64;
/// Size of a context's fixed header (Next, NameOffset, NameLength, Reserved, DataOffset, DataLength).
const CONTEXT_HEADER: usize = 16;

/// Well-known context names ([MS-SMB2] 2.2.13.2).
pub mod names {
    /// SMB2_CREATE_EA_BUFFER.
    pub const EXT_A: &[u8] = b"ExtA";
    /// SMB2_CREATE_SD_BUFFER.
    pub const SEC_D: &[u8] = b"SecD";
    /// SMB2_CREATE_DURABLE_HANDLE_REQUEST / RESPONSE.
    pub const DHNQ: &[u8] = b"DHnQ";
    /// SMB2_CREATE_DURABLE_HANDLE_RECONNECT.
    pub const DHNC: &[u8] = b"DHnC";
    /// SMB2_CREATE_ALLOCATION_SIZE.
    pub const AL_SI: &[u8] = b"AlSi";
    /// SMB2_CREATE_QUERY_MAXIMAL_ACCESS_REQUEST / RESPONSE.
    pub const MX_AC: &[u8] = b"MxAc";
    /// SMB2_CREATE_TIMEWARP_TOKEN.
    pub const TW_RP: &[u8] = b"TWrp";
    /// SMB2_CREATE_QUERY_ON_DISK_ID.
    pub const QFID: &[u8] = b"QFid";
    /// SMB2_CREATE_REQUEST_LEASE / _V2 (same name; told apart by data length).
    pub const RQ_LS: &[u8] = b"RqLs";
    /// SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2 / RESPONSE_V2.
    pub const DH2Q: &[u8] = b"DH2Q";
    /// SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2.
    pub const DH2C: &[u8] = b"DH2C";
    /// SMB2_CREATE_APP_INSTANCE_ID (a 16-byte GUID name).
    pub const APP_INSTANCE_ID: &[u8] =
        b"\x45\xBC\xA6\x6A\xEF\xA7\xF7\x4A\x90\x08\xFA\x46\x2E\x14\x4D\x74";
    /// SMB2_CREATE_APP_INSTANCE_VERSION (a 16-byte GUID name).
    pub const APP_INSTANCE_VERSION: &[u8] =
        b"\xB9\x82\xD0\xB7\x3B\x56\x07\x4F\xA0\x7B\x52\x4A\x81\x16\xA0\x10";
    /// SVHDX_OPEN_DEVICE_CONTEXT (a 16-byte GUID name).
    pub const SVHDX_OPEN_DEVICE: &[u8] =
        b"\x9C\xCB\xCF\x9E\x04\xC1\xE6\x43\x98\x0E\x15\x8D\xA1\xF6\xEC\x83";
    /// Apple's AAPL context (macOS clients; not in [MS-SMB2]).
    pub const AAPL: &[u8] = b"AAPL";
    /// The SMB3 POSIX extensions context (Samba/Linux), a 16-byte GUID name.
    pub const POSIX: &[u8] = b"\x93\xAD\x25\x50\x9C\xB4\x11\xE7\xB4\x23\x83\xDE\x96\x8B\xCD\x7C";
}

/// One create context: name and data, both borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateContext<'a> {
    /// The name (4 ASCII bytes for most, 16 bytes for GUID-named ones).
    pub name: &'a [u8],
    /// The data.
    pub data: &'a [u8],
}

impl<'a> CreateContext<'a> {
    /// A context from a name and data.
    pub const fn new(name: &'a [u8], data: &'a [u8]) -> Self {
        CreateContext { name, data }
    }

    /// Parses a chain of contexts (the CreateContexts buffer, already located).
    ///
    /// Each context's Next must be 0 (last) or a multiple of 8 that stays inside the buffer;
    /// NameOffset/DataOffset count from the context start and must stay inside the context.
    pub fn parse_list(buf: &'a [u8]) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        if buf.is_empty() {
            return Ok(out);
        }
        loop {
            if out.len() == MAX_CONTEXTS {
                return Err(WireError::TooMany {
                    what: "create contexts",
                    count: MAX_CONTEXTS + 1,
                    max: MAX_CONTEXTS,
                });
            }
            let mut r = Reader::at(buf, pos, "create context")?;
            let next = r.u32()? as usize;
            let name_off = usize::from(r.u16()?);
            let name_len = usize::from(r.u16()?);
            r.u16()?; // Reserved
            let data_off = usize::from(r.u16()?);
            let data_len = r.u32()? as usize;
            let end = if next == 0 {
                buf.len()
            } else {
                pos.checked_add(next).ok_or(WireError::BadOffset {
                    what: "create context Next",
                })?
            };
            if next != 0 && (next < CONTEXT_HEADER || !next.is_multiple_of(8) || end >= buf.len()) {
                return Err(WireError::BadOffset {
                    what: "create context Next",
                });
            }
            let ctx = buf.get(pos..end).ok_or(WireError::BadOffset {
                what: "create context Next",
            })?;
            let name = crate::codec::slice_at(
                ctx,
                name_off,
                name_len,
                CONTEXT_HEADER,
                "create context name",
            )?;
            let data = crate::codec::slice_at(
                ctx,
                data_off,
                data_len,
                CONTEXT_HEADER,
                "create context data",
            )?;
            if name.is_empty() {
                return Err(WireError::BadOffset {
                    what: "create context name",
                });
            }
            out.push(CreateContext { name, data });
            if next == 0 {
                return Ok(out);
            }
            pos = end;
        }
    }

    /// Appends a chain of contexts at the current position (which the caller has 8-aligned
    /// relative to the header). Returns the number of bytes written.
    pub fn encode_list(list: &[Self], out: &mut Vec<u8>) -> Result<usize> {
        let start = out.len();
        let mut prev_next_at: Option<(usize, usize)> = None;
        for c in list {
            let mut w = Writer::new(out);
            w.align(8);
            let ctx_start = w.pos();
            if let Some((at, prev_start)) = prev_next_at {
                w.patch_u32(at, to_u32(ctx_start - prev_start, "create context Next")?);
            }
            let next_at = w.reserve_u32();
            w.u16(CONTEXT_HEADER as u16);
            w.u16(to_u16(c.name.len(), "create context NameLength")?);
            w.u16(0);
            let data_off = align_up(CONTEXT_HEADER + c.name.len(), 8);
            // DataOffset points at the aligned data position even for empty data, as smbclient
            // and Windows do.
            w.u16(to_u16(data_off, "create context DataOffset")?);
            w.u32(to_u32(c.data.len(), "create context DataLength")?);
            w.bytes(c.name);
            if !c.data.is_empty() {
                w.align(8);
                w.bytes(c.data);
            }
            prev_next_at = Some((next_at, ctx_start));
        }
        Ok(out.len() - start)
    }

    /// The first context with this name.
    pub fn find(list: &[Self], name: &[u8]) -> Option<Self> {
        list.iter().copied().find(|c| c.name == name)
    }
}

fn exact<'a>(data: &'a [u8], len: usize, what: &'static str) -> Result<Reader<'a>> {
    if data.len() < len {
        return Err(WireError::Truncated {
            what,
            need: len,
            have: data.len(),
        });
    }
    Ok(Reader::new(data, what))
}

/// MxAc request data ([MS-SMB2] 2.2.13.2.5): an optional timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaximalAccessRequest {
    /// Timestamp (FILETIME) when present.
    pub timestamp: Option<u64>,
}

impl MaximalAccessRequest {
    /// Decodes the data (empty or 8 bytes).
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.is_empty() {
            return Ok(Self { timestamp: None });
        }
        Ok(Self {
            timestamp: Some(exact(data, 8, "MxAc request")?.u64()?),
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(t) = self.timestamp {
            Writer::new(out).u64(t);
        }
    }
}

/// MxAc response data ([MS-SMB2] 2.2.14.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaximalAccessResponse {
    /// QueryStatus.
    pub query_status: NtStatus,
    /// MaximalAccess.
    pub maximal_access: AccessMask,
}

impl MaximalAccessResponse {
    /// Wire size.
    pub const SIZE: usize = 8;

    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE, "MxAc response")?;
        Ok(Self {
            query_status: NtStatus(r.u32()?),
            maximal_access: AccessMask(r.u32()?),
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.query_status.0);
        w.u32(self.maximal_access.0);
    }
}

/// QFid response data ([MS-SMB2] 2.2.14.2.9): DiskFileId, VolumeId and 16 reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryOnDiskIdResponse {
    /// DiskFileId: the file's on-disk index (inode number).
    pub disk_file_id: u64,
    /// VolumeId.
    pub volume_id: u64,
}

impl QueryOnDiskIdResponse {
    /// Wire size.
    pub const SIZE: usize = 32;

    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE, "QFid response")?;
        Ok(Self {
            disk_file_id: r.u64()?,
            volume_id: r.u64()?,
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.disk_file_id);
        w.u64(self.volume_id);
        w.zeros(16);
    }
}

/// DHnC request data ([MS-SMB2] 2.2.13.2.4): the FileId of the durable open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableHandleReconnect {
    /// The durable open to reconnect.
    pub file_id: FileId,
}

impl DurableHandleReconnect {
    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        Ok(Self {
            file_id: FileId::read(&mut exact(data, 16, "DHnC")?)?,
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.file_id.write(&mut Writer::new(out));
    }
}

/// DHnQ request data is 16 reserved bytes ([MS-SMB2] 2.2.13.2.3); the response 8
/// ([MS-SMB2] 2.2.14.2.3).
pub const DURABLE_HANDLE_REQUEST_DATA: [u8; 16] = [0; 16];
/// DHnQ response data.
pub const DURABLE_HANDLE_RESPONSE_DATA: [u8; 8] = [0; 8];

/// DH2Q flag: SMB2_DHANDLE_FLAG_PERSISTENT.
pub const DHANDLE_FLAG_PERSISTENT: u32 = 0x0000_0002;

/// DH2Q request data ([MS-SMB2] 2.2.13.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableHandleRequestV2 {
    /// Timeout in milliseconds (0: server chooses).
    pub timeout: u32,
    /// Flags (PERSISTENT).
    pub flags: u32,
    /// CreateGuid.
    pub create_guid: [u8; 16],
}

impl DurableHandleRequestV2 {
    /// Wire size.
    pub const SIZE: usize = 32;

    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE, "DH2Q request")?;
        let timeout = r.u32()?;
        let flags = r.u32()?;
        r.skip(8)?;
        Ok(Self {
            timeout,
            flags,
            create_guid: r.guid()?,
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.timeout);
        w.u32(self.flags);
        w.u64(0);
        w.bytes(&self.create_guid);
    }
}

/// DH2Q response data ([MS-SMB2] 2.2.14.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableHandleResponseV2 {
    /// Timeout granted, in milliseconds.
    pub timeout: u32,
    /// Flags (PERSISTENT).
    pub flags: u32,
}

impl DurableHandleResponseV2 {
    /// Wire size.
    pub const SIZE: usize = 8;

    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE, "DH2Q response")?;
        Ok(Self {
            timeout: r.u32()?,
            flags: r.u32()?,
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.timeout);
        w.u32(self.flags);
    }
}

/// DH2C request data ([MS-SMB2] 2.2.13.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableHandleReconnectV2 {
    /// The durable/persistent open to reconnect.
    pub file_id: FileId,
    /// CreateGuid of the original open.
    pub create_guid: [u8; 16],
    /// Flags (PERSISTENT).
    pub flags: u32,
}

impl DurableHandleReconnectV2 {
    /// Wire size.
    pub const SIZE: usize = 36;

    /// Decodes the data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE, "DH2C request")?;
        Ok(Self {
            file_id: FileId::read(&mut r)?,
            create_guid: r.guid()?,
            flags: r.u32()?,
        })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        self.file_id.write(&mut w);
        w.bytes(&self.create_guid);
        w.u32(self.flags);
    }
}

wire_flags! {
    /// Lease state ([MS-SMB2] 2.2.13.2.8 LeaseState).
    pub struct LeaseState(u32);
    READ_CACHING = 0x01,
    HANDLE_CACHING = 0x02,
    WRITE_CACHING = 0x04,
}

wire_flags! {
    /// Lease flags ([MS-SMB2] 2.2.13.2.10 Flags, 2.2.23.2 Flags).
    pub struct LeaseFlags(u32);
    BREAK_IN_PROGRESS = 0x02,
    PARENT_LEASE_KEY_SET = 0x04,
}

/// RqLs data, version 1 ([MS-SMB2] 2.2.13.2.8, 32 bytes) or 2 (2.2.13.2.10, 52 bytes), used
/// in both the request and the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lease {
    /// LeaseKey.
    pub key: [u8; 16],
    /// LeaseState.
    pub state: LeaseState,
    /// Flags.
    pub flags: LeaseFlags,
    /// LeaseDuration (reserved, 0).
    pub duration: u64,
    /// Version 2 fields: ParentLeaseKey and Epoch. `None` for a version 1 lease.
    pub v2: Option<LeaseV2>,
}

/// The part of a version 2 lease that version 1 lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseV2 {
    /// ParentLeaseKey.
    pub parent_key: [u8; 16],
    /// Epoch.
    pub epoch: u16,
}

impl Lease {
    /// Size of a version 1 lease.
    pub const SIZE_V1: usize = 32;
    /// Size of a version 2 lease.
    pub const SIZE_V2: usize = 52;

    /// Decodes the data; the version is chosen by its length.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = exact(data, Self::SIZE_V1, "RqLs")?;
        let key = r.guid()?;
        let state = LeaseState(r.u32()?);
        let flags = LeaseFlags(r.u32()?);
        let duration = r.u64()?;
        let v2 = if data.len() >= Self::SIZE_V2 {
            let parent_key = r.guid()?;
            let epoch = r.u16()?;
            Some(LeaseV2 { parent_key, epoch })
        } else {
            None
        };
        Ok(Lease {
            key,
            state,
            flags,
            duration,
            v2,
        })
    }

    /// Appends the data (32 or 52 bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.bytes(&self.key);
        w.u32(self.state.0);
        w.u32(self.flags.0);
        w.u64(self.duration);
        if let Some(v2) = self.v2 {
            w.bytes(&v2.parent_key);
            w.u16(v2.epoch);
            w.u16(0);
        }
    }
}

/// TWrp request data ([MS-SMB2] 2.2.13.2.7): the snapshot time.
pub fn parse_timewarp(data: &[u8]) -> Result<u64> {
    exact(data, 8, "TWrp")?.u64()
}

/// AlSi request data ([MS-SMB2] 2.2.13.2.6): the allocation size.
pub fn parse_allocation_size(data: &[u8]) -> Result<u64> {
    exact(data, 8, "AlSi")?.u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trip_with_alignment() {
        let mut lease = Vec::new();
        Lease {
            key: [1; 16],
            state: LeaseState::READ_CACHING | LeaseState::HANDLE_CACHING,
            flags: LeaseFlags::empty(),
            duration: 0,
            v2: Some(LeaseV2 {
                parent_key: [2; 16],
                epoch: 3,
            }),
        }
        .encode(&mut lease);
        let list = vec![
            CreateContext::new(names::DH2Q, &[0; 32]),
            CreateContext::new(names::MX_AC, &[]),
            CreateContext::new(names::RQ_LS, &lease),
            CreateContext::new(names::POSIX, &[0xA4, 1, 0, 0]),
        ];
        let mut out = Vec::new();
        let n = CreateContext::encode_list(&list, &mut out).unwrap();
        assert_eq!(n, out.len());
        // first context: Next = 16 + 4 name, padded to 24, + 32 data = 56
        assert_eq!(&out[0..4], &[56, 0, 0, 0]);
        assert_eq!(&out[4..6], &[16, 0]);
        assert_eq!(&out[10..12], &[24, 0]);
        let parsed = CreateContext::parse_list(&out).unwrap();
        assert_eq!(parsed, list);
        let l = Lease::parse(CreateContext::find(&parsed, names::RQ_LS).unwrap().data).unwrap();
        assert_eq!(l.v2.unwrap().epoch, 3);
    }

    #[test]
    fn list_rejects_bad_chains() {
        let list = vec![
            CreateContext::new(names::MX_AC, &[1, 2]),
            CreateContext::new(names::QFID, &[]),
        ];
        let mut out = Vec::new();
        CreateContext::encode_list(&list, &mut out).unwrap();
        for bad_next in [4u32, 12, 1000, out.len() as u32] {
            let mut b = out.clone();
            b[0..4].copy_from_slice(&bad_next.to_le_bytes());
            assert!(CreateContext::parse_list(&b).is_err(), "next={bad_next}");
        }
        let mut b = out.clone();
        b[6] = 200; // name length past the context
        assert!(CreateContext::parse_list(&b).is_err());
        let mut b = out.clone();
        b[12] = 200; // data length past the context
        assert!(CreateContext::parse_list(&b).is_err());
        assert!(CreateContext::parse_list(&out[..10]).is_err());
        assert!(CreateContext::parse_list(&[]).unwrap().is_empty());
    }

    #[test]
    fn typed_payloads_round_trip() {
        let mut v = Vec::new();
        MaximalAccessResponse {
            query_status: NtStatus::SUCCESS,
            maximal_access: AccessMask::FILE_ALL_ACCESS,
        }
        .encode(&mut v);
        assert_eq!(
            MaximalAccessResponse::parse(&v).unwrap().maximal_access,
            AccessMask::FILE_ALL_ACCESS
        );
        let mut v = Vec::new();
        let q = QueryOnDiskIdResponse {
            disk_file_id: 42,
            volume_id: 7,
        };
        q.encode(&mut v);
        assert_eq!(v.len(), 32);
        assert_eq!(QueryOnDiskIdResponse::parse(&v).unwrap(), q);
        let d = DurableHandleRequestV2 {
            timeout: 60000,
            flags: 0,
            create_guid: [5; 16],
        };
        let mut v = Vec::new();
        d.encode(&mut v);
        assert_eq!(DurableHandleRequestV2::parse(&v).unwrap(), d);
        let d = DurableHandleReconnectV2 {
            file_id: FileId::new(1, 2),
            create_guid: [6; 16],
            flags: 2,
        };
        let mut v = Vec::new();
        d.encode(&mut v);
        assert_eq!(v.len(), DurableHandleReconnectV2::SIZE);
        assert_eq!(DurableHandleReconnectV2::parse(&v).unwrap(), d);
        let l1 = Lease {
            key: [9; 16],
            state: LeaseState::READ_CACHING,
            ..Default::default()
        };
        let mut v = Vec::new();
        l1.encode(&mut v);
        assert_eq!(v.len(), Lease::SIZE_V1);
        assert_eq!(Lease::parse(&v).unwrap(), l1);
        assert!(Lease::parse(&v[..31]).is_err());
        assert_eq!(MaximalAccessRequest::parse(&[]).unwrap().timestamp, None);
        assert!(MaximalAccessRequest::parse(&[1, 2]).is_err());
    }
}
