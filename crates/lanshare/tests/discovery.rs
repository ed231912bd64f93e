//! `lanshare serve` announces itself (issue 5): the real binary, started inside a private
//! network namespace (multicast cannot leave it; ports 3702, 5357 and 5353 are free there),
//! answers a WS-Discovery Probe and Resolve, serves the metadata with its computer name and
//! workgroup, is found by an mDNS browser (`mdns-sd`, in this process) under `_smb._tcp` with
//! the SMB port it really listens on, says Hello and Bye, shows it all in `lanshare status`,
//! keeps serving SMB when a discovery port is taken, and stays quiet on a loopback listener.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lanshare_discovery::netns;
use socket2::{Domain, Protocol, Socket, Type};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
const WSD_PORT: u16 = 3702;

mod common;
use common::{Server, lanshare};

fn write_config(dir: &Path, listen: &str, discovery: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir.join("pub")).unwrap();
    let socket = dir.join("ctl.sock");
    let text = format!(
        "[server]\nname = \"discbox\"\nlisten = \"{listen}\"\nusers_file = \"users\"\ncontrol_socket = \"{}\"\n\
         [security]\nanonymous = \"ipc-only\"\n\
         [discovery]\n{discovery}\n\
         [[share]]\nname = \"pub\"\npath = \"pub\"\n",
        socket.display()
    );
    let path = dir.join("lanshare.toml");
    std::fs::write(&path, text).unwrap();
    (path, socket)
}

fn status_json(socket: &Path) -> serde_json::Value {
    let out = lanshare()
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn status_text(socket: &Path) -> String {
    let out = lanshare()
        .args(["status", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
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
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"><soap:Header><wsa:To>{endpoint}</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action><wsa:MessageID>urn:uuid:6b1c7f3e-8d2e-4f54-8b62-2f3e4d5c6b7a</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo></soap:Header><soap:Body/></soap:Envelope>"#
    )
}

fn between<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    xml.get(start..start + len)
}

/// A UDP socket on `from` that sends multicast out of that address's interface.
fn prober(from: Ipv4Addr) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.set_multicast_if_v4(&from).unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// An observer on the WS-Discovery group, as another Windows machine on the LAN would be.
fn observer(on: Ipv4Addr) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, WSD_PORT)).into())
        .unwrap();
    s.join_multicast_v4(&GROUP, &on).unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// Datagrams on `sock` until one contains `needle`, for at most `wait`.
fn recv_containing(sock: &UdpSocket, needle: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let t = String::from_utf8_lossy(&buf[..n]).into_owned();
            if t.contains(needle) {
                return Some(t);
            }
        }
    }
    None
}

/// Sends `msg` to the group and waits for a reply containing `needle`; sent again a few times,
/// since UDP may be dropped and the server answers after a random delay of up to 500 ms.
fn ask_group(p: &UdpSocket, msg: &str, needle: &str) -> String {
    for _ in 0..5 {
        p.send_to(msg.as_bytes(), (GROUP, WSD_PORT)).unwrap();
        if let Some(t) = recv_containing(p, needle, Duration::from_secs(4)) {
            return t;
        }
    }
    panic!("no {needle} to {msg}");
}

fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.get(9..12).unwrap().parse().unwrap();
    (status, resp.split_once("\r\n\r\n").unwrap().1.to_owned())
}

fn v1() -> Ipv4Addr {
    netns::V1_V4.parse().unwrap()
}

/// The defaults on a LAN listener, with the workgroup set.
fn announced_on_a_lan() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), "0.0.0.0:0", "workgroup = \"lab\"");
    let obs = observer(v1());
    let browser = mdns_sd::ServiceDaemon::new().unwrap();
    let smb_events = browser.browse("_smb._tcp.local.").unwrap();

    let mut server = Server::serve_config(&config);
    let smb = server.listening();
    assert_ne!(smb.port(), 0);
    let line = server.log_line("discovery: announcing");
    assert!(
        line.contains("WS-Discovery") && line.contains("mDNS") && line.contains("workgroup LAB"),
        "{line}"
    );
    assert!(line.contains("every non-loopback interface"), "{line}");

    // Hello on the group when the server starts.
    let hello = recv_containing(&obs, "/discovery/Hello<", Duration::from_secs(10))
        .expect("no Hello on 239.255.255.250:3702");
    assert!(hello.contains("http://"), "{hello}");

    // Probe → ProbeMatches, multicast from the LAN side as Windows sends it.
    let p = prober(v1());
    let reply = ask_group(&p, &probe("urn:uuid:e2e-probe"), "/discovery/ProbeMatches<");
    assert_eq!(between(&reply, "wsa:RelatesTo"), Some("urn:uuid:e2e-probe"));
    let epr = between(&reply, "wsa:Address").unwrap().to_owned();
    let xaddr = between(&reply, "wsd:XAddrs").unwrap().to_owned();
    let want = format!("http://{}:5357/", netns::V1_V4);
    assert!(xaddr.starts_with(&want), "XAddrs {xaddr}, want {want}…");

    // Resolve our endpoint → ResolveMatches with the same XAddrs.
    let reply = ask_group(
        &p,
        &resolve("urn:uuid:e2e-resolve", &epr),
        "/discovery/ResolveMatches<",
    );
    assert_eq!(
        between(&reply, "wsa:RelatesTo"),
        Some("urn:uuid:e2e-resolve")
    );
    assert_eq!(between(&reply, "wsd:XAddrs"), Some(xaddr.as_str()));

    // The metadata Windows fetches next names the computer and the workgroup.
    let rest = xaddr.strip_prefix("http://").unwrap();
    let slash = rest.find('/').unwrap();
    let (status, body) = http_post(rest[..slash].parse().unwrap(), &rest[slash..], &get(&epr));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<pub:Computer>DISCBOX/Workgroup:LAB</pub:Computer>"),
        "{body}"
    );

    // mDNS: found under _smb._tcp with the port the SMB listener really has, and the LAN
    // address. Resolutions arrive as the records do (IPv6 first, sometimes), so the
    // addresses are gathered over every resolution of our name.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut port = None;
    while Instant::now() < deadline
        && !addrs
            .iter()
            .any(|a| a.to_string().starts_with("203.0.113."))
    {
        if let Ok(mdns_sd::ServiceEvent::ServiceResolved(s)) =
            smb_events.recv_timeout(Duration::from_millis(200))
            && s.get_fullname().starts_with("DISCBOX.")
        {
            port = Some(s.get_port());
            addrs.extend(s.get_addresses().iter().map(|a| a.to_ip_addr()));
        }
    }
    assert_eq!(
        port,
        Some(smb.port()),
        "mDNS browse did not find DISCBOX._smb._tcp.local. with the SMB port"
    );
    assert!(
        addrs
            .iter()
            .any(|a| a.to_string().starts_with("203.0.113.")),
        "{addrs:?}"
    );
    // …and the SMB listener is really there.
    TcpStream::connect((v1(), smb.port())).unwrap();

    let st = status_json(&socket);
    assert_eq!(
        st["discovery"],
        serde_json::json!({"wsd": true, "mdns": true, "workgroup": "LAB"}),
        "{st}"
    );
    let text = status_text(&socket);
    assert!(
        text.contains("WS-Discovery on, mDNS on (workgroup LAB)"),
        "{text}"
    );

    // Shutdown says Bye on the group and sends the mDNS goodbye.
    let status = server.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "{status:?}: {:#?}",
        server.stderr_so_far()
    );
    assert!(
        recv_containing(&obs, "/discovery/Bye<", Duration::from_secs(5)).is_some(),
        "no Bye after SIGTERM"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut removed = false;
    while !removed && Instant::now() < deadline {
        if let Ok(mdns_sd::ServiceEvent::ServiceRemoved(_, name)) =
            smb_events.recv_timeout(Duration::from_millis(200))
        {
            removed = name.starts_with("DISCBOX.");
        }
    }
    assert!(removed, "no mDNS goodbye for DISCBOX._smb._tcp");
    let _ = browser.shutdown();
}

/// Port 5357 taken: one warning naming the port, WS-Discovery off, mDNS and SMB on.
fn busy_port_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), "0.0.0.0:0", "");
    let _taken = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 5357)).unwrap();
    let mut server = Server::serve_config(&config);
    let smb = server.listening();
    let warning = server.log_line("WS-Discovery not started");
    assert!(warning.contains("5357"), "{warning}");
    assert!(warning.contains("SMB server runs on"), "{warning}");
    let line = server.log_line("discovery: announcing");
    assert!(
        line.contains("mDNS") && !line.contains("WS-Discovery"),
        "{line}"
    );
    TcpStream::connect((v1(), smb.port())).unwrap();
    let st = status_json(&socket);
    assert_eq!(st["discovery"]["wsd"], false, "{st}");
    assert_eq!(st["discovery"]["mdns"], true, "{st}");
    assert!(server.terminate(Duration::from_secs(30)).success());
}

/// A loopback-only listener announces nothing by default, and says why.
fn loopback_listener_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), "127.0.0.1:0", "");
    let p = prober(v1());
    let mut server = Server::serve_config(&config);
    server.listening();
    let line = server.log_line("discovery: off");
    assert!(line.contains("loopback"), "{line}");
    p.send_to(probe("urn:uuid:quiet").as_bytes(), (GROUP, WSD_PORT))
        .unwrap();
    assert_eq!(
        recv_containing(&p, "ProbeMatches", Duration::from_secs(2)),
        None
    );
    let st = status_json(&socket);
    assert_eq!(st["discovery"]["wsd"], false, "{st}");
    assert_eq!(st["discovery"]["mdns"], false, "{st}");
    assert!(server.terminate(Duration::from_secs(30)).success());
}

#[test]
fn serve_announces_itself_in_a_network_namespace() {
    if !netns::inside() {
        netns::rerun("serve_announces_itself_in_a_network_namespace");
        return;
    }
    // One after another: they share the namespace's ports.
    announced_on_a_lan();
    busy_port_is_a_warning();
    loopback_listener_stays_quiet();
}
