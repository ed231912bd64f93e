//! Apple's SMB2 extensions for macOS clients: the `AAPL` create context (server query) and
//! what the capabilities it announces promise.
//!
//! The context is Apple's, not Microsoft's; its layout is the one macOS sends and Samba's
//! vfs_fruit answers: a request of CommandCode (u32, 1 = server query), Reserved (u32),
//! RequestBitmap (u64: 1 server caps, 2 volume caps, 4 model info) and ClientCapabilities
//! (u64); a reply of CommandCode, Reserved, ReplyBitmap, then ServerCapabilities (u64),
//! VolumeCapabilities (u64) and the model (u32 reserved, u32 byte length, UTF-16LE) for the
//! bits asked.
//!
//! What lanshare announces: UNIX_BASED (a Unix server), READ_DIR_ATTR when the client
//! offers it (QUERY_DIRECTORY then carries each entry's maximal access, resource fork size
//! and FinderInfo, `handlers/dir.rs`), and FULL_SYNC on the volume (FLUSH is an fsync). The
//! macOS metadata streams `AFP_AfpInfo` (60 bytes, FinderInfo at offset 16) and
//! `AFP_Resource` are ordinary named streams (`lanshare_vfs::streams`), so Finder's labels,
//! tags and small resource forks stay with the file.

use lanshare_vfs::VfsHandle;

/// CommandCode kAAPL_SERVER_QUERY.
const SERVER_QUERY: u32 = 1;
/// RequestBitmap bits.
const SERVER_CAPS: u64 = 0x1;
const VOLUME_CAPS: u64 = 0x2;
const MODEL_INFO: u64 = 0x4;
/// Server capability bits.
pub(crate) const SUPPORTS_READ_DIR_ATTR: u64 = 0x1;
const UNIX_BASED: u64 = 0x4;
/// Volume capability bits.
const CASE_SENSITIVE: u64 = 0x2;
const SUPPORTS_FULL_SYNC: u64 = 0x4;

/// The model string Finder is told (it picks the server's icon by it; an unknown model gets
/// the generic one).
const MODEL: &str = "lanshare";

/// The reply to an `AAPL` context, and whether READDIR_ATTR is now on for the connection;
/// `None` for a context that is not a well-formed server query (ignored, as unknown contexts
/// are).
pub(crate) fn reply(data: &[u8], case_sensitive: bool) -> Option<(Vec<u8>, bool)> {
    let cmd = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?);
    if cmd != SERVER_QUERY {
        return None;
    }
    let bitmap = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    let client_caps = u64::from_le_bytes(data.get(16..24)?.try_into().ok()?);
    let bitmap = bitmap & (SERVER_CAPS | VOLUME_CAPS | MODEL_INFO);
    let read_dir_attr = client_caps & SUPPORTS_READ_DIR_ATTR != 0;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&SERVER_QUERY.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&bitmap.to_le_bytes());
    if bitmap & SERVER_CAPS != 0 {
        let mut caps = UNIX_BASED;
        if read_dir_attr {
            caps |= SUPPORTS_READ_DIR_ATTR;
        }
        out.extend_from_slice(&caps.to_le_bytes());
    }
    if bitmap & VOLUME_CAPS != 0 {
        let mut caps = SUPPORTS_FULL_SYNC;
        if case_sensitive {
            caps |= CASE_SENSITIVE;
        }
        out.extend_from_slice(&caps.to_le_bytes());
    }
    if bitmap & MODEL_INFO != 0 {
        let model: Vec<u8> = MODEL.encode_utf16().flat_map(u16::to_le_bytes).collect();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(model.len() as u32).to_le_bytes());
        out.extend_from_slice(&model);
    }
    Some((out, read_dir_attr && bitmap & SERVER_CAPS != 0))
}

/// What READDIR_ATTR puts in a directory entry for macOS: the resource fork's size and the
/// first 16 bytes of the FinderInfo (from the `AFP_Resource` and `AFP_AfpInfo` streams).
pub(crate) fn finder_data(h: &dyn VfsHandle) -> (u64, [u8; 16]) {
    let mut finder = [0u8; 16];
    let rfork = lanshare_vfs::streams::find(h, "AFP_Resource")
        .ok()
        .flatten()
        .and_then(|s| {
            h.get_attr(&format!("{}{s}", lanshare_vfs::streams::STREAM_ATTR_PREFIX))
                .ok()
                .flatten()
        })
        .map_or(0, |v| v.len() as u64);
    if let Some(info) = lanshare_vfs::streams::find(h, "AFP_AfpInfo")
        .ok()
        .flatten()
        .and_then(|s| {
            h.get_attr(&format!("{}{s}", lanshare_vfs::streams::STREAM_ATTR_PREFIX))
                .ok()
                .flatten()
        })
        && let Some(fi) = info.get(16..32)
    {
        finder.copy_from_slice(fi);
    }
    (rfork, finder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bitmap: u64, client_caps: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&1u32.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes());
        r.extend_from_slice(&bitmap.to_le_bytes());
        r.extend_from_slice(&client_caps.to_le_bytes());
        r
    }

    #[test]
    fn server_query() {
        let (r, rda) = reply(&request(7, 0xF), false).unwrap();
        assert!(rda);
        assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(r[16..24].try_into().unwrap()), 0x5);
        assert_eq!(u64::from_le_bytes(r[24..32].try_into().unwrap()), 0x4);
        assert_eq!(u32::from_le_bytes(r[36..40].try_into().unwrap()), 16);
        assert_eq!(r.len(), 40 + 16);
        assert_eq!(&r[40..42], b"l\0");
        // Only what was asked; READDIR_ATTR only for a client that offers it.
        let (r, rda) = reply(&request(SERVER_CAPS, 0), true).unwrap();
        assert!(!rda);
        assert_eq!(r.len(), 24);
        assert_eq!(
            u64::from_le_bytes(r[16..24].try_into().unwrap()),
            UNIX_BASED
        );
        assert!(reply(&request(7, 0)[..20], false).is_none());
        let mut other = request(7, 0);
        other[0] = 2;
        assert!(reply(&other, false).is_none());
    }
}
