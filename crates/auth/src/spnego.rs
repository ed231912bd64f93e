//! SPNEGO tokens ([MS-SPNG] 2.2, RFC 4178 4.2): NegTokenInit in, NegTokenResp both ways, and
//! the NegTokenInit2 hint for the SMB2 NEGOTIATE response.

use crate::der::{self, Reader, Tlv, ctx};

/// 1.3.6.1.5.5.2, the SPNEGO mechanism itself.
pub(crate) const OID_SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// 1.3.6.1.4.1.311.2.2.10, NTLMSSP.
pub(crate) const OID_NTLMSSP: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// The hint name Windows sends in NegTokenInit2 ([MS-SPNG] 3.2.5.2).
const HINT_NAME: &[u8] = b"not_defined_in_RFC4178@please_ignore";

/// negState values (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NegState {
    AcceptCompleted = 0,
    AcceptIncomplete = 1,
}

/// negState reject (RFC 4178 4.2.2), which an initiator may send to give up.
pub(crate) const NEG_STATE_REJECT: u8 = 2;

/// The parts of the initiator's NegTokenInit we act on.
#[derive(Debug)]
pub(crate) struct NegTokenInit<'a> {
    /// The complete DER encoding of the MechTypeList (a SEQUENCE OF OID): the bytes that
    /// mechListMIC covers ([MS-SPNG] 3.1.5.1, RFC 4178 5).
    pub mech_types_der: &'a [u8],
    /// Position of NTLMSSP in mechTypes, if offered.
    pub ntlm_index: Option<usize>,
    pub mech_token: Option<&'a [u8]>,
}

/// The parts of a NegTokenResp we act on.
#[derive(Debug, Default)]
pub(crate) struct NegTokenResp<'a> {
    pub neg_state: Option<u8>,
    pub response_token: Option<&'a [u8]>,
    pub mech_list_mic: Option<&'a [u8]>,
}

/// Why a token is not usable SPNEGO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpnegoError {
    Malformed(String),
    /// A GSS-API token for some other mechanism (e.g. a bare Kerberos AP-REQ).
    OtherMech,
}

impl From<der::DerError> for SpnegoError {
    fn from(e: der::DerError) -> Self {
        SpnegoError::Malformed(e.to_string())
    }
}

fn octets<'a>(tlv: Option<Tlv<'a>>) -> Result<Option<&'a [u8]>, SpnegoError> {
    tlv.map(|t| der::read_single(t.content, der::TAG_OCTET_STRING).map(|o| o.content))
        .transpose()
        .map_err(Into::into)
}

/// Parses the first token: `[APPLICATION 0] { OID spnego, [0] NegTokenInit }`, or the bare
/// `[0] NegTokenInit` that some initiators send without the GSS-API framing.
pub(crate) fn parse_init(token: &[u8]) -> Result<NegTokenInit<'_>, SpnegoError> {
    let neg = match token.first() {
        Some(&der::TAG_APPLICATION_0) => {
            let app = der::read_single(token, der::TAG_APPLICATION_0)?;
            let mut r = Reader::new(app.content);
            let oid = r.read(der::TAG_OID)?;
            if oid.content != OID_SPNEGO {
                return Err(SpnegoError::OtherMech);
            }
            r.rest()
        }
        _ => token,
    };
    let init = der::read_single(neg, ctx(0))?;
    let seq = der::read_single(init.content, der::TAG_SEQUENCE)?;
    let mut r = Reader::new(seq.content);

    let mech_types = r.read(ctx(0))?;
    let list = der::read_single(mech_types.content, der::TAG_SEQUENCE)?;
    let mut oids = Reader::new(list.content);
    let mut ntlm_index = None;
    let mut i = 0usize;
    while !oids.is_empty() {
        let oid = oids.read(der::TAG_OID)?;
        if oid.content == OID_NTLMSSP && ntlm_index.is_none() {
            ntlm_index = Some(i);
        }
        i += 1;
    }
    if i == 0 {
        return Err(SpnegoError::Malformed("empty mechTypes".into()));
    }
    let _req_flags = r.read_optional(ctx(1))?;
    let mech_token = octets(r.read_optional(ctx(2))?)?;
    // [3] is mechListMIC in RFC 4178 and negHints in NegTokenInit2; an initiator's MIC here
    // would cover nothing we could check yet, so both are skipped, as is [4].
    let _ = r.read_optional(ctx(3))?;
    let _ = r.read_optional(ctx(4))?;
    r.finish()?;
    Ok(NegTokenInit {
        mech_types_der: list.raw,
        ntlm_index,
        mech_token,
    })
}

/// Parses `[1] NegTokenResp`.
pub(crate) fn parse_resp(token: &[u8]) -> Result<NegTokenResp<'_>, SpnegoError> {
    let outer = der::read_single(token, ctx(1))?;
    let seq = der::read_single(outer.content, der::TAG_SEQUENCE)?;
    let mut r = Reader::new(seq.content);
    let neg_state = match r.read_optional(ctx(0))? {
        Some(t) => {
            let e = der::read_single(t.content, der::TAG_ENUMERATED)?;
            match e.content {
                [v] => Some(*v),
                _ => return Err(SpnegoError::Malformed("bad negState".into())),
            }
        }
        None => None,
    };
    // supportedMech is the acceptor's to send; from an initiator it is only checked for form.
    if let Some(t) = r.read_optional(ctx(1))? {
        der::read_single(t.content, der::TAG_OID)?;
    }
    let response_token = octets(r.read_optional(ctx(2))?)?;
    let mech_list_mic = octets(r.read_optional(ctx(3))?)?;
    r.finish()?;
    Ok(NegTokenResp {
        neg_state,
        response_token,
        mech_list_mic,
    })
}

/// Encodes `[1] NegTokenResp`.
pub(crate) fn encode_resp(
    state: NegState,
    supported_mech: Option<&[u8]>,
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    // Sized first and written once: two of these go out per logon, and building each
    // element in its own vector cost a dozen allocations.
    let state = [state as u8];
    let fields = [
        (ctx(0), der::TAG_ENUMERATED, Some(state.as_slice())),
        (ctx(1), der::TAG_OID, supported_mech),
        (ctx(2), der::TAG_OCTET_STRING, response_token),
        (ctx(3), der::TAG_OCTET_STRING, mech_list_mic),
    ];
    let seq_len: usize = fields
        .iter()
        .filter_map(|(_, _, c)| c.map(|c| der::encoded_len(der::encoded_len(c.len()))))
        .sum();
    let mut out = Vec::with_capacity(der::encoded_len(der::encoded_len(seq_len)));
    der::push_header(&mut out, ctx(1), der::encoded_len(seq_len));
    der::push_header(&mut out, der::TAG_SEQUENCE, seq_len);
    for (field, tag, content) in fields {
        if let Some(c) = content {
            der::push_header(&mut out, field, der::encoded_len(c.len()));
            der::push_tlv(&mut out, tag, c);
        }
    }
    out
}

/// The NegTokenInit2 blob for the SMB2 NEGOTIATE response security buffer ([MS-SPNG] 2.2.1,
/// [MS-SMB2] 3.3.5.4): mechTypes = { NTLMSSP }, negHints { hintName
/// "not_defined_in_RFC4178@please_ignore" }.
pub fn negotiate_hint() -> Vec<u8> {
    negotiate_hint_bytes().to_vec()
}

/// [`negotiate_hint`], built once: every NEGOTIATE response carries the same bytes, and
/// building them took a dozen small allocations per connection.
pub fn negotiate_hint_bytes() -> &'static [u8] {
    static HINT: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(build_negotiate_hint);
    &HINT
}

fn build_negotiate_hint() -> Vec<u8> {
    let mech_list = der::tlv(der::TAG_SEQUENCE, &der::tlv(der::TAG_OID, OID_NTLMSSP));
    let hints = der::tlv(
        der::TAG_SEQUENCE,
        &der::tlv(ctx(0), &der::tlv(der::TAG_GENERAL_STRING, HINT_NAME)),
    );
    let mut body = der::tlv(ctx(0), &mech_list);
    der::push_tlv(&mut body, ctx(3), &hints);
    let init = der::tlv(ctx(0), &der::tlv(der::TAG_SEQUENCE, &body));
    let mut app = der::tlv(der::TAG_OID, OID_SPNEGO);
    app.extend_from_slice(&init);
    der::tlv(der::TAG_APPLICATION_0, &app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntlm::tests::hex;

    #[test]
    fn hint_matches_the_windows_bytes() {
        // Assembled by hand from [MS-SPNG] 2.2.1 and X.690, independently of our encoder.
        let expected = hex(
            "60 48 06 06 2b 06 01 05 05 02 a0 3e 30 3c a0 0e 30 0c 06 0a 2b 06 01 04 01 82 37 02 02 0a
             a3 2a 30 28 a0 26 1b 24 6e 6f 74 5f 64 65 66 69 6e 65 64 5f 69 6e 5f 52 46 43 34 31 37 38
             40 70 6c 65 61 73 65 5f 69 67 6e 6f 72 65",
        );
        assert_eq!(negotiate_hint(), expected);
    }

    #[test]
    fn hint_parses_as_an_init_offering_ntlm() {
        let hint = negotiate_hint();
        let init = parse_init(&hint).unwrap();
        assert_eq!(init.ntlm_index, Some(0));
        assert!(init.mech_token.is_none());
    }

    #[test]
    fn resp_round_trip() {
        let enc = encode_resp(
            NegState::AcceptIncomplete,
            Some(OID_NTLMSSP),
            Some(b"tok"),
            Some(b"mic"),
        );
        let r = parse_resp(&enc).unwrap();
        assert_eq!(r.neg_state, Some(1));
        assert_eq!(r.response_token, Some(&b"tok"[..]));
        assert_eq!(r.mech_list_mic, Some(&b"mic"[..]));
        let enc = encode_resp(NegState::AcceptCompleted, None, None, None);
        assert_eq!(enc, hex("a1 07 30 05 a0 03 0a 01 00"));
        let r = parse_resp(&enc).unwrap();
        assert_eq!(r.neg_state, Some(0));
        assert!(r.response_token.is_none() && r.mech_list_mic.is_none());
    }

    #[test]
    fn resp_matches_an_element_by_element_encoding() {
        // Built the long way, one vector per element, with token sizes on both sides of the
        // one-, two- and three-byte DER length forms.
        for len in [0usize, 3, 0x70, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0xffff] {
            let token = vec![0x5au8; len];
            for (mech, tok, mic) in [
                (Some(OID_NTLMSSP), Some(token.as_slice()), None),
                (None, None, Some(token.as_slice())),
                (
                    Some(OID_NTLMSSP),
                    Some(token.as_slice()),
                    Some(b"0123456789abcdef".as_slice()),
                ),
                (None, None, None),
            ] {
                let mut seq = der::tlv(ctx(0), &der::tlv(der::TAG_ENUMERATED, &[1]));
                if let Some(m) = mech {
                    der::push_tlv(&mut seq, ctx(1), &der::tlv(der::TAG_OID, m));
                }
                if let Some(t) = tok {
                    der::push_tlv(&mut seq, ctx(2), &der::tlv(der::TAG_OCTET_STRING, t));
                }
                if let Some(m) = mic {
                    der::push_tlv(&mut seq, ctx(3), &der::tlv(der::TAG_OCTET_STRING, m));
                }
                let expected = der::tlv(ctx(1), &der::tlv(der::TAG_SEQUENCE, &seq));
                let got = encode_resp(NegState::AcceptIncomplete, mech, tok, mic);
                assert_eq!(got, expected, "token {len}");
                assert_eq!(got.capacity(), got.len(), "sized exactly");
            }
        }
    }

    #[test]
    fn kerberos_first_init_reports_ntlm_position() {
        // mechTypes = [MS-KRB5, KRB5, NTLMSSP], mechToken = "x".
        let oids = [
            hex("2a 86 48 82 f7 12 01 02 02"),
            hex("2a 86 48 86 f7 12 01 02 02"),
            OID_NTLMSSP.to_vec(),
        ];
        let mut list = Vec::new();
        for o in &oids {
            der::push_tlv(&mut list, der::TAG_OID, o);
        }
        let list = der::tlv(der::TAG_SEQUENCE, &list);
        let mut body = der::tlv(ctx(0), &list);
        der::push_tlv(&mut body, ctx(2), &der::tlv(der::TAG_OCTET_STRING, b"x"));
        let init = der::tlv(ctx(0), &der::tlv(der::TAG_SEQUENCE, &body));
        let mut app = der::tlv(der::TAG_OID, OID_SPNEGO);
        app.extend_from_slice(&init);
        let token = der::tlv(der::TAG_APPLICATION_0, &app);
        let parsed = parse_init(&token).unwrap();
        assert_eq!(parsed.ntlm_index, Some(2));
        assert_eq!(parsed.mech_token, Some(&b"x"[..]));
        assert_eq!(parsed.mech_types_der, &list[..]);
        // Without the GSS-API framing too.
        assert_eq!(parse_init(&init).unwrap().ntlm_index, Some(2));
    }

    #[test]
    fn foreign_gss_token_is_other_mech() {
        let mut app = der::tlv(der::TAG_OID, &hex("2a 86 48 86 f7 12 01 02 02"));
        app.extend_from_slice(&[1, 0]);
        let token = der::tlv(der::TAG_APPLICATION_0, &app);
        assert_eq!(parse_init(&token).unwrap_err(), SpnegoError::OtherMech);
    }
}
