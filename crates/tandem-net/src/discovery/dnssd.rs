//! [`NativeDnsSd`]: discovery through the system's `dns_sd.h` responder (Bonjour on Apple,
//! Avahi's compatibility library on Linux).
//!
//! IN PROGRESS (issue 4): the FFI backend lands in the next commit; only the flag logic is
//! here so far.

use super::{Advertisement, BrowseOptions, Browser, Discovery, DiscoveryError, Registration};

/// `kDNSServiceFlagsIncludeP2P` (`dns_sd.h`): include peer-to-peer interfaces.
pub const FLAGS_INCLUDE_P2P: u32 = 0x2_0000;
/// `kDNSServiceFlagsIncludeAWDL` (`dns_sd.h`): include AWDL (needed as well as P2P since
/// macOS 10.15 / iOS 13).
pub const FLAGS_INCLUDE_AWDL: u32 = 0x10_0000;

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

/// Discovery through `dns_sd.h`.
#[derive(Debug)]
pub struct NativeDnsSd {
    _private: (),
}

impl Discovery for NativeDnsSd {
    fn name(&self) -> &'static str {
        "dns-sd"
    }
    fn advertise(&self, _ad: &Advertisement) -> Result<Registration, DiscoveryError> {
        Err(DiscoveryError::Unavailable {
            backend: "dns-sd",
            why: "not built yet".into(),
        })
    }
    fn browse(&self, _options: &BrowseOptions) -> Result<Browser, DiscoveryError> {
        Err(DiscoveryError::Unavailable {
            backend: "dns-sd",
            why: "not built yet".into(),
        })
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
}
