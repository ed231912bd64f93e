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
