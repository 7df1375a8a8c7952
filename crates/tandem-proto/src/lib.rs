//! Tandem's wire protocol as a deterministic, sans-IO state machine.
//!
//! This crate is the protocol and nothing else: it never reads a clock, never touches a
//! socket, never spawns a thread or task. It is what `tandem-net` drives over real UDP
//! sockets and what `tandem-sim` drives through impaired links in virtual time — the same
//! code, so a minute of streaming through any network condition replays exactly from a seed.
//! It does not encode or decode video (that is `tandem-codec`), or choose interfaces or
//! discover peers (`tandem-net`). Its [`security`] module is the one place it asks the
//! operating system for anything: randomness, for keys (pairing, handshakes, and sealing
//! every datagram are its own, sans-IO like the rest: [`security::Secure`] wraps either
//! endpoint).
//!
//! # The run-loop contract
//!
//! A [`Sender`] and a [`Receiver`] both implement [`Endpoint`]. The caller owns time and IO:
//!
//! 1. Feed every datagram from the peer: [`Endpoint::handle_datagram`]`(now, bytes)`.
//!    Malformed, foreign-session or other-version datagrams are counted in the stats and
//!    dropped; nothing else happens. Pass each datagram in a buffer of its own exact size,
//!    and keep no other handle to it: [`security::Secure`] opens a sealed datagram in place
//!    there (a shared one it must copy first, counted in
//!    [`security::SecurityStats::open_copies`]), fragments are kept as zero-copy slices of
//!    it while their frame is reassembled, and the memory bounds charge each piece its
//!    datagram's length. Reassembly is then the one copy a frame's bytes see on this side
//!    ([`ReceiverStats::frame_bytes_copied`]).
//! 2. Feed frames (sender only): [`Sender::send_frame`]`(now, frame)`.
//! 3. After any call above, drain [`Endpoint::poll_transmit`]`(now, &mut buf)` until
//!    `None` and send each datagram as is: each call appends one datagram to `buf`, a
//!    buffer the caller owns and reuses, and returns its length (clear `buf` between
//!    datagrams, or let several accumulate end to end for one batched send, with capacity
//!    reserved for the batch: a `Vec` that grows moves what it holds). The sender writes
//!    each fragment straight from the frame into `buf` and [`security::Secure`] seals it
//!    there, so that write is the one copy a frame's bytes see on this side
//!    ([`SenderStats::media_bytes_copied`]). The sender's media is already paced:
//!    `poll_transmit` returns `None` until the next datagram's slot.
//!    [`Endpoint::poll_datagram`]`(now)` is the same in a fresh `Bytes` (an allocation per
//!    datagram), for simulators and tests.
//! 4. Drain [`Endpoint::poll_event`]: frames to decode ([`ReceiverEvent::Frame`], each
//!    marked for display or not), keyframe requests and target bitrates
//!    ([`SenderEvent`]).
//! 5. Sleep until [`Endpoint::poll_timeout`] (or the next datagram or frame), then call
//!    [`Endpoint::handle_timeout`]`(now)` and go back to 3.
//!
//! A session over two paths ([`multipath`]) is driven the same way through the `_on`
//! forms: [`Endpoint::set_path_open`] when the driver gains or loses its second path,
//! [`Endpoint::handle_datagram_on`] with the path each datagram arrived on, and
//! [`Endpoint::poll_transmit_on`], whose [`Transmit`] says which paths each datagram goes
//! on. A single-path driver never calls them and sees no difference.
//!
//! `now` must never go backwards. Every `now` is a [`std::time::Instant`]; in virtual time
//! the caller builds them as `start + offset`.
//!
//! One endpoint talks to one peer, so unlike the outline in `DESIGN.md`,
//! `handle_datagram` takes no source address: the driver owns sockets and paths, and only
//! hands an endpoint the datagrams from its peer (a path change is the driver's business,
//! and the session id still rejects strays).
//!
//! # Modules
//!
//! [`packet`] is the datagram format; [`sender`] and [`receiver`] are the endpoints; the
//! rest are their parts, each one idea: [`pacer`], [`history`] (retransmission), [`fec`],
//! [`congestion`] (delay gradient, rate, capacity), [`stall`] (radio stalls told from
//! queues), [`reassembly`], [`nack`], [`jitter`],
//! [`playout`], [`rtt`] (RTT and clock offset), [`multipath`] (two paths at once), [`cadence`], [`window`], [`stats`],
//! [`config`].

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

pub mod cadence;
pub mod config;
pub mod congestion;
pub mod fec;
pub mod fuzzing;
pub mod history;
pub mod jitter;
pub mod multipath;
pub mod nack;
pub mod pacer;
pub mod packet;
pub mod playout;
pub mod reassembly;
pub mod receiver;
pub mod rtt;
pub mod security;
pub mod sender;
pub mod stall;
pub mod stats;
pub mod window;

pub use config::{ReceiverConfig, SenderConfig};
pub use fec::FecMode;
pub use multipath::{PathId, PathPolicy, PathSet, PathStats, Transmit};
pub use packet::{Codec, ParseError};
pub use playout::PlayoutPolicy;
pub use receiver::{ReceivedFrame, Receiver, ReceiverEvent};
pub use sender::{OutgoingFrame, SendError, Sender, SenderEvent};
pub use stats::{DropCounters, ReceiverStats, SenderStats};

/// The sans-IO driving interface shared by [`Sender`] and [`Receiver`].
pub trait Endpoint {
    /// What the endpoint reports to its driver.
    type Event;
    /// Feeds one datagram received from the peer.
    fn handle_datagram(&mut self, now: Instant, datagram: Bytes);
    /// Feeds one datagram, saying where it came from. The address is never trusted: it
    /// only lets an endpoint name the source when it reports a stranger's datagram (another
    /// protocol version, an unpaired device). Default: [`Endpoint::handle_datagram`].
    fn handle_datagram_from(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let _ = from;
        self.handle_datagram(now, datagram);
    }
    /// Writes the next datagram, if one is ready now, at the end of `buf` (which the caller
    /// owns and may reuse; bytes already in it are left alone) and returns its length.
    /// `None` leaves `buf` unchanged.
    ///
    /// The caller's buffer is what lets a datagram reach the socket with no copy of its
    /// own: the endpoint writes (and [`security::Secure`] seals) straight into it, and a
    /// driver reuses one buffer, or batches several datagrams end to end in it.
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize>;
    /// A session over two paths: as [`Endpoint::handle_datagram`], for a datagram that
    /// arrived on `path`. Default: the path is ignored.
    fn handle_datagram_on(&mut self, now: Instant, path: PathId, datagram: Bytes) {
        let _ = path;
        self.handle_datagram(now, datagram);
    }
    /// A session over two paths: as [`Endpoint::poll_transmit`], and the paths the
    /// datagram goes on ([`Transmit::paths`]; a driver sends it on each of those it has, on
    /// its first path if it has none of them). Default: every path.
    fn poll_transmit_on(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.poll_transmit(now, buf).map(|len| Transmit {
            len,
            paths: PathSet::ALL,
        })
    }
    /// The driver opened (or lost) `path`. Path 0 is open from the start; with path 1 open
    /// too, the session spans both (see [`multipath`]). Default: nothing.
    fn set_path_open(&mut self, now: Instant, path: PathId, open: bool) {
        let _ = (now, path, open);
    }
    /// Convenience for simulators and tests: the next datagram in a buffer of its own
    /// (allocates). Provided; same as [`Endpoint::poll_transmit`] into a fresh buffer.
    fn poll_datagram(&mut self, now: Instant) -> Option<Bytes> {
        let mut buf = Vec::new();
        self.poll_transmit(now, &mut buf)?;
        Some(Bytes::from(buf))
    }
    /// When [`Endpoint::handle_timeout`] should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The authenticated peer started a new session: it restarted, or came back after a
    /// silence long enough to rehandshake. Its stream starts over (new frame ids, a new
    /// clock), so a receiver forgets the old one at once instead of taking the new frames
    /// for stale ones. Called by [`security::Secure`] before the first datagram of the new
    /// session. Default: nothing.
    fn peer_restarted(&mut self, now: Instant) {
        let _ = now;
    }
    /// The next event for the driver.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// Whether this endpoint authenticates what it receives. A driver may then hand it
    /// datagrams from any address and follow the peer to wherever its authentic datagrams
    /// come from ([`Endpoint::last_datagram_authentic`]); otherwise it filters by address.
    /// Default false.
    fn authenticates(&self) -> bool {
        false
    }

    /// Whether the datagram last handed to [`Endpoint::handle_datagram`] proved to come
    /// from the peer. Meaningful only where [`Endpoint::authenticates`] is true.
    fn last_datagram_authentic(&self) -> bool {
        true
    }

    /// Whether media can flow now: a sealed endpoint once its session is up. A driver
    /// publishes it for other threads to read without calling in. Default true.
    fn is_established(&self) -> bool {
        true
    }
}
