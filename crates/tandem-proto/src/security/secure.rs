//! [`Secure`]: the security layer as an [`Endpoint`] around another endpoint (a
//! [`crate::Sender`] or [`crate::Receiver`]), sans-IO like it.
//!
//! The initiator (the side that knows where the other is) starts a Noise IK handshake at
//! once and repeats message 1 every `retry` until the reply comes; the responder answers
//! only paired initiators, and repeats its cached reply when message 1 is repeated. Once a
//! session is up, every datagram the inner endpoint releases is sealed, and every datagram
//! that arrives is opened, checked against the replay window and handed in as plaintext.
//! Before a session is up the inner endpoint's datagrams stay inside it.
//!
//! A new handshake never disturbs a live session: the responder keeps the new keys as
//! *pending* until a datagram opens under them, so a replayed message 1 costs one reply and
//! nothing else. The initiator starts over when it has heard nothing authenticated for
//! `rekey_after_silence` (the responder restarted and forgot the keys) or when the keys are
//! used up; both sides drop a session idle for `session_expiry`.
//!
//! Whatever fails — a forgery, a replay, a stranger's handshake, a datagram of another
//! version, a flood of handshakes beyond the rate limit — is counted in
//! [`SecurityStats`] and dropped; none of it reaches the inner endpoint, and a stranger
//! gets no reply.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::SecurityError;
use super::handshake::{Initiator, SessionKeys, respond};
use super::identity::{Identity, PeerKey, TrustStore};
use super::seal::{ReplayWindow, SealKeys, TAG_LEN};
use crate::Endpoint;
use crate::multipath::{PathId, PathSet, Transmit};
use crate::packet::{
    HEADER_LEN, ParseError, TYPE_HANDSHAKE, TYPE_HANDSHAKE_REPLY, peek_header, security_header,
};

/// Which side of the handshake this endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRole {
    /// Starts the handshake with this paired peer.
    Initiator {
        /// The peer's key (from the trust store).
        peer: PeerKey,
    },
    /// Answers handshakes from any peer in the trust store.
    Responder,
}

/// Security settings. [`SecureConfig::new`] documents the defaults.
#[derive(Debug, Clone)]
pub struct SecureConfig {
    /// This device's identity.
    pub identity: Identity,
    /// The peers it accepts (a responder) and may name (an initiator).
    pub trust: TrustStore,
    /// Which side.
    pub role: SessionRole,
    /// Session id of every datagram (the inner endpoint's). Default: the value passed in.
    pub session_id: u32,
    /// Interval between repeats of an unanswered message 1. Default 100 ms: a receiver that
    /// restarts (or appears) gets a handshake within 100 ms of listening, and ten 150-byte
    /// messages a second cost nothing. A repeat that crosses its reply is answered from
    /// the responder's memory, without new keys.
    pub retry: Duration,
    /// After this long without a reply the initiator reports it (and keeps trying, every
    /// [`KEEP_TRYING`]). Default 5 s.
    pub handshake_timeout: Duration,
    /// An initiator that has heard nothing authenticated for this long starts a new
    /// handshake (keeping the old keys until the new ones are up). Default 1 s: twenty
    /// receiver reports, ten times the longest AWDL stall; a responder that restarted and
    /// forgot the keys gets the stream back a second later.
    pub rekey_after_silence: Duration,
    /// A session with no authenticated datagram for this long is dropped. Default 30 s.
    pub session_expiry: Duration,
    /// Handshake messages a responder answers per second; more are dropped. Default 20:
    /// each costs four X25519 operations, and a real peer needs one.
    pub max_handshakes_per_second: u32,
    /// Wall-clock time when the endpoint was created, µs since the Unix epoch, read by the
    /// caller (this crate reads no clock). An initiator stamps each message 1 with it (plus
    /// the time since), and a responder accepts from each peer only message 1s newer than
    /// the last it accepted, so a replayed message 1 — any earlier one, however old —
    /// cannot displace the session a peer is setting up. Default 0: unknown, sent as 0 and
    /// not checked.
    pub wall_clock_us: u64,
}

impl SecureConfig {
    /// The defaults for `identity`, `trust` and `role` on `session_id`.
    pub fn new(
        identity: Identity,
        trust: TrustStore,
        role: SessionRole,
        session_id: u32,
    ) -> SecureConfig {
        SecureConfig {
            identity,
            trust,
            role,
            session_id,
            retry: Duration::from_millis(100),
            handshake_timeout: Duration::from_secs(5),
            rekey_after_silence: Duration::from_secs(1),
            session_expiry: Duration::from_secs(30),
            max_handshakes_per_second: 20,
            wall_clock_us: 0,
        }
    }
}

/// How often an initiator repeats message 1 once `handshake_timeout` has passed: a receiver
/// that starts later is answered within this, at four 150-byte messages a second.
pub const KEEP_TRYING: Duration = Duration::from_millis(250);

/// Message 1s a responder remembers to drop exact replays of them cheaply.
pub const SEEN_CALLS: usize = 64;

/// Room [`Secure`] reserves in the caller's buffer for a datagram before the inner endpoint
/// writes it (plus the tag): an Ethernet MTU, above the 1200-byte datagrams Tandem sends by
/// default. A larger datagram raises it (see [`SecurityStats::seal_bytes_copied`]).
pub const SEAL_ROOM: usize = 1500;

/// Most (source, version) pairs a [`Secure`] reports as [`SecurityEvent::PeerVersion`]: a
/// stranger spraying versions from many addresses costs a few events, then nothing.
pub const MAX_VERSION_REPORTS: usize = 8;

/// What the security layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A session with `peer` is up (again).
    Established {
        /// The authenticated peer.
        peer: PeerKey,
    },
    /// No reply to the handshake after `handshake_timeout`: the peer is not running, has
    /// not paired with this device, or speaks another protocol version.
    HandshakeTimedOut {
        /// How long it has tried.
        waited: Duration,
    },
    /// A device that is not paired tried to start a session (at most one event a second).
    /// Unauthenticated: a warning, never a reason to end anything.
    RejectedPeer {
        /// Its peer id.
        fingerprint: String,
        /// Where its handshake came from, when the driver said.
        from: Option<SocketAddr>,
    },
    /// A Tandem datagram of another protocol version arrived while no session was up
    /// (reported once per source and version, for [`MAX_VERSION_REPORTS`] of them).
    /// Unauthenticated: any stranger's bytes can read as another version, so this is a
    /// warning for the user, never a reason to end anything.
    PeerVersion {
        /// The version it speaks.
        version: u8,
        /// Where it came from, when the driver said.
        from: Option<SocketAddr>,
    },
    /// The session went idle past `session_expiry` and was dropped.
    SessionExpired,
}

/// An event of the wrapped endpoint, or of the security layer.
#[derive(Debug, Clone)]
pub enum SecureEvent<E> {
    /// The inner endpoint's.
    Inner(E),
    /// The security layer's.
    Security(SecurityEvent),
}

/// Counters of the security layer: every datagram it dropped, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityStats {
    /// Datagrams opened and handed in.
    pub opened: u64,
    /// Datagrams sealed and sent.
    pub sealed: u64,
    /// Sealed datagrams that failed authentication.
    pub forged: u64,
    /// Authentic datagrams seen before (or too old for the replay window).
    pub replayed: u64,
    /// With two paths open: datagrams whose number the replay window had already taken,
    /// dropped unopened — the later copy of one the peer sent on both paths. (A replay on
    /// one path looks the same, and costs the same: this counter, nothing more.) Counted
    /// here rather than in [`SecurityStats::replayed`], so that copies do not pass for an
    /// attack.
    pub path_copies: u64,
    /// Datagrams that came unsealed where only sealed ones belong.
    pub unsealed: u64,
    /// Not a Tandem datagram, or of another session.
    pub malformed: u64,
    /// Tandem datagrams of another protocol version.
    pub other_version: u64,
    /// Handshakes that were not valid (forged, damaged, for other keys).
    pub bad_handshakes: u64,
    /// Valid handshakes from devices not in the trust store.
    pub unknown_peers: u64,
    /// Handshake messages beyond the rate limit.
    pub rate_limited: u64,
    /// Handshakes completed (sessions set up).
    pub handshakes: u64,
    /// Datagrams the inner endpoint released before any session was up, dropped.
    pub dropped_before_session: u64,
    /// Sealed datagrams opened from a copy instead of in their own buffer: the buffer was
    /// shared (another `Bytes` handle to it was alive, so it could not be written), or two
    /// sessions' keys could have sealed the datagram (a failed open overwrites what it
    /// worked on, so every key but the last tries a copy; only between a new handshake and
    /// the first datagram under its keys). Zero when the driver hands each datagram over
    /// in a buffer of its own: then opening copies nothing.
    pub open_copies: u64,
    /// Bytes of the datagrams counted in [`SecurityStats::open_copies`], copied.
    pub open_bytes_copied: u64,
    /// Bytes moved while sealing: the caller's buffer had no room left for the tag after
    /// the inner endpoint wrote a datagram larger than [`SEAL_ROOM`] and any before it, so
    /// appending the tag grew the buffer and moved everything in it. Otherwise sealing
    /// encrypts in place and copies nothing.
    pub seal_bytes_copied: u64,
}

#[derive(Debug)]
struct Session {
    send: SealKeys,
    recv: SealKeys,
    window: ReplayWindow,
    peer: PeerKey,
    heard_at: Instant,
}

impl Session {
    fn new(keys: SessionKeys, now: Instant) -> Session {
        Session {
            send: SealKeys::new(keys.send),
            recv: SealKeys::new(keys.recv),
            window: ReplayWindow::default(),
            peer: keys.peer,
            heard_at: now,
        }
    }
}

#[derive(Debug)]
struct Calling {
    state: Initiator,
    message: Bytes,
    started: Instant,
    next_retry: Instant,
    reported: bool,
}

/// The security layer around `E` (see the module docs).
#[derive(Debug)]
pub struct Secure<E> {
    inner: E,
    config: SecureConfig,
    current: Option<Session>,
    pending: Option<Session>,
    calling: Option<Calling>,
    /// Responder: the last message 1 answered and the reply, to repeat.
    answered: Option<(Vec<u8>, Bytes)>,
    out: VecDeque<Bytes>,
    events: VecDeque<SecurityEvent>,
    stats: SecurityStats,
    budget: (Instant, u32),
    last_rejection: Option<Instant>,
    /// (source, version) pairs already reported, at most [`MAX_VERSION_REPORTS`].
    versions_reported: Vec<(Option<SocketAddr>, u8)>,
    /// Source of the datagram being handled, for events about strangers.
    source: Option<SocketAddr>,
    /// The path the datagram being handled arrived on, for the inner endpoint.
    arrival_path: PathId,
    /// Which paths the driver has open: with two, a datagram seen before is a copy.
    open_paths: PathSet,
    /// A session has been current before (the next one means the peer started over).
    had_session: bool,
    /// When this endpoint was created: message 1 timestamps count from it.
    created: Instant,
    /// Responder: the newest message-1 timestamp accepted from each peer.
    newest_call: Vec<(PeerKey, u64)>,
    /// Responder: the `mac1` tags of the last [`SEEN_CALLS`] message 1s that cost a
    /// Diffie-Hellman: an exact replay of one is dropped for the price of a comparison.
    seen_calls: VecDeque<[u8; crate::security::handshake::MAC1_LEN]>,
    /// The last datagram was a valid handshake step or opened under a session key.
    last_authentic: bool,
    /// Room reserved for the inner endpoint's next datagram: [`SEAL_ROOM`], or the largest
    /// it has written if larger.
    room: usize,
}

impl<E: Endpoint> Secure<E> {
    /// Wraps `inner`; an initiator sends its first handshake message at once.
    pub fn new(inner: E, config: SecureConfig, now: Instant) -> Secure<E> {
        let mut s = Secure {
            inner,
            config,
            current: None,
            pending: None,
            calling: None,
            answered: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: SecurityStats::default(),
            budget: (now, 0),
            last_rejection: None,
            versions_reported: Vec::new(),
            source: None,
            arrival_path: PathId::FIRST,
            open_paths: PathSet::only(PathId::FIRST),
            had_session: false,
            created: now,
            newest_call: Vec::new(),
            seen_calls: VecDeque::new(),
            last_authentic: false,
            room: SEAL_ROOM,
        };
        s.call(now);
        s
    }

    /// The wrapped endpoint.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped endpoint, to call into it (for example `send_frame`).
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// The authenticated peer of the live session.
    pub fn peer(&self) -> Option<PeerKey> {
        self.current
            .as_ref()
            .or(self.pending.as_ref())
            .map(|s| s.peer)
    }

    /// Whether a session is up.
    pub fn is_established(&self) -> bool {
        self.current.is_some() || self.pending.is_some()
    }

    /// Counters.
    pub fn stats(&self) -> SecurityStats {
        self.stats
    }

    /// Starts (or restarts) the handshake, if this is the initiator.
    fn call(&mut self, now: Instant) {
        let SessionRole::Initiator { peer } = self.config.role else {
            return;
        };
        // Only a failing random source makes `start` fail. There is then no message to
        // repeat, so the session stays down and the app sees the handshake time out.
        // The message's timestamp: wall-clock µs (0 when the caller gave no clock).
        let stamp = match self.config.wall_clock_us {
            0 => 0,
            wall => wall + now.saturating_duration_since(self.created).as_micros() as u64,
        };
        if let Ok((state, msg1)) =
            Initiator::start(&self.config.identity, peer, &stamp.to_be_bytes())
        {
            {
                let mut m = security_header(TYPE_HANDSHAKE, self.config.session_id, 0).to_vec();
                m.extend_from_slice(&msg1);
                let message = Bytes::from(m);
                self.out.push_back(message.clone());
                self.calling = Some(Calling {
                    state,
                    message,
                    started: now,
                    next_retry: now + self.config.retry,
                    reported: false,
                });
            }
        }
    }

    fn within_budget(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.budget.0) >= Duration::from_secs(1) {
            self.budget = (now, 0);
        }
        self.budget.1 += 1;
        self.budget.1 <= self.config.max_handshakes_per_second
    }

    fn on_handshake(&mut self, now: Instant, body: &[u8]) {
        if self.config.role != SessionRole::Responder {
            self.stats.bad_handshakes += 1;
            return;
        }
        if let Some((msg1, reply)) = &self.answered
            && msg1.as_slice() == body
        {
            // Our reply was lost: repeat it, no new keys.
            let r = reply.clone();
            self.out.push_back(r);
            self.last_authentic = true;
            return;
        }
        // A handshake that does not know our key is refused for the price of a hash, before
        // it can spend the budget a paired peer's handshake needs (see `handshake`).
        if !crate::security::handshake::mac1_valid(&self.config.identity.public(), body) {
            self.stats.bad_handshakes += 1;
            return;
        }
        // An exact copy of a message 1 already worked on is a replay: no Diffie-Hellman,
        // no budget (the peer's own retries match `answered` above instead).
        let tag = crate::security::handshake::mac1_tag(body);
        if self.seen_calls.contains(&tag) {
            self.stats.replayed += 1;
            return;
        }
        if !self.within_budget(now) {
            self.stats.rate_limited += 1;
            return;
        }
        if self.seen_calls.len() == SEEN_CALLS {
            self.seen_calls.pop_front();
        }
        self.seen_calls.push_back(tag);
        match respond(&self.config.identity, &self.config.trust, body, &[]) {
            Ok(accepted) => {
                // Only a message 1 newer than the last accepted from this peer may start a
                // session: an older one, replayed, would displace the one being set up.
                let stamp =
                    <[u8; 8]>::try_from(accepted.payload.as_slice()).map_or(0, u64::from_be_bytes);
                let peer = accepted.keys.peer;
                let newest = self.newest_call.iter_mut().find(|(p, _)| *p == peer);
                match newest {
                    Some((_, last)) if stamp != 0 && stamp <= *last => {
                        self.stats.replayed += 1;
                        return;
                    }
                    Some((_, last)) => *last = (*last).max(stamp),
                    None => self.newest_call.push((peer, stamp)),
                }
                let mut m =
                    security_header(TYPE_HANDSHAKE_REPLY, self.config.session_id, 0).to_vec();
                // Which message 1 this answers (see `handshake`): a stale reply cannot
                // break the initiator's handshake in progress.
                m.extend_from_slice(&tag);
                m.extend_from_slice(&accepted.reply);
                let reply = Bytes::from(m);
                self.out.push_back(reply.clone());
                self.answered = Some((body.to_vec(), reply));
                self.pending = Some(Session::new(accepted.keys, now));
                self.stats.handshakes += 1;
                self.last_authentic = true;
            }
            Err(SecurityError::UnknownPeer(fingerprint)) => {
                self.stats.unknown_peers += 1;
                if self
                    .last_rejection
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
                {
                    self.last_rejection = Some(now);
                    self.events.push_back(SecurityEvent::RejectedPeer {
                        fingerprint,
                        from: self.source,
                    });
                }
            }
            Err(_) => self.stats.bad_handshakes += 1,
        }
    }

    fn on_reply(&mut self, now: Instant, body: &[u8]) {
        use crate::security::handshake::{MAC1_LEN, mac1_tag};
        // A reply names the message 1 it answers. One to another (a repeat of an old
        // session's reply, replayed) is dropped before it can spend the handshake state.
        let answers_ours = self.calling.as_ref().is_some_and(|c| {
            body.len() > MAC1_LEN && body[..MAC1_LEN] == mac1_tag(&c.message[HEADER_LEN..])
        });
        if !answers_ours {
            // A reply to nothing (a repeat after we finished), to another call, or forged.
            self.stats.bad_handshakes += 1;
            return;
        }
        let Some(calling) = self.calling.take() else {
            return;
        };
        let body = &body[MAC1_LEN..];
        match calling.state.finish(body) {
            Ok((keys, _)) => {
                let peer = keys.peer;
                self.current = Some(Session::new(keys, now));
                self.pending = None;
                self.stats.handshakes += 1;
                self.last_authentic = true;
                self.events.push_back(SecurityEvent::Established { peer });
            }
            Err(_) => {
                // Noise consumed the state: start again (a forged reply must not stop us).
                self.stats.bad_handshakes += 1;
                self.call(now);
            }
        }
    }

    /// Opens a sealed datagram under the session whose keys sealed it and hands the
    /// plaintext in. Opens in place, in the datagram's own buffer, when this is its only
    /// handle; otherwise a copy (counted in [`SecurityStats::open_copies`]).
    fn on_sealed(&mut self, now: Instant, mut datagram: Bytes, pn: u64) {
        // The sessions that could have sealed it: those whose replay window takes `pn`.
        let mut replayed = false;
        let mut candidates = [false; 2];
        for (pending, candidate) in candidates.iter_mut().enumerate() {
            let slot = if pending == 1 {
                &self.pending
            } else {
                &self.current
            };
            if let Some(s) = slot {
                *candidate = s.window.fresh(pn);
                replayed |= !*candidate;
            }
        }
        let mut untried = candidates.iter().filter(|c| **c).count();
        for pending in [false, true] {
            if !candidates[usize::from(pending)] {
                continue;
            }
            untried -= 1;
            let buf = if untried == 0 {
                // The last key to try works in the datagram's own buffer, when this is
                // the only handle to it.
                match std::mem::take(&mut datagram).try_into_mut() {
                    Ok(own) => own,
                    Err(shared) => self.copy_to_open(&shared),
                }
            } else {
                // A failed open overwrites its buffer: a key that may not be the last
                // works on a copy.
                self.copy_to_open(&datagram)
            };
            let slot = if pending {
                &mut self.pending
            } else {
                &mut self.current
            };
            let Some(s) = slot.as_mut() else {
                continue;
            };
            let Ok((plain, pn)) = s.recv.open_in_place(buf) else {
                continue;
            };
            s.window.accept(pn);
            s.heard_at = now;
            if pending {
                // The peer uses the new keys: they are the session now. A session after an
                // earlier one means the peer's stream starts over: the endpoint forgets the
                // old one before this datagram, the new stream's first, reaches it.
                let restarted = std::mem::replace(&mut self.had_session, true);
                self.current = self.pending.take();
                if let Some(peer) = self.current.as_ref().map(|s| s.peer) {
                    self.events.push_back(SecurityEvent::Established { peer });
                }
                if restarted {
                    self.inner.peer_restarted(now);
                }
            }
            self.stats.opened += 1;
            self.last_authentic = true;
            self.inner.handle_datagram_on(now, self.arrival_path, plain);
            return;
        }
        if replayed && self.open_paths.len() > 1 {
            self.stats.path_copies += 1;
        } else if replayed {
            self.stats.replayed += 1;
        } else {
            self.stats.forged += 1;
        }
    }

    /// A copy of `datagram` to open, counted.
    fn copy_to_open(&mut self, datagram: &[u8]) -> BytesMut {
        self.stats.open_copies += 1;
        self.stats.open_bytes_copied += datagram.len() as u64;
        BytesMut::from(datagram)
    }
}

impl<E: Endpoint> Endpoint for Secure<E> {
    type Event = SecureEvent<E::Event>;

    fn is_established(&self) -> bool {
        Secure::is_established(self)
    }

    fn handle_datagram_from(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        self.source = Some(from);
        self.handle_datagram(now, datagram);
        self.source = None;
    }

    fn handle_datagram_on(&mut self, now: Instant, path: PathId, datagram: Bytes) {
        self.arrival_path = path;
        self.handle_datagram(now, datagram);
        self.arrival_path = PathId::FIRST;
    }

    fn set_path_open(&mut self, now: Instant, path: PathId, open: bool) {
        self.open_paths = if open {
            self.open_paths.with(path)
        } else {
            self.open_paths.without(path)
        };
        self.inner.set_path_open(now, path, open);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        self.poll_transmit_on(now, buf).map(|t| t.len)
    }

    fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.last_authentic = false;
        let header = match peek_header(&datagram) {
            Ok(h) => h,
            Err(ParseError::UnsupportedVersion(version)) => {
                self.stats.other_version += 1;
                // With a session up the peer evidently speaks our version: this datagram is
                // someone else's (or forged to alarm the user), not news for the app.
                let key = (self.source, version);
                if !self.is_established()
                    && self.versions_reported.len() < MAX_VERSION_REPORTS
                    && !self.versions_reported.contains(&key)
                {
                    self.versions_reported.push(key);
                    self.events.push_back(SecurityEvent::PeerVersion {
                        version,
                        from: self.source,
                    });
                }
                return;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if header.session_id != self.config.session_id {
            self.stats.malformed += 1;
            return;
        }
        let body = &datagram[HEADER_LEN..];
        match (header.type_nibble, header.sealed) {
            (TYPE_HANDSHAKE, false) => self.on_handshake(now, body),
            (TYPE_HANDSHAKE_REPLY, false) => self.on_reply(now, body),
            (_, true) => self.on_sealed(now, datagram, header.packet_number),
            _ => self.stats.unsealed += 1,
        }
    }

    fn poll_transmit_on(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(contents) = self.out.pop_front() {
            buf.extend_from_slice(&contents);
            // Handshakes go on every path: the peer may be reachable on either.
            return Some(Transmit {
                len: contents.len(),
                paths: PathSet::ALL,
            });
        }
        // A responder answers on the keys its peer has just taken up, before any datagram
        // has confirmed them.
        let Some(session) = self.current.as_mut().or(self.pending.as_mut()) else {
            // No session: what the inner endpoint releases cannot go out. Dropping it (the
            // protocol repairs or re-requests what matters) keeps its timers moving: a ping
            // never polled would stay due forever.
            // Written into the caller's buffer and cut off again: `buf` ends as it began.
            let start = buf.len();
            while self.inner.poll_transmit(now, buf).is_some() {
                buf.truncate(start);
                self.stats.dropped_before_session += 1;
            }
            return None;
        };
        // Sealed where the inner endpoint writes it, in the caller's buffer: room for the
        // datagram and its tag first, so neither the inner endpoint's writing nor the tag
        // moves the datagram (a growing `Vec` moves its contents).
        let start = buf.len();
        buf.reserve(self.room + TAG_LEN);
        let Transmit { len, paths } = self.inner.poll_transmit_on(now, buf)?;
        self.room = self.room.max(len);
        if buf.capacity() - buf.len() < TAG_LEN {
            // Larger than any datagram before: appending the tag moves the buffer. Counted,
            // and the room grows so it happens once.
            self.stats.seal_bytes_copied += buf.len() as u64;
        }
        match session.send.seal_in_place(buf, start) {
            Ok(()) => {
                self.stats.sealed += 1;
                Some(Transmit {
                    len: len + TAG_LEN,
                    paths,
                })
            }
            Err(_) => {
                buf.truncate(start);
                // Used up (or the inner datagram was not one): a new session is needed.
                self.current = None;
                self.pending = None;
                self.call(now);
                None
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.calling.as_ref().map(|c| c.next_retry);
        let heard = self.current.as_ref().map(|s| s.heard_at);
        let rekey = match self.config.role {
            SessionRole::Initiator { .. } if self.calling.is_none() => {
                heard.map(|t| t + self.config.rekey_after_silence)
            }
            _ => None,
        };
        let expiry = heard.map(|t| t + self.config.session_expiry);
        [self.inner.poll_timeout(), retry, rekey, expiry]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        if let Some(s) = &self.current
            && now.saturating_duration_since(s.heard_at) >= self.config.session_expiry
        {
            self.current = None;
            self.events.push_back(SecurityEvent::SessionExpired);
        }
        let silent = self.current.as_ref().is_some_and(|s| {
            now.saturating_duration_since(s.heard_at) >= self.config.rekey_after_silence
        });
        if silent && self.calling.is_none() {
            self.call(now);
        }
        let (timeout, retry) = (self.config.handshake_timeout, self.config.retry);
        if let Some(c) = &mut self.calling
            && now >= c.next_retry
        {
            self.out.push_back(c.message.clone());
            let waited = now.saturating_duration_since(c.started);
            if waited >= timeout {
                if !c.reported {
                    c.reported = true;
                    self.events
                        .push_back(SecurityEvent::HandshakeTimedOut { waited });
                }
                // Keep trying, more gently: the peer may start later.
                c.next_retry = now + KEEP_TRYING;
            } else {
                c.next_retry = now + retry;
            }
        }
    }

    fn poll_event(&mut self) -> Option<SecureEvent<E::Event>> {
        if let Some(e) = self.events.pop_front() {
            return Some(SecureEvent::Security(e));
        }
        self.inner.poll_event().map(SecureEvent::Inner)
    }

    fn authenticates(&self) -> bool {
        true
    }

    fn last_datagram_authentic(&self) -> bool {
        self.last_authentic
    }
}

/// An endpoint behind the security layer, or bare: for a driver that chooses at run time
/// (the engine uses the bare form only when the app configured no identity, as benchmarks
/// and simulations on one trusted host do). Either way it speaks [`SecureEvent`]s.
// One per session, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum MaybeSecure<E> {
    /// No handshake, nothing sealed.
    Plain(E),
    /// Behind [`Secure`].
    Sealed(Secure<E>),
}

impl<E: Endpoint> MaybeSecure<E> {
    /// The wrapped endpoint.
    pub fn inner(&self) -> &E {
        match self {
            MaybeSecure::Plain(e) => e,
            MaybeSecure::Sealed(s) => s.inner(),
        }
    }

    /// The wrapped endpoint, to call into it.
    pub fn inner_mut(&mut self) -> &mut E {
        match self {
            MaybeSecure::Plain(e) => e,
            MaybeSecure::Sealed(s) => s.inner_mut(),
        }
    }

    /// The security layer's counters (all zero when bare).
    pub fn security_stats(&self) -> SecurityStats {
        match self {
            MaybeSecure::Plain(_) => SecurityStats::default(),
            MaybeSecure::Sealed(s) => s.stats(),
        }
    }

    /// Whether datagrams can flow: always when bare, once a session is up when sealed.
    pub fn is_established(&self) -> bool {
        match self {
            MaybeSecure::Plain(_) => true,
            MaybeSecure::Sealed(s) => s.is_established(),
        }
    }

    /// The authenticated peer (never, when bare).
    pub fn peer(&self) -> Option<PeerKey> {
        match self {
            MaybeSecure::Plain(_) => None,
            MaybeSecure::Sealed(s) => s.peer(),
        }
    }
}

impl<E: Endpoint> Endpoint for MaybeSecure<E> {
    type Event = SecureEvent<E::Event>;

    fn is_established(&self) -> bool {
        MaybeSecure::is_established(self)
    }

    fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        match self {
            MaybeSecure::Plain(e) => e.handle_datagram(now, datagram),
            MaybeSecure::Sealed(s) => s.handle_datagram(now, datagram),
        }
    }
    fn handle_datagram_from(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        match self {
            MaybeSecure::Plain(e) => e.handle_datagram_from(now, from, datagram),
            MaybeSecure::Sealed(s) => s.handle_datagram_from(now, from, datagram),
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        match self {
            MaybeSecure::Plain(e) => e.poll_transmit(now, buf),
            MaybeSecure::Sealed(s) => s.poll_transmit(now, buf),
        }
    }
    fn handle_datagram_on(&mut self, now: Instant, path: PathId, datagram: Bytes) {
        match self {
            MaybeSecure::Plain(e) => e.handle_datagram_on(now, path, datagram),
            MaybeSecure::Sealed(s) => s.handle_datagram_on(now, path, datagram),
        }
    }
    fn poll_transmit_on(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        match self {
            MaybeSecure::Plain(e) => e.poll_transmit_on(now, buf),
            MaybeSecure::Sealed(s) => s.poll_transmit_on(now, buf),
        }
    }
    fn set_path_open(&mut self, now: Instant, path: PathId, open: bool) {
        match self {
            MaybeSecure::Plain(e) => e.set_path_open(now, path, open),
            MaybeSecure::Sealed(s) => s.set_path_open(now, path, open),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            MaybeSecure::Plain(e) => e.poll_timeout(),
            MaybeSecure::Sealed(s) => s.poll_timeout(),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            MaybeSecure::Plain(e) => e.handle_timeout(now),
            MaybeSecure::Sealed(s) => s.handle_timeout(now),
        }
    }
    fn peer_restarted(&mut self, now: Instant) {
        match self {
            MaybeSecure::Plain(e) => e.peer_restarted(now),
            MaybeSecure::Sealed(s) => s.inner.peer_restarted(now),
        }
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        match self {
            MaybeSecure::Plain(e) => e.poll_event().map(SecureEvent::Inner),
            MaybeSecure::Sealed(s) => s.poll_event(),
        }
    }
    fn authenticates(&self) -> bool {
        matches!(self, MaybeSecure::Sealed(_))
    }
    fn last_datagram_authentic(&self) -> bool {
        match self {
            MaybeSecure::Plain(e) => e.last_datagram_authentic(),
            MaybeSecure::Sealed(s) => s.last_datagram_authentic(),
        }
    }
}
