//! Tests of the running service over real sockets.
//!
//! Unicast tests run on 127.0.0.1 with multicast off and mDNS off, so they send nothing beyond
//! this machine. The multicast and mDNS test runs this same test binary again inside a fresh
//! network namespace (`unshare --net`) whose only interface is a loopback with multicast
//! switched on: multicast there cannot leave the namespace (see `netns`). Where no namespace
//! can be made, those tests fail.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::*;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn loopback_cfg(name: &str) -> DiscoveryConfig {
    DiscoveryConfig {
        interfaces: vec![LO],
        mdns: false,
        wsd_http_port: 0,
        wsd_udp_port: 0,
        multicast: false,
        ..DiscoveryConfig::new(name, "WORKGROUP", 4450)
    }
}

fn probe(message_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action><wsa:MessageID>{message_id}</wsa:MessageID></soap:Header><soap:Body><wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe></soap:Body></soap:Envelope>"#
    )
}

fn resolve(message_id: &str, endpoint: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Resolve</wsa:Action><wsa:MessageID>{message_id}</wsa:MessageID></soap:Header><soap:Body><wsd:Resolve><wsa:EndpointReference><wsa:Address>{endpoint}</wsa:Address></wsa:EndpointReference></wsd:Resolve></soap:Body></soap:Envelope>"#
    )
}

fn get(endpoint: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"><soap:Header><wsa:To>{endpoint}</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action><wsa:MessageID>urn:uuid:5a0b6f2e-7c1d-4e43-9a51-1f2e3d4c5b6a</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo></soap:Header><soap:Body/></soap:Envelope>"#
    )
}

/// The text between `<tag>` and `</tag>` (first occurrence).
fn between<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    xml.get(start..start + len)
}

async fn recv_text(sock: &UdpSocket, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// POSTs (or GETs, with an empty body) to `http://addr{path}`; returns status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8(resp).unwrap();
    let status = resp.get(9..12).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// Splits `http://IP:PORT/path` into the socket address and the path.
fn split_xaddr(xaddr: &str) -> (SocketAddr, String) {
    let rest = xaddr.strip_prefix("http://").unwrap();
    let slash = rest.find('/').unwrap();
    (rest[..slash].parse().unwrap(), rest[slash..].to_owned())
}

#[tokio::test]
async fn unicast_probe_resolve_and_metadata() {
    let d = Discovery::start(loopback_cfg("TestBox")).await.unwrap();
    let udp = d.wsd_udp_addr().unwrap();
    let http_addr = d.http_addr().unwrap();
    assert_eq!(udp.ip(), LO);
    assert_eq!(http_addr.ip(), LO);

    let client = UdpSocket::bind((LO, 0)).await.unwrap();
    client
        .send_to(
            probe("urn:uuid:11111111-2222-3333-4444-555555555555").as_bytes(),
            udp,
        )
        .await
        .unwrap();
    let reply = recv_text(&client, Duration::from_secs(3))
        .await
        .expect("no ProbeMatches");
    assert!(
        reply.contains("/discovery/ProbeMatches</wsa:Action>"),
        "{reply}"
    );
    assert_eq!(
        between(&reply, "wsa:RelatesTo"),
        Some("urn:uuid:11111111-2222-3333-4444-555555555555")
    );
    let epr = between(&reply, "wsa:Address").unwrap().to_owned();
    let expected = wsd::Identity::new("TestBox", "WORKGROUP", 0).urn();
    assert_eq!(epr, expected, "EPR must be the stable v5 UUID of the name");
    let xaddr = between(&reply, "wsd:XAddrs").unwrap().to_owned();
    let (meta_addr, meta_path) = split_xaddr(&xaddr);
    assert_eq!(
        meta_addr, http_addr,
        "XAddrs must point at the bound HTTP endpoint"
    );
    assert_eq!(
        meta_path,
        format!("/{}", epr.trim_start_matches("urn:uuid:"))
    );

    // Resolve our EPR.
    client
        .send_to(resolve("urn:uuid:r-1", &epr).as_bytes(), udp)
        .await
        .unwrap();
    let reply = recv_text(&client, Duration::from_secs(3))
        .await
        .expect("no ResolveMatches");
    assert!(
        reply.contains("/discovery/ResolveMatches</wsa:Action>"),
        "{reply}"
    );
    assert_eq!(between(&reply, "wsa:RelatesTo"), Some("urn:uuid:r-1"));
    assert_eq!(between(&reply, "wsd:XAddrs"), Some(xaddr.as_str()));

    // Someone else's EPR: silence.
    client
        .send_to(
            resolve(
                "urn:uuid:r-2",
                "urn:uuid:00000000-0000-0000-0000-000000000001",
            )
            .as_bytes(),
            udp,
        )
        .await
        .unwrap();
    assert_eq!(recv_text(&client, Duration::from_millis(300)).await, None);

    // The metadata exchange Windows does next, at the XAddr we were given.
    let (status, body) = http(meta_addr, "POST", &meta_path, &get(&epr)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<pub:Computer>TESTBOX/Workgroup:WORKGROUP</pub:Computer>"),
        "{body}"
    );
    assert!(body.contains("<wsdp:FriendlyName>TestBox</wsdp:FriendlyName>"));
    assert!(body.contains("/transfer/GetResponse</wsa:Action>"));
    let (status, body) = http(meta_addr, "GET", &meta_path, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("TESTBOX/Workgroup:WORKGROUP"));
    let (status, _) = http(meta_addr, "POST", "/not-ours", &get(&epr)).await;
    assert_eq!(status, 404);

    d.stop().await;
}

#[tokio::test]
async fn unicast_over_ipv6_loopback() {
    let v6: IpAddr = "::1".parse().unwrap();
    let mut cfg = loopback_cfg("SixBox");
    cfg.interfaces = vec![v6];
    let d = match Discovery::start(cfg).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("SKIPPED: no IPv6 loopback here: {e}");
            return;
        }
    };
    let client = UdpSocket::bind((v6, 0)).await.unwrap();
    client
        .send_to(probe("urn:uuid:six").as_bytes(), d.wsd_udp_addr().unwrap())
        .await
        .unwrap();
    let reply = recv_text(&client, Duration::from_secs(3)).await.unwrap();
    let port = d.http_addr().unwrap().port();
    let xaddr = between(&reply, "wsd:XAddrs").unwrap();
    assert!(
        xaddr.starts_with(&format!("http://[::1]:{port}/")),
        "{xaddr}"
    );
    let path = xaddr.split_once(&format!("{port}")).unwrap().1.to_owned();
    let (status, body) = http(d.http_addr().unwrap(), "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("SIXBOX/Workgroup:WORKGROUP"));
    d.stop().await;
}

#[tokio::test]
async fn junk_huge_and_repeated_datagrams_are_ignored() {
    let d = Discovery::start(loopback_cfg("JunkBox")).await.unwrap();
    let udp = d.wsd_udp_addr().unwrap();
    let client = UdpSocket::bind((LO, 0)).await.unwrap();

    let huge = format!("{}{}", probe("urn:uuid:huge"), " ".repeat(60_000));
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"<soap:Envelope".to_vec(),
        b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>".to_vec(),
        huge.into_bytes(),
        probe("").into_bytes(),
    ];
    for j in &junk {
        client.send_to(j, udp).await.unwrap();
    }
    assert_eq!(recv_text(&client, Duration::from_millis(400)).await, None);

    // Still alive; and the same MessageID twice gets one answer.
    let p = probe("urn:uuid:once");
    client.send_to(p.as_bytes(), udp).await.unwrap();
    client.send_to(p.as_bytes(), udp).await.unwrap();
    assert!(recv_text(&client, Duration::from_secs(3)).await.is_some());
    assert_eq!(recv_text(&client, Duration::from_millis(400)).await, None);
    d.stop().await;
}

#[tokio::test]
async fn http_endpoint_refuses_bad_requests() {
    let d = Discovery::start(loopback_cfg("HttpBox")).await.unwrap();
    let addr = d.http_addr().unwrap();
    let path = wsd::Identity::new("HttpBox", "W", 0).http_path();

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("POST {path} HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");

    // A head that never ends is cut off at the size limit, not buffered forever.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let filler = format!("GET {path} HTTP/1.1\r\nX: {}", "a".repeat(9000));
    let _ = s.write_all(filler.as_bytes()).await;
    let mut resp = String::new();
    let _ = timeout(Duration::from_secs(5), s.read_to_string(&mut resp)).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");

    let (status, _) = http(addr, "PUT", &path, "").await;
    assert_eq!(status, 405);
    d.stop().await;
}

#[tokio::test]
async fn config_is_validated() {
    for bad in ["", "   ", "a/b", "x\u{7}", &"n".repeat(64)] {
        let mut cfg = loopback_cfg("ok");
        cfg.computer_name = bad.to_owned();
        assert!(matches!(
            Discovery::start(cfg).await,
            Err(DiscoveryError::InvalidName(..))
        ));
    }
    let mut cfg = loopback_cfg("ok");
    cfg.workgroup = String::new();
    assert!(matches!(
        Discovery::start(cfg).await,
        Err(DiscoveryError::InvalidWorkgroup(..))
    ));
    // Both off: nothing bound, nothing to report.
    let mut cfg = loopback_cfg("ok");
    cfg.wsd = false;
    let d = Discovery::start(cfg).await.unwrap();
    assert_eq!(d.http_addr(), None);
    assert_eq!(d.wsd_udp_addr(), None);
    d.stop().await;
}

#[tokio::test]
async fn port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind((LO, 0)).unwrap();
    let mut cfg = loopback_cfg("busy");
    cfg.wsd_http_port = taken.local_addr().unwrap().port();
    match Discovery::start(cfg).await {
        Err(DiscoveryError::Bind { what, .. }) => assert_eq!(what, "WS-Discovery HTTP"),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn fuzz_entry_survives_odd_input() {
    fuzz_wsd(b"");
    fuzz_wsd(&[0xff; 100]);
    fuzz_wsd(probe("urn:uuid:f").as_bytes());
    fuzz_wsd(get("urn:uuid:x").as_bytes());
    fuzz_wsd("<a:b xmlns:a='&#0;'>".as_bytes());
}

/// A bounded stand-in for the fuzz target: byte flips, truncations and splices of valid
/// messages must never panic (seeded, so a failure reproduces).
#[test]
fn mutated_messages_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let seeds = [
        probe("urn:uuid:a"),
        resolve(
            "urn:uuid:b",
            "urn:uuid:00000000-0000-0000-0000-000000000001",
        ),
        get("urn:uuid:c"),
        "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_owned(),
    ];
    for _ in 0..3000 {
        let mut bytes = seeds[rng.gen_range(0..seeds.len())].clone().into_bytes();
        for _ in 0..rng.gen_range(1..8) {
            if bytes.is_empty() {
                break;
            }
            let i = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..4) {
                0 => bytes[i] = rng.r#gen(),
                1 => bytes.truncate(i),
                2 => {
                    let j = rng.gen_range(i..bytes.len());
                    let piece = bytes[i..j].to_vec();
                    let k = rng.gen_range(0..bytes.len());
                    bytes.splice(k..k, piece);
                }
                _ => bytes.insert(i, b"<>&;:/\"\0"[rng.gen_range(0..8)]),
            }
        }
        fuzz_wsd(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Multicast and mDNS, inside a private network namespace.

#[test]
fn multicast_and_mdns_in_netns() {
    if !netns::inside() {
        netns::rerun("tests::multicast_and_mdns_in_netns");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(netns_body());
}

#[test]
fn default_config_on_a_lan_in_netns() {
    if !netns::inside() {
        netns::rerun("tests::default_config_on_a_lan_in_netns");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(netns_lan_body());
}

/// A socket that sends multicast out of `from` (and hears unicast replies there).
fn prober(from: IpAddr, ifindex: u32) -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if from.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.bind(&SocketAddr::new(from, 0).into()).unwrap();
    match from {
        IpAddr::V4(v4) => s.set_multicast_if_v4(&v4).unwrap(),
        IpAddr::V6(_) => s.set_multicast_if_v6(ifindex).unwrap(),
    }
    s.set_nonblocking(true).unwrap();
    UdpSocket::from_std(s.into()).unwrap()
}

/// The production defaults (all non-loopback addresses, ports 3702/5357, multicast) on the
/// veth "LAN": probes over IPv4 and IPv6 multicast, metadata fetched from the advertised
/// XAddrs, loopback not served, mDNS found on the LAN addresses.
async fn netns_lan_body() {
    use mdns_sd::{ServiceDaemon, ServiceEvent};

    let v1 = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "v1")
        .and_then(|i| i.index)
        .unwrap();
    let browser = ServiceDaemon::new().unwrap();
    let smb_events = browser.browse(mdns::SMB_SERVICE).unwrap();

    let d = Discovery::start(DiscoveryConfig::new("VethBox", "LAB", 445))
        .await
        .unwrap();
    assert_eq!(
        d.http_addr(),
        Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, WSD_HTTP_PORT)))
    );
    assert_eq!(d.wsd_udp_addr().map(|a| a.port()), Some(WSD_UDP_PORT));

    let cases: [(IpAddr, SocketAddr, &str); 2] = [
        (
            "203.0.113.2".parse().unwrap(),
            SocketAddr::from((net::WSD_GROUP_V4, WSD_UDP_PORT)),
            "http://203.0.113.2:5357/",
        ),
        (
            "fd99::2".parse().unwrap(),
            SocketAddr::V6(std::net::SocketAddrV6::new(
                net::WSD_GROUP_V6,
                WSD_UDP_PORT,
                0,
                v1,
            )),
            "http://[fd99::2]:5357/",
        ),
    ];
    for (i, (from, group, want_xaddr)) in cases.into_iter().enumerate() {
        let p = prober(from, v1);
        let mid = format!("urn:uuid:lan-{i}");
        p.send_to(probe(&mid).as_bytes(), group).await.unwrap();
        let reply = recv_text(&p, Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("no ProbeMatches over {group}"));
        assert_eq!(between(&reply, "wsa:RelatesTo"), Some(mid.as_str()));
        let xaddr = between(&reply, "wsd:XAddrs").unwrap();
        assert!(xaddr.starts_with(want_xaddr), "{xaddr}");
        let host = xaddr
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .unwrap();
        let meta: SocketAddr = host.parse().unwrap();
        let epr = between(&reply, "wsa:Address").unwrap();
        let path = format!("/{}", epr.trim_start_matches("urn:uuid:"));
        let (status, body) = http(meta, "POST", &path, &get(epr)).await;
        assert_eq!(status, 200);
        assert!(body.contains("<pub:Computer>VETHBOX/Workgroup:LAB</pub:Computer>"));
    }

    // Loopback is not one of the served addresses by default.
    let lo = UdpSocket::bind((LO, 0)).await.unwrap();
    lo.send_to(probe("urn:uuid:lo").as_bytes(), (LO, WSD_UDP_PORT))
        .await
        .unwrap();
    assert_eq!(recv_text(&lo, Duration::from_millis(1200)).await, None);

    // Resolutions arrive as the records do (IPv6 first, sometimes): gather the addresses
    // over every resolution of our name.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut port = None;
    while tokio::time::Instant::now() < deadline
        && !addrs
            .iter()
            .any(|a| a.to_string().starts_with("203.0.113."))
    {
        if let Ok(ServiceEvent::ServiceResolved(s)) =
            smb_events.recv_timeout(Duration::from_millis(200))
            && s.get_fullname().starts_with("VethBox.")
        {
            port = Some(s.get_port());
            addrs.extend(s.get_addresses().iter().map(|a| a.to_ip_addr()));
        }
    }
    assert_eq!(
        port,
        Some(445),
        "mDNS browse did not find VethBox._smb._tcp"
    );
    assert!(
        addrs
            .iter()
            .any(|a| a.to_string().starts_with("203.0.113.")),
        "{addrs:?}"
    );
    assert!(!addrs.iter().any(|a| a.is_loopback()), "{addrs:?}");
    d.stop().await;
    let _ = browser.shutdown();
}

/// Runs only inside the namespace.
async fn netns_body() {
    use mdns_sd::{ServiceDaemon, ServiceEvent};
    use socket2::{Domain, Protocol, Socket, Type};

    // An observer on the multicast group, like another Windows machine on the LAN.
    let obs = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    obs.set_reuse_address(true).unwrap();
    obs.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, WSD_UDP_PORT)).into())
        .unwrap();
    obs.join_multicast_v4(&net::WSD_GROUP_V4, &Ipv4Addr::LOCALHOST)
        .unwrap();
    obs.set_nonblocking(true).unwrap();
    let obs = UdpSocket::from_std(obs.into()).unwrap();

    // The mDNS browser, as Finder would be.
    let browser = ServiceDaemon::new().unwrap();
    let smb_events = browser.browse(mdns::SMB_SERVICE).unwrap();
    let info_events = browser.browse(mdns::DEVICE_INFO_SERVICE).unwrap();

    let cfg = DiscoveryConfig {
        interfaces: vec![LO],
        wsd_http_port: 0,
        ..DiscoveryConfig::new("NsBox", "LAB", 4451)
    };
    let d = Discovery::start(cfg).await.unwrap();

    // Hello arrives on the group.
    let mut hello = None;
    for _ in 0..10 {
        match recv_text(&obs, Duration::from_secs(3)).await {
            Some(t) if t.contains("/discovery/Hello</wsa:Action>") => {
                hello = Some(t);
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    let hello = hello.expect("no Hello on 239.255.255.250");
    let http_port = d.http_addr().unwrap().port();
    assert!(
        hello.contains(&format!("<wsd:XAddrs>http://127.0.0.1:{http_port}/")),
        "{hello}"
    );

    // A multicast Probe gets a unicast ProbeMatches.
    let prober = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    prober
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    prober.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    prober.set_nonblocking(true).unwrap();
    let prober = UdpSocket::from_std(prober.into()).unwrap();
    prober
        .send_to(
            probe("urn:uuid:mc-1").as_bytes(),
            (net::WSD_GROUP_V4, WSD_UDP_PORT),
        )
        .await
        .unwrap();
    let reply = recv_text(&prober, Duration::from_secs(3))
        .await
        .expect("no ProbeMatches to a multicast Probe");
    assert!(
        reply.contains("/discovery/ProbeMatches</wsa:Action>"),
        "{reply}"
    );
    assert_eq!(between(&reply, "wsa:RelatesTo"), Some("urn:uuid:mc-1"));

    // mDNS: _smb._tcp with our port and host, _device-info with the model.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut smb_ok = false;
    while !smb_ok && tokio::time::Instant::now() < deadline {
        if let Ok(ServiceEvent::ServiceResolved(s)) =
            smb_events.recv_timeout(Duration::from_millis(200))
            && s.get_fullname().starts_with("NsBox.")
        {
            assert_eq!(s.get_port(), 4451);
            assert_eq!(s.get_hostname(), "NsBox.local.");
            assert!(s.get_addresses().iter().any(|a| a.to_ip_addr() == LO));
            smb_ok = true;
        }
    }
    assert!(smb_ok, "mDNS browse did not find NsBox._smb._tcp");
    let mut model = None;
    while model.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(ServiceEvent::ServiceResolved(s)) =
            info_events.recv_timeout(Duration::from_millis(200))
        {
            model = s.get_property_val_str("model").map(str::to_owned);
        }
    }
    assert_eq!(model.as_deref(), Some(mdns::DEVICE_MODEL));

    // Stop: Bye on the group, mDNS goodbye.
    d.stop().await;
    let mut bye = false;
    for _ in 0..20 {
        match recv_text(&obs, Duration::from_secs(2)).await {
            Some(t) if t.contains("/discovery/Bye</wsa:Action>") => {
                bye = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(bye, "no Bye after stop");
    let mut removed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !removed && tokio::time::Instant::now() < deadline {
        if let Ok(ServiceEvent::ServiceRemoved(_, name)) =
            smb_events.recv_timeout(Duration::from_millis(200))
        {
            removed = name.starts_with("NsBox.");
        }
    }
    assert!(removed, "no mDNS goodbye for NsBox._smb._tcp");
    let _ = browser.shutdown();
}
