//! The records and enums that cross the boundary, and their conversions to and from the
//! engine's types. Durations are milliseconds, addresses strings (`"192.168.1.20:7000"`,
//! `"[fe80::1%en0]:7000"` is not accepted: give a scope id, `"[fe80::1%4]:7000"`).
//! An optional field left `nil` means the engine's default, named in its doc.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::TandemError;
use crate::keys::{Identity, TrustStore};

/// Which network path a session takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PathPreference {
    /// Over the Wi-Fi router (or Ethernet).
    Infrastructure,
    /// Directly between the devices (AWDL on Apple), no router involved.
    PeerToPeer,
    /// Whichever the peer and the interfaces allow, infrastructure first.
    Automatic,
    /// Both at once: the router's Wi-Fi and the direct link, so that a stall on one radio
    /// channel is covered by the other ([`PathPolicy`] says how datagrams are spread). A
    /// discovered peer must have been seen on both kinds of link (the error names the
    /// missing one); a listener tells the paths apart by interface; a single `.address`
    /// names one path and is refused (give `.addresses`).
    Both,
}

impl From<PathPreference> for tandem::PathPreference {
    fn from(p: PathPreference) -> Self {
        match p {
            PathPreference::Infrastructure => tandem::PathPreference::Infrastructure,
            PathPreference::PeerToPeer => tandem::PathPreference::PeerToPeer,
            PathPreference::Automatic => tandem::PathPreference::Automatic,
            PathPreference::Both => tandem::PathPreference::Both,
        }
    }
}

/// How a session over two paths spreads its datagrams (the sender decides; changeable live
/// with `Sender.setPathPolicy`). A single-path session ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PathPolicy {
    /// Every datagram on both paths: the most robust, twice the traffic.
    Duplicate,
    /// The first path while it answers; the second carries a copy once the first has been
    /// silent 12 ms, and everything once it is dead (40 ms).
    PrimaryBackup,
    /// Each datagram on the path predicted to be live, copies only near a predicted switch,
    /// while a path is suspect, and while the stall pattern is learned (the first 3.5 s).
    /// The default.
    Adaptive,
}

impl From<PathPolicy> for tandem::PathPolicy {
    fn from(p: PathPolicy) -> Self {
        match p {
            PathPolicy::Duplicate => tandem::PathPolicy::Duplicate,
            PathPolicy::PrimaryBackup => tandem::PathPolicy::PrimaryBackup,
            PathPolicy::Adaptive => tandem::PathPolicy::Adaptive,
        }
    }
}

impl From<tandem::PathPolicy> for PathPolicy {
    fn from(p: tandem::PathPolicy) -> Self {
        match p {
            tandem::PathPolicy::Duplicate => PathPolicy::Duplicate,
            tandem::PathPolicy::PrimaryBackup => PathPolicy::PrimaryBackup,
            tandem::PathPolicy::Adaptive => PathPolicy::Adaptive,
        }
    }
}

/// How the receiver trades latency for smoothness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PlayoutPolicy {
    /// Show each frame as soon as it is complete; catch up after stalls. The default.
    Latency,
    /// Buffer for the measured jitter, between `min_ms` and `max_ms`.
    Smooth {
        /// Least delay, ms.
        min_ms: u32,
        /// Most delay, ms.
        max_ms: u32,
    },
    /// Always this delay after capture, ms.
    Fixed {
        /// The delay, ms.
        delay_ms: u32,
    },
}

impl From<PlayoutPolicy> for tandem::PlayoutPolicy {
    fn from(p: PlayoutPolicy) -> Self {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        match p {
            PlayoutPolicy::Latency => tandem::PlayoutPolicy::Latency,
            PlayoutPolicy::Smooth { min_ms, max_ms } => tandem::PlayoutPolicy::Smooth {
                min: ms(min_ms),
                max: ms(max_ms.max(min_ms)),
            },
            PlayoutPolicy::Fixed { delay_ms } => tandem::PlayoutPolicy::Fixed(ms(delay_ms)),
        }
    }
}

/// A codec on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VideoCodec {
    /// AV1: the engine encodes it (libaom, rav1e) and decodes it (dav1d).
    Av1,
    /// H.264: the engine encodes it ([`VideoEncoder::OpenH264`]) and decodes it (OpenH264),
    /// and passes through an app's own (VideoToolbox), which a receiver's app may decode
    /// itself ([`OutputMode::Encoded`]).
    H264,
    /// HEVC, passed through only: its receiver's app decodes it ([`OutputMode::Encoded`]).
    Hevc,
}

impl From<VideoCodec> for tandem::Codec {
    fn from(c: VideoCodec) -> Self {
        match c {
            VideoCodec::Av1 => tandem::Codec::Av1,
            VideoCodec::H264 => tandem::Codec::H264,
            VideoCodec::Hevc => tandem::Codec::Hevc,
        }
    }
}

impl VideoCodec {
    pub(crate) fn from_engine(c: tandem::Codec) -> Option<VideoCodec> {
        match c {
            tandem::Codec::Av1 => Some(VideoCodec::Av1),
            tandem::Codec::H264 => Some(VideoCodec::H264),
            tandem::Codec::Hevc => Some(VideoCodec::Hevc),
            _ => None,
        }
    }
}

/// Which encoder the sender runs on the pictures it is given (`submit_*`, the test
/// pattern), and so which codec its frames carry. Frames an app encodes itself
/// ([`crate::Sender::send_encoded`]) name their own codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VideoEncoder {
    /// AV1 through libaom in realtime mode, zero frame lag.
    Aom,
    /// AV1 through rav1e at its fastest speed.
    Rav1e,
    /// H.264 through OpenH264: constrained baseline, Annex B, SPS and PPS before every IDR,
    /// zero frame lag, one slice per encoder thread (up to 4). Any H.264 decoder reads it:
    /// the engine's receiver (decoded output), or VideoToolbox through the Swift layer's
    /// `SampleBufferAssembler` (encoded output). The default.
    OpenH264,
}

impl From<VideoEncoder> for tandem::EncoderKind {
    fn from(e: VideoEncoder) -> Self {
        match e {
            VideoEncoder::Aom => tandem::EncoderKind::Aom,
            VideoEncoder::Rav1e => tandem::EncoderKind::Rav1e,
            VideoEncoder::OpenH264 => tandem::EncoderKind::OpenH264,
        }
    }
}

/// What the picture is, for the encoder's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ContentKind {
    /// Camera video. The default.
    Camera,
    /// Screen content (text, flat areas).
    Screen,
}

/// Where a sender's pictures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VideoSource {
    /// The app: [`crate::Sender::submit_i420`], [`crate::Sender::submit_nv12_from`] or
    /// [`crate::Sender::send_encoded`]. The default.
    App,
    /// The engine's moving test pattern, carrying a pixel code for glass-to-glass
    /// latency.
    TestPattern,
}

/// What a receiver delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutputMode {
    /// Pictures the engine decoded ([`crate::ReceiverDelegate::on_frame`]): AV1 with dav1d,
    /// H.264 with OpenH264, each frame by the codec it carries. HEVC frames are not
    /// decoded, and not delivered: take encoded output for HEVC. The default.
    Decoded,
    /// The encoded frames as they arrived ([`crate::ReceiverDelegate::on_encoded`]), for
    /// an app that decodes with VideoToolbox.
    Encoded,
}

/// Which plane of an I420 picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Plane {
    /// Luma, full size.
    Y,
    /// Cb, half width and height (rounded up).
    U,
    /// Cr, half width and height (rounded up).
    V,
}

impl From<Plane> for tandem_codec::PlaneIndex {
    fn from(p: Plane) -> Self {
        match p {
            Plane::Y => tandem_codec::PlaneIndex::Y,
            Plane::U => tandem_codec::PlaneIndex::U,
            Plane::V => tandem_codec::PlaneIndex::V,
        }
    }
}

/// Who this device is and whom it trusts. `nil` where a config takes one means streaming
/// in the clear (tests on a trusted host only).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SecurityConfig {
    /// This device's identity (restore it from the Keychain with `Identity.fromBytes`).
    pub identity: Arc<Identity>,
    /// The paired devices; a listener accepts only these.
    pub trust: Arc<TrustStore>,
    /// The paired device expected at an address, when the trust store holds several
    /// (its fingerprint). Default `nil`: the only one, or discovery's `id`.
    #[uniffi(default = None)]
    pub peer_fingerprint: Option<String>,
}

/// What kind of link an interface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InterfaceKind {
    /// Wi-Fi through an access point (infrastructure).
    Wifi,
    /// Ethernet.
    Wired,
    /// A direct device-to-device link (AWDL, Wi-Fi Aware).
    PeerToPeer,
    /// Anything else (cellular, VPN): never chosen for infrastructure or peer-to-peer.
    Other,
}

/// How to classify one interface. The engine knows `awdl*`/`llw*` as peer-to-peer by name
/// everywhere, and Wi-Fi from Ethernet on Linux; on Apple it cannot tell Wi-Fi `en0` from
/// Ethernet `en1` without the Network framework, so the Swift layer passes what
/// `NWPathMonitor` reports (`NetConfig.withSystemInterfaceKinds()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InterfaceOverride {
    /// Interface name (`en0`).
    pub name: String,
    /// Its kind.
    pub kind: InterfaceKind,
}

/// A local interface as the engine sees it (to show the user which paths exist).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InterfaceInfo {
    /// Name (`en0`, `awdl0`).
    pub name: String,
    /// Index.
    pub index: u32,
    /// Its kind, after the overrides; `nil` for loopback.
    pub kind: Option<InterfaceKind>,
    /// Up, running, with an address: a session can use it now.
    pub usable: bool,
    /// Its addresses (no port).
    pub addresses: Vec<String>,
}

/// The local interfaces, classified with `overrides` (see [`InterfaceOverride`]).
#[uniffi::export]
pub fn local_interfaces(
    overrides: Vec<InterfaceOverride>,
) -> Result<Vec<InterfaceInfo>, TandemError> {
    let net = NetConfig {
        port: 0,
        path: None,
        peer_timeout_ms: None,
        security: None,
        interface_kinds: overrides,
        second_local_address: None,
    }
    .to_engine()?;
    let list = tandem_net::interfaces(&net.kind_overrides).map_err(|e| TandemError::Network {
        message: format!("listing interfaces: {e}"),
    })?;
    Ok(list
        .iter()
        .map(|i| InterfaceInfo {
            name: i.name.clone(),
            index: i.index,
            kind: match i.kind {
                tandem_net::InterfaceKind::Loopback => None,
                tandem_net::InterfaceKind::WifiInfrastructure => Some(InterfaceKind::Wifi),
                tandem_net::InterfaceKind::Wired => Some(InterfaceKind::Wired),
                tandem_net::InterfaceKind::PeerToPeer => Some(InterfaceKind::PeerToPeer),
                tandem_net::InterfaceKind::Other => Some(InterfaceKind::Other),
            },
            usable: i.usable(),
            addresses: i.addrs.iter().map(|a| a.ip.to_string()).collect(),
        })
        .collect())
}

/// Network settings shared by both ends.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NetConfig {
    /// Local UDP port. Default 0: any free port.
    #[uniffi(default = 0)]
    pub port: u16,
    /// Path preference. Default `nil`: automatic.
    #[uniffi(default = None)]
    pub path: Option<PathPreference>,
    /// A peer silent this long is reported gone, ms. Default `nil`: 5000.
    #[uniffi(default = None)]
    pub peer_timeout_ms: Option<u32>,
    /// Keys. Default `nil`: in the clear (no pairing needed; anyone can watch).
    #[uniffi(default = None)]
    pub security: Option<SecurityConfig>,
    /// Interface classifications that replace the engine's guess. Default empty.
    #[uniffi(default)]
    pub interface_kinds: Vec<InterfaceOverride>,
    /// A listener's second socket, `ip:port` (`"0.0.0.0:5001"`): opened beside the first,
    /// what arrives there is the session's second path (the other end sends to both with
    /// `.addresses`). Only `.listen` uses it. Default `nil`: one socket.
    #[uniffi(default = None)]
    pub second_local_address: Option<String>,
}

impl NetConfig {
    pub(crate) fn to_engine(&self) -> Result<tandem::NetConfig, TandemError> {
        let mut net = tandem::NetConfig {
            port: self.port,
            ..tandem::NetConfig::default()
        };
        if let Some(a) = &self.second_local_address {
            net.second_local = Some(parse_address(a, "second_local_address")?);
        }
        if let Some(p) = self.path {
            net.path = p.into();
        }
        for o in &self.interface_kinds {
            if o.name.is_empty() {
                return Err(TandemError::invalid(
                    "an interface override has an empty name",
                ));
            }
            let kind = match o.kind {
                InterfaceKind::Wifi => tandem_net::InterfaceKind::WifiInfrastructure,
                InterfaceKind::Wired => tandem_net::InterfaceKind::Wired,
                InterfaceKind::PeerToPeer => tandem_net::InterfaceKind::PeerToPeer,
                InterfaceKind::Other => tandem_net::InterfaceKind::Other,
            };
            net.kind_overrides.insert(o.name.clone(), kind);
        }
        if let Some(ms) = self.peer_timeout_ms {
            if ms == 0 {
                return Err(TandemError::invalid("peer_timeout_ms must be above 0"));
            }
            net.peer_timeout = Duration::from_millis(u64::from(ms));
        }
        net.security = match &self.security {
            None => None,
            Some(s) => {
                let peer = match &s.peer_fingerprint {
                    None => None,
                    Some(f) => Some(s.trust.key_of(f).ok_or_else(|| {
                        TandemError::invalid(format!(
                            "peer_fingerprint {f} is not in the trust store"
                        ))
                    })?),
                };
                Some(tandem::Security {
                    identity: s.identity.engine().clone(),
                    trust: s.trust.engine(),
                    peer,
                })
            }
        };
        Ok(net)
    }
}

/// A sender's settings. Every field has a default: `SenderConfig()` is a 640×360, 60 fps
/// H.264 sender fed by the app.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SenderConfig {
    /// Picture width, pixels. Default 640.
    #[uniffi(default = 640)]
    pub width: u32,
    /// Picture height, pixels. Default 360.
    #[uniffi(default = 360)]
    pub height: u32,
    /// Frames per second. Default 60.
    #[uniffi(default = 60)]
    pub fps: u32,
    /// Starting bitrate, kbit/s (congestion control moves it). Default `nil`: the encoder's
    /// choice for the size.
    #[uniffi(default = None)]
    pub bitrate_kbps: Option<u32>,
    /// The encoder for pictures the sender is given (see [`VideoEncoder`]). Default `nil`:
    /// OpenH264 (H.264).
    #[uniffi(default = None)]
    pub encoder: Option<VideoEncoder>,
    /// Content tuning. Default `nil`: camera.
    #[uniffi(default = None)]
    pub content: Option<ContentKind>,
    /// Where pictures come from. Default `nil`: the app.
    #[uniffi(default = None)]
    pub source: Option<VideoSource>,
    /// How two paths share the datagrams (see [`PathPolicy`]). Default `nil`: adaptive.
    #[uniffi(default = None)]
    pub path_policy: Option<PathPolicy>,
    /// How often stats are delivered, ms. Default `nil`: 1000.
    #[uniffi(default = None)]
    pub stats_interval_ms: Option<u32>,
    /// The network. Default `NetConfig()`: any port, automatic path, in the clear.
    #[uniffi(default)]
    pub net: NetConfig,
}

impl SenderConfig {
    pub(crate) fn to_engine(&self) -> Result<tandem::SenderConfig, TandemError> {
        if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1 {
            return Err(TandemError::invalid(format!(
                "width and height must be even and above 0 (got {}×{})",
                self.width, self.height
            )));
        }
        if !(1..=240).contains(&self.fps) {
            return Err(TandemError::invalid(format!(
                "fps must be 1 to 240 (got {})",
                self.fps
            )));
        }
        let mut c = tandem::SenderConfig::default()
            .size(self.width, self.height)
            .fps(self.fps);
        c.video.bitrate_kbps = self.bitrate_kbps;
        if let Some(e) = self.encoder {
            c.video.encoder = e.into();
        }
        if let Some(k) = self.content {
            c.video.content = match k {
                ContentKind::Camera => tandem_codec::ContentKind::Camera,
                ContentKind::Screen => tandem_codec::ContentKind::Screen,
            };
        }
        if let Some(ms) = self.stats_interval_ms {
            c.stats_interval = interval(ms)?;
        }
        if let Some(p) = self.path_policy {
            c.path_policy = p.into();
        }
        c.net = self.net.to_engine()?;
        Ok(c)
    }
}

/// A receiver's settings. Every field has a default: `ReceiverConfig()` decodes AV1 and
/// H.264 with the latency policy.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReceiverConfig {
    /// Playout policy (changeable live). Default `nil`: latency.
    #[uniffi(default = None)]
    pub playout: Option<PlayoutPolicy>,
    /// What the delegate gets. Default `nil`: decoded pictures.
    #[uniffi(default = None)]
    pub output: Option<OutputMode>,
    /// How often stats are delivered, ms. Default `nil`: 1000.
    #[uniffi(default = None)]
    pub stats_interval_ms: Option<u32>,
    /// The network. Default `NetConfig()`: any port, automatic path, in the clear.
    #[uniffi(default)]
    pub net: NetConfig,
}

impl ReceiverConfig {
    pub(crate) fn to_engine(&self) -> Result<tandem::ReceiverConfig, TandemError> {
        let mut c = tandem::ReceiverConfig::default();
        if let Some(p) = self.playout {
            c.playout = p.into();
        }
        if let Some(o) = self.output {
            c.output = match o {
                OutputMode::Decoded => tandem::OutputMode::Decoded,
                OutputMode::Encoded => tandem::OutputMode::Encoded,
            };
        }
        if let Some(ms) = self.stats_interval_ms {
            c.stats_interval = interval(ms)?;
        }
        c.net = self.net.to_engine()?;
        Ok(c)
    }
}

fn interval(ms: u32) -> Result<Duration, TandemError> {
    if ms < 50 {
        return Err(TandemError::invalid(format!(
            "stats_interval_ms must be 50 or more (got {ms})"
        )));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// One address of a discovered peer and the local interface it was seen on.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerAddress {
    /// `ip:port` (`[v6%scope]:port` for link-local).
    pub address: String,
    /// Local interface index.
    pub interface_index: u32,
}

/// A peer found by [`crate::Discovery::browse`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DiscoveredPeer {
    /// The name users see.
    pub instance: String,
    /// Its host name (`name.local.`).
    pub host: String,
    /// Its session port.
    pub port: u16,
    /// Its key's fingerprint: compare with `TrustStore.peers()` to know a paired device.
    pub peer_id: String,
    /// The device name it gives.
    pub device_name: String,
    /// Its protocol version.
    pub protocol_version: u8,
    /// Whether it speaks this build's protocol version.
    pub compatible: bool,
    /// The codecs it accepts, preferred first.
    pub codecs: Vec<VideoCodec>,
    /// Its addresses, by interface.
    pub addresses: Vec<PeerAddress>,
}

impl DiscoveredPeer {
    pub(crate) fn from_engine(p: &tandem::Peer) -> DiscoveredPeer {
        DiscoveredPeer {
            instance: p.instance.clone(),
            host: p.host.clone(),
            port: p.port,
            peer_id: p.txt.peer_id.clone(),
            device_name: p.txt.device_name.clone(),
            protocol_version: p.txt.protocol_version,
            compatible: p.compatible(),
            codecs: p
                .txt
                .codecs
                .iter()
                .filter_map(|c| VideoCodec::from_engine(*c))
                .collect(),
            addresses: p
                .addresses
                .iter()
                .map(|a| PeerAddress {
                    address: a.addr.to_string(),
                    interface_index: a.interface,
                })
                .collect(),
        }
    }

    pub(crate) fn to_engine(&self) -> Result<tandem::Peer, TandemError> {
        let addresses = self
            .addresses
            .iter()
            .map(|a| {
                Ok(tandem_net::PeerAddress {
                    addr: parse_address(&a.address, "peer address")?,
                    interface: a.interface_index,
                })
            })
            .collect::<Result<Vec<_>, TandemError>>()?;
        Ok(tandem::Peer {
            instance: self.instance.clone(),
            host: self.host.clone(),
            port: self.port,
            txt: tandem_net::PeerTxt {
                protocol_version: self.protocol_version,
                peer_id: self.peer_id.clone(),
                device_name: self.device_name.clone(),
                codecs: self.codecs.iter().map(|c| (*c).into()).collect(),
            },
            addresses,
        })
    }
}

/// Where the other end is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Remote {
    /// At this `ip:port`.
    Address {
        /// `ip:port`.
        address: String,
    },
    /// At two addresses, one per path: the session's first path goes to `first`, its
    /// second to `second`, each from a socket on the interface that reaches it (the path
    /// preference does not apply). The other end listens with two sockets
    /// (`NetConfig.secondLocalAddress`), or with `.both`.
    Addresses {
        /// The first path's `ip:port`.
        first: String,
        /// The second path's `ip:port`.
        second: String,
    },
    /// Found by discovery; the path preference picks its address.
    Discovered {
        /// The peer.
        peer: DiscoveredPeer,
    },
    /// Wait to be reached (listen, or advertise and wait).
    Listen,
}

impl Remote {
    pub(crate) fn to_engine(&self) -> Result<tandem::Remote, TandemError> {
        Ok(match self {
            Remote::Address { address } => {
                tandem::Remote::Address(parse_address(address, "remote address")?)
            }
            Remote::Addresses { first, second } => tandem::Remote::Addresses {
                first: parse_address(first, "first address")?,
                second: parse_address(second, "second address")?,
            },
            Remote::Discovered { peer } => tandem::Remote::Discovered(peer.to_engine()?),
            Remote::Listen => tandem::Remote::Listen,
        })
    }
}

pub(crate) fn parse_address(s: &str, what: &str) -> Result<SocketAddr, TandemError> {
    s.parse().map_err(|_| {
        TandemError::invalid(format!(
            "{what} `{s}` is not ip:port (for example 192.168.1.20:7000 or [fe80::1%4]:7000)"
        ))
    })
}

/// Latency percentiles over an interval, ms.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Where one path of a two-path session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PathState {
    /// Not open (not yet, or lost).
    Closed,
    /// Answering: it may carry traffic alone.
    Live,
    /// Silent a little too long, near a predicted switch, or not learned yet: worth a copy.
    Uncertain,
    /// Inside a predicted dead window (sender).
    Dead,
    /// Never heard, or silent past 40 ms with no window predicted.
    Silent,
}

impl From<tandem::PathState> for PathState {
    fn from(s: tandem::PathState) -> Self {
        match s {
            tandem::PathState::Closed => PathState::Closed,
            tandem::PathState::Live => PathState::Live,
            tandem::PathState::Uncertain => PathState::Uncertain,
            tandem::PathState::Dead => PathState::Dead,
            tandem::PathState::Silent => PathState::Silent,
        }
    }
}

/// One path of a session over two (the engine's `PathStats`): totals from the start, rates
/// over the interval.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PathStats {
    /// 0 (the first path: infrastructure, the first address or transport) or 1.
    pub index: u8,
    /// The peer's address on it, once known ("app transport" over one).
    pub peer: Option<String>,
    /// Where it stands: on the sender, its scheduler's view; on the receiver, from how
    /// long ago it last brought a datagram.
    pub state: PathState,
    /// Datagrams sent on it, total.
    pub datagrams_sent: u64,
    /// Bytes sent on it (as they left), total.
    pub bytes_sent: u64,
    /// Datagrams received on it, total.
    pub datagrams_received: u64,
    /// Bytes received on it, total.
    pub bytes_received: u64,
    /// Datagrams received on it that the other path had brought already (receiver), total.
    pub duplicates_received: u64,
    /// Sent over the interval, kbit/s.
    pub sent_kbps: f64,
    /// Received over the interval, kbit/s.
    pub received_kbps: f64,
    /// Smoothed RTT of its probes, ms (sender).
    pub rtt_ms: Option<f64>,
    /// Smallest RTT of its probes, ms (sender).
    pub min_rtt_ms: Option<f64>,
    /// RTT variation of its probes, ms (sender).
    pub rtt_jitter_ms: f64,
    /// Probes never answered, percent (sender).
    pub probe_loss_pct: f64,
    /// Silences over 20 ms seen (sender), total.
    pub dead_windows: u64,
    /// The period its dead windows repeat with, ms, once learned (sender).
    pub dead_window_period_ms: Option<f64>,
    /// How long ago it last brought a datagram, ms.
    pub silent_ms: Option<f64>,
    /// Over two app transports: why this path's transport failed, if it did (the session
    /// goes on over the other).
    pub failure: Option<String>,
}

impl From<&tandem::PathStats> for PathStats {
    fn from(p: &tandem::PathStats) -> PathStats {
        PathStats {
            index: u8::try_from(p.index).unwrap_or(u8::MAX),
            peer: p.peer.clone(),
            state: p.state.into(),
            datagrams_sent: p.datagrams_sent,
            bytes_sent: p.bytes_sent,
            datagrams_received: p.datagrams_received,
            bytes_received: p.bytes_received,
            duplicates_received: p.duplicates_received,
            sent_kbps: p.sent_kbps,
            received_kbps: p.received_kbps,
            rtt_ms: p.rtt_ms,
            min_rtt_ms: p.min_rtt_ms,
            rtt_jitter_ms: p.rtt_jitter_ms,
            probe_loss_pct: p.probe_loss_pct,
            dead_windows: p.dead_windows,
            dead_window_period_ms: p.dead_window_period_ms,
            silent_ms: p.silent_ms,
            failure: None,
        }
    }
}

/// One snapshot of a pipeline (the engine's `Stats`; see its docs for each field).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Stats {
    /// `sender` or `receiver`.
    pub role: String,
    /// Seconds since start.
    pub elapsed_s: f64,
    /// The peer's address, once known.
    pub peer: Option<String>,
    /// What is wrong, if anything.
    pub error: Option<String>,
    /// What strangers' datagrams said (another protocol version, an unpaired device's
    /// handshake), unauthenticated, naming the source: to show, never to stop for.
    pub warnings: Vec<String>,
    /// The codec of the newest frame sent (sender) or received (receiver): `AV1`, `H.264`,
    /// `HEVC`; `nil` before the first frame.
    pub codec: Option<String>,
    /// Frames sent or shown per second.
    pub fps: f64,
    /// Encoded video sent (sender) or received (receiver) over the interval, kbit/s.
    pub bitrate_kbps: f64,
    /// Congestion control's target, kbit/s: the sender's own, or (receiver) as the
    /// sender's latest ping carried it, 0 before one arrived.
    pub target_kbps: u64,
    /// Video bitrate that reached the receiver, kbit/s: on the receiver, what it received
    /// (the bitrate above); on the sender, the mean receive rate of the receiver's reports
    /// in the interval (absent when none came).
    pub delivered_kbps: Option<f64>,
    /// Round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Loss before repair, percent.
    pub loss_pct: f64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Frame delay variation, ms.
    pub frame_jitter_ms: f64,
    /// Playout delay added, ms.
    pub playout_delay_ms: f64,
    /// One-way delay estimate, ms.
    pub one_way_ms: Option<f64>,
    /// Encode time (sender).
    pub encode_ms: Option<LatencyMs>,
    /// Decode time (receiver).
    pub decode_ms: Option<LatencyMs>,
    /// Glass-to-glass latency from the pixel code (receiver, test pattern).
    pub g2g_ms: Option<LatencyMs>,
    /// Frames sent (sender), total.
    pub frames_sent: u64,
    /// Frames shown (receiver), total.
    pub frames_shown: u64,
    /// Frames shown late, total.
    pub frames_late: u64,
    /// Frames never shown, total.
    pub frames_skipped: u64,
    /// Gaps over 100 ms, total.
    pub freezes: u64,
    /// Radio stalls recognised and kept out of congestion control (receiver), total.
    pub stalls: u64,
    /// The period the recent stalls repeat with, ms, once known (receiver).
    pub stall_period_ms: Option<f64>,
    /// Captures the encoder was too busy for, total.
    pub captures_skipped: u64,
    /// Keyframes, total.
    pub keyframes: u64,
    /// Receiver restarts after a sender restart, total.
    pub restarts: u64,
    /// Whether datagrams are authenticated and encrypted.
    pub secure: bool,
    /// The authenticated peer's fingerprint.
    pub peer_id: Option<String>,
    /// Hostile datagrams dropped, total.
    pub dropped_hostile: u64,
    /// Unpaired devices refused, total.
    pub unpaired_refused: u64,
    /// Each path of a session over two, the first path first; empty over one.
    pub paths: Vec<PathStats>,
    /// How the sender spreads datagrams over two paths (sender, two paths only).
    pub path_policy: Option<PathPolicy>,
}

impl From<&tandem::Stats> for Stats {
    fn from(s: &tandem::Stats) -> Stats {
        let lat = |l: &Option<tandem::LatencyMs>| {
            l.map(|l| LatencyMs {
                p50: l.p50,
                p95: l.p95,
                p99: l.p99,
            })
        };
        Stats {
            role: s.role.to_owned(),
            elapsed_s: s.elapsed_s,
            peer: s.peer.clone(),
            error: s.error.clone(),
            warnings: s.warnings.clone(),
            codec: s.codec.clone(),
            fps: s.fps,
            bitrate_kbps: s.bitrate_kbps,
            target_kbps: s.target_kbps,
            delivered_kbps: s.delivered_kbps,
            rtt_ms: s.rtt_ms,
            loss_pct: s.loss_pct,
            jitter_ms: s.jitter_ms,
            frame_jitter_ms: s.frame_jitter_ms,
            playout_delay_ms: s.playout_delay_ms,
            one_way_ms: s.one_way_ms,
            encode_ms: lat(&s.encode_ms),
            decode_ms: lat(&s.decode_ms),
            g2g_ms: lat(&s.g2g_ms),
            frames_sent: s.frames_sent,
            frames_shown: s.frames_shown,
            frames_late: s.frames_late,
            frames_skipped: s.frames_skipped,
            freezes: s.freezes,
            stalls: s.stalls,
            stall_period_ms: s.stall_period_ms,
            captures_skipped: s.captures_skipped,
            keyframes: s.keyframes,
            restarts: s.restarts,
            secure: s.secure,
            peer_id: s.peer_id.clone(),
            dropped_hostile: s.dropped_hostile,
            unpaired_refused: s.unpaired_refused,
            paths: s.paths.iter().map(PathStats::from).collect(),
            path_policy: s
                .path_policy
                .as_deref()
                .and_then(|p| p.parse::<tandem::PathPolicy>().ok())
                .map(PathPolicy::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetConfig {
        NetConfig {
            port: 0,
            path: None,
            peer_timeout_ms: None,
            security: None,
            interface_kinds: Vec::new(),
            second_local_address: None,
        }
    }

    /// 640×360 at 60 fps with `encoder`, every other option unset.
    fn sender(encoder: Option<VideoEncoder>) -> SenderConfig {
        SenderConfig {
            width: 640,
            height: 360,
            fps: 60,
            bitrate_kbps: None,
            encoder,
            content: None,
            source: None,
            path_policy: None,
            stats_interval_ms: None,
            net: net(),
        }
    }

    #[test]
    fn unset_fields_are_the_engine_defaults() {
        let s = sender(None).to_engine().expect("valid");
        let mut engine = tandem::SenderConfig::default();
        engine.net.security = None;
        assert_eq!(s, engine);
        let r = ReceiverConfig {
            playout: None,
            output: None,
            stats_interval_ms: None,
            net: net(),
        }
        .to_engine()
        .expect("valid");
        let mut engine = tandem::ReceiverConfig::default();
        engine.net.security = None;
        assert_eq!(r, engine);
    }

    #[test]
    fn bad_values_are_named() {
        let mut s = SenderConfig {
            width: 641,
            height: 360,
            fps: 60,
            bitrate_kbps: None,
            encoder: None,
            content: None,
            source: None,
            path_policy: None,
            stats_interval_ms: None,
            net: net(),
        };
        let e = s.to_engine().expect_err("odd width").to_string();
        assert!(e.contains("641×360"), "{e}");
        s.width = 640;
        s.fps = 0;
        assert!(s.to_engine().expect_err("fps").to_string().contains("fps"));
        let e = Remote::Address {
            address: "localhost".into(),
        }
        .to_engine()
        .expect_err("no port")
        .to_string();
        assert!(e.contains("`localhost` is not ip:port"), "{e}");
        s.fps = 60;
        s.path_policy = Some(PathPolicy::Duplicate);
        s.net.path = Some(PathPreference::Both);
        s.net.second_local_address = Some("nowhere".into());
        let e = s.to_engine().expect_err("second address").to_string();
        assert!(e.contains("second_local_address `nowhere`"), "{e}");
        s.net.second_local_address = Some("127.0.0.1:0".into());
        let engine = s.to_engine().expect("valid");
        assert_eq!(engine.path_policy, tandem::PathPolicy::Duplicate);
        assert_eq!(engine.net.path, tandem::PathPreference::Both);
        assert_eq!(
            engine.net.second_local,
            Some("127.0.0.1:0".parse().expect("addr"))
        );
        let two = Remote::Addresses {
            first: "127.0.0.1:5000".into(),
            second: "127.0.0.1:x".into(),
        };
        let e = two.to_engine().expect_err("second").to_string();
        assert!(e.contains("second address `127.0.0.1:x`"), "{e}");
        for p in [
            PathPolicy::Duplicate,
            PathPolicy::PrimaryBackup,
            PathPolicy::Adaptive,
        ] {
            assert_eq!(PathPolicy::from(tandem::PathPolicy::from(p)), p);
        }
    }

    #[test]
    fn each_encoder_reaches_the_engine_with_its_bitstream() {
        use tandem_codec::Bitstream;
        for (choice, kind, bitstream) in [
            (VideoEncoder::Aom, tandem::EncoderKind::Aom, Bitstream::Av1),
            (
                VideoEncoder::Rav1e,
                tandem::EncoderKind::Rav1e,
                Bitstream::Av1,
            ),
            (
                VideoEncoder::OpenH264,
                tandem::EncoderKind::OpenH264,
                Bitstream::H264,
            ),
        ] {
            let s = sender(Some(choice)).to_engine().expect("valid");
            assert_eq!(s.video.encoder, kind);
            assert_eq!(s.video.encoder.bitstream(), bitstream);
        }
    }

    #[test]
    fn interface_overrides_reach_the_engine() {
        let mut n = net();
        n.interface_kinds = vec![InterfaceOverride {
            name: "en0".into(),
            kind: InterfaceKind::Wifi,
        }];
        let engine = n.to_engine().expect("valid");
        assert_eq!(
            engine.kind_overrides.get("en0"),
            Some(&tandem_net::InterfaceKind::WifiInfrastructure)
        );
        n.interface_kinds[0].name.clear();
        assert!(n.to_engine().is_err());
    }

    #[test]
    fn policies_convert_with_their_durations() {
        assert_eq!(
            tandem::PlayoutPolicy::from(PlayoutPolicy::Fixed { delay_ms: 80 }),
            tandem::PlayoutPolicy::Fixed(Duration::from_millis(80))
        );
        assert_eq!(
            tandem::PlayoutPolicy::from(PlayoutPolicy::Smooth {
                min_ms: 20,
                max_ms: 10
            }),
            tandem::PlayoutPolicy::Smooth {
                min: Duration::from_millis(20),
                max: Duration::from_millis(20)
            }
        );
    }
}
