//! The engine's settings: what the video is, how the network is reached, and how frames are
//! played out. Each struct's `new` (or `Default`) documents its defaults, and a unit test
//! pins them; builder methods change one field at a time.

use std::time::Duration;

use tandem_codec::{ContentKind, EncoderKind};
use tandem_net::{KindOverrides, PathPreference, TrafficClass};
use tandem_proto::{PathPolicy, PlayoutPolicy};

/// The session id both ends use unless told otherwise. Any shared value works; it only
/// separates Tandem sessions that happen to share a port (pairing will derive one per
/// pair).
pub const DEFAULT_SESSION_ID: u32 = 0x7A4D_0001;

/// How the network is reached, for either end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Local UDP port; 0 lets the system choose. Default 0.
    pub port: u16,
    /// Local address to bind when listening on every interface (automatic path); `None`
    /// for all IPv4 addresses. A path preference or a known peer chooses the address
    /// itself. Default `None`.
    pub bind_ip: Option<std::net::IpAddr>,
    /// Which kind of link to use; [`PathPreference::Both`] spans two at once (see
    /// [`crate::connect`]). Default [`PathPreference::Automatic`].
    pub path: PathPreference,
    /// A listener's second socket, for a session over two explicit paths: it is opened at
    /// this address beside the first, and what arrives there is path 1 (the other end
    /// sends to both with [`crate::Remote::Addresses`]). Only [`crate::Remote::Listen`]
    /// uses it. Default `None`.
    pub second_local: Option<std::net::SocketAddr>,
    /// Interface classifications the app knows better than the system. Default none.
    pub kind_overrides: KindOverrides,
    /// What the traffic is, for the network's queueing. Default
    /// [`TrafficClass::InteractiveVideo`].
    pub traffic: TrafficClass,
    /// Session id. Default [`DEFAULT_SESSION_ID`].
    pub session_id: u32,
    /// How long the peer may stay silent before the session reports it gone. Default 5 s:
    /// a hundred times the protocol's 50 ms report interval, past any Wi-Fi stall.
    pub peer_timeout: Duration,
    /// Identity and paired peers: every datagram is then authenticated and encrypted, and
    /// only paired peers get a session. `None` streams in the clear, for benchmarks and
    /// simulations on one trusted host; the apps always set it. Default `None`.
    pub security: Option<crate::security::Security>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            port: 0,
            bind_ip: None,
            path: PathPreference::Automatic,
            second_local: None,
            kind_overrides: KindOverrides::new(),
            traffic: TrafficClass::InteractiveVideo,
            session_id: DEFAULT_SESSION_ID,
            peer_timeout: Duration::from_secs(5),
            security: None,
        }
    }
}

/// The video a sender encodes.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    /// Width in pixels. Default 640.
    pub width: u32,
    /// Height in pixels. Default 360.
    pub height: u32,
    /// Frames per second. Default 60.
    pub fps: u32,
    /// Encoder. Default [`EncoderKind::OpenH264`]: H.264, the lowest glass-to-glass latency
    /// here at an equal or better picture than libaom's AV1 at the same bitrate, and what
    /// iPhones and iPads decode in hardware (the README's "Which codec" gives the figures).
    /// [`EncoderKind::Aom`] sends AV1 instead. A receiver decodes either.
    pub encoder: EncoderKind,
    /// Starting bitrate; `None` for the codec's default for the size and rate (0.1 bit per
    /// pixel per frame). Congestion control moves it from there. Default `None`.
    pub bitrate_kbps: Option<u32>,
    /// Content tuning. Default [`ContentKind::Camera`].
    pub content: ContentKind,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            width: 640,
            height: 360,
            fps: 60,
            encoder: EncoderKind::OpenH264,
            bitrate_kbps: None,
            content: ContentKind::Camera,
        }
    }
}

/// A sender's settings. [`SenderConfig::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderConfig {
    /// The video. Default [`VideoConfig::default`].
    pub video: VideoConfig,
    /// The network. Default [`NetConfig::default`].
    pub net: NetConfig,
    /// How a session over two paths spreads its datagrams (every one on both, the first
    /// path with the second as backup, or each on the path predicted to be live; see
    /// `tandem_proto::multipath`), changeable live ([`crate::Sender::set_path_policy`]).
    /// A single-path session ignores it. Default [`PathPolicy::Adaptive`].
    pub path_policy: PathPolicy,
    /// How often a [`crate::Stats`] snapshot is published. Default 1 s.
    pub stats_interval: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            video: VideoConfig::default(),
            net: NetConfig::default(),
            path_policy: PathPolicy::Adaptive,
            stats_interval: Duration::from_secs(1),
        }
    }
}

impl SenderConfig {
    /// Picture size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.video.width = width;
        self.video.height = height;
        self
    }

    /// Frame rate.
    pub fn fps(mut self, fps: u32) -> Self {
        self.video.fps = fps;
        self
    }

    /// Encoder.
    pub fn encoder(mut self, encoder: EncoderKind) -> Self {
        self.video.encoder = encoder;
        self
    }

    /// Starting bitrate.
    pub fn bitrate_kbps(mut self, kbps: u32) -> Self {
        self.video.bitrate_kbps = Some(kbps);
        self
    }

    /// Path preference.
    pub fn path(mut self, path: PathPreference) -> Self {
        self.net.path = path;
        self
    }

    /// Local UDP port.
    pub fn port(mut self, port: u16) -> Self {
        self.net.port = port;
        self
    }

    /// How two paths share the datagrams.
    pub fn path_policy(mut self, policy: PathPolicy) -> Self {
        self.path_policy = policy;
        self
    }
}

/// What a receiver hands its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Decoded pictures (AV1 through dav1d). The default.
    #[default]
    Decoded,
    /// The encoded frames as they arrived, for an app that decodes itself (VideoToolbox).
    Encoded,
}

/// A receiver's settings. [`ReceiverConfig::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// The network. Default [`NetConfig::default`].
    pub net: NetConfig,
    /// Playout policy, changeable live. Default [`PlayoutPolicy::Latency`].
    pub playout: PlayoutPolicy,
    /// What the sink gets. Default [`OutputMode::Decoded`].
    pub output: OutputMode,
    /// Decoder threads. Default 2: dav1d decodes a 720p frame in about 3.5 ms on two, and
    /// more threads add frame delay without cutting latency.
    pub decoder_threads: u32,
    /// When datagrams keep arriving but no frame has been delivered for this long, the
    /// receiver starts over (the sender restarted, or its stream is beyond repair) and asks
    /// for a keyframe. Default 1 s.
    pub restart_after: Duration,
    /// How often a [`crate::Stats`] snapshot is published. Default 1 s.
    pub stats_interval: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            net: NetConfig::default(),
            playout: PlayoutPolicy::Latency,
            output: OutputMode::Decoded,
            decoder_threads: 2,
            restart_after: Duration::from_secs(1),
            stats_interval: Duration::from_secs(1),
        }
    }
}

impl ReceiverConfig {
    /// Playout policy.
    pub fn playout(mut self, policy: PlayoutPolicy) -> Self {
        self.playout = policy;
        self
    }

    /// Output mode.
    pub fn output(mut self, output: OutputMode) -> Self {
        self.output = output;
        self
    }

    /// Path preference.
    pub fn path(mut self, path: PathPreference) -> Self {
        self.net.path = path;
        self
    }

    /// Local UDP port.
    pub fn port(mut self, port: u16) -> Self {
        self.net.port = port;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let s = SenderConfig::default();
        assert_eq!((s.video.width, s.video.height, s.video.fps), (640, 360, 60));
        assert_eq!(s.video.encoder, EncoderKind::OpenH264);
        assert_eq!(s.video.bitrate_kbps, None);
        assert_eq!(s.video.content, ContentKind::Camera);
        assert_eq!(s.stats_interval, Duration::from_secs(1));
        assert_eq!(s.path_policy, PathPolicy::Adaptive);
        let n = NetConfig::default();
        assert_eq!((n.port, n.bind_ip, n.second_local), (0, None, None));
        assert_eq!(n.path, PathPreference::Automatic);
        assert!(n.kind_overrides.is_empty());
        assert_eq!(n.traffic, TrafficClass::InteractiveVideo);
        assert_eq!(n.session_id, DEFAULT_SESSION_ID);
        assert_eq!(n.peer_timeout, Duration::from_secs(5));
        assert_eq!(n.security, None);
        let r = ReceiverConfig::default();
        assert_eq!(r.playout, PlayoutPolicy::Latency);
        assert_eq!(r.output, OutputMode::Decoded);
        assert_eq!(r.decoder_threads, 2);
        assert_eq!(r.restart_after, Duration::from_secs(1));
        assert_eq!(r.stats_interval, Duration::from_secs(1));
        assert_eq!(r.net, NetConfig::default());
        let b = SenderConfig::default()
            .size(1280, 720)
            .fps(30)
            .bitrate_kbps(4000)
            .encoder(EncoderKind::Rav1e)
            .path(PathPreference::PeerToPeer)
            .path_policy(PathPolicy::Duplicate)
            .port(5000);
        assert_eq!(b.path_policy, PathPolicy::Duplicate);
        assert_eq!(
            (b.video.width, b.video.height, b.video.fps),
            (1280, 720, 30)
        );
        assert_eq!(b.video.bitrate_kbps, Some(4000));
        assert_eq!(b.video.encoder, EncoderKind::Rav1e);
        assert_eq!((b.net.path, b.net.port), (PathPreference::PeerToPeer, 5000));
    }
}
