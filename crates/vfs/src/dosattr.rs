//! The on-disk format of the xattr that keeps what a Linux filesystem has no field for: the DOS
//! attributes HIDDEN, SYSTEM, ARCHIVE (READONLY lives in the mode bits) and a settable
//! creation time.
//!
//! Name `user.lanshare.dos`, value 16 bytes, little-endian:
//! `b'L'`, version `1`, flags (bit 0: attributes valid, bit 1: creation time valid), reserved
//! `0`, attributes `u32`, creation time as a FILETIME `u64`. Any other value (a hostile local
//! user can write one) is ignored as if absent.

/// The xattr name.
pub(crate) const XATTR_NAME: &str = "user.lanshare.dos";
const MAGIC: u8 = b'L';
const VERSION: u8 = 1;
const LEN: usize = 16;
const HAS_ATTRS: u8 = 1;
const HAS_CREATED: u8 = 2;

/// Decoded contents; `None` fields were never set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DosXattr {
    pub attrs: Option<u32>,
    pub created: Option<u64>,
}

impl DosXattr {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = MAGIC;
        out[1] = VERSION;
        let mut flags = 0;
        if let Some(a) = self.attrs {
            flags |= HAS_ATTRS;
            out[4..8].copy_from_slice(&a.to_le_bytes());
        }
        if let Some(c) = self.created {
            flags |= HAS_CREATED;
            out[8..16].copy_from_slice(&c.to_le_bytes());
        }
        out[2] = flags;
        out
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<DosXattr> {
        let raw: &[u8; LEN] = raw.try_into().ok()?;
        let [magic, version, flags, _, a0, a1, a2, a3, c @ ..] = *raw;
        if magic != MAGIC || version != VERSION {
            return None;
        }
        Some(DosXattr {
            attrs: (flags & HAS_ATTRS != 0).then(|| u32::from_le_bytes([a0, a1, a2, a3])),
            created: (flags & HAS_CREATED != 0).then(|| u64::from_le_bytes(c)),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_junk() {
        for x in [
            DosXattr::default(),
            DosXattr {
                attrs: Some(0x27),
                created: None,
            },
            DosXattr {
                attrs: None,
                created: Some(133_000_000_000_000_000),
            },
            DosXattr {
                attrs: Some(2),
                created: Some(1),
            },
        ] {
            assert_eq!(DosXattr::decode(&x.encode()), Some(x));
        }
        let good = DosXattr {
            attrs: Some(2),
            created: None,
        }
        .encode();
        assert_eq!(DosXattr::decode(&good[..15]), None);
        assert_eq!(DosXattr::decode(&[]), None);
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(DosXattr::decode(&bad), None);
        let mut bad = good;
        bad[1] = 2;
        assert_eq!(DosXattr::decode(&bad), None);
    }
}
