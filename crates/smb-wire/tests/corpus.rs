//! Every frame of the captured corpus (real smbclient/smbtorture requests and Samba 4.17
//! responses, /work/shared/corpus) must parse, and every parsed message must survive
//! encode -> parse unchanged.
//!
//! The tarball is unpacked into a temporary directory by `tar xJf`; a missing tarball fails
//! the test (CI has it at `../shared` beside the repository).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use smb_wire::msg::{Request, Response};
use smb_wire::{Header, is_compression_transform, is_smb1, is_transform, split_compound};

fn corpus_tarball() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.join("../../../shared/corpus/smb2-samba417-capture.tar.xz")
}

fn unpack() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tarball = corpus_tarball();
    assert!(
        tarball.exists(),
        "corpus tarball missing: {}",
        tarball.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tar xJf {} failed", tarball.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("cap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (dir, files)
}

fn header_bytes(h: &Header) -> Vec<u8> {
    let mut v = Vec::new();
    h.encode(&mut v);
    v
}

#[test]
fn every_request_and_response_parses_and_round_trips() {
    let (_dir, files) = unpack();
    assert!(files.len() > 3000, "corpus has only {} files", files.len());
    let mut failures = Vec::new();
    let (mut requests, mut responses, mut skipped) = (0usize, 0usize, 0usize);
    // Byte-identical re-encodings, per direction: informational (Samba pads differently in
    // places), printed so layout drift is visible.
    let (mut same_req, mut same_resp) = (0usize, 0usize);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let is_req = name.ends_with(".bin");
        let frame = std::fs::read(path).unwrap();
        if is_transform(&frame) || is_compression_transform(&frame) || is_smb1(&frame) {
            skipped += 1;
            continue;
        }
        for (i, pdu) in split_compound(&frame).enumerate() {
            let pdu = match pdu {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{name}[{i}]: compound: {e}"));
                    break;
                }
            };
            let result = if is_req {
                requests += 1;
                Request::parse(pdu).and_then(|(h, r)| {
                    let mut v = header_bytes(&h);
                    r.encode(&mut v)?;
                    if pdu.starts_with(&v) && pdu[v.len()..].iter().all(|&b| b == 0) {
                        same_req += 1;
                    } else if std::env::var_os("CORPUS_DIFF").is_some() {
                        let at = pdu
                            .iter()
                            .zip(&v)
                            .position(|(a, b)| a != b)
                            .unwrap_or(v.len().min(pdu.len()));
                        eprintln!(
                            "diff {name}[{i}] {} {}: at {at}, ours {} theirs {}",
                            h.command,
                            h.status,
                            v.len(),
                            pdu.len()
                        );
                    }
                    let (_, again) = Request::parse(&v)?;
                    if again != r {
                        return Err(smb_wire::WireError::Unsupported(
                            "request changed on re-encode",
                        ));
                    }
                    Ok(())
                })
            } else {
                responses += 1;
                Response::parse(pdu).and_then(|(h, r)| {
                    let mut v = header_bytes(&h);
                    r.encode(&mut v)?;
                    if pdu.starts_with(&v) && pdu[v.len()..].iter().all(|&b| b == 0) {
                        same_resp += 1;
                    } else if std::env::var_os("CORPUS_DIFF").is_some() {
                        let at = pdu
                            .iter()
                            .zip(&v)
                            .position(|(a, b)| a != b)
                            .unwrap_or(v.len().min(pdu.len()));
                        eprintln!(
                            "diff {name}[{i}] {} {}: at {at}, ours {} theirs {}",
                            h.command,
                            h.status,
                            v.len(),
                            pdu.len()
                        );
                    }
                    let (_, again) = Response::parse(&v)?;
                    if again != r {
                        return Err(smb_wire::WireError::Unsupported(
                            "response changed on re-encode",
                        ));
                    }
                    Ok(())
                })
            };
            if let Err(e) = result {
                let cmd = Header::parse(pdu)
                    .map(|h| format!("{} {}", h.command, h.status))
                    .unwrap_or_default();
                failures.push(format!("{name}[{i}] {cmd}: {e}"));
            }
        }
    }
    eprintln!(
        "corpus: {requests} request PDUs ({same_req} re-encode byte-identical), {responses} response PDUs \
         ({same_resp} byte-identical), {skipped} transform frames skipped"
    );
    assert!(
        requests > 1400 && responses > 1400,
        "too few PDUs: {requests} requests, {responses} responses"
    );
    assert!(
        failures.is_empty(),
        "{} PDUs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Samba's QUERY_INFO and QUERY_DIRECTORY answers decode with this crate's FSCC layouts:
/// each request is paired with its response by (connection, MessageId), then the output
/// buffer is decoded according to the class asked for and re-encoded byte for byte where
/// this crate has an encoder.
#[test]
fn samba_info_buffers_match_fscc_layouts() {
    use smb_wire::fscc::{self, dir};
    use smb_wire::msg::{QueryDirectoryResponse, QueryInfoResponse};
    use smb_wire::{FileInfoClass, FsInfoClass, InfoType};
    use std::collections::HashMap;

    let (_dir, files) = unpack();
    // (connection, message id) -> (command, info type, class)
    let mut asked: HashMap<(String, u64), (Command_, u8, u8)> = HashMap::new();
    #[derive(Clone, Copy, PartialEq)]
    enum Command_ {
        QueryInfo,
        QueryDirectory,
    }
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let conn = name[..4].to_string();
        let frame = std::fs::read(path).unwrap();
        if is_transform(&frame) {
            continue;
        }
        for pdu in split_compound(&frame).flatten() {
            if name.ends_with(".bin") {
                match Request::parse(pdu) {
                    Ok((h, Request::QueryInfo(q))) => {
                        asked.insert(
                            (conn.clone(), h.message_id),
                            (Command_::QueryInfo, q.info_type.0, q.file_info_class),
                        );
                    }
                    Ok((_, Request::SetInfo(q))) if q.info_type == InfoType::FILE => {
                        let r = match q.file_class() {
                            FileInfoClass::BASIC => {
                                fscc::FileBasicInformation::parse(q.buffer).map(drop)
                            }
                            FileInfoClass::RENAME => {
                                fscc::FileRenameInformation::parse(q.buffer).map(drop)
                            }
                            FileInfoClass::DISPOSITION => {
                                fscc::parse_disposition(q.buffer).map(drop)
                            }
                            FileInfoClass::END_OF_FILE => {
                                fscc::parse_end_of_file(q.buffer).map(drop)
                            }
                            _ => Ok(()),
                        };
                        match r {
                            Ok(()) => checked += 1,
                            Err(e) => failures
                                .push(format!("{name} SET_INFO class {}: {e}", q.file_info_class)),
                        }
                    }
                    Ok((h, Request::QueryDirectory(q))) => {
                        asked.insert(
                            (conn.clone(), h.message_id),
                            (Command_::QueryDirectory, 0, q.file_information_class.0),
                        );
                    }
                    _ => {}
                }
                continue;
            }
            let Ok(h) = Header::parse(pdu) else { continue };
            if h.status != smb_wire::NtStatus::SUCCESS {
                continue;
            }
            let Some(&(cmd, info_type, class)) = asked.get(&(conn.clone(), h.message_id)) else {
                continue;
            };
            let check = |buf: &[u8]| -> Result<(), String> {
                let reencode = |v: Vec<u8>| {
                    if v == buf {
                        Ok(())
                    } else {
                        Err(format!(
                            "re-encoded {} bytes differ from {}",
                            v.len(),
                            buf.len()
                        ))
                    }
                };
                match (cmd, InfoType(info_type)) {
                    (Command_::QueryDirectory, _) => {
                        let entries = dir::parse_entries(FileInfoClass(class), buf)
                            .map_err(|e| e.to_string())?;
                        if entries.is_empty() {
                            Err("no entries".into())
                        } else {
                            Ok(())
                        }
                    }
                    (Command_::QueryInfo, InfoType::FILE) => match FileInfoClass(class) {
                        FileInfoClass::BASIC => {
                            let b = fscc::FileBasicInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v);
                            reencode(v)
                        }
                        FileInfoClass::STANDARD => {
                            let b = fscc::FileStandardInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v);
                            reencode(v)
                        }
                        FileInfoClass::ALL => {
                            let b =
                                fscc::FileAllInformation::parse(buf).map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v).map_err(|e| e.to_string())?;
                            reencode(v)
                        }
                        FileInfoClass::NETWORK_OPEN => {
                            let b = fscc::FileNetworkOpenInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v);
                            reencode(v)
                        }
                        FileInfoClass::STREAM => {
                            let s = fscc::parse_streams(buf).map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            fscc::encode_streams(&s, &mut v).map_err(|e| e.to_string())?;
                            reencode(v)
                        }
                        _ => Ok(()),
                    },
                    (Command_::QueryInfo, InfoType::FILESYSTEM) => match FsInfoClass(class) {
                        FsInfoClass::VOLUME => {
                            let b = fscc::FileFsVolumeInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v).map_err(|e| e.to_string())?;
                            reencode(v)
                        }
                        FsInfoClass::ATTRIBUTE => {
                            let b = fscc::FileFsAttributeInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v).map_err(|e| e.to_string())?;
                            reencode(v)
                        }
                        FsInfoClass::FULL_SIZE => {
                            let b = fscc::FileFsFullSizeInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v);
                            reencode(v)
                        }
                        FsInfoClass::SIZE => {
                            let b = fscc::FileFsSizeInformation::parse(buf)
                                .map_err(|e| e.to_string())?;
                            let mut v = Vec::new();
                            b.encode(&mut v);
                            reencode(v)
                        }
                        _ => Ok(()),
                    },
                    (Command_::QueryInfo, InfoType::SECURITY) => {
                        let sd = fscc::SecurityDescriptor::parse(buf).map_err(|e| e.to_string())?;
                        let mut v = Vec::new();
                        sd.encode(&mut v).map_err(|e| e.to_string())?;
                        fscc::SecurityDescriptor::parse(&v).map_err(|e| e.to_string())?;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            };
            let buf = match cmd {
                Command_::QueryInfo => QueryInfoResponse::parse(pdu).map(|r| r.buffer),
                Command_::QueryDirectory => QueryDirectoryResponse::parse(pdu).map(|r| r.buffer),
            };
            match buf.map_err(|e| e.to_string()).and_then(check) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!("{name} info_type {info_type} class {class}: {e}")),
            }
        }
    }
    eprintln!("fscc: {checked} SET_INFO inputs and Samba info/directory buffers checked");
    assert!(checked > 50, "only {checked} buffers checked");
    assert!(
        failures.is_empty(),
        "{} buffers failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
