//! [`NativeDnsSd`]: discovery through the system's `dns_sd.h` responder — Bonjour on Apple,
//! where it needs no multicast entitlement and reaches AWDL, and Avahi's compatibility
//! library in front of avahi-daemon on Linux.
//!
//! A `DNSServiceRef` is not thread-safe and answers through callbacks run inside
//! `DNSServiceProcessResult`, so every advertisement and every browse gets a thread that
//! creates its refs, polls their sockets, runs their callbacks and deallocates them; the
//! handle given to the application only wakes that thread to stop and joins it. The
//! callbacks (in `ffi`) copy their arguments into [`Reply`] values; what happens next is
//! decided in plain Rust: here for an advertisement, in `browse` for a browse.
//!
//! Avahi's library differs from Bonjour in ways this module absorbs: it rejects any non-zero
//! flag ([`dns_service_flags`]), it has no `DNSServiceGetAddrInfo` (addresses come from A
//! and AAAA queries on both platforms), it reports a service once per IP protocol, and it
//! says `kDNSServiceErr_Unknown` when avahi-daemon is not running. It also prints a warning
//! about the compatibility layer on first use (silenced by `AVAHI_COMPAT_NOWARN=1`).
// Off Unix only the type and its error remain; the helpers below serve the Unix parts.
#![cfg_attr(not(unix), allow(dead_code))]

#[cfg(unix)]
mod browse;
#[cfg(unix)]
mod ffi;
#[cfg(unix)]
mod worker;

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use super::Registration;
use super::{Advertisement, BrowseOptions, Browser, Discovery, DiscoveryError, PeerAddress};
use crate::iface::is_link_local_v6;

const BACKEND: &str = "dns-sd";

/// `kDNSServiceFlagsIncludeP2P` (`dns_sd.h`): include peer-to-peer interfaces.
pub const FLAGS_INCLUDE_P2P: u32 = 0x2_0000;
/// `kDNSServiceFlagsIncludeAWDL` (`dns_sd.h`): include AWDL (needed as well as P2P since
/// macOS 10.15 / iOS 13).
pub const FLAGS_INCLUDE_AWDL: u32 = 0x10_0000;
/// `kDNSServiceFlagsAdd`: in a reply, the record appeared (else it went away).
const FLAGS_ADD: u32 = 0x2;

/// The `DNSServiceFlags` for a register, browse or resolve call. Apple's Bonjour reaches
/// AWDL only with both peer-to-peer flags. Avahi's compatibility library rejects any
/// non-zero flag with `kDNSServiceErr_BadParam`, and has no peer-to-peer links anyway, so
/// on it every flag is masked off.
pub const fn dns_service_flags(apple: bool, allow_peer_to_peer: bool) -> u32 {
    if apple && allow_peer_to_peer {
        FLAGS_INCLUDE_P2P | FLAGS_INCLUDE_AWDL
    } else {
        0
    }
}

/// [`SERVICE_TYPE`](super::SERVICE_TYPE) as the C string the calls take.
const SERVICE_TYPE_C: &std::ffi::CStr = c"_tandem._udp";

/// `kDNSServiceType_A`.
const TYPE_A: u16 = 1;
/// `kDNSServiceType_AAAA`.
const TYPE_AAAA: u16 = 28;

const ERR_UNKNOWN: i32 = -65537;
const ERR_BAD_PARAM: i32 = -65540;
const ERR_SERVICE_NOT_RUNNING: i32 = -65563;
const ERR_POLICY_DENIED: i32 = -65570;

/// The `kDNSServiceErr_*` names, for messages.
const ERROR_NAMES: [(i32, &str); 33] = [
    (ERR_UNKNOWN, "Unknown"),
    (-65538, "NoSuchName"),
    (-65539, "NoMemory"),
    (ERR_BAD_PARAM, "BadParam"),
    (-65541, "BadReference"),
    (-65542, "BadState"),
    (-65543, "BadFlags"),
    (-65544, "Unsupported"),
    (-65545, "NotInitialized"),
    (-65547, "AlreadyRegistered"),
    (-65548, "NameConflict"),
    (-65549, "Invalid"),
    (-65550, "Firewall"),
    (-65551, "Incompatible"),
    (-65552, "BadInterfaceIndex"),
    (-65553, "Refused"),
    (-65554, "NoSuchRecord"),
    (-65555, "NoAuth"),
    (-65556, "NoSuchKey"),
    (-65557, "NATTraversal"),
    (-65558, "DoubleNAT"),
    (-65559, "BadTime"),
    (-65560, "BadSig"),
    (-65561, "BadKey"),
    (-65562, "Transient"),
    (ERR_SERVICE_NOT_RUNNING, "ServiceNotRunning"),
    (-65564, "NATPortMappingUnsupported"),
    (-65565, "NATPortMappingDisabled"),
    (-65566, "NoRouter"),
    (-65567, "PollingMode"),
    (-65568, "Timeout"),
    (-65569, "DefunctConnection"),
    (ERR_POLICY_DENIED, "PolicyDenied"),
];

/// A `DNSServiceErrorType` for a message: `kDNSServiceErr_BadParam (-65540)`, with what to
/// do where there is something to do.
fn describe(code: i32) -> String {
    let named = match ERROR_NAMES.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => format!("kDNSServiceErr_{name} ({code})"),
        None => format!("error {code}"),
    };
    if code == ERR_POLICY_DENIED {
        // iOS 14+ and macOS 15+ answer this when the user has not allowed Local Network
        // access, or the app's Info.plist does not declare the service.
        format!(
            "{named}: Local Network access is off for this app (Settings > Privacy & \
             Security > Local Network), or its Info.plist lacks NSLocalNetworkUsageDescription \
             or `_tandem._udp` in NSBonjourServices"
        )
    } else {
        named
    }
}

/// Whether `code` from a create call means the daemon behind the library is not there.
/// Avahi's library says Unknown for that (it cannot reach avahi-daemon over D-Bus); on
/// Apple, Unknown is just unknown.
fn daemon_missing(code: i32, apple: bool) -> bool {
    code == ERR_SERVICE_NOT_RUNNING || (code == ERR_UNKNOWN && !apple)
}

/// What to tell the user when the daemon is missing.
fn daemon_hint(apple: bool) -> &'static str {
    if apple {
        "mDNSResponder is not running"
    } else {
        "avahi-daemon is not running (start it: avahi-daemon -D, needs dbus)"
    }
}

/// The error for a create call that returned `code`.
fn request_error(what: &'static str, code: i32) -> DiscoveryError {
    let apple = cfg!(target_vendor = "apple");
    if daemon_missing(code, apple) {
        DiscoveryError::Unavailable {
            backend: BACKEND,
            why: daemon_hint(apple).into(),
        }
    } else {
        DiscoveryError::Backend {
            backend: BACKEND,
            what,
            why: describe(code),
        }
    }
}

/// The address in an A or AAAA record's data, if it has the size its type says.
fn address_from_rdata(rrtype: u16, rdata: &[u8]) -> Option<IpAddr> {
    match rrtype {
        TYPE_A => <[u8; 4]>::try_from(rdata).ok().map(IpAddr::from),
        TYPE_AAAA => <[u8; 16]>::try_from(rdata).ok().map(IpAddr::from),
        _ => None,
    }
}

/// `ip` as a peer address seen on `interface`; a link-local IPv6 address is scoped to
/// `scope` (the interface its answer came on), or it cannot be used.
fn peer_address(ip: IpAddr, port: u16, scope: u32, interface: u32) -> PeerAddress {
    let addr = match ip {
        IpAddr::V6(v6) if is_link_local_v6(ip) => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
        ip => SocketAddr::new(ip, port),
    };
    PeerAddress { addr, interface }
}

/// What one callback reported, copied out of its C arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// The service is registered under `name` (the one asked for, or a rename of it).
    Registered { name: String },
    /// The request failed with this `DNSServiceErrorType`.
    Failed(i32),
    /// An instance appeared (`add`) or went away on an interface.
    Browse {
        add: bool,
        interface: u32,
        instance: String,
        domain: String,
    },
    /// An instance's host, port (host order) and TXT record (wire format).
    Resolved {
        interface: u32,
        host: String,
        port: u16,
        txt: Vec<u8>,
    },
    /// An address of the host appeared (`add`) or went away.
    Address {
        add: bool,
        interface: u32,
        ip: IpAddr,
    },
}

/// Discovery through `dns_sd.h`. See the module docs.
///
/// If the daemon goes away (avahi-daemon stopped), a running browse ends ([`Browser::next`]
/// returns `None`) and an advertisement is withdrawn with a warning in the log; its
/// [`Registration`] stays valid to drop. Later calls fail with
/// [`DiscoveryError::Unavailable`] until the daemon is back. A browse resolves each peer
/// once per appearance: a TXT record or address changed later is seen when the peer
/// reappears, not while it stays.
#[derive(Debug)]
pub struct NativeDnsSd {
    #[cfg(unix)]
    api: &'static ffi::Api,
}

impl NativeDnsSd {
    /// Opens the system's `dns_sd.h` library and checks that its daemon answers.
    ///
    /// [`DiscoveryError::Unavailable`] when the library is not installed (the message names
    /// the package) or the daemon is not running (the message says how to start it). On
    /// Apple the daemon is not asked: a browse there can show the local network privacy
    /// prompt, which the application should trigger when it means to browse.
    pub fn new() -> Result<NativeDnsSd, DiscoveryError> {
        #[cfg(unix)]
        {
            let api = ffi::api().map_err(|why| DiscoveryError::Unavailable {
                backend: BACKEND,
                why,
            })?;
            if !cfg!(target_vendor = "apple") {
                // A browse, dropped at once, is the cheapest request that reaches the daemon.
                drop(
                    ffi::Op::browse(api, 0, 0, SERVICE_TYPE_C)
                        .map_err(|code| request_error("browsing", code))?,
                );
            }
            Ok(NativeDnsSd { api })
        }
        #[cfg(not(unix))]
        {
            Err(DiscoveryError::Unavailable {
                backend: BACKEND,
                why: "the dns_sd.h backend is built for Unix only".into(),
            })
        }
    }
}

impl Discovery for NativeDnsSd {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn advertise(&self, ad: &Advertisement) -> Result<Registration, DiscoveryError> {
        super::validate(ad)?;
        #[cfg(unix)]
        {
            worker::advertise(self.api, ad)
        }
        #[cfg(not(unix))]
        {
            unreachable!("NativeDnsSd::new fails off Unix")
        }
    }

    fn browse(&self, options: &BrowseOptions) -> Result<Browser, DiscoveryError> {
        #[cfg(unix)]
        {
            worker::browse(self.api, options)
        }
        #[cfg(not(unix))]
        {
            let _ = options;
            unreachable!("NativeDnsSd::new fails off Unix")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_to_peer_flags_only_on_apple() {
        assert_eq!(dns_service_flags(true, true), 0x12_0000);
        assert_eq!(dns_service_flags(true, false), 0);
        assert_eq!(
            dns_service_flags(false, true),
            0,
            "Avahi rejects non-zero flags"
        );
        assert_eq!(dns_service_flags(false, false), 0);
    }

    #[test]
    fn service_type_matches() {
        assert_eq!(SERVICE_TYPE_C.to_str(), Ok(super::super::SERVICE_TYPE));
    }

    #[test]
    fn errors_name_the_code_and_a_missing_daemon_is_unavailable() {
        assert_eq!(describe(-65540), "kDNSServiceErr_BadParam (-65540)");
        assert_eq!(
            describe(-65563),
            "kDNSServiceErr_ServiceNotRunning (-65563)"
        );
        assert_eq!(describe(-1), "error -1");
        assert!(
            daemon_missing(ERR_UNKNOWN, false),
            "Avahi's way of saying it"
        );
        assert!(!daemon_missing(ERR_UNKNOWN, true));
        assert!(daemon_missing(ERR_SERVICE_NOT_RUNNING, true));
        assert!(daemon_missing(ERR_SERVICE_NOT_RUNNING, false));
        assert!(!daemon_missing(ERR_BAD_PARAM, false));
        assert_eq!(
            daemon_hint(false),
            "avahi-daemon is not running (start it: avahi-daemon -D, needs dbus)"
        );
        let e = request_error("browsing", ERR_SERVICE_NOT_RUNNING);
        assert!(
            matches!(
                e,
                DiscoveryError::Unavailable {
                    backend: "dns-sd",
                    ..
                }
            ),
            "{e}"
        );
        let e = request_error("browsing", ERR_POLICY_DENIED);
        assert!(e.to_string().contains("Local Network access is off"), "{e}");
        let e = request_error("browsing", ERR_BAD_PARAM);
        assert_eq!(
            e.to_string(),
            "dns-sd: browsing failed: kDNSServiceErr_BadParam (-65540)"
        );
        // Every name is there once, in order.
        for pair in ERROR_NAMES.windows(2) {
            assert!(pair[0].0 > pair[1].0, "{pair:?}");
        }
    }

    #[test]
    fn address_records_by_type_and_size() {
        assert_eq!(
            address_from_rdata(TYPE_A, &[192, 0, 2, 7]),
            Some(IpAddr::from([192, 0, 2, 7]))
        );
        let mut v6 = [0u8; 16];
        v6[0] = 0xfe;
        v6[1] = 0x80;
        v6[15] = 1;
        assert_eq!(
            address_from_rdata(TYPE_AAAA, &v6),
            Some("fe80::1".parse().expect("v6"))
        );
        assert_eq!(address_from_rdata(TYPE_A, &v6), None, "wrong size");
        assert_eq!(address_from_rdata(TYPE_AAAA, &[1, 2, 3, 4]), None);
        assert_eq!(address_from_rdata(16, b"\x03v=1"), None, "not an address");
    }

    #[test]
    fn link_local_addresses_take_the_answers_interface_as_scope() {
        let ll = peer_address("fe80::1".parse().expect("v6"), 9, 4, 3);
        assert_eq!(ll.addr, "[fe80::1%4]:9".parse().expect("addr"));
        assert_eq!(ll.interface, 3);
        let global = peer_address("fd00::1".parse().expect("v6"), 9, 4, 3);
        assert_eq!(global.addr, "[fd00::1]:9".parse().expect("addr"));
        let v4 = peer_address("10.0.0.1".parse().expect("v4"), 9, 4, 3);
        assert_eq!(v4.addr, "10.0.0.1:9".parse().expect("addr"));
    }
}
