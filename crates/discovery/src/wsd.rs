//! The WS-Discovery target service, without I/O: it turns incoming datagrams into replies and
//! writes Hello, Bye and the WS-Transfer GetResponse with the device metadata.
//!
//! Specs: [WS-Discovery 2005/04] (the version Windows speaks; section numbers below are of that
//! document), [SOAP-over-UDP 2004/09], [DPWS 2006/02] (metadata layout), and the
//! Windows "pub" schema for `pub:Computer`, as used by Windows "Function Discovery"
//! (`fdPHost`/`FDResPub`) to list computers under Network.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use uuid::Uuid;

use crate::soap::{self, Body, Envelope, ExpandedName, escape};

/// How many recent MessageIDs are remembered for duplicate suppression. Clients repeat each
/// multicast datagram up to four times within about a second ([SOAP-over-UDP] 3.4); a few
/// hundred entries cover any realistic LAN's burst of probes.
const DEDUP_CAPACITY: usize = 512;

/// The fixed facts about this device that every message carries.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Endpoint reference address, stable across restarts ([WS-Discovery] 2.5).
    pub endpoint: Uuid,
    /// NetBIOS-style computer name as configured.
    pub computer_name: String,
    pub workgroup: String,
    /// Changes whenever the metadata would change, so Windows refetches it ([WS-Discovery] 2.6).
    pub metadata_version: u32,
    /// Per-boot instance id of AppSequence; must grow across restarts ([WS-Discovery] 7).
    pub instance_id: u64,
}

/// A namespace under which lanshare derives its endpoint UUIDs (a v5 UUID of a fixed URL), so
/// that lanshare's endpoint for a name never equals the one wsdd derives for the same host.
fn lanshare_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:lanshare:ws-discovery")
}

impl Identity {
    pub fn new(computer_name: &str, workgroup: &str, instance_id: u64) -> Identity {
        // NetBIOS names are case-insensitive: "fileserver" and "FILESERVER" are one device.
        let key = computer_name.to_uppercase();
        let endpoint = Uuid::new_v5(&lanshare_namespace(), key.as_bytes());
        Identity {
            endpoint,
            computer_name: computer_name.to_owned(),
            workgroup: workgroup.to_owned(),
            metadata_version: metadata_version(computer_name, workgroup),
            instance_id,
        }
    }

    /// `urn:uuid:…`, the EPR address.
    pub fn urn(&self) -> String {
        self.endpoint.urn().to_string()
    }

    /// The HTTP path of the metadata endpoint, `/<uuid>` as Windows expects from XAddrs.
    pub fn http_path(&self) -> String {
        format!("/{}", self.endpoint.hyphenated())
    }

    /// `http://IP:PORT/<uuid>` for one local address.
    pub fn xaddr(&self, local: SocketAddr) -> String {
        let host = match local.ip() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("http://{host}:{}{}", local.port(), self.http_path())
    }

    /// `NAME/Workgroup:WORKGROUP`, the value Windows reads to show and open `\\NAME`.
    /// Upper-cased as NetBIOS names are displayed by Windows.
    pub fn pub_computer(&self) -> String {
        format!(
            "{}/Workgroup:{}",
            self.computer_name.to_uppercase(),
            self.workgroup.to_uppercase()
        )
    }
}

/// A 31-bit FNV-1a hash of what the metadata says: stable across restarts, different when the
/// name or workgroup changes. Never 0, which some clients treat as "unknown".
fn metadata_version(name: &str, workgroup: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name
        .bytes()
        .chain([0u8])
        .chain(workgroup.bytes())
        .chain([0u8])
        .chain(env!("CARGO_PKG_VERSION").bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff).max(1)
}

/// What the responder decided about one datagram (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply, unicast, to the sender.
    Reply(String),
    /// The message was understood but needs no answer (not for us, a duplicate, a Hello…).
    Ignored(&'static str),
    /// The datagram was not a SOAP envelope we could read.
    Invalid(soap::SoapError),
}

/// The responder: identity, AppSequence counter and the duplicate-suppression memory.
#[derive(Debug)]
pub struct Responder {
    id: Identity,
    message_number: u64,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl Responder {
    pub fn new(id: Identity) -> Responder {
        Responder {
            id,
            message_number: 0,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// Handles one datagram; `xaddr_local` is the address (IP and HTTP port) the sender can
    /// reach our metadata endpoint on, or `None` if it came in on an address we do not serve.
    pub fn handle_datagram(&mut self, datagram: &[u8], xaddr_local: Option<SocketAddr>) -> Outcome {
        match soap::parse(datagram) {
            Ok(env) => self.handle_envelope(&env, || xaddr_local),
            Err(e) => Outcome::Invalid(e),
        }
    }

    /// As [`Responder::handle_datagram`] for an envelope already parsed. `xaddr_local` is
    /// only asked for once the message is a Probe or Resolve: finding it may cost syscalls,
    /// which junk must not be able to trigger.
    pub fn handle_envelope(
        &mut self,
        env: &Envelope,
        xaddr_local: impl FnOnce() -> Option<SocketAddr>,
    ) -> Outcome {
        let Some(message_id) = env.message_id.as_deref().filter(|m| !m.is_empty()) else {
            // Without a MessageID a reply could carry no RelatesTo ([WS-Discovery] 5.3).
            return Outcome::Ignored("no MessageID");
        };
        let probe = env.action == soap::ACTION_PROBE;
        let resolve = env.action == soap::ACTION_RESOLVE;
        if !probe && !resolve {
            return Outcome::Ignored("not a Probe or Resolve");
        }
        let Some(local) = xaddr_local() else {
            return Outcome::Ignored("arrived on an address we do not serve");
        };
        if !self.first_sighting(message_id) {
            return Outcome::Ignored("duplicate MessageID");
        }
        match &env.body {
            Body::Probe { types, scoped } if probe => {
                if *scoped {
                    return Outcome::Ignored("probe with scopes");
                }
                if !types.iter().all(is_our_type) {
                    return Outcome::Ignored("probe for other types");
                }
                Outcome::Reply(self.probe_matches(message_id, local))
            }
            Body::Resolve { address } if resolve => {
                let ours = address
                    .as_deref()
                    .and_then(parse_urn_uuid)
                    .is_some_and(|u| u == self.id.endpoint);
                if !ours {
                    return Outcome::Ignored("resolve for another endpoint");
                }
                Outcome::Reply(self.resolve_matches(message_id, local))
            }
            _ => Outcome::Ignored("body does not match the action"),
        }
    }

    /// Remembers `id`; false when it was seen recently ([SOAP-over-UDP] 3.4: receivers
    /// discard repeats of a message).
    fn first_sighting(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.seen_order.len() >= DEDUP_CAPACITY
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(id.to_owned());
        self.seen_order.push_back(id.to_owned());
        true
    }

    fn next_app_sequence(&mut self) -> String {
        self.message_number += 1;
        format!(
            r#"<wsd:AppSequence InstanceId="{}" MessageNumber="{}"/>"#,
            self.id.instance_id, self.message_number
        )
    }

    fn envelope(&mut self, to: &str, action: &str, relates_to: Option<&str>, body: &str) -> String {
        let relates = relates_to
            .map(|r| format!("<wsa:RelatesTo>{}</wsa:RelatesTo>", escape(r)))
            .unwrap_or_default();
        let seq = self.next_app_sequence();
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="utf-8"?>"#,
                r#"<soap:Envelope xmlns:soap="{soap}" xmlns:wsa="{wsa}" xmlns:wsd="{wsd}" xmlns:wsdp="{wsdp}" xmlns:pub="{pub_}">"#,
                "<soap:Header><wsa:To>{to}</wsa:To><wsa:Action>{action}</wsa:Action>",
                "<wsa:MessageID>{mid}</wsa:MessageID>{relates}{seq}</soap:Header>",
                "<soap:Body>{body}</soap:Body></soap:Envelope>"
            ),
            soap = soap::NS_SOAP12,
            wsa = soap::NS_WSA,
            wsd = soap::NS_WSD,
            wsdp = soap::NS_WSDP,
            pub_ = soap::NS_PUB,
            to = escape(to),
            action = escape(action),
            mid = Uuid::new_v4().urn(),
            relates = relates,
            seq = seq,
            body = body,
        )
    }

    fn epr(&self) -> String {
        format!(
            "<wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference>",
            self.id.urn()
        )
    }

    fn match_body(&self, local: Option<SocketAddr>) -> String {
        let xaddrs = local
            .map(|l| format!("<wsd:XAddrs>{}</wsd:XAddrs>", escape(&self.id.xaddr(l))))
            .unwrap_or_default();
        format!(
            "{}<wsd:Types>wsdp:Device pub:Computer</wsd:Types>{}<wsd:MetadataVersion>{}</wsd:MetadataVersion>",
            self.epr(),
            xaddrs,
            self.id.metadata_version
        )
    }

    /// [WS-Discovery] 5.3 ProbeMatches, unicast to the prober. XAddrs are included (allowed by
    /// 5.3) so that a client need not Resolve before fetching metadata.
    pub fn probe_matches(&mut self, relates_to: &str, local: SocketAddr) -> String {
        let body = format!(
            "<wsd:ProbeMatches><wsd:ProbeMatch>{}</wsd:ProbeMatch></wsd:ProbeMatches>",
            self.match_body(Some(local))
        );
        self.envelope(
            soap::TO_ANONYMOUS,
            soap::ACTION_PROBE_MATCHES,
            Some(relates_to),
            &body,
        )
    }

    /// [WS-Discovery] 6.2 ResolveMatches, unicast to the resolver.
    pub fn resolve_matches(&mut self, relates_to: &str, local: SocketAddr) -> String {
        let body = format!(
            "<wsd:ResolveMatches><wsd:ResolveMatch>{}</wsd:ResolveMatch></wsd:ResolveMatches>",
            self.match_body(Some(local))
        );
        self.envelope(
            soap::TO_ANONYMOUS,
            soap::ACTION_RESOLVE_MATCHES,
            Some(relates_to),
            &body,
        )
    }

    /// [WS-Discovery] 4.1 Hello, multicast when we start on the interface of `local`.
    pub fn hello(&mut self, local: SocketAddr) -> String {
        let body = format!("<wsd:Hello>{}</wsd:Hello>", self.match_body(Some(local)));
        self.envelope(soap::TO_DISCOVERY, soap::ACTION_HELLO, None, &body)
    }

    /// [WS-Discovery] 4.2 Bye, multicast when we stop.
    pub fn bye(&mut self) -> String {
        let body = format!("<wsd:Bye>{}</wsd:Bye>", self.epr());
        self.envelope(soap::TO_DISCOVERY, soap::ACTION_BYE, None, &body)
    }
}

fn is_our_type(t: &ExpandedName) -> bool {
    match t.ns.as_deref() {
        Some(soap::NS_WSDP) => t.local == "Device",
        Some(soap::NS_PUB) => t.local == "Computer",
        _ => false,
    }
}

/// `urn:uuid:XXXXXXXX-…` (any case) to a UUID; WS-Discovery compares EPR addresses as URIs,
/// and clients differ in the case of the hex digits.
fn parse_urn_uuid(s: &str) -> Option<Uuid> {
    let rest = s.trim();
    let prefix = rest.get(..9)?;
    if !prefix.eq_ignore_ascii_case("urn:uuid:") {
        return None;
    }
    Uuid::try_parse(rest.get(9..)?).ok()
}

/// Why an HTTP metadata request got no GetResponse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error("invalid SOAP: {0}")]
    Invalid(#[from] soap::SoapError),
    #[error("action is not WS-Transfer Get")]
    NotGet,
    #[error("addressed to another endpoint")]
    WrongEndpoint,
}

/// Answers a WS-Transfer Get (the body of an HTTP POST to our XAddr) with the device metadata
/// ([DPWS 2006/02] 5, [WS-Transfer] 3.1).
pub fn answer_get(id: &Identity, request: &[u8]) -> Result<String, GetError> {
    let env = soap::parse(request)?;
    if env.action != soap::ACTION_GET {
        return Err(GetError::NotGet);
    }
    // wsa:To of a Get names the device's endpoint; a missing To is tolerated.
    if let Some(to) = env.to.as_deref()
        && parse_urn_uuid(to).is_some_and(|u| u != id.endpoint)
    {
        return Err(GetError::WrongEndpoint);
    }
    Ok(metadata_response(id, env.message_id.as_deref()))
}

/// The GetResponse envelope carrying ThisDevice, ThisModel and the host Relationship with
/// `pub:Computer`. `relates_to` is the Get's MessageID, absent for a plain HTTP GET.
pub fn metadata_response(id: &Identity, relates_to: Option<&str>) -> String {
    let relates = relates_to
        .map(|r| format!("<wsa:RelatesTo>{}</wsa:RelatesTo>", escape(r)))
        .unwrap_or_default();
    let urn = id.urn();
    let name = escape(&id.computer_name);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="{soap}" xmlns:wsa="{wsa}" xmlns:wsx="{wsx}" xmlns:wsdp="{wsdp}" xmlns:pnpx="{pnpx}" xmlns:pub="{pub_}">"#,
            "<soap:Header><wsa:To>{anon}</wsa:To><wsa:Action>{action}</wsa:Action>",
            "<wsa:MessageID>{mid}</wsa:MessageID>{relates}</soap:Header>",
            "<soap:Body><wsx:Metadata>",
            r#"<wsx:MetadataSection Dialect="{wsdp}/ThisDevice"><wsdp:ThisDevice>"#,
            "<wsdp:FriendlyName>{name}</wsdp:FriendlyName>",
            "<wsdp:FirmwareVersion>{version}</wsdp:FirmwareVersion>",
            "<wsdp:SerialNumber>{serial}</wsdp:SerialNumber>",
            "</wsdp:ThisDevice></wsx:MetadataSection>",
            r#"<wsx:MetadataSection Dialect="{wsdp}/ThisModel"><wsdp:ThisModel>"#,
            "<wsdp:Manufacturer>lanshare</wsdp:Manufacturer>",
            "<wsdp:ModelName>lanshare</wsdp:ModelName>",
            "<pnpx:DeviceCategory>Computers</pnpx:DeviceCategory>",
            "</wsdp:ThisModel></wsx:MetadataSection>",
            r#"<wsx:MetadataSection Dialect="{wsdp}/Relationship">"#,
            r#"<wsdp:Relationship Type="{wsdp}/host"><wsdp:Host>"#,
            "<wsa:EndpointReference><wsa:Address>{urn}</wsa:Address></wsa:EndpointReference>",
            "<wsdp:Types>pub:Computer</wsdp:Types>",
            "<wsdp:ServiceId>{urn}</wsdp:ServiceId>",
            "<pub:Computer>{computer}</pub:Computer>",
            "</wsdp:Host></wsdp:Relationship></wsx:MetadataSection>",
            "</wsx:Metadata></soap:Body></soap:Envelope>"
        ),
        soap = soap::NS_SOAP12,
        wsa = soap::NS_WSA,
        wsx = soap::NS_WSX,
        wsdp = soap::NS_WSDP,
        pnpx = soap::NS_PNPX,
        pub_ = soap::NS_PUB,
        anon = soap::TO_ANONYMOUS,
        action = soap::ACTION_GET_RESPONSE,
        mid = Uuid::new_v4().urn(),
        relates = relates,
        name = name,
        version = env!("CARGO_PKG_VERSION"),
        serial = id.endpoint.simple(),
        urn = urn,
        computer = escape(&id.pub_computer()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder() -> Responder {
        Responder::new(Identity::new("FileServer", "WORKGROUP", 1_700_000_000))
    }

    fn local() -> SocketAddr {
        "192.0.2.10:5357".parse().unwrap()
    }

    fn probe(mid: &str, types: &str) -> String {
        format!(
            r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof" xmlns:pub="http://schemas.microsoft.com/windows/pub/2005/07"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action><wsa:MessageID>{mid}</wsa:MessageID></soap:Header><soap:Body><wsd:Probe>{types}</wsd:Probe></soap:Body></soap:Envelope>"#
        )
    }

    fn resolve(mid: &str, addr: &str) -> String {
        format!(
            r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Resolve</wsa:Action><wsa:MessageID>{mid}</wsa:MessageID></soap:Header><soap:Body><wsd:Resolve><wsa:EndpointReference><wsa:Address>{addr}</wsa:Address></wsa:EndpointReference></wsd:Resolve></soap:Body></soap:Envelope>"#
        )
    }

    #[test]
    fn endpoint_is_stable_and_case_insensitive() {
        let a = Identity::new("FileServer", "WORKGROUP", 1);
        let b = Identity::new("FILESERVER", "WORKGROUP", 2);
        let c = Identity::new("other", "WORKGROUP", 1);
        assert_eq!(a.endpoint, b.endpoint);
        assert_ne!(a.endpoint, c.endpoint);
        assert_eq!(a.endpoint.get_version_num(), 5);
        assert_ne!(
            a.metadata_version,
            Identity::new("FileServer", "OTHER", 1).metadata_version
        );
    }

    #[test]
    fn probe_for_device_matches_with_xaddrs() {
        let mut r = responder();
        let urn = r.identity().urn();
        let out = r.handle_datagram(
            probe("urn:uuid:p1", "<wsd:Types>wsdp:Device</wsd:Types>").as_bytes(),
            Some(local()),
        );
        let Outcome::Reply(xml) = out else {
            panic!("no reply: {out:?}")
        };
        assert!(xml.contains(soap::ACTION_PROBE_MATCHES));
        assert!(xml.contains("<wsa:RelatesTo>urn:uuid:p1</wsa:RelatesTo>"));
        assert!(xml.contains(&format!("<wsa:Address>{urn}</wsa:Address>")));
        let xaddr = format!(
            "<wsd:XAddrs>http://192.0.2.10:5357/{}</wsd:XAddrs>",
            r.identity().endpoint.hyphenated()
        );
        assert!(xml.contains(&xaddr), "{xml}");
        // Our reply must itself be readable by our parser (well-formed, right namespaces).
        let env = soap::parse(xml.as_bytes()).unwrap();
        assert_eq!(env.to.as_deref(), Some(soap::TO_ANONYMOUS));
    }

    #[test]
    fn probe_matching_rules() {
        let mut r = responder();
        let cases = [
            ("", true),
            ("<wsd:Types>pub:Computer</wsd:Types>", true),
            ("<wsd:Types>wsdp:Device pub:Computer</wsd:Types>", true),
            ("<wsd:Types>wsdp:Printer</wsd:Types>", false),
            ("<wsd:Types>wsdp:Device other:Thing</wsd:Types>", false),
            (
                "<wsd:Types>wsdp:Device</wsd:Types><wsd:Scopes>ldap:///ou=x</wsd:Scopes>",
                false,
            ),
        ];
        for (i, (types, want)) in cases.iter().enumerate() {
            let out = r.handle_datagram(
                probe(&format!("urn:uuid:m{i}"), types).as_bytes(),
                Some(local()),
            );
            assert_eq!(matches!(out, Outcome::Reply(_)), *want, "{types}: {out:?}");
        }
    }

    #[test]
    fn duplicates_and_foreign_addresses_are_ignored() {
        let mut r = responder();
        let p = probe("urn:uuid:dup", "");
        assert!(matches!(
            r.handle_datagram(p.as_bytes(), Some(local())),
            Outcome::Reply(_)
        ));
        assert_eq!(
            r.handle_datagram(p.as_bytes(), Some(local())),
            Outcome::Ignored("duplicate MessageID")
        );
        let q = probe("urn:uuid:elsewhere", "");
        assert!(matches!(
            r.handle_datagram(q.as_bytes(), None),
            Outcome::Ignored(_)
        ));
    }

    #[test]
    fn dedup_memory_is_bounded() {
        let mut r = responder();
        for i in 0..(DEDUP_CAPACITY + 10) {
            assert!(r.first_sighting(&format!("m{i}")));
        }
        assert!(r.seen.len() <= DEDUP_CAPACITY);
        // The oldest were forgotten, the newest are remembered.
        assert!(r.first_sighting("m0"));
        assert!(!r.first_sighting(&format!("m{}", DEDUP_CAPACITY + 9)));
    }

    #[test]
    fn resolve_answers_only_our_endpoint() {
        let mut r = responder();
        let ours = r
            .identity()
            .endpoint
            .urn()
            .to_string()
            .to_uppercase()
            .replace("URN:UUID:", "urn:uuid:");
        let out = r.handle_datagram(resolve("urn:uuid:r1", &ours).as_bytes(), Some(local()));
        let Outcome::Reply(xml) = out else {
            panic!("no reply: {out:?}")
        };
        assert!(xml.contains(soap::ACTION_RESOLVE_MATCHES));
        assert!(xml.contains("<wsd:XAddrs>http://192.0.2.10:5357/"));
        let other = Uuid::new_v4().urn().to_string();
        assert!(matches!(
            r.handle_datagram(resolve("urn:uuid:r2", &other).as_bytes(), Some(local())),
            Outcome::Ignored(_)
        ));
    }

    #[test]
    fn app_sequence_counts_up() {
        let mut r = responder();
        let a = r.hello(local());
        let b = r.bye();
        assert!(a.contains(r#"InstanceId="1700000000" MessageNumber="1""#));
        assert!(b.contains(r#"MessageNumber="2""#));
        assert!(a.contains(soap::ACTION_HELLO) && a.contains(soap::TO_DISCOVERY));
        assert!(b.contains(soap::ACTION_BYE));
        soap::parse(a.as_bytes()).unwrap();
        soap::parse(b.as_bytes()).unwrap();
    }

    #[test]
    fn get_returns_metadata_with_pub_computer() {
        let id = Identity::new("files<1>", "HOME", 1);
        let get = format!(
            r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"><soap:Header><wsa:To>{}</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action><wsa:MessageID>urn:uuid:g1</wsa:MessageID></soap:Header><soap:Body/></soap:Envelope>"#,
            id.urn()
        );
        let xml = answer_get(&id, get.as_bytes()).unwrap();
        assert!(xml.contains("<pub:Computer>FILES&lt;1&gt;/Workgroup:HOME</pub:Computer>"));
        assert!(xml.contains("<wsdp:FriendlyName>files&lt;1&gt;</wsdp:FriendlyName>"));
        assert!(xml.contains("<wsa:RelatesTo>urn:uuid:g1</wsa:RelatesTo>"));
        assert!(soap::parse(xml.as_bytes()).is_ok());

        let wrong = get.replace(&id.urn(), &Uuid::new_v4().urn().to_string());
        assert_eq!(
            answer_get(&id, wrong.as_bytes()),
            Err(GetError::WrongEndpoint)
        );
        let not_get = get.replace("transfer/Get", "transfer/Put");
        assert_eq!(answer_get(&id, not_get.as_bytes()), Err(GetError::NotGet));
    }

    #[test]
    fn xaddr_brackets_ipv6() {
        let id = Identity::new("a", "W", 1);
        let x = id.xaddr("[fd00::2]:5357".parse().unwrap());
        assert!(x.starts_with("http://[fd00::2]:5357/"), "{x}");
    }
}
