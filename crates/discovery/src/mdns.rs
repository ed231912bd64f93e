//! mDNS/DNS-SD (RFC 6762, RFC 6763) through the `mdns-sd` daemon: what avahi publishes for
//! Samba, so Finder and Linux file managers list the server.
//!
//! - `NAME._smb._tcp.local.` SRV → `NAME.local.`:smb_port, with an empty TXT.
//! - `NAME._device-info._tcp.local.` with TXT `model=MacSamba`, the value Samba's avahi
//!   registration uses (its `fruit:model` default) so Finder draws a server icon.
//! - `NAME.local.` A/AAAA records for the chosen addresses (or every non-loopback address,
//!   following changes, when none were configured).

use std::net::IpAddr;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

use crate::DiscoveryError;

pub const SMB_SERVICE: &str = "_smb._tcp.local.";
pub const DEVICE_INFO_SERVICE: &str = "_device-info._tcp.local.";
pub const DEVICE_MODEL: &str = "MacSamba";

/// How long `stop` waits for the daemon to send the goodbye packets (TTL 0, RFC 6762 10.1).
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// The host label for `NAME.local.`: DNS allows letters, digits and hyphens in a host name
/// (RFC 952/1123); anything else becomes a hyphen.
pub fn host_label(name: &str) -> Option<String> {
    let label: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let label = label.trim_matches('-');
    (!label.is_empty() && label.len() <= 63).then(|| label.to_owned())
}

/// One DNS-SD service to register: type, port, TXT properties.
type Service<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);

/// A running registration.
pub struct Mdns {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
    stopped: bool,
}

fn mdns_err(e: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Mdns(e.to_string())
}

impl Mdns {
    /// Starts the daemon (its own thread) on port `port` (5353 outside tests) and registers
    /// both services.
    pub fn start(
        computer_name: &str,
        smb_port: u16,
        addrs: &[IpAddr],
        port: u16,
    ) -> Result<Mdns, DiscoveryError> {
        let host = host_label(computer_name).ok_or_else(|| {
            DiscoveryError::InvalidName(computer_name.to_owned(), "no usable DNS host label")
        })?;
        let host = format!("{host}.local.");
        let daemon = ServiceDaemon::new_with_port(port).map_err(mdns_err)?;
        if addrs.is_empty() {
            // "All non-loopback": mdns-sd enables loopback by default.
            daemon
                .disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
                .map_err(mdns_err)?;
        } else {
            // Later selections win in mdns-sd, so: everything off, then ours on.
            daemon.disable_interface(IfKind::All).map_err(mdns_err)?;
            let ours: Vec<IfKind> = addrs.iter().map(|a| IfKind::Addr(*a)).collect();
            daemon.enable_interface(ours).map_err(mdns_err)?;
        }
        let mut mdns = Mdns {
            daemon,
            fullnames: Vec::new(),
            stopped: false,
        };
        let services: [Service<'_>; 2] = [
            (SMB_SERVICE, smb_port, &[]),
            // Port 0 as avahi's static service files for _device-info have it: the record
            // carries only TXT.
            (DEVICE_INFO_SERVICE, 0, &[("model", DEVICE_MODEL)]),
        ];
        for (ty, port, txt) in services {
            let info =
                ServiceInfo::new(ty, computer_name, &host, addrs, port, txt).map_err(mdns_err)?;
            let info = if addrs.is_empty() {
                info.enable_addr_auto()
            } else {
                info
            };
            let fullname = info.get_fullname().to_owned();
            mdns.daemon.register(info).map_err(mdns_err)?;
            mdns.fullnames.push(fullname);
        }
        Ok(mdns)
    }

    /// Unregisters (the daemon multicasts goodbyes) and shuts the daemon down. Blocking: call
    /// from a blocking context.
    pub fn stop_blocking(mut self) {
        self.stopped = true;
        for name in &self.fullnames {
            match self.daemon.unregister(name) {
                Ok(rx) => {
                    if rx.recv_timeout(GOODBYE_WAIT).is_err() {
                        tracing::debug!(%name, "mDNS unregister not confirmed");
                    }
                }
                Err(e) => tracing::debug!(%name, error = %e, "mDNS unregister failed"),
            }
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(GOODBYE_WAIT);
        }
    }
}

impl Drop for Mdns {
    /// Without `stop_blocking` the daemon thread would outlive us; end it (no goodbyes: peers
    /// let the records expire).
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.daemon.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels() {
        assert_eq!(host_label("FileServer").as_deref(), Some("FileServer"));
        assert_eq!(host_label("my files_1").as_deref(), Some("my-files-1"));
        assert_eq!(host_label("__"), None);
        assert_eq!(host_label(&"a".repeat(64)), None);
    }
}
