//! Reading the SOAP 1.2 envelopes that WS-Discovery clients send, over UDP (Probe, Resolve) and
//! over HTTP (WS-Transfer Get).
//!
//! Only the handful of fields the responder acts on are extracted; everything else is skipped
//! without being stored. The input is untrusted, so the reader:
//! - refuses documents over [`MAX_SOAP_LEN`] bytes before looking at them,
//! - refuses any DOCTYPE (so no DTD, no internal entity declarations, no entity expansion;
//!   only the five predefined entities and character references are understood),
//! - caps element depth, namespace bindings and the length of every captured text field.

use quick_xml::events::{BytesRef, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

/// Largest envelope we look at. A Probe from Windows is about 700 bytes and a Get about 600;
/// 32 KiB leaves room for verbose clients without inviting work on junk.
pub const MAX_SOAP_LEN: usize = 32 * 1024;
/// Deeper documents are not SOAP we answer; bounds the parser's stack.
const MAX_DEPTH: usize = 24;
/// Longest text kept for one captured field (an action URI, a message id, a list of types).
const MAX_FIELD_LEN: usize = 2048;
/// At most this many xmlns bindings in scope (a Windows Probe declares five).
const MAX_NS_BINDINGS: usize = 32;
/// At most this many QNames in a Probe's Types.
const MAX_TYPES: usize = 16;

pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 is accepted on input for tolerance; we always answer in SOAP 1.2 as Windows does.
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
pub const NS_WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
pub const NS_WSX: &str = "http://schemas.xmlsoap.org/ws/2004/09/mex";
pub const NS_WSDP: &str = "http://schemas.xmlsoap.org/ws/2006/02/devprof";
pub const NS_PNPX: &str = "http://schemas.microsoft.com/windows/pnpx/2005/10";
pub const NS_PUB: &str = "http://schemas.microsoft.com/windows/pub/2005/07";

pub const ACTION_HELLO: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello";
pub const ACTION_BYE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Bye";
pub const ACTION_PROBE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
pub const ACTION_PROBE_MATCHES: &str =
    "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches";
pub const ACTION_RESOLVE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Resolve";
pub const ACTION_RESOLVE_MATCHES: &str =
    "http://schemas.xmlsoap.org/ws/2005/04/discovery/ResolveMatches";
pub const ACTION_GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
pub const ACTION_GET_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
/// The well-known `wsa:To` of multicast discovery messages ([WS-Discovery 2005/04] 2.4).
pub const TO_DISCOVERY: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";
/// `wsa:To` of replies sent back to whoever asked ([WS-Addressing 2004/08] 2.1).
pub const TO_ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Why an envelope was not understood. Callers drop the message; the variants exist for logs
/// and tests.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SoapError {
    #[error("envelope of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("envelope is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE is not allowed")]
    Doctype,
    #[error("elements nested too deeply")]
    TooDeep,
    #[error("a text field is too long")]
    FieldTooLong,
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("root element is not a SOAP Envelope")]
    NotSoap,
    #[error("no wsa:Action header")]
    NoAction,
}

/// A namespace-qualified name read from text content, e.g. `wsdp:Device` in `<wsd:Types>`.
/// `ns` is `None` when the prefix was not bound (such a type can match nothing of ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedName {
    pub ns: Option<String>,
    pub local: String,
}

/// The body of an incoming message, as far as we act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// [WS-Discovery 2005/04] 5.2 Probe.
    Probe {
        types: Vec<ExpandedName>,
        /// Any non-empty `wsd:Scopes`: we publish no scopes, so such a probe never matches.
        scoped: bool,
    },
    /// [WS-Discovery 2005/04] 6.1 Resolve; the endpoint address asked for.
    Resolve { address: Option<String> },
    /// Anything else (Hello and Bye of other devices, our own echoes, Get whose body is empty).
    Other,
}

/// The parts of an incoming envelope the responder uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub action: String,
    pub message_id: Option<String>,
    pub to: Option<String>,
    pub body: Body,
}

/// Which field a text event belongs to, by the element path it is under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Action,
    MessageId,
    To,
    Types,
    Scopes,
    ResolveAddress,
}

/// One open element: its namespace (only those we route on) and local name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Elem {
    Envelope,
    Header,
    Body,
    Action,
    MessageId,
    To,
    Probe,
    Resolve,
    Types,
    Scopes,
    EndpointReference,
    Address,
    Other,
}

fn classify(ns: Option<&str>, local: &str) -> Elem {
    let ns = ns.unwrap_or_default();
    let is = |want: &str| ns == want;
    match local {
        "Envelope" if is(NS_SOAP12) || is(NS_SOAP11) => Elem::Envelope,
        "Header" if is(NS_SOAP12) || is(NS_SOAP11) => Elem::Header,
        "Body" if is(NS_SOAP12) || is(NS_SOAP11) => Elem::Body,
        "Action" if is(NS_WSA) => Elem::Action,
        "MessageID" if is(NS_WSA) => Elem::MessageId,
        "To" if is(NS_WSA) => Elem::To,
        "EndpointReference" if is(NS_WSA) => Elem::EndpointReference,
        "Address" if is(NS_WSA) => Elem::Address,
        "Probe" if is(NS_WSD) => Elem::Probe,
        "Resolve" if is(NS_WSD) => Elem::Resolve,
        "Types" if is(NS_WSD) => Elem::Types,
        "Scopes" if is(NS_WSD) => Elem::Scopes,
        _ => Elem::Other,
    }
}

/// The field whose text lives at this path, if any. The path starts at the root element.
fn field_at(path: &[Elem]) -> Option<Field> {
    use Elem::*;
    match path {
        [Envelope, Header, Action] => Some(Field::Action),
        [Envelope, Header, MessageId] => Some(Field::MessageId),
        [Envelope, Header, To] => Some(Field::To),
        [Envelope, Body, Probe, Types] => Some(Field::Types),
        [Envelope, Body, Probe, Scopes] => Some(Field::Scopes),
        [Envelope, Body, Resolve, EndpointReference, Address] => Some(Field::ResolveAddress),
        _ => None,
    }
}

#[derive(Default)]
struct Collected {
    action: String,
    message_id: Option<String>,
    to: Option<String>,
    types: Option<Vec<ExpandedName>>,
    scopes: String,
    probe: bool,
    resolve: bool,
    resolve_address: Option<String>,
    /// Text of the field currently open.
    text: String,
}

fn resolve_entity(r: &BytesRef<'_>) -> Result<char, SoapError> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => return Ok(c),
        Ok(None) => {}
        Err(e) => return Err(SoapError::Xml(e.to_string())),
    }
    let name = r.xml10_content();
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => s
            .chars()
            .next()
            .ok_or_else(|| SoapError::UnknownEntity(name.to_string())),
        None => Err(SoapError::UnknownEntity(name.chars().take(32).collect())),
    }
}

fn push_text(buf: &mut String, s: &str) -> Result<(), SoapError> {
    if buf.len() + s.len() > MAX_FIELD_LEN {
        return Err(SoapError::FieldTooLong);
    }
    buf.push_str(s);
    Ok(())
}

/// Parses one SOAP envelope. No I/O; bounded in time and memory by the limits above.
pub fn parse(bytes: &[u8]) -> Result<Envelope, SoapError> {
    if bytes.len() > MAX_SOAP_LEN {
        return Err(SoapError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SoapError::NotUtf8)?;
    // A UTF-8 byte order mark is legal before the XML declaration.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(true);
    reader.config_mut().expand_empty_elements = true;
    reader
        .resolver_mut()
        .set_max_namespace_bindings(MAX_NS_BINDINGS);

    let mut path: Vec<Elem> = Vec::with_capacity(MAX_DEPTH);
    let mut c = Collected::default();
    let mut saw_root = false;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| SoapError::Xml(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(SoapError::Doctype),
            Event::Start(start) => {
                if path.len() >= MAX_DEPTH {
                    return Err(SoapError::TooDeep);
                }
                let (ns, local) = reader.resolver().resolve_element(start.name());
                let ns_bytes = match ns {
                    ResolveResult::Bound(n) => Some(n.into_inner()),
                    _ => None,
                };
                let elem = classify(ns_bytes, local.into_inner());
                if path.is_empty() {
                    if saw_root || elem != Elem::Envelope {
                        return Err(SoapError::NotSoap);
                    }
                    saw_root = true;
                }
                path.push(elem);
                match path.as_slice() {
                    [Elem::Envelope, Elem::Body, Elem::Probe] => c.probe = true,
                    [Elem::Envelope, Elem::Body, Elem::Resolve] => c.resolve = true,
                    _ => {}
                }
                if field_at(&path).is_some() {
                    c.text.clear();
                }
            }
            Event::Text(t) => {
                if field_at(&path).is_some() {
                    push_text(&mut c.text, &t.xml10_content())?;
                }
            }
            Event::CData(t) => {
                if field_at(&path).is_some() {
                    push_text(&mut c.text, &t)?;
                }
            }
            Event::GeneralRef(r) => {
                // Resolved even outside captured fields so that an unknown entity anywhere
                // makes the whole message invalid, as a conforming parser would.
                let ch = resolve_entity(&r)?;
                if field_at(&path).is_some() {
                    let mut tmp = [0u8; 4];
                    push_text(&mut c.text, ch.encode_utf8(&mut tmp))?;
                }
            }
            Event::End(_) => {
                if let Some(field) = field_at(&path) {
                    let value = std::mem::take(&mut c.text);
                    let value = value.trim();
                    match field {
                        Field::Action => c.action = value.to_owned(),
                        Field::MessageId => c.message_id = Some(value.to_owned()),
                        Field::To => c.to = Some(value.to_owned()),
                        Field::ResolveAddress => c.resolve_address = Some(value.to_owned()),
                        Field::Scopes => c.scopes = value.to_owned(),
                        Field::Types => {
                            // Prefixes are resolved here, while the element's own xmlns
                            // declarations are still in scope.
                            let mut types = Vec::new();
                            for qname in value.split_ascii_whitespace() {
                                if types.len() >= MAX_TYPES {
                                    return Err(SoapError::FieldTooLong);
                                }
                                let (ns, local) = reader.resolver().resolve_element(QName(qname));
                                let ns = match ns {
                                    ResolveResult::Bound(n) => Some(n.into_inner().to_owned()),
                                    _ => None,
                                };
                                let local = local.into_inner().to_owned();
                                types.push(ExpandedName { ns, local });
                            }
                            c.types = Some(types);
                        }
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            // Declarations, comments and processing instructions carry nothing we use.
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::Empty(_) => {}
        }
    }
    if !saw_root || !path.is_empty() {
        return Err(SoapError::NotSoap);
    }
    if c.action.is_empty() {
        return Err(SoapError::NoAction);
    }
    let body = if c.probe {
        Body::Probe {
            types: c.types.unwrap_or_default(),
            scoped: !c.scopes.is_empty(),
        }
    } else if c.resolve {
        Body::Resolve {
            address: c.resolve_address,
        }
    } else {
        Body::Other
    };
    Ok(Envelope {
        action: c.action,
        message_id: c.message_id,
        to: c.to,
        body,
    })
}

/// Escapes text for element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/CR/LF are not allowed in XML 1.0 at all,
            // even escaped: drop them rather than emit an invalid document.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Windows 10 sends to find computers (fields trimmed to those that matter).
    pub(crate) const WINDOWS_PROBE: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action><wsa:MessageID>urn:uuid:3c7b5b3e-0a8a-4d2e-9d8e-2f6b0f4b1a11</wsa:MessageID></soap:Header><soap:Body><wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe></soap:Body></soap:Envelope>"#;

    #[test]
    fn parses_windows_probe() {
        let env = parse(WINDOWS_PROBE.as_bytes()).unwrap();
        assert_eq!(env.action, ACTION_PROBE);
        assert_eq!(
            env.message_id.as_deref(),
            Some("urn:uuid:3c7b5b3e-0a8a-4d2e-9d8e-2f6b0f4b1a11")
        );
        assert_eq!(env.to.as_deref(), Some(TO_DISCOVERY));
        assert_eq!(
            env.body,
            Body::Probe {
                types: vec![ExpandedName {
                    ns: Some(NS_WSDP.into()),
                    local: "Device".into()
                }],
                scoped: false
            }
        );
    }

    #[test]
    fn types_prefixes_resolve_in_the_element_scope() {
        let xml = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header><a:Action xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing">x</a:Action></e:Header><e:Body><Probe xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><Types xmlns:p="http://schemas.microsoft.com/windows/pub/2005/07">p:Computer  q:Nope</Types></Probe></e:Body></e:Envelope>"#;
        let env = parse(xml.as_bytes()).unwrap();
        let Body::Probe { types, .. } = env.body else {
            panic!("not a probe: {:?}", env.body)
        };
        assert_eq!(types.len(), 2);
        assert_eq!(types[0].ns.as_deref(), Some(NS_PUB));
        assert_eq!(types[0].local, "Computer");
        assert_eq!(types[1].ns, None);
    }

    #[test]
    fn entities_and_cdata_are_decoded() {
        let xml = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header><a:Action>A&amp;B&#x43;</a:Action></s:Header><s:Body><d:Resolve><a:EndpointReference><a:Address><![CDATA[urn:uuid:1]]></a:Address></a:EndpointReference></d:Resolve></s:Body></s:Envelope>"#;
        let env = parse(xml.as_bytes()).unwrap();
        assert_eq!(env.action, "A&BC");
        assert_eq!(
            env.body,
            Body::Resolve {
                address: Some("urn:uuid:1".into())
            }
        );
    }

    #[test]
    fn doctype_and_custom_entities_are_refused() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x "boom">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>"#;
        assert_eq!(parse(xml.as_bytes()), Err(SoapError::Doctype));
        let xml = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>&x;</s:Header><s:Body/></s:Envelope>"#;
        assert!(matches!(
            parse(xml.as_bytes()),
            Err(SoapError::UnknownEntity(_))
        ));
    }

    #[test]
    fn limits_hold() {
        let big = vec![b' '; MAX_SOAP_LEN + 1];
        assert_eq!(parse(&big), Err(SoapError::TooLarge(MAX_SOAP_LEN + 1)));
        let deep = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">{}{}</s:Envelope>"#,
            "<x>".repeat(MAX_DEPTH + 1),
            "</x>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(deep.as_bytes()), Err(SoapError::TooDeep));
        let long = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>{}</a:Action></s:Header></s:Envelope>"#,
            "x".repeat(MAX_FIELD_LEN + 1)
        );
        assert_eq!(parse(long.as_bytes()), Err(SoapError::FieldTooLong));
    }

    #[test]
    fn non_soap_and_broken_input_are_errors() {
        assert_eq!(parse(b"<a/>"), Err(SoapError::NotSoap));
        assert_eq!(parse(b""), Err(SoapError::NotSoap));
        assert_eq!(parse(&[0xff, 0xfe]), Err(SoapError::NotUtf8));
        assert!(
            parse(b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">").is_err()
        );
        let two_roots = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"></s:Envelope><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"></s:Envelope>"#;
        assert!(parse(two_roots.as_bytes()).is_err());
        let no_action = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>"#;
        assert_eq!(parse(no_action.as_bytes()), Err(SoapError::NoAction));
    }

    #[test]
    fn escape_covers_markup_and_controls() {
        assert_eq!(escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
