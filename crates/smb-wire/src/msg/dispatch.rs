//! Parsing any PDU by its header's command: [`Request`] for what clients send, [`Response`]
//! for what servers send (used by tests, the corpus check and test clients; the engine may
//! also dispatch on it).

use crate::error::{Result, WireError};
use crate::header::Header;
use crate::types::{Command, NtStatus};

use super::*;

/// Any request body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Request<'a> {
    Negotiate(NegotiateRequest<'a>),
    SessionSetup(SessionSetupRequest<'a>),
    Logoff(LogoffRequest),
    TreeConnect(TreeConnectRequest<'a>),
    TreeDisconnect(TreeDisconnectRequest),
    Create(CreateRequest<'a>),
    Close(CloseRequest),
    Flush(FlushRequest),
    Read(ReadRequest<'a>),
    Write(WriteRequest<'a>),
    Lock(LockRequest),
    Ioctl(IoctlRequest<'a>),
    Cancel(CancelRequest),
    Echo(EchoRequest),
    QueryDirectory(QueryDirectoryRequest),
    ChangeNotify(ChangeNotifyRequest),
    QueryInfo(QueryInfoRequest<'a>),
    SetInfo(SetInfoRequest<'a>),
    OplockBreak(OplockBreakMessage),
}

impl<'a> Request<'a> {
    /// Parses the header and the request body of one PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<(Header, Request<'a>)> {
        let h = Header::parse(pdu)?;
        let req = match h.command {
            Command::NEGOTIATE => Request::Negotiate(NegotiateRequest::parse(pdu)?),
            Command::SESSION_SETUP => Request::SessionSetup(SessionSetupRequest::parse(pdu)?),
            Command::LOGOFF => Request::Logoff(LogoffRequest::parse(pdu)?),
            Command::TREE_CONNECT => Request::TreeConnect(TreeConnectRequest::parse(pdu)?),
            Command::TREE_DISCONNECT => Request::TreeDisconnect(TreeDisconnectRequest::parse(pdu)?),
            Command::CREATE => Request::Create(CreateRequest::parse(pdu)?),
            Command::CLOSE => Request::Close(CloseRequest::parse(pdu)?),
            Command::FLUSH => Request::Flush(FlushRequest::parse(pdu)?),
            Command::READ => Request::Read(ReadRequest::parse(pdu)?),
            Command::WRITE => Request::Write(WriteRequest::parse(pdu)?),
            Command::LOCK => Request::Lock(LockRequest::parse(pdu)?),
            Command::IOCTL => Request::Ioctl(IoctlRequest::parse(pdu)?),
            Command::CANCEL => Request::Cancel(CancelRequest::parse(pdu)?),
            Command::ECHO => Request::Echo(EchoRequest::parse(pdu)?),
            Command::QUERY_DIRECTORY => Request::QueryDirectory(QueryDirectoryRequest::parse(pdu)?),
            Command::CHANGE_NOTIFY => Request::ChangeNotify(ChangeNotifyRequest::parse(pdu)?),
            Command::QUERY_INFO => Request::QueryInfo(QueryInfoRequest::parse(pdu)?),
            Command::SET_INFO => Request::SetInfo(SetInfoRequest::parse(pdu)?),
            Command::OPLOCK_BREAK => Request::OplockBreak(OplockBreakMessage::parse(pdu)?),
            other => {
                return Err(WireError::BadValue {
                    what: "command",
                    value: u64::from(other.0),
                });
            }
        };
        Ok((h, req))
    }

    /// Appends the body (the vec must already hold the header).
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        match self {
            Request::Negotiate(m) => m.encode(pdu),
            Request::SessionSetup(m) => m.encode(pdu),
            Request::Logoff(m) => m.encode(pdu),
            Request::TreeConnect(m) => m.encode(pdu),
            Request::TreeDisconnect(m) => m.encode(pdu),
            Request::Create(m) => m.encode(pdu),
            Request::Close(m) => m.encode(pdu),
            Request::Flush(m) => m.encode(pdu),
            Request::Read(m) => m.encode(pdu),
            Request::Write(m) => m.encode(pdu),
            Request::Lock(m) => m.encode(pdu),
            Request::Ioctl(m) => m.encode(pdu),
            Request::Cancel(m) => m.encode(pdu),
            Request::Echo(m) => m.encode(pdu),
            Request::QueryDirectory(m) => m.encode(pdu),
            Request::ChangeNotify(m) => m.encode(pdu),
            Request::QueryInfo(m) => m.encode(pdu),
            Request::SetInfo(m) => m.encode(pdu),
            Request::OplockBreak(m) => m.encode(pdu),
        }
    }
}

/// Any response body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Response<'a> {
    /// An ERROR body: any failed command, interim STATUS_PENDING, STOPPED_ON_SYMLINK.
    Error(ErrorResponse<'a>),
    Negotiate(NegotiateResponse<'a>),
    SessionSetup(SessionSetupResponse<'a>),
    Logoff(LogoffResponse),
    TreeConnect(TreeConnectResponse),
    TreeDisconnect(TreeDisconnectResponse),
    Create(CreateResponse<'a>),
    Close(CloseResponse),
    Flush(FlushResponse),
    Read(ReadResponse<'a>),
    Write(WriteResponse),
    Lock(LockResponse),
    Ioctl(IoctlResponse<'a>),
    Echo(EchoResponse),
    QueryDirectory(QueryDirectoryResponse<'a>),
    ChangeNotify(ChangeNotifyResponse<'a>),
    QueryInfo(QueryInfoResponse<'a>),
    SetInfo(SetInfoResponse),
    OplockBreak(OplockBreakMessage),
}

/// True when a response with this header carries an ERROR body rather than the command's
/// own ([MS-SMB2] 3.2.5.1.8 and the per-command exceptions it refers to).
pub fn is_error_body(h: &Header, pdu: &[u8]) -> bool {
    let size = pdu
        .get(64..66)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    if h.status == NtStatus::SUCCESS || size != ErrorResponse::STRUCTURE_SIZE {
        return false;
    }
    match h.command {
        // Commands whose own response is also StructureSize 9: the status decides.
        Command::SESSION_SETUP => h.status != NtStatus::MORE_PROCESSING_REQUIRED,
        Command::QUERY_DIRECTORY | Command::QUERY_INFO | Command::CHANGE_NOTIFY => {
            !(h.status == NtStatus::BUFFER_OVERFLOW || h.status == NtStatus::NOTIFY_ENUM_DIR)
        }
        _ => true,
    }
}

impl<'a> Response<'a> {
    /// Parses the header and the response body of one PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<(Header, Response<'a>)> {
        let h = Header::parse(pdu)?;
        if is_error_body(&h, pdu) {
            return Ok((h, Response::Error(ErrorResponse::parse(pdu)?)));
        }
        let resp = match h.command {
            Command::NEGOTIATE => Response::Negotiate(NegotiateResponse::parse(pdu)?),
            Command::SESSION_SETUP => Response::SessionSetup(SessionSetupResponse::parse(pdu)?),
            Command::LOGOFF => Response::Logoff(LogoffResponse::parse(pdu)?),
            Command::TREE_CONNECT => Response::TreeConnect(TreeConnectResponse::parse(pdu)?),
            Command::TREE_DISCONNECT => {
                Response::TreeDisconnect(TreeDisconnectResponse::parse(pdu)?)
            }
            Command::CREATE => Response::Create(CreateResponse::parse(pdu)?),
            Command::CLOSE => Response::Close(CloseResponse::parse(pdu)?),
            Command::FLUSH => Response::Flush(FlushResponse::parse(pdu)?),
            Command::READ => Response::Read(ReadResponse::parse(pdu)?),
            Command::WRITE => Response::Write(WriteResponse::parse(pdu)?),
            Command::LOCK => Response::Lock(LockResponse::parse(pdu)?),
            Command::IOCTL => Response::Ioctl(IoctlResponse::parse(pdu)?),
            Command::ECHO => Response::Echo(EchoResponse::parse(pdu)?),
            Command::QUERY_DIRECTORY => {
                Response::QueryDirectory(QueryDirectoryResponse::parse(pdu)?)
            }
            Command::CHANGE_NOTIFY => Response::ChangeNotify(ChangeNotifyResponse::parse(pdu)?),
            Command::QUERY_INFO => Response::QueryInfo(QueryInfoResponse::parse(pdu)?),
            Command::SET_INFO => Response::SetInfo(SetInfoResponse::parse(pdu)?),
            Command::OPLOCK_BREAK => Response::OplockBreak(OplockBreakMessage::parse(pdu)?),
            other => {
                return Err(WireError::BadValue {
                    what: "command",
                    value: u64::from(other.0),
                });
            }
        };
        Ok((h, resp))
    }

    /// Appends the body (the vec must already hold the header).
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        match self {
            Response::Error(m) => m.encode(pdu),
            Response::Negotiate(m) => m.encode(pdu),
            Response::SessionSetup(m) => m.encode(pdu),
            Response::Logoff(m) => m.encode(pdu),
            Response::TreeConnect(m) => m.encode(pdu),
            Response::TreeDisconnect(m) => m.encode(pdu),
            Response::Create(m) => m.encode(pdu),
            Response::Close(m) => m.encode(pdu),
            Response::Flush(m) => m.encode(pdu),
            Response::Read(m) => m.encode(pdu),
            Response::Write(m) => m.encode(pdu),
            Response::Lock(m) => m.encode(pdu),
            Response::Ioctl(m) => m.encode(pdu),
            Response::Echo(m) => m.encode(pdu),
            Response::QueryDirectory(m) => m.encode(pdu),
            Response::ChangeNotify(m) => m.encode(pdu),
            Response::QueryInfo(m) => m.encode(pdu),
            Response::SetInfo(m) => m.encode(pdu),
            Response::OplockBreak(m) => m.encode(pdu),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;
    use crate::types::FileId;

    #[test]
    fn dispatches_by_command() {
        let pdu = test_pdu(Command::CLOSE, false, |v| {
            CloseRequest {
                flags: 0,
                file_id: FileId::new(1, 1),
            }
            .encode(v)
        });
        let (h, r) = Request::parse(&pdu).unwrap();
        assert_eq!(h.command, Command::CLOSE);
        assert!(matches!(r, Request::Close(_)));
        let pdu = test_pdu(Command(0x55), false, |v| EchoRequest.encode(v));
        assert!(Request::parse(&pdu).is_err());
    }

    #[test]
    fn error_bodies_are_recognised() {
        let mut pdu = test_pdu(Command::QUERY_INFO, true, ErrorResponse::encode_empty);
        pdu[8..12].copy_from_slice(&NtStatus::ACCESS_DENIED.0.to_le_bytes());
        assert!(matches!(
            Response::parse(&pdu).unwrap().1,
            Response::Error(_)
        ));
        // BUFFER_OVERFLOW on QUERY_INFO still carries the QUERY_INFO body
        let mut pdu = test_pdu(Command::QUERY_INFO, true, |v| {
            QueryInfoResponse { buffer: &[1, 2] }.encode(v)
        });
        pdu[8..12].copy_from_slice(&NtStatus::BUFFER_OVERFLOW.0.to_le_bytes());
        assert!(matches!(
            Response::parse(&pdu).unwrap().1,
            Response::QueryInfo(_)
        ));
        let mut pdu = test_pdu(Command::SESSION_SETUP, true, |v| {
            SessionSetupResponse::default().encode(v)
        });
        pdu[8..12].copy_from_slice(&NtStatus::MORE_PROCESSING_REQUIRED.0.to_le_bytes());
        assert!(matches!(
            Response::parse(&pdu).unwrap().1,
            Response::SessionSetup(_)
        ));
    }
}
