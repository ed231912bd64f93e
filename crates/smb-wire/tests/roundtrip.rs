//! Property tests: every response type (and the requests with variable parts) survives
//! encode -> parse unchanged, and arbitrary bytes behind a valid header never panic a parser.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use smb_wire::msg::create_context::{LeaseFlags, LeaseState};
use smb_wire::msg::oplock_break::{LeaseBreakAck, LeaseBreakNotification, OplockBreak};
use smb_wire::msg::*;
use smb_wire::*;

fn header(command: Command, response: bool) -> Vec<u8> {
    let h = Header {
        command,
        flags: if response {
            HeaderFlags::SERVER_TO_REDIR
        } else {
            HeaderFlags::empty()
        },
        message_id: 9,
        ..Header::default()
    };
    let mut v = Vec::new();
    h.encode(&mut v);
    v
}

fn resp_round_trip(command: Command, r: Response<'_>) {
    let mut pdu = header(command, true);
    r.encode(&mut pdu).unwrap();
    let (h, parsed) = Response::parse(&pdu).unwrap();
    assert_eq!(h.command, command);
    assert_eq!(parsed, r);
}

fn req_round_trip(command: Command, r: Request<'_>) {
    let mut pdu = header(command, false);
    r.encode(&mut pdu).unwrap();
    let (_, parsed) = Request::parse(&pdu).unwrap();
    assert_eq!(parsed, r);
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn file_id() -> impl Strategy<Value = FileId> {
    (any::<u64>(), any::<u64>()).prop_map(|(p, v)| FileId::new(p, v))
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.\\\\äöü€😀-]{0,40}"
}

fn ctx_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"MxAc".to_vec()),
        Just(b"QFid".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..20)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn negotiate_response(sec in bytes(300), salt in bytes(64), ciphers in proptest::collection::vec(any::<u16>(), 0..5),
                          unknown in bytes(30), caps in any::<u32>(), times in any::<(u64, u64)>(), netname in name()) {
        let contexts = vec![
            NegotiateContext::PreauthIntegrity { hash_algorithms: vec![HashAlgorithm::SHA_512], salt: &salt },
            NegotiateContext::Encryption { ciphers: ciphers.into_iter().map(Cipher).collect() },
            NegotiateContext::NetName(netname),
            NegotiateContext::Unknown { context_type: NegotiateContextType(0x100), data: &unknown },
        ];
        let r = NegotiateResponse {
            security_mode: SecurityMode::SIGNING_ENABLED,
            dialect_revision: Dialect::SMB3_1_1,
            server_guid: [7; 16],
            capabilities: Capabilities(caps),
            max_transact_size: 1 << 20,
            max_read_size: 1 << 20,
            max_write_size: 1 << 20,
            system_time: times.0,
            server_start_time: times.1,
            security_buffer: &sec,
            contexts,
        };
        resp_round_trip(Command::NEGOTIATE, Response::Negotiate(r));
    }

    #[test]
    fn negotiate_request(dialects in proptest::collection::vec(any::<u16>(), 0..8), salt in bytes(40), guid in any::<[u8; 16]>()) {
        let mut dialects: Vec<Dialect> = dialects.into_iter().map(Dialect).collect();
        dialects.push(Dialect::SMB3_1_1);
        let r = NegotiateRequest {
            security_mode: SecurityMode::SIGNING_REQUIRED,
            capabilities: Capabilities::ENCRYPTION,
            client_guid: guid,
            dialects,
            contexts: vec![
                NegotiateContext::PreauthIntegrity { hash_algorithms: vec![HashAlgorithm::SHA_512], salt: &salt },
                NegotiateContext::Signing { algorithms: vec![SigningAlgorithm::AES_CMAC] },
            ],
        };
        req_round_trip(Command::NEGOTIATE, Request::Negotiate(r));
    }

    #[test]
    fn session_setup(sec in bytes(600), flags in any::<u16>()) {
        resp_round_trip(Command::SESSION_SETUP, Response::SessionSetup(SessionSetupResponse {
            session_flags: SessionFlags(flags), security_buffer: &sec,
        }));
        req_round_trip(Command::SESSION_SETUP, Request::SessionSetup(SessionSetupRequest {
            flags: SessionSetupFlags::BINDING, security_mode: SecurityMode(1), capabilities: Capabilities(1),
            channel: 0, previous_session_id: SessionId(flags.into()), security_buffer: &sec,
        }));
    }

    #[test]
    fn tree_connect(t in any::<u8>(), f in any::<u32>(), c in any::<u32>(), a in any::<u32>(), path in name()) {
        resp_round_trip(Command::TREE_CONNECT, Response::TreeConnect(TreeConnectResponse {
            share_type: ShareType(t), share_flags: ShareFlags(f), capabilities: ShareCaps(c), maximal_access: AccessMask(a),
        }));
        req_round_trip(Command::TREE_CONNECT, Request::TreeConnect(TreeConnectRequest {
            flags: TreeConnectFlags::empty(), path, contexts: None,
        }));
    }

    #[test]
    fn create(fid in file_id(), times in any::<[u64; 6]>(), attrs in any::<u32>(), action in 0u32..4,
              ctxs in proptest::collection::vec((ctx_name(), bytes(50)), 0..4), path in name()) {
        let contexts: Vec<CreateContext<'_>> = ctxs.iter().map(|(n, d)| CreateContext::new(n, d)).collect();
        resp_round_trip(Command::CREATE, Response::Create(CreateResponse {
            oplock_level: OplockLevel::BATCH, flags: 0, create_action: action,
            creation_time: times[0], last_access_time: times[1], last_write_time: times[2], change_time: times[3],
            allocation_size: times[4], end_of_file: times[5], file_attributes: FileAttributes(attrs), file_id: fid,
            contexts: contexts.clone(),
        }));
        req_round_trip(Command::CREATE, Request::Create(CreateRequest {
            requested_oplock_level: OplockLevel::LEASE, desired_access: AccessMask(attrs),
            create_disposition: CreateDisposition(action), name: path, contexts, ..Default::default()
        }));
    }

    #[test]
    fn close_flush_write_lock(fid in file_id(), times in any::<[u64; 6]>(), n in any::<u32>(), data in bytes(200),
                              locks in proptest::collection::vec(any::<(u64, u64, u32)>(), 1..5)) {
        resp_round_trip(Command::CLOSE, Response::Close(CloseResponse {
            flags: 1, creation_time: times[0], last_access_time: times[1], last_write_time: times[2],
            change_time: times[3], allocation_size: times[4], end_of_file: times[5], file_attributes: FileAttributes(n),
        }));
        resp_round_trip(Command::FLUSH, Response::Flush(FlushResponse));
        resp_round_trip(Command::WRITE, Response::Write(WriteResponse { count: n, remaining: 0 }));
        resp_round_trip(Command::LOCK, Response::Lock(LockResponse));
        req_round_trip(Command::WRITE, Request::Write(WriteRequest {
            offset: times[0], file_id: fid, data: &data, ..Default::default()
        }));
        req_round_trip(Command::LOCK, Request::Lock(LockRequest {
            lock_sequence: n, file_id: fid,
            locks: locks.into_iter().map(|(offset, length, f)| lock::LockElement { offset, length, flags: lock::LockFlags(f) }).collect(),
        }));
    }

    #[test]
    fn read(data in bytes(500), rem in any::<u32>()) {
        resp_round_trip(Command::READ, Response::Read(ReadResponse { data: &data, data_remaining: rem, flags: 0 }));
    }

    #[test]
    fn ioctl(fid in file_id(), code in any::<u32>(), input in bytes(100), output in bytes(300)) {
        resp_round_trip(Command::IOCTL, Response::Ioctl(IoctlResponse {
            ctl_code: CtlCode(code), file_id: fid, input: &input, output: &output, flags: IoctlFlags::empty(),
        }));
        req_round_trip(Command::IOCTL, Request::Ioctl(IoctlRequest {
            ctl_code: CtlCode(code), file_id: fid, input: &input, max_input_response: 0, output: &output,
            max_output_response: 65536, flags: IoctlFlags::IS_FSCTL,
        }));
    }

    #[test]
    fn buffer9_responses(buf in bytes(400)) {
        resp_round_trip(Command::QUERY_DIRECTORY, Response::QueryDirectory(QueryDirectoryResponse { buffer: &buf }));
        resp_round_trip(Command::CHANGE_NOTIFY, Response::ChangeNotify(ChangeNotifyResponse { buffer: &buf }));
        resp_round_trip(Command::QUERY_INFO, Response::QueryInfo(QueryInfoResponse { buffer: &buf }));
        resp_round_trip(Command::SET_INFO, Response::SetInfo(SetInfoResponse));
        resp_round_trip(Command::ECHO, Response::Echo(EchoResponse));
        resp_round_trip(Command::LOGOFF, Response::Logoff(LogoffResponse));
        resp_round_trip(Command::TREE_DISCONNECT, Response::TreeDisconnect(TreeDisconnectResponse));
    }

    #[test]
    fn error_response(data in bytes(100), count in any::<u8>(), status in 0xC000_0001u32..0xC000_0400) {
        let e = ErrorResponse { error_context_count: count, error_data: &data };
        let mut pdu = header(Command::CREATE, true);
        pdu[8..12].copy_from_slice(&status.to_le_bytes());
        e.encode(&mut pdu).unwrap();
        let (_, parsed) = Response::parse(&pdu).unwrap();
        prop_assert_eq!(parsed, Response::Error(e));
    }

    #[test]
    fn oplock_break(fid in file_id(), lvl in any::<u8>(), key in any::<[u8; 16]>(), s in any::<(u32, u32, u16)>()) {
        for m in [
            OplockBreakMessage::Oplock(OplockBreak { oplock_level: OplockLevel(lvl), file_id: fid }),
            OplockBreakMessage::LeaseAck(LeaseBreakAck { flags: LeaseFlags(s.0), lease_key: key, lease_state: LeaseState(s.1), lease_duration: 0 }),
            OplockBreakMessage::LeaseNotification(LeaseBreakNotification {
                new_epoch: s.2, flags: 1, lease_key: key, current_lease_state: LeaseState(s.0), new_lease_state: LeaseState(s.1),
                ..Default::default()
            }),
        ] {
            resp_round_trip(Command::OPLOCK_BREAK, Response::OplockBreak(m));
        }
    }

    #[test]
    fn query_directory_and_info_requests(fid in file_id(), pat in name(), class in any::<u8>(), input in bytes(60)) {
        req_round_trip(Command::QUERY_DIRECTORY, Request::QueryDirectory(QueryDirectoryRequest {
            file_information_class: FileInfoClass(class), flags: query_directory::QueryDirectoryFlags(1),
            file_index: 0, file_id: fid, file_name: pat, output_buffer_length: 1024,
        }));
        req_round_trip(Command::QUERY_INFO, Request::QueryInfo(QueryInfoRequest {
            info_type: InfoType::FILE, file_info_class: class, output_buffer_length: 10, input: &input,
            additional_information: 0, flags: 0, file_id: fid,
        }));
        req_round_trip(Command::SET_INFO, Request::SetInfo(SetInfoRequest {
            info_type: InfoType::FILE, file_info_class: class, buffer: &input, additional_information: 0, file_id: fid,
        }));
    }

    /// Any body after a valid header: parsers return Ok or Err, never panic, and whatever
    /// parses re-encodes to something that parses the same.
    #[test]
    fn arbitrary_bodies_never_panic(cmd in 0u16..0x14, body in bytes(300), resp in any::<bool>(),
                                    status in prop_oneof![Just(0u32), any::<u32>()], size_pick in any::<prop::sample::Index>()) {
        let mut pdu = header(Command(cmd), resp);
        pdu[8..12].copy_from_slice(&status.to_le_bytes());
        // Most of the time start the body with a StructureSize some parser accepts, so the
        // fuzzing reaches past the first check.
        const SIZES: &[u16] = &[2, 4, 9, 16, 17, 24, 25, 32, 33, 36, 41, 44, 48, 49, 57, 60, 65, 89];
        let size = SIZES[size_pick.index(SIZES.len())];
        pdu.extend_from_slice(&size.to_le_bytes());
        pdu.extend_from_slice(&body);
        if resp {
            if let Ok((h, r)) = Response::parse(&pdu) {
                let mut v = Vec::new();
                h.encode(&mut v);
                if r.encode(&mut v).is_ok() {
                    prop_assert_eq!(Response::parse(&v).map(|x| x.1), Ok(r));
                }
            }
        } else if let Ok((h, r)) = Request::parse(&pdu) {
            let mut v = Vec::new();
            h.encode(&mut v);
            if r.encode(&mut v).is_ok() {
                prop_assert_eq!(Request::parse(&v).map(|x| x.1), Ok(r));
            }
        }
        for _ in split_compound(&pdu) {}
    }
}
