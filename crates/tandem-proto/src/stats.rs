//! Statistics snapshots. Plain data: cheap to clone, safe to hand to another thread.

use std::time::Duration;

use crate::packet::{BandwidthUsage, ParseError, ReceiverReport};

/// Nearest-rank percentile of `sorted` (ascending) at `q` in 0–1; 0 for no values. The one
/// definition every Tandem report uses.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Datagrams rejected before reaching protocol state, by cause.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Failed to parse (length, magic, type, flags, counts).
    pub malformed: u64,
    /// Belonged to another session.
    pub wrong_session: u64,
    /// Tandem datagram of another protocol version.
    pub unsupported_version: u64,
    /// A valid type this endpoint never receives (media at a sender, NACK at a receiver).
    pub unexpected_type: u64,
    /// Pong answering no ping of ours.
    pub unmatched_pongs: u64,
    /// Fragments or shards that contradicted their frame or fell outside the id window.
    pub rejected_fragments: u64,
}

impl DropCounters {
    /// Counts one rejected datagram under its parse error.
    pub fn count(&mut self, e: &ParseError) {
        match e {
            ParseError::WrongSession { .. } => self.wrong_session += 1,
            ParseError::UnsupportedVersion(_) => self.unsupported_version += 1,
            _ => self.malformed += 1,
        }
    }

    /// All rejected datagrams.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.wrong_session
            + self.unsupported_version
            + self.unexpected_type
            + self.unmatched_pongs
            + self.rejected_fragments
    }
}

/// Sender statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SenderStats {
    /// Frames accepted by `send_frame`.
    pub frames_sent: u64,
    /// Of which keyframes.
    pub keyframes_sent: u64,
    /// Encoded frame bytes accepted.
    pub media_bytes: u64,
    /// Frame bytes copied on their way out, on each fragment's first transmission: the one
    /// copy between the frame handed to `send_frame` and the socket (header and fragment
    /// written straight into the driver's buffer, which the security layer seals in
    /// place). Equals `media_bytes` once every frame accepted has left the pacer.
    pub media_bytes_copied: u64,
    /// Fragment bytes copied into retransmissions (each from the frame, again once).
    pub retransmitted_bytes_copied: u64,
    /// Bytes copied for parity: each fragment of a frame given parity into its shard
    /// buffer, each parity shard out of the Reed-Solomon encoder, and each shard into its
    /// datagram (the library's own working copies are not counted). Zero while no frame
    /// gets parity.
    pub parity_bytes_copied: u64,
    /// Datagrams emitted (all types).
    pub datagrams_sent: u64,
    /// Bytes emitted (UDP payload).
    pub bytes_sent: u64,
    /// Parity shards generated.
    pub parity_packets: u64,
    /// Frames given parity because they were sent into a forecast radio stall.
    pub stall_protected_frames: u64,
    /// Fragments retransmitted on NACK.
    pub retransmissions: u64,
    /// Fragments sent again on the other path when the one they went on fell silent.
    pub reinjected: u64,
    /// NACKed numbers not retransmitted (unknown, too old, too recent).
    pub nack_misses: u64,
    /// NACK datagrams received.
    pub nacks_received: u64,
    /// Keyframe requests received (before rate limiting).
    pub keyframe_requests_received: u64,
    /// Receiver reports received.
    pub reports_received: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Current congestion-control target.
    pub target_bitrate_bps: u64,
    /// Pacing rate used for the latest frame.
    pub pacing_rate_bps: u64,
    /// Current parity ratio.
    pub fec_ratio: f32,
    /// Smoothed RTT.
    pub rtt: Option<Duration>,
    /// Datagrams waiting in the pacer.
    pub queued_datagrams: usize,
    /// Fragments held for retransmission.
    pub history_packets: usize,
    /// The latest receiver report.
    pub last_report: Option<ReceiverReport>,
    /// Rejected datagrams.
    pub drops: DropCounters,
    /// How datagrams are spread over two paths.
    pub path_policy: crate::PathPolicy,
    /// Each path: what it carried each way, its probes' RTT and loss, its dead windows.
    pub paths: [crate::PathStats; crate::multipath::MAX_PATHS],
}

/// Receiver statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceiverStats {
    /// Datagrams received (all, including rejected).
    pub datagrams_received: u64,
    /// Bytes received (UDP payload).
    pub bytes_received: u64,
    /// Media fragments received (including retransmissions and duplicates).
    pub media_packets: u64,
    /// Parity shards received.
    pub parity_packets: u64,
    /// Fragments or shards already held.
    pub duplicates: u64,
    /// Fragments of frames already delivered or given up.
    pub stale_packets: u64,
    /// Media sequence numbers detected missing (reordered ones count too).
    pub packets_lost: u64,
    /// Missing numbers that later arrived (retransmitted or reordered).
    pub packets_repaired: u64,
    /// NACK datagrams sent.
    pub nacks_sent: u64,
    /// Sequence numbers listed in NACKs (with retries).
    pub nacked_seqs: u64,
    /// Fragments rebuilt from parity.
    pub fec_fragments_recovered: u64,
    /// Frames completed only thanks to parity.
    pub frames_fec_recovered: u64,
    /// Frames fully reassembled.
    pub frames_completed: u64,
    /// Bytes of the frames fully reassembled.
    pub frame_bytes_completed: u64,
    /// Fragment bytes copied into reassembled frames: the one copy between the datagrams
    /// the driver hands in and the frame (sealed datagrams open in their own buffers, and
    /// fragments stay zero-copy slices of them until their frame completes). Every byte of
    /// a frame of two or more fragments, once; a frame of one fragment is handed on as its
    /// slice of the datagram and costs nothing. So at most `frame_bytes_completed`.
    pub frame_bytes_copied: u64,
    /// Bytes copied to rebuild fragments from parity: each fragment present into its
    /// shard buffer and each rebuilt fragment out of the Reed-Solomon decoder (the
    /// library's own working copies are not counted). Zero while parity repairs nothing.
    pub parity_bytes_copied: u64,
    /// Frames handed over for decoding.
    pub frames_delivered: u64,
    /// Of those, marked for display.
    pub frames_displayed: u64,
    /// Of those, decode-only (stale in a burst, or several due at once).
    pub frames_not_displayed: u64,
    /// Frames given up after the frame timeout.
    pub frames_abandoned: u64,
    /// Complete frames dropped because their reference chain was broken.
    pub frames_undecodable: u64,
    /// Frames evicted from reassembly by a memory bound.
    pub frames_evicted: u64,
    /// Keyframe requests sent (with repeats).
    pub keyframe_requests_sent: u64,
    /// RFC 3550 interarrival jitter.
    pub interarrival_jitter: Duration,
    /// Frame-delay-variation jitter estimate (Kalman).
    pub frame_jitter: Duration,
    /// Playout delay the policy currently adds.
    pub playout_delay: Duration,
    /// Capture-to-first-datagram delay, once the clock offset is known.
    pub one_way_delay: Option<Duration>,
    /// Smoothed RTT.
    pub rtt: Option<Duration>,
    /// Sender clock minus receiver clock, µs.
    pub clock_offset_us: Option<i64>,
    /// Media receive rate over the last report interval.
    pub receive_rate_bps: u64,
    /// The sender's congestion-control target as its latest ping said (0 before one).
    pub sender_target_bps: u64,
    /// Times the authenticated sender started a new session and the stream started over
    /// (see [`crate::Endpoint::peer_restarted`]).
    pub peer_restarts: u64,
    /// Radio stalls recognised (see [`crate::stall`]).
    pub stalls: u64,
    /// Of those, episodes that ended at their cap: a queue stood behind the stall.
    pub stalls_capped: u64,
    /// Time spent in finished stall episodes, silence and burst.
    pub stalled: Duration,
    /// The period the recent stalls repeat with, once they agree on one.
    pub stall_period: Option<Duration>,
    /// Loss fraction over the last report interval.
    pub loss_fraction: f32,
    /// Delay-gradient verdict.
    pub usage: BandwidthUsage,
    /// Frames held in reassembly, waiting for a predecessor, or in playout.
    pub buffered_frames: usize,
    /// Bytes held in reassembly, waiting, and playout.
    pub buffered_bytes: usize,
    /// Rejected datagrams.
    pub drops: DropCounters,
    /// Each path: what arrived on it (and how much of that another path had brought
    /// already), and what feedback went back on it.
    pub paths: [crate::PathStats; crate::multipath::MAX_PATHS],
}
