//! The datagram format: one versioned header, then one typed payload.
//!
//! Every datagram is `Header` (12 bytes) followed by the payload of its type. All integers
//! are big-endian. Parsing is strict: a datagram whose length, version, flags, session or
//! counts do not add up is rejected with a [`ParseError`] naming what was wrong, and the
//! caller counts it; nothing in a malformed datagram reaches protocol state.
//!
//! ```text
//! header (12 B)
//!   0      version      0xD1: high nibble 0xD is the magic, low nibble the version (1)
//!   1      type|flags   low nibble: PacketType (1-7), or a security type (8 handshake,
//!                       9 handshake reply, 10 pairing); high nibble: flags (bit 4
//!                       SEALED: the payload is AEAD-sealed, see `security::seal`;
//!                       bits 5-7 must be zero)
//!   2..6   session id   u32, chosen by the sender, agreed out of band or by the handshake
//!   6..12  packet number u48, strictly increasing per direction; the AEAD nonce later
//!
//! media fragment (19 B + data)
//!   seq u32 | frame id u32 | fragment index u16 | fragment count u16 |
//!   codec<<4|frame flags u8 | capture µs u48 | data (1..)
//!
//! FEC parity shard (21 B + shard)
//!   frame id u32 | fragment count u16 | codec<<4|frame flags u8 | capture µs u48 |
//!   first seq u32 | parity index u16 | parity count u16 | shard (even length, 4..)
//!
//! NACK (2 B + 6 B per range)          count u16 | count × (first seq u32, extra u16)
//! keyframe request (8 B)              request id u32 | newest decoded frame id u32
//! receiver report (47 B)              see [`ReceiverReport`]
//! ping (16 B)                         ping id u32 | sent µs u64 (pinger's clock) |
//!                                     target kbit/s u32 (a sender's congestion-control
//!                                     target; 0 from a receiver)
//! pong (20 B)                         ping id u32 | echoed sent µs u64 | responder µs u64
//! ```
//!
//! Why this layout: at the default 1200-byte datagram a media packet carries 1169 bytes of
//! video, so headers cost 2.7 %; the 48-bit packet number (not 64) saves two bytes on every
//! packet and still lasts nine years at a million packets a second. The security layer's
//! datagrams (types 8–10, and the SEALED flag with a 16-byte tag after the payload) are
//! handled by [`crate::security`] before the endpoints see anything; an endpoint parsing a
//! datagram itself rejects them, so nothing sealed is ever misread as plaintext.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// First byte of every datagram: magic nibble 0xD, protocol version 1.
pub const VERSION_BYTE: u8 = 0xD1;
/// Bytes in the common header.
pub const HEADER_LEN: usize = 12;
/// Bytes a media fragment adds to the header before its data.
pub const MEDIA_HEADER_LEN: usize = 19;
/// Bytes a parity shard adds to the header before its shard.
pub const PARITY_HEADER_LEN: usize = 21;
/// Length of a receiver report payload.
pub const REPORT_LEN: usize = 47;
/// Largest packet number representable on the wire (48 bits).
pub const MAX_PACKET_NUMBER: u64 = (1 << 48) - 1;
/// Most fragments one frame may have; bounds reassembly memory per frame.
pub const MAX_FRAGMENTS: u16 = 4096;
/// Most ranges one NACK may list.
pub const MAX_NACK_RANGES: u16 = 256;
/// Header flag: the payload is sealed with the session AEAD. The security layer
/// ([`crate::security::Secure`]) opens sealed datagrams and hands the endpoints their
/// plaintext form, flag cleared; an endpoint parsing a datagram itself rejects the flag.
pub const FLAG_SEALED: u8 = 0x1;
/// Frame flag: the frame is a keyframe (decodable on its own).
pub const FRAME_KEYFRAME: u8 = 0x1;
/// Frame flag: no later frame references this one, so losing it breaks no chain.
pub const FRAME_DISCARDABLE: u8 = 0x2;

/// Type nibble of a Noise handshake message 1 (see `security::handshake`).
pub const TYPE_HANDSHAKE: u8 = 8;
/// Type nibble of a Noise handshake message 2.
pub const TYPE_HANDSHAKE_REPLY: u8 = 9;
/// Type nibble of a pairing message (see `security::pairing`).
pub const TYPE_PAIR: u8 = 10;

/// The common header as bytes say it, before any check of type or session: what the
/// security layer needs to route a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawHeader {
    /// The type nibble.
    pub type_nibble: u8,
    /// The SEALED flag is set.
    pub sealed: bool,
    /// Session id.
    pub session_id: u32,
    /// Packet number.
    pub packet_number: u64,
}

/// Reads the header's fields: magic and version checked, flags other than SEALED refused.
pub fn peek_header(datagram: &[u8]) -> Result<RawHeader, ParseError> {
    if datagram.len() < HEADER_LEN {
        return Err(ParseError::TooShort {
            len: datagram.len(),
            need: HEADER_LEN,
        });
    }
    let mut b = datagram;
    let v = b.get_u8();
    if v >> 4 != VERSION_BYTE >> 4 {
        return Err(ParseError::BadMagic(v));
    }
    if v != VERSION_BYTE {
        return Err(ParseError::UnsupportedVersion(v & 0x0f));
    }
    let tf = b.get_u8();
    let flags = tf >> 4;
    if flags & !FLAG_SEALED != 0 {
        return Err(ParseError::UnsupportedFlags(flags));
    }
    let session_id = b.get_u32();
    let mut pn = 0u64;
    for _ in 0..6 {
        pn = (pn << 8) | u64::from(b.get_u8());
    }
    Ok(RawHeader {
        type_nibble: tf & 0x0f,
        sealed: flags & FLAG_SEALED != 0,
        session_id,
        packet_number: pn,
    })
}

/// Writes a header for a security-layer message of `type_nibble`.
pub fn security_header(type_nibble: u8, session_id: u32, packet_number: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = VERSION_BYTE;
    h[1] = type_nibble & 0x0f;
    h[2..6].copy_from_slice(&session_id.to_be_bytes());
    h[6..].copy_from_slice(&(packet_number & MAX_PACKET_NUMBER).to_be_bytes()[2..]);
    h
}

/// What a datagram carries; the low nibble of byte 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// One fragment of an encoded frame.
    Media = 1,
    /// One Reed-Solomon parity shard protecting a frame's fragments.
    Parity = 2,
    /// Receiver → sender: sequence numbers to retransmit.
    Nack = 3,
    /// Receiver → sender: please encode a keyframe.
    KeyframeRequest = 4,
    /// Receiver → sender: loss, jitter, rates, congestion signal.
    Report = 5,
    /// Either side: RTT and clock-offset probe.
    Ping = 6,
    /// Either side: answer to a ping.
    Pong = 7,
}

impl PacketType {
    fn from_nibble(v: u8) -> Result<Self, ParseError> {
        Ok(match v {
            1 => Self::Media,
            2 => Self::Parity,
            3 => Self::Nack,
            4 => Self::KeyframeRequest,
            5 => Self::Report,
            6 => Self::Ping,
            7 => Self::Pong,
            other => return Err(ParseError::UnknownType(other)),
        })
    }
}

/// The codec an encoded frame is in; the transport never looks inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// AV1 (rav1e or libaom), decoded with dav1d.
    #[default]
    Av1,
    /// H.264, typically from a hardware encoder (VideoToolbox).
    H264,
    /// HEVC / H.265.
    Hevc,
    /// Uncompressed I420, for tests and benchmarks.
    RawI420,
    /// A codec this version does not know by name; carried through untouched.
    Other(u8),
}

impl Codec {
    /// The 4-bit wire value.
    pub fn to_nibble(self) -> u8 {
        match self {
            Codec::Av1 => 0,
            Codec::H264 => 1,
            Codec::Hevc => 2,
            Codec::RawI420 => 3,
            Codec::Other(v) => v & 0x0f,
        }
    }
    /// Decodes a 4-bit wire value.
    pub fn from_nibble(v: u8) -> Self {
        match v & 0x0f {
            0 => Codec::Av1,
            1 => Codec::H264,
            2 => Codec::Hevc,
            3 => Codec::RawI420,
            other => Codec::Other(other),
        }
    }
}

impl std::fmt::Display for Codec {
    /// The name people read (stats, error messages): `AV1`, `H.264`, `HEVC`, `raw I420`, or
    /// `codec N` for a tag this version does not know. (Discovery's TXT record has its own
    /// lower-case tokens.)
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::Av1 => f.write_str("AV1"),
            Codec::H264 => f.write_str("H.264"),
            Codec::Hevc => f.write_str("HEVC"),
            Codec::RawI420 => f.write_str("raw I420"),
            Codec::Other(v) => write!(f, "codec {v}"),
        }
    }
}

/// Per-frame facts every fragment and parity shard repeats, so any one of them describes
/// the frame even when the others are lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Sender-assigned, consecutive frame id.
    pub frame_id: u32,
    /// How many media fragments the frame was split into (1..=[`MAX_FRAGMENTS`]).
    pub fragment_count: u16,
    /// The frame's codec.
    pub codec: Codec,
    /// [`FRAME_KEYFRAME`] | [`FRAME_DISCARDABLE`].
    pub flags: u8,
    /// Capture time in microseconds on the sender's clock (48 bits on the wire).
    pub capture_us: u64,
}

impl FrameInfo {
    /// Whether the frame decodes on its own.
    pub fn is_keyframe(&self) -> bool {
        self.flags & FRAME_KEYFRAME != 0
    }
}

/// The common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Packet type.
    pub packet_type: PacketType,
    /// Session this datagram belongs to.
    pub session_id: u32,
    /// Per-direction packet number (48 bits on the wire).
    pub packet_number: u64,
}

/// One fragment of an encoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFragment {
    /// Media stream sequence number; a retransmission keeps it.
    pub seq: u32,
    /// The frame this belongs to.
    pub frame: FrameInfo,
    /// Index of this fragment within the frame.
    pub index: u16,
    /// The fragment's bytes.
    pub data: Bytes,
}

/// One Reed-Solomon recovery shard over a frame's fragments (see [`crate::fec`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParityShard {
    /// The protected frame.
    pub frame: FrameInfo,
    /// Sequence number of the frame's fragment 0 (fragment `i` has `first_seq + i`).
    pub first_seq: u32,
    /// Index of this shard among the frame's parity shards.
    pub index: u16,
    /// How many parity shards the frame has.
    pub count: u16,
    /// Shard bytes.
    pub shard: Bytes,
}

/// A run of missing sequence numbers: `first ..= first + extra`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    /// First missing sequence number.
    pub first: u32,
    /// How many more follow it.
    pub extra: u16,
}

impl SeqRange {
    /// Iterates the sequence numbers in the range.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..=u32::from(self.extra)).map(move |i| self.first.wrapping_add(i))
    }
}

/// Receiver → sender list of missing media sequence numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// Missing runs (1..=[`MAX_NACK_RANGES`]).
    pub ranges: Vec<SeqRange>,
}

/// Receiver → sender keyframe request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyframeRequest {
    /// Increments per new request; repeats of the same request reuse it.
    pub request_id: u32,
    /// Newest frame the receiver could decode.
    pub last_decoded_frame: u32,
}

/// Delay-gradient verdict carried in reports (see [`crate::congestion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Queueing delay is steady.
    #[default]
    Normal,
    /// Queueing delay is growing: the path is over capacity.
    Overusing,
    /// Queueing delay is draining.
    Underusing,
}

/// Receiver → sender feedback, sent every report interval.
///
/// Layout (47 B): highest seq u32 | cumulative lost u32 | loss fraction u8 (×256) |
/// interarrival jitter µs u32 | frame delay jitter µs u32 | receive rate kbit/s u32 |
/// delivery rate kbit/s u32 | delay trend i16 (µs per s) | usage u8 | playout delay µs u32 |
/// RTT µs u32 | standing queue delay µs u32 | stall loss fraction u8 (×256) |
/// stall period ms u16 | next stall in ms u16 | stall length ms u8 | loss inside stalls u8
/// (×256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// Highest media sequence number seen.
    pub highest_seq: u32,
    /// Media packets lost so far (expected − received, RFC 3550 style).
    pub cumulative_lost: u32,
    /// Fraction lost since the previous report, ×256.
    pub loss_fraction_q8: u8,
    /// RFC 3550 interarrival jitter.
    pub jitter_us: u32,
    /// Frame-delay-variation jitter estimate (Kalman).
    pub frame_jitter_us: u32,
    /// Media receive rate over the report interval.
    pub receive_rate_kbps: u32,
    /// Highest per-frame delivery rate seen recently: a path-capacity sample (0 = none).
    pub delivery_rate_kbps: u32,
    /// Queueing-delay trend, microseconds of delay growth per second.
    pub delay_trend: i16,
    /// Delay-gradient verdict.
    pub usage: BandwidthUsage,
    /// Receiver's current playout delay.
    pub playout_delay_us: u32,
    /// Receiver's RTT estimate (0 = none yet).
    pub rtt_us: u32,
    /// Standing queue: the smallest transit above the path's base over the report
    /// interval, frames inside stall episodes left out. A queue that persists for a whole
    /// interval is congestion; a stall's burst is not (the frames after it are back at base).
    pub queue_delay_us: u32,
    /// The part of `loss_fraction_q8` found inside radio stalls (see [`crate::stall`]): the
    /// radio's loss, not a full queue's, so congestion control leaves it out.
    pub stall_loss_fraction_q8: u8,
    /// The period the receiver's recent stalls repeat with, ms (0: none learned).
    pub stall_period_ms: u16,
    /// When the next stall should begin, ms after this report (0: no forecast).
    pub stall_next_ms: u16,
    /// The longest silence of the recent stalls, ms.
    pub stall_length_ms: u8,
    /// Share of datagrams lost inside recent stalls, ×256.
    pub stall_window_loss_q8: u8,
}

/// RTT probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    /// Identifies the probe.
    pub ping_id: u32,
    /// Pinger's clock at send, µs.
    pub sent_us: u64,
    /// A sender's current target bitrate, kbit/s, so the receiver can show it beside what
    /// it receives (0 from a receiver, which has no target).
    pub target_kbps: u32,
}

/// Answer to a [`Ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pong {
    /// The probe answered.
    pub ping_id: u32,
    /// The probe's `sent_us`, echoed.
    pub echoed_sent_us: u64,
    /// Responder's clock when the probe arrived, µs.
    pub responder_us: u64,
}

/// A typed payload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Payload {
    Media(MediaFragment),
    Parity(ParityShard),
    Nack(Nack),
    KeyframeRequest(KeyframeRequest),
    Report(ReceiverReport),
    Ping(Ping),
    Pong(Pong),
}

impl Payload {
    /// The type written in the header for this payload.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Payload::Media(_) => PacketType::Media,
            Payload::Parity(_) => PacketType::Parity,
            Payload::Nack(_) => PacketType::Nack,
            Payload::KeyframeRequest(_) => PacketType::KeyframeRequest,
            Payload::Report(_) => PacketType::Report,
            Payload::Ping(_) => PacketType::Ping,
            Payload::Pong(_) => PacketType::Pong,
        }
    }
}

/// A parsed datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Session and packet number.
    pub session_id: u32,
    /// Packet number.
    pub packet_number: u64,
    /// What it carries.
    pub payload: Payload,
}

/// Why a datagram was rejected. Each variant is counted separately in stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than its type requires.
    #[error("datagram too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes present.
        len: usize,
        /// Bytes required.
        need: usize,
    },
    /// Longer than its fixed-size type allows.
    #[error("datagram has {extra} trailing bytes")]
    TrailingBytes {
        /// Surplus bytes.
        extra: usize,
    },
    /// First byte is not Tandem's magic nibble.
    #[error("not a Tandem datagram (first byte {0:#04x})")]
    BadMagic(u8),
    /// Tandem datagram of another protocol version.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// Type nibble not defined in this version.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// Flags this version does not accept (sealed payloads arrive with the security layer).
    #[error("unsupported header flags {0:#x}")]
    UnsupportedFlags(u8),
    /// Session id is not this endpoint's.
    #[error("datagram for session {got:#010x}, expected {expected:#010x}")]
    WrongSession {
        /// Session in the datagram.
        got: u32,
        /// Session of this endpoint.
        expected: u32,
    },
    /// A count or index is out of its valid range.
    #[error("invalid field {field}: {value}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: u64,
    },
}

fn need(buf: &Bytes, n: usize) -> Result<(), ParseError> {
    if buf.len() < n {
        Err(ParseError::TooShort {
            len: buf.len(),
            need: n,
        })
    } else {
        Ok(())
    }
}

fn exact(buf: &Bytes, n: usize) -> Result<(), ParseError> {
    need(buf, n)?;
    if buf.len() > n {
        return Err(ParseError::TrailingBytes {
            extra: buf.len() - n,
        });
    }
    Ok(())
}

fn invalid(field: &'static str, value: impl Into<u64>) -> ParseError {
    ParseError::InvalidField {
        field,
        value: value.into(),
    }
}

fn put_u48(out: &mut impl BufMut, v: u64) {
    out.put_u16((v >> 32) as u16);
    out.put_u32(v as u32);
}

fn get_u48(buf: &mut Bytes) -> u64 {
    let hi = u64::from(buf.get_u16());
    (hi << 32) | u64::from(buf.get_u32())
}

fn put_frame_info(out: &mut impl BufMut, f: &FrameInfo) {
    out.put_u32(f.frame_id);
    out.put_u16(f.fragment_count);
    out.put_u8((f.codec.to_nibble() << 4) | (f.flags & 0x0f));
    put_u48(out, f.capture_us);
}

/// Validates the per-frame fields, whichever order a packet type carries them in.
fn frame_info(
    frame_id: u32,
    fragment_count: u16,
    codec_flags: u8,
    capture_us: u64,
) -> Result<FrameInfo, ParseError> {
    if fragment_count == 0 || fragment_count > MAX_FRAGMENTS {
        return Err(invalid("fragment_count", fragment_count));
    }
    let flags = codec_flags & 0x0f;
    if flags & !(FRAME_KEYFRAME | FRAME_DISCARDABLE) != 0 {
        return Err(invalid("frame_flags", flags));
    }
    let codec = Codec::from_nibble(codec_flags >> 4);
    Ok(FrameInfo {
        frame_id,
        fragment_count,
        codec,
        flags,
        capture_us,
    })
}

fn get_frame_info(buf: &mut Bytes) -> Result<FrameInfo, ParseError> {
    let frame_id = buf.get_u32();
    let fragment_count = buf.get_u16();
    let codec_flags = buf.get_u8();
    frame_info(frame_id, fragment_count, codec_flags, get_u48(buf))
}

impl Packet {
    /// Bytes this packet occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match &self.payload {
                Payload::Media(m) => MEDIA_HEADER_LEN + m.data.len(),
                Payload::Parity(p) => PARITY_HEADER_LEN + p.shard.len(),
                Payload::Nack(n) => 2 + 6 * n.ranges.len(),
                Payload::KeyframeRequest(_) => 8,
                Payload::Report(_) => REPORT_LEN,
                Payload::Ping(_) => 16,
                Payload::Pong(_) => 20,
            }
    }

    /// Serializes into a fresh buffer.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }

    /// Appends the wire form to `out` (a `BytesMut`, or a driver's `Vec<u8>`).
    pub fn encode_into(&self, out: &mut impl BufMut) {
        debug_assert!(self.packet_number <= MAX_PACKET_NUMBER);
        out.put_u8(VERSION_BYTE);
        out.put_u8(self.payload.packet_type() as u8);
        out.put_u32(self.session_id);
        put_u48(out, self.packet_number);
        match &self.payload {
            Payload::Media(m) => {
                out.put_u32(m.seq);
                out.put_u32(m.frame.frame_id);
                out.put_u16(m.index);
                out.put_u16(m.frame.fragment_count);
                out.put_u8((m.frame.codec.to_nibble() << 4) | (m.frame.flags & 0x0f));
                put_u48(out, m.frame.capture_us);
                out.put_slice(&m.data);
            }
            Payload::Parity(p) => {
                put_frame_info(out, &p.frame);
                out.put_u32(p.first_seq);
                out.put_u16(p.index);
                out.put_u16(p.count);
                out.put_slice(&p.shard);
            }
            Payload::Nack(n) => {
                out.put_u16(n.ranges.len() as u16);
                for r in &n.ranges {
                    out.put_u32(r.first);
                    out.put_u16(r.extra);
                }
            }
            Payload::KeyframeRequest(k) => {
                out.put_u32(k.request_id);
                out.put_u32(k.last_decoded_frame);
            }
            Payload::Report(r) => {
                out.put_u32(r.highest_seq);
                out.put_u32(r.cumulative_lost);
                out.put_u8(r.loss_fraction_q8);
                out.put_u32(r.jitter_us);
                out.put_u32(r.frame_jitter_us);
                out.put_u32(r.receive_rate_kbps);
                out.put_u32(r.delivery_rate_kbps);
                out.put_i16(r.delay_trend);
                out.put_u8(match r.usage {
                    BandwidthUsage::Normal => 0,
                    BandwidthUsage::Overusing => 1,
                    BandwidthUsage::Underusing => 2,
                });
                out.put_u32(r.playout_delay_us);
                out.put_u32(r.rtt_us);
                out.put_u32(r.queue_delay_us);
                out.put_u8(r.stall_loss_fraction_q8);
                out.put_u16(r.stall_period_ms);
                out.put_u16(r.stall_next_ms);
                out.put_u8(r.stall_length_ms);
                out.put_u8(r.stall_window_loss_q8);
            }
            Payload::Ping(p) => {
                out.put_u32(p.ping_id);
                out.put_u64(p.sent_us);
                out.put_u32(p.target_kbps);
            }
            Payload::Pong(p) => {
                out.put_u32(p.ping_id);
                out.put_u64(p.echoed_sent_us);
                out.put_u64(p.responder_us);
            }
        }
    }

    /// Parses a datagram, accepting only `expected_session`.
    ///
    /// The payload's byte fields (`data`, `shard`) are zero-copy slices of `datagram`.
    pub fn parse(datagram: Bytes, expected_session: u32) -> Result<Packet, ParseError> {
        let (header, mut buf) = parse_header(datagram)?;
        if header.session_id != expected_session {
            return Err(ParseError::WrongSession {
                got: header.session_id,
                expected: expected_session,
            });
        }
        let payload = match header.packet_type {
            PacketType::Media => {
                need(&buf, MEDIA_HEADER_LEN + 1)?;
                let seq = buf.get_u32();
                let frame_id = buf.get_u32();
                let index = buf.get_u16();
                let fragment_count = buf.get_u16();
                let codec_flags = buf.get_u8();
                let frame = frame_info(frame_id, fragment_count, codec_flags, get_u48(&mut buf))?;
                if index >= fragment_count {
                    return Err(invalid("fragment_index", index));
                }
                Payload::Media(MediaFragment {
                    seq,
                    frame,
                    index,
                    data: buf,
                })
            }
            PacketType::Parity => {
                need(&buf, PARITY_HEADER_LEN + 4)?;
                let frame = get_frame_info(&mut buf)?;
                let first_seq = buf.get_u32();
                let index = buf.get_u16();
                let count = buf.get_u16();
                if count == 0 || count > MAX_FRAGMENTS {
                    return Err(invalid("parity_count", count));
                }
                if index >= count {
                    return Err(invalid("parity_index", index));
                }
                if buf.len() % 2 != 0 {
                    return Err(invalid("shard_len", buf.len() as u64));
                }
                Payload::Parity(ParityShard {
                    frame,
                    first_seq,
                    index,
                    count,
                    shard: buf,
                })
            }
            PacketType::Nack => {
                need(&buf, 2)?;
                let count = buf.get_u16();
                if count == 0 || count > MAX_NACK_RANGES {
                    return Err(invalid("nack_ranges", count));
                }
                exact(&buf, 6 * usize::from(count))?;
                let ranges = (0..count)
                    .map(|_| SeqRange {
                        first: buf.get_u32(),
                        extra: buf.get_u16(),
                    })
                    .collect();
                Payload::Nack(Nack { ranges })
            }
            PacketType::KeyframeRequest => {
                exact(&buf, 8)?;
                Payload::KeyframeRequest(KeyframeRequest {
                    request_id: buf.get_u32(),
                    last_decoded_frame: buf.get_u32(),
                })
            }
            PacketType::Report => {
                exact(&buf, REPORT_LEN)?;
                let mut r = ReceiverReport {
                    highest_seq: buf.get_u32(),
                    cumulative_lost: buf.get_u32(),
                    loss_fraction_q8: buf.get_u8(),
                    jitter_us: buf.get_u32(),
                    frame_jitter_us: buf.get_u32(),
                    receive_rate_kbps: buf.get_u32(),
                    delivery_rate_kbps: buf.get_u32(),
                    delay_trend: buf.get_i16(),
                    ..ReceiverReport::default()
                };
                r.usage = match buf.get_u8() {
                    0 => BandwidthUsage::Normal,
                    1 => BandwidthUsage::Overusing,
                    2 => BandwidthUsage::Underusing,
                    other => return Err(invalid("usage", other)),
                };
                r.playout_delay_us = buf.get_u32();
                r.rtt_us = buf.get_u32();
                r.queue_delay_us = buf.get_u32();
                r.stall_loss_fraction_q8 = buf.get_u8();
                r.stall_period_ms = buf.get_u16();
                r.stall_next_ms = buf.get_u16();
                r.stall_length_ms = buf.get_u8();
                r.stall_window_loss_q8 = buf.get_u8();
                Payload::Report(r)
            }
            PacketType::Ping => {
                exact(&buf, 16)?;
                Payload::Ping(Ping {
                    ping_id: buf.get_u32(),
                    sent_us: buf.get_u64(),
                    target_kbps: buf.get_u32(),
                })
            }
            PacketType::Pong => {
                exact(&buf, 20)?;
                Payload::Pong(Pong {
                    ping_id: buf.get_u32(),
                    echoed_sent_us: buf.get_u64(),
                    responder_us: buf.get_u64(),
                })
            }
        };
        Ok(Packet {
            session_id: header.session_id,
            packet_number: header.packet_number,
            payload,
        })
    }
}

/// Parses and validates the common header; returns it and the rest of the datagram.
pub fn parse_header(mut datagram: Bytes) -> Result<(Header, Bytes), ParseError> {
    need(&datagram, HEADER_LEN)?;
    let v = datagram.get_u8();
    if v >> 4 != VERSION_BYTE >> 4 {
        return Err(ParseError::BadMagic(v));
    }
    if v != VERSION_BYTE {
        return Err(ParseError::UnsupportedVersion(v & 0x0f));
    }
    let tf = datagram.get_u8();
    let flags = tf >> 4;
    if flags != 0 {
        return Err(ParseError::UnsupportedFlags(flags));
    }
    let packet_type = PacketType::from_nibble(tf & 0x0f)?;
    let session_id = datagram.get_u32();
    let packet_number = get_u48(&mut datagram);
    Ok((
        Header {
            packet_type,
            session_id,
            packet_number,
        },
        datagram,
    ))
}

/// A one-fragment AV1 delta frame's fragment with sequence number `seq`, for unit tests.
#[cfg(test)]
pub(crate) fn test_fragment(seq: u32, len: usize) -> MediaFragment {
    MediaFragment {
        seq,
        frame: FrameInfo {
            frame_id: 0,
            fragment_count: 1,
            codec: Codec::Av1,
            flags: 0,
            capture_us: 0,
        },
        index: 0,
        data: Bytes::from(vec![0u8; len]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> Packet {
        Packet {
            session_id: 7,
            packet_number: MAX_PACKET_NUMBER,
            payload: Payload::Media(MediaFragment {
                seq: 42,
                frame: FrameInfo {
                    frame_id: 3,
                    fragment_count: 2,
                    codec: Codec::H264,
                    flags: FRAME_KEYFRAME,
                    capture_us: 0xABCD_1234_5678,
                },
                index: 1,
                data: Bytes::from_static(b"hello"),
            }),
        }
    }

    #[test]
    fn media_layout_is_as_documented() {
        let p = media();
        let wire = p.encode();
        assert_eq!(wire.len(), HEADER_LEN + MEDIA_HEADER_LEN + 5);
        assert_eq!(wire[0], 0xD1);
        assert_eq!(wire[1], 1);
        assert_eq!(&wire[2..6], &7u32.to_be_bytes());
        assert_eq!(&wire[6..12], &[0xff; 6]);
        assert_eq!(
            wire[12 + 12],
            0x11,
            "codec H264=1 in the high nibble, keyframe flag low"
        );
        assert_eq!(Packet::parse(wire, 7), Ok(p));
    }

    #[test]
    fn header_rejections_name_the_problem() {
        let wire = media().encode();
        assert_eq!(
            Packet::parse(wire.clone(), 8),
            Err(ParseError::WrongSession {
                got: 7,
                expected: 8
            })
        );
        let mut w = wire.to_vec();
        w[0] = 0xD2;
        assert_eq!(
            Packet::parse(w.into(), 7),
            Err(ParseError::UnsupportedVersion(2))
        );
        let mut w = wire.to_vec();
        w[0] = 0x17;
        assert_eq!(Packet::parse(w.into(), 7), Err(ParseError::BadMagic(0x17)));
        let mut w = wire.to_vec();
        w[1] = 0x11;
        assert_eq!(
            Packet::parse(w.into(), 7),
            Err(ParseError::UnsupportedFlags(FLAG_SEALED))
        );
        let mut w = wire.to_vec();
        w[1] = 0x08;
        assert_eq!(Packet::parse(w.into(), 7), Err(ParseError::UnknownType(8)));
        assert!(matches!(
            Packet::parse(wire.slice(..11), 7),
            Err(ParseError::TooShort { len: 11, need: 12 })
        ));
        // A media packet with no data is malformed, not an empty fragment.
        assert!(matches!(
            Packet::parse(wire.slice(..HEADER_LEN + MEDIA_HEADER_LEN), 7),
            Err(ParseError::TooShort { .. })
        ));
    }

    #[test]
    fn fragment_index_must_be_below_count() {
        let mut w = media().encode().to_vec();
        w[12 + 8..12 + 10].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(
            Packet::parse(w.into(), 7),
            Err(ParseError::InvalidField {
                field: "fragment_index",
                value: 2
            })
        );
    }

    #[test]
    fn fixed_size_types_reject_trailing_bytes() {
        let p = Packet {
            session_id: 1,
            packet_number: 1,
            payload: Payload::Ping(Ping {
                ping_id: 1,
                sent_us: 2,
                target_kbps: 3,
            }),
        };
        let mut w = p.encode().to_vec();
        w.push(0);
        assert_eq!(
            Packet::parse(w.into(), 1),
            Err(ParseError::TrailingBytes { extra: 1 })
        );
    }
}
