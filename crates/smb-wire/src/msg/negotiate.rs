//! NEGOTIATE ([MS-SMB2] 2.2.3 request, 2.2.4 response) and negotiate contexts (2.2.3.1).

use crate::codec::{Reader, Writer, align_up, slice_at, to_u16};
use crate::error::{Result, WireError};
use crate::types::{
    Capabilities, Cipher, Command, CompressionAlgorithm, Dialect, HashAlgorithm,
    NegotiateContextType, SecurityMode, SigningAlgorithm,
};
use crate::utf16;

use super::{BODY, body, header_base, off16, off32};

/// Dialects accepted in one request before allocating (clients send 1-5).
const MAX_DIALECTS: usize = 256;
/// Negotiate contexts accepted in one message.
const MAX_CONTEXTS: usize = 64;
/// Algorithm ids accepted in one context.
const MAX_IDS: usize = 256;

/// A negotiate context ([MS-SMB2] 2.2.3.1). Unknown types (e.g. the POSIX context 0x100 of
/// Samba/Linux clients) are kept as [`NegotiateContext::Unknown`] and re-encode unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateContext<'a> {
    /// SMB2_PREAUTH_INTEGRITY_CAPABILITIES (2.2.3.1.1).
    PreauthIntegrity {
        /// Hash algorithms offered (request) or chosen (response, exactly one).
        hash_algorithms: Vec<HashAlgorithm>,
        /// Salt.
        salt: &'a [u8],
    },
    /// SMB2_ENCRYPTION_CAPABILITIES (2.2.3.1.2).
    Encryption {
        /// Ciphers in preference order (request) or the one chosen, 0 for none (response).
        ciphers: Vec<Cipher>,
    },
    /// SMB2_COMPRESSION_CAPABILITIES (2.2.3.1.3).
    Compression {
        /// Flags (1 = SMB2_COMPRESSION_CAPABILITIES_FLAG_CHAINED).
        flags: u32,
        /// Algorithms.
        algorithms: Vec<CompressionAlgorithm>,
    },
    /// SMB2_NETNAME_NEGOTIATE_CONTEXT_ID (2.2.3.1.4): the server name the client used.
    NetName(String),
    /// SMB2_TRANSPORT_CAPABILITIES (2.2.3.1.5).
    TransportCapabilities {
        /// Flags (1 = SMB2_ACCEPT_TRANSPORT_LEVEL_SECURITY).
        flags: u32,
    },
    /// SMB2_RDMA_TRANSFORM_CAPABILITIES (2.2.3.1.6).
    RdmaTransform {
        /// Transform ids (0 none, 1 encryption, 2 signing).
        transform_ids: Vec<u16>,
    },
    /// SMB2_SIGNING_CAPABILITIES (2.2.3.1.7).
    Signing {
        /// Signing algorithms in preference order (request) or the one chosen (response).
        algorithms: Vec<SigningAlgorithm>,
    },
    /// Any other context type, kept verbatim.
    Unknown {
        /// The ContextType.
        context_type: NegotiateContextType,
        /// The Data.
        data: &'a [u8],
    },
}

impl<'a> NegotiateContext<'a> {
    /// The ContextType of this context.
    pub fn context_type(&self) -> NegotiateContextType {
        match self {
            NegotiateContext::PreauthIntegrity { .. } => {
                NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES
            }
            NegotiateContext::Encryption { .. } => NegotiateContextType::ENCRYPTION_CAPABILITIES,
            NegotiateContext::Compression { .. } => NegotiateContextType::COMPRESSION_CAPABILITIES,
            NegotiateContext::NetName(_) => NegotiateContextType::NETNAME_NEGOTIATE_CONTEXT_ID,
            NegotiateContext::TransportCapabilities { .. } => {
                NegotiateContextType::TRANSPORT_CAPABILITIES
            }
            NegotiateContext::RdmaTransform { .. } => {
                NegotiateContextType::RDMA_TRANSFORM_CAPABILITIES
            }
            NegotiateContext::Signing { .. } => NegotiateContextType::SIGNING_CAPABILITIES,
            NegotiateContext::Unknown { context_type, .. } => *context_type,
        }
    }

    /// Decodes one context's Data given its type.
    pub fn parse_data(context_type: NegotiateContextType, data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data, "negotiate context");
        let ids = |r: &mut Reader<'a>, n: u16| r.u16_vec(usize::from(n), MAX_IDS);
        Ok(match context_type {
            NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES => {
                let count = r.u16()?;
                let salt_len = r.u16()?;
                let hash_algorithms = ids(&mut r, count)?.into_iter().map(HashAlgorithm).collect();
                let salt = r.bytes(usize::from(salt_len))?;
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms,
                    salt,
                }
            }
            NegotiateContextType::ENCRYPTION_CAPABILITIES => {
                let count = r.u16()?;
                NegotiateContext::Encryption {
                    ciphers: ids(&mut r, count)?.into_iter().map(Cipher).collect(),
                }
            }
            NegotiateContextType::COMPRESSION_CAPABILITIES => {
                let count = r.u16()?;
                r.u16()?; // Padding
                let flags = r.u32()?;
                let algorithms = ids(&mut r, count)?
                    .into_iter()
                    .map(CompressionAlgorithm)
                    .collect();
                NegotiateContext::Compression { flags, algorithms }
            }
            NegotiateContextType::NETNAME_NEGOTIATE_CONTEXT_ID => {
                NegotiateContext::NetName(utf16::decode(data)?)
            }
            NegotiateContextType::TRANSPORT_CAPABILITIES => {
                NegotiateContext::TransportCapabilities { flags: r.u32()? }
            }
            NegotiateContextType::RDMA_TRANSFORM_CAPABILITIES => {
                let count = r.u16()?;
                r.skip(2 + 4)?; // Reserved1, Reserved2
                NegotiateContext::RdmaTransform {
                    transform_ids: ids(&mut r, count)?,
                }
            }
            NegotiateContextType::SIGNING_CAPABILITIES => {
                let count = r.u16()?;
                NegotiateContext::Signing {
                    algorithms: ids(&mut r, count)?
                        .into_iter()
                        .map(SigningAlgorithm)
                        .collect(),
                }
            }
            other => NegotiateContext::Unknown {
                context_type: other,
                data,
            },
        })
    }

    /// Appends this context's Data (not the 8-byte context header).
    pub fn encode_data(&self, out: &mut Vec<u8>) -> Result<()> {
        let count = |n: usize| to_u16(n, "negotiate context id count");
        let mut w = Writer::new(out);
        match self {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms,
                salt,
            } => {
                w.u16(count(hash_algorithms.len())?);
                w.u16(to_u16(salt.len(), "preauth salt length")?);
                hash_algorithms.iter().for_each(|a| w.u16(a.0));
                w.bytes(salt);
            }
            NegotiateContext::Encryption { ciphers } => {
                w.u16(count(ciphers.len())?);
                ciphers.iter().for_each(|c| w.u16(c.0));
            }
            NegotiateContext::Compression { flags, algorithms } => {
                w.u16(count(algorithms.len())?);
                w.u16(0);
                w.u32(*flags);
                algorithms.iter().for_each(|a| w.u16(a.0));
            }
            NegotiateContext::NetName(name) => utf16::encode_into(name, w.vec()),
            NegotiateContext::TransportCapabilities { flags } => w.u32(*flags),
            NegotiateContext::RdmaTransform { transform_ids } => {
                w.u16(count(transform_ids.len())?);
                w.u16(0);
                w.u32(0);
                transform_ids.iter().for_each(|t| w.u16(*t));
            }
            NegotiateContext::Signing { algorithms } => {
                w.u16(count(algorithms.len())?);
                algorithms.iter().for_each(|a| w.u16(a.0));
            }
            NegotiateContext::Unknown { data, .. } => w.bytes(data),
        }
        Ok(())
    }

    /// Parses `count` contexts starting at `offset` from the header start `pdu[0]`; each
    /// context after the first starts at the next 8-byte boundary.
    pub fn parse_list(
        pdu: &'a [u8],
        offset: usize,
        count: usize,
        min_offset: usize,
    ) -> Result<Vec<Self>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > MAX_CONTEXTS {
            return Err(WireError::TooMany {
                what: "negotiate contexts",
                count,
                max: MAX_CONTEXTS,
            });
        }
        if offset < min_offset || !offset.is_multiple_of(8) {
            return Err(WireError::BadOffset {
                what: "NegotiateContextOffset",
            });
        }
        let mut r = Reader::at(pdu, offset, "negotiate context list")?;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            if i > 0 {
                // The padding before a context is required; the last context need not be padded.
                let next = align_up(r.pos(), 8);
                r.seek(next)?;
            }
            let context_type = NegotiateContextType(r.u16()?);
            let len = r.u16()?;
            r.u32()?; // Reserved
            let data = r.bytes(usize::from(len))?;
            out.push(Self::parse_data(context_type, data)?);
        }
        Ok(out)
    }

    /// Appends contexts at the current (8-aligned) position, padding between them.
    pub fn encode_list(list: &[Self], out: &mut Vec<u8>) -> Result<()> {
        for (i, c) in list.iter().enumerate() {
            if i > 0 {
                Writer::new(out).align(8);
            }
            let mut w = Writer::new(out);
            w.u16(c.context_type().0);
            let len_at = w.reserve_u16();
            w.u32(0);
            let start = w.pos();
            c.encode_data(out)?;
            let len = to_u16(out.len() - start, "negotiate context length")?;
            Writer::new(out).patch_u16(len_at, len);
        }
        Ok(())
    }
}

/// NEGOTIATE request ([MS-SMB2] 2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateRequest<'a> {
    /// SecurityMode.
    pub security_mode: SecurityMode,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// ClientGuid.
    pub client_guid: [u8; 16],
    /// Dialects, in the client's order. May be empty: the engine answers
    /// STATUS_INVALID_PARAMETER ([MS-SMB2] 3.3.5.4).
    pub dialects: Vec<Dialect>,
    /// Negotiate contexts; present only when the dialect list contains 3.1.1.
    pub contexts: Vec<NegotiateContext<'a>>,
}

impl<'a> NegotiateRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 36;

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::NEGOTIATE,
            Self::STRUCTURE_SIZE,
            "NEGOTIATE request",
        )?;
        let dialect_count = usize::from(r.u16()?);
        let security_mode = SecurityMode(r.u16()?);
        r.u16()?; // Reserved
        let capabilities = Capabilities(r.u32()?);
        let client_guid = r.guid()?;
        let ctx_offset = r.u32()?;
        let ctx_count = r.u16()?;
        r.u16()?; // Reserved2 (or the rest of ClientStartTime before 3.1.1)
        let dialects: Vec<Dialect> = r
            .u16_vec(dialect_count, MAX_DIALECTS)?
            .into_iter()
            .map(Dialect)
            .collect();
        let contexts = if dialects.contains(&Dialect::SMB3_1_1) {
            NegotiateContext::parse_list(pdu, ctx_offset as usize, usize::from(ctx_count), r.pos())?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            security_mode,
            capabilities,
            client_guid,
            dialects,
            contexts,
        })
    }

    /// Appends the body (contexts only if 3.1.1 is among the dialects).
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let with_ctx = self.dialects.contains(&Dialect::SMB3_1_1) && !self.contexts.is_empty();
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(to_u16(self.dialects.len(), "dialect count")?);
        w.u16(self.security_mode.0);
        w.u16(0);
        w.u32(self.capabilities.0);
        w.bytes(&self.client_guid);
        let off_at = w.reserve_u32();
        w.u16(if with_ctx {
            to_u16(self.contexts.len(), "context count")?
        } else {
            0
        });
        w.u16(0);
        self.dialects.iter().for_each(|d| w.u16(d.0));
        if with_ctx {
            w.align(8);
            let off = off32(w.pos(), base, "NegotiateContextOffset")?;
            w.patch_u32(off_at, off);
            NegotiateContext::encode_list(&self.contexts, pdu)?;
        }
        Ok(())
    }
}

/// NEGOTIATE response ([MS-SMB2] 2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateResponse<'a> {
    /// SecurityMode.
    pub security_mode: SecurityMode,
    /// DialectRevision (0x02FF for the reply to an SMB1 multi-protocol negotiate).
    pub dialect_revision: Dialect,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// Capabilities.
    pub capabilities: Capabilities,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// SystemTime (FILETIME).
    pub system_time: u64,
    /// ServerStartTime (FILETIME, usually 0).
    pub server_start_time: u64,
    /// The GSS/SPNEGO token.
    pub security_buffer: &'a [u8],
    /// Negotiate contexts (3.1.1 only).
    pub contexts: Vec<NegotiateContext<'a>>,
}

impl<'a> NegotiateResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 65;
    /// Where the security buffer lands: header + fixed part.
    pub const BUFFER_OFFSET: usize = BODY + 64;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.security_mode.0);
        w.u16(self.dialect_revision.0);
        w.u16(to_u16(self.contexts.len(), "context count")?);
        w.bytes(&self.server_guid);
        w.u32(self.capabilities.0);
        w.u32(self.max_transact_size);
        w.u32(self.max_read_size);
        w.u32(self.max_write_size);
        w.u64(self.system_time);
        w.u64(self.server_start_time);
        let sec_off_at = w.reserve_u16();
        w.u16(to_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        let ctx_off_at = w.reserve_u32();
        let sec_off = off16(w.pos(), base, "SecurityBufferOffset")?;
        w.patch_u16(sec_off_at, sec_off);
        w.bytes(self.security_buffer);
        if !self.contexts.is_empty() {
            w.align(8);
            let off = off32(w.pos(), base, "NegotiateContextOffset")?;
            w.patch_u32(ctx_off_at, off);
            NegotiateContext::encode_list(&self.contexts, pdu)?;
        }
        Ok(())
    }

    /// Parses a response PDU (contexts read when the dialect is 3.1.1).
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::NEGOTIATE,
            Self::STRUCTURE_SIZE,
            "NEGOTIATE response",
        )?;
        let security_mode = SecurityMode(r.u16()?);
        let dialect_revision = Dialect(r.u16()?);
        let ctx_count = r.u16()?;
        let server_guid = r.guid()?;
        let capabilities = Capabilities(r.u32()?);
        let max_transact_size = r.u32()?;
        let max_read_size = r.u32()?;
        let max_write_size = r.u32()?;
        let system_time = r.u64()?;
        let server_start_time = r.u64()?;
        let sec_off = usize::from(r.u16()?);
        let sec_len = usize::from(r.u16()?);
        let ctx_off = r.u32()? as usize;
        let security_buffer = slice_at(pdu, sec_off, sec_len, r.pos(), "SecurityBuffer")?;
        let contexts = if dialect_revision == Dialect::SMB3_1_1 {
            NegotiateContext::parse_list(pdu, ctx_off, usize::from(ctx_count), r.pos())?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode,
            dialect_revision,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            server_start_time,
            security_buffer,
            contexts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    fn all_contexts() -> Vec<NegotiateContext<'static>> {
        vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm::SHA_512],
                salt: &[1; 32],
            },
            NegotiateContext::Encryption {
                ciphers: vec![Cipher::AES_128_GCM, Cipher::AES_256_GCM],
            },
            NegotiateContext::Compression {
                flags: 1,
                algorithms: vec![CompressionAlgorithm::LZ77],
            },
            NegotiateContext::NetName("srv.example".into()),
            NegotiateContext::TransportCapabilities { flags: 1 },
            NegotiateContext::RdmaTransform {
                transform_ids: vec![1, 2],
            },
            NegotiateContext::Signing {
                algorithms: vec![SigningAlgorithm::AES_GMAC, SigningAlgorithm::AES_CMAC],
            },
            NegotiateContext::Unknown {
                context_type: NegotiateContextType(0x100),
                data: &[0x93, 0xAD, 0x25],
            },
        ]
    }

    #[test]
    fn request_round_trip_with_contexts() {
        let req = NegotiateRequest {
            security_mode: SecurityMode::SIGNING_ENABLED,
            capabilities: Capabilities::DFS | Capabilities::LEASING,
            client_guid: [9; 16],
            dialects: vec![
                Dialect::SMB2_0_2,
                Dialect::SMB2_1,
                Dialect::SMB3_0,
                Dialect::SMB3_0_2,
                Dialect::SMB3_1_1,
            ],
            contexts: all_contexts(),
        };
        let pdu = test_pdu(Command::NEGOTIATE, false, |v| req.encode(v));
        let off = u32::from_le_bytes(pdu[64 + 28..64 + 32].try_into().unwrap());
        assert_eq!(off % 8, 0);
        assert_eq!(off as usize, 112); // 64 + 36 + 5 dialects = 110, aligned to 8
        assert_eq!(NegotiateRequest::parse(&pdu).unwrap(), req);
    }

    #[test]
    fn request_without_311_ignores_context_fields() {
        let req = NegotiateRequest {
            security_mode: SecurityMode::SIGNING_REQUIRED,
            capabilities: Capabilities::empty(),
            client_guid: [0; 16],
            dialects: vec![Dialect::SMB2_0_2],
            contexts: vec![],
        };
        let mut pdu = test_pdu(Command::NEGOTIATE, false, |v| req.encode(v));
        // ClientStartTime with garbage must not be read as context offset/count
        pdu[64 + 28..64 + 36].copy_from_slice(&[0xFF; 8]);
        assert_eq!(NegotiateRequest::parse(&pdu).unwrap(), req);
    }

    #[test]
    fn request_rejects_bad_contexts() {
        let req = NegotiateRequest {
            security_mode: SecurityMode::SIGNING_ENABLED,
            capabilities: Capabilities::empty(),
            client_guid: [0; 16],
            dialects: vec![Dialect::SMB3_1_1],
            contexts: all_contexts(),
        };
        let pdu = test_pdu(Command::NEGOTIATE, false, |v| req.encode(v));
        // misaligned offset
        let mut bad = pdu.clone();
        bad[64 + 28] += 2;
        assert!(NegotiateRequest::parse(&bad).is_err());
        // offset past the end
        let mut bad = pdu.clone();
        bad[64 + 28..64 + 32].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
        assert!(NegotiateRequest::parse(&bad).is_err());
        // count too large for the data
        let mut bad = pdu.clone();
        bad[64 + 32] = 20;
        assert!(NegotiateRequest::parse(&bad).is_err());
        // truncated data
        assert!(NegotiateRequest::parse(&pdu[..pdu.len() - 1]).is_err());
        // dialect count past the end
        let mut bad = pdu.clone();
        bad[66] = 200;
        assert!(NegotiateRequest::parse(&bad).is_err());
    }

    #[test]
    fn response_round_trip_and_layout() {
        let resp = NegotiateResponse {
            security_mode: SecurityMode::SIGNING_ENABLED,
            dialect_revision: Dialect::SMB3_1_1,
            server_guid: [3; 16],
            capabilities: Capabilities::LARGE_MTU,
            max_transact_size: 8 << 20,
            max_read_size: 8 << 20,
            max_write_size: 8 << 20,
            system_time: 133_000_000_000_000_000,
            server_start_time: 0,
            security_buffer: b"spnego-token",
            contexts: vec![
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![HashAlgorithm::SHA_512],
                    salt: &[5; 32],
                },
                NegotiateContext::Encryption {
                    ciphers: vec![Cipher::AES_128_GCM],
                },
            ],
        };
        let pdu = test_pdu(Command::NEGOTIATE, true, |v| resp.encode(v));
        assert_eq!(&pdu[64..66], &[65, 0]);
        assert_eq!(&pdu[64 + 56..64 + 58], &[128, 0]);
        assert_eq!(&pdu[128..140], b"spnego-token");
        assert_eq!(NegotiateResponse::parse(&pdu).unwrap(), resp);
    }

    #[test]
    fn parses_samba_negotiate_response_from_corpus_shape() {
        // A 2.0.2 response has no contexts even if NegotiateContextOffset holds junk.
        let resp = NegotiateResponse {
            dialect_revision: Dialect::SMB2_0_2,
            ..Default::default()
        };
        let mut pdu = test_pdu(Command::NEGOTIATE, true, |v| resp.encode(v));
        pdu[64 + 60..64 + 64].copy_from_slice(&[1, 2, 3, 4]);
        pdu[64 + 6] = 9;
        assert!(NegotiateResponse::parse(&pdu).unwrap().contexts.is_empty());
    }
}
