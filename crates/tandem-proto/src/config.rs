//! Endpoint configuration: small explicit structs with documented, tested defaults.

use std::time::Duration;

use crate::fec::FecMode;
use crate::multipath::PathPolicy;
use crate::playout::PlayoutPolicy;

/// Sender configuration. `SenderConfig::new(session_id)` gives the defaults listed per field.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderConfig {
    /// Session id written on every datagram. Default: the value passed to `new`.
    pub session_id: u32,
    /// Largest UDP payload we emit; frames are split to fit. Default 1200 bytes, which
    /// fits any IPv6 path (minimum MTU 1280) without IP fragmentation.
    pub max_datagram_size: usize,
    /// Fraction of the frame interval over which a frame's datagrams are spread (never
    /// faster than the path-capacity estimate). Default 0.1 (1.7 ms at 60 fps); the
    /// measurements behind it are in [`crate::pacer`].
    pub spread_fraction: f64,
    /// Frame interval assumed until capture times show the real one. Default 1/60 s.
    pub frame_interval_hint: Duration,
    /// Path capacity assumed before the receiver reports any. Default 100 Mbit/s.
    pub initial_capacity_bps: u64,
    /// Initial target bitrate. Default 8 Mbit/s.
    pub start_bitrate_bps: u64,
    /// Lowest target the congestion controller may set. Default 300 kbit/s.
    pub min_bitrate_bps: u64,
    /// Highest target the congestion controller may set. Default 8 Mbit/s.
    pub max_bitrate_bps: u64,
    /// Parity policy. Default [`FecMode::Adaptive`].
    pub fec: FecMode,
    /// Fragments kept for retransmission. Default 4096 (≈ 4.8 MB at full size).
    pub history_packets: usize,
    /// Oldest fragment worth retransmitting. Default 1 s.
    pub history_max_age: Duration,
    /// Shortest gap between two keyframe-request events surfaced to the app. Default 100 ms.
    pub keyframe_request_min_interval: Duration,
    /// Most data the pacer may hold, as time to send it; a frame beyond it is refused
    /// ([`crate::SendError::QueueFull`]). Default 1 s.
    pub max_queue_delay: Duration,
    /// How datagrams are spread once a second path opens ([`crate::multipath`]); change it
    /// live with [`crate::Sender::set_path_policy`]. Default [`PathPolicy::Adaptive`].
    pub path_policy: PathPolicy,
}

impl SenderConfig {
    /// Defaults for `session_id`.
    pub fn new(session_id: u32) -> Self {
        Self {
            session_id,
            max_datagram_size: 1200,
            spread_fraction: 0.1,
            frame_interval_hint: Duration::from_micros(16_667),
            initial_capacity_bps: 100_000_000,
            start_bitrate_bps: 8_000_000,
            min_bitrate_bps: 300_000,
            max_bitrate_bps: 8_000_000,
            fec: FecMode::Adaptive,
            history_packets: 4096,
            history_max_age: Duration::from_secs(1),
            keyframe_request_min_interval: Duration::from_millis(100),
            max_queue_delay: Duration::from_secs(1),
            path_policy: PathPolicy::Adaptive,
        }
    }
}

/// Receiver configuration. `ReceiverConfig::new(session_id)` gives the defaults per field.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverConfig {
    /// Only datagrams of this session are accepted. Default: the value passed to `new`.
    pub session_id: u32,
    /// How frames are scheduled for display. Default [`PlayoutPolicy::Latency`].
    pub playout: PlayoutPolicy,
    /// Request retransmission of missing fragments. Default true.
    pub nack: bool,
    /// Rebuild fragments from parity shards. Default true.
    pub fec: bool,
    /// Receiver report period. Default 50 ms.
    pub report_interval: Duration,
    /// Frames under reassembly at once. Default 64.
    pub max_frames_in_flight: usize,
    /// Bytes held in all: half for reassembly, half for complete frames waiting on a
    /// predecessor or in playout. Default 8 MiB.
    pub max_buffered_bytes: usize,
    /// Times one sequence number is NACKed before it is given up. Default 10.
    pub max_nack_retries: u32,
    /// Shortest wait for a missing frame before skipping to the next keyframe; the real wait
    /// is `max(this, 3·RTT + 20 ms)`. Default 50 ms.
    pub min_frame_timeout: Duration,
    /// Shortest gap between repeated keyframe requests. Default 100 ms.
    pub keyframe_request_interval: Duration,
}

impl ReceiverConfig {
    /// Defaults for `session_id`.
    pub fn new(session_id: u32) -> Self {
        Self {
            session_id,
            playout: PlayoutPolicy::Latency,
            nack: true,
            fec: true,
            report_interval: Duration::from_millis(50),
            max_frames_in_flight: 64,
            max_buffered_bytes: 8 << 20,
            max_nack_retries: 10,
            min_frame_timeout: Duration::from_millis(50),
            keyframe_request_interval: Duration::from_millis(100),
        }
    }

    /// The no-recovery baseline: no NACK, no FEC.
    pub fn without_recovery(mut self) -> Self {
        self.nack = false;
        self.fec = false;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_defaults_are_as_documented() {
        let c = SenderConfig::new(9);
        assert_eq!(c.session_id, 9);
        assert_eq!(c.max_datagram_size, 1200);
        assert_eq!(c.spread_fraction, 0.1);
        assert_eq!(c.frame_interval_hint, Duration::from_micros(16_667));
        assert_eq!(c.initial_capacity_bps, 100_000_000);
        assert_eq!(
            (c.start_bitrate_bps, c.min_bitrate_bps, c.max_bitrate_bps),
            (8_000_000, 300_000, 8_000_000)
        );
        assert_eq!(c.fec, FecMode::Adaptive);
        assert_eq!(
            (c.history_packets, c.history_max_age),
            (4096, Duration::from_secs(1))
        );
        assert_eq!(c.keyframe_request_min_interval, Duration::from_millis(100));
        assert_eq!(c.max_queue_delay, Duration::from_secs(1));
        assert_eq!(c.path_policy, PathPolicy::Adaptive);
    }

    #[test]
    fn receiver_defaults_are_as_documented() {
        let c = ReceiverConfig::new(9);
        assert_eq!(c.session_id, 9);
        assert_eq!(c.playout, PlayoutPolicy::Latency);
        assert!(c.nack && c.fec);
        assert_eq!(c.report_interval, Duration::from_millis(50));
        assert_eq!(
            (c.max_frames_in_flight, c.max_buffered_bytes),
            (64, 8 << 20)
        );
        assert_eq!(c.max_nack_retries, 10);
        assert_eq!(c.min_frame_timeout, Duration::from_millis(50));
        assert_eq!(c.keyframe_request_interval, Duration::from_millis(100));
        let b = c.without_recovery();
        assert!(!b.nack && !b.fec);
    }
}
