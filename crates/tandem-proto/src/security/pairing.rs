//! Pairing: two devices that have never met agree on each other's identity keys through a
//! short code one shows and the other types, with SPAKE2 (Ed25519 group) so that neither
//! an eavesdropper nor a man in the middle can test guesses offline: an active attacker gets
//! one guess per attempt, and attempts are limited.
//!
//! ```text
//! typer → shower   step 1 | SPAKE2 message A (33 B)
//! shower → typer   step 2 | SPAKE2 message B | shower's key (32 B) | name | MAC_B (32 B)
//! typer → shower   step 3 | typer's key (32 B) | name | MAC_A (32 B)
//! shower → typer   step 4 | MAC_OK (32 B)
//! MAC_x = HMAC-SHA256(K, "tandem/1 pair" | x | message A | message B | key | name)
//! ```
//!
//! Each message is one datagram of type 10 (header session id 0), retransmitted every
//! 250 ms until answered. A typer that finds MAC_B wrong knows the code did not match, and
//! still sends step 3 so the shower learns it at once; the shower counts a wrong step 3 as a
//! failed attempt, waits a second before it takes another, and after three gives up (a new
//! code starts over). A 6-digit code and 3 attempts leave a guesser 3 chances in a million.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity as SpakeId, Password, Spake2};

use super::identity::{Identity, KEY_LEN, MAX_NAME, PeerKey};
use crate::Endpoint;
use crate::packet::{HEADER_LEN, TYPE_PAIR, peek_header, security_header};

const MSG_LEN: usize = 33;
const MAC_LEN: usize = 32;
const INITIATOR: &[u8] = b"tandem/1 pair initiator";
const RESPONDER: &[u8] = b"tandem/1 pair responder";

/// Which side of the code this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingRole {
    /// Shows the code and waits (the responder).
    ShowCode,
    /// Types the code the other device shows (the initiator).
    EnterCode,
}

/// Pairing settings. [`PairingConfig::new`] documents the defaults.
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// Which side.
    pub role: PairingRole,
    /// The code (as shown; only its digits count).
    pub code: String,
    /// This device's identity, whose public key the peer will pin.
    pub identity: Identity,
    /// The name the peer will file us under.
    pub name: String,
    /// Give up after this long. Default 60 s.
    pub timeout: Duration,
    /// Wrong codes the shower takes before it gives up. Default 3.
    pub max_attempts: u32,
    /// Shortest gap between the shower's attempts. Default 1 s.
    pub attempt_interval: Duration,
    /// Retransmission interval. Default 250 ms.
    pub retry: Duration,
}

impl PairingConfig {
    /// The defaults for `role` with `code`.
    pub fn new(role: PairingRole, code: &str, identity: Identity, name: &str) -> PairingConfig {
        PairingConfig {
            role,
            code: code.into(),
            identity,
            name: name.chars().take(MAX_NAME).collect(),
            timeout: Duration::from_secs(60),
            max_attempts: 3,
            attempt_interval: Duration::from_secs(1),
            retry: Duration::from_millis(250),
        }
    }
}

/// A fresh 6-digit code from the operating system's random source.
pub fn new_code() -> String {
    let mut b = [0u8; 4];
    // Without randomness there is no code worth showing; 0 makes that visible in tests.
    let _ = getrandom::fill(&mut b);
    format!("{:06}", u32::from_be_bytes(b) % 1_000_000)
}

fn digits(code: &str) -> Vec<u8> {
    code.bytes().filter(u8::is_ascii_digit).collect()
}

/// How a pairing ended, or what happened on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingEvent {
    /// Done: store `peer` in the trust store under `name`.
    Paired {
        /// The peer's key.
        peer: PeerKey,
        /// The name it gave.
        name: String,
    },
    /// (Shower) the other device typed a wrong code; `attempts_left` more are allowed.
    WrongCodeEntered {
        /// Attempts left.
        attempts_left: u32,
    },
    /// The pairing is over without success.
    Failed(PairingFailure),
}

/// Why a pairing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairingFailure {
    /// (Typer) the code does not match the one the other device shows.
    #[error("the code did not match the one the other device shows")]
    WrongCode,
    /// (Shower) too many wrong codes: show a new one.
    #[error("too many wrong codes; start again with a new code")]
    TooManyAttempts,
    /// No answer in time.
    #[error("no answer from the other device in time")]
    TimedOut,
}

fn mac(k: &[u8], label: &[u8], a: &[u8], b: &[u8], key: &[u8], name: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(k) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    for part in [
        b"tandem/1 pair".as_slice(),
        label,
        a,
        b,
        key,
        &[name.len() as u8],
        name,
    ] {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

fn verify(expected: &[u8; MAC_LEN], got: &[u8]) -> bool {
    // Constant time: every byte is compared whatever the first difference.
    got.len() == MAC_LEN
        && expected
            .iter()
            .zip(got)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug)]
enum State {
    /// Typer: sent step 1, waiting for step 2.
    Calling {
        spake: Option<Spake2<Ed25519Group>>,
        msg_a: Vec<u8>,
    },
    /// Typer: sent step 3, waiting for step 4.
    Confirming {
        k: Vec<u8>,
        peer: PeerKey,
        name: String,
    },
    /// Shower: waiting for a step 1.
    Listening,
    /// Shower: answered step 1 at `at`, waiting for step 3.
    Answered {
        k: Vec<u8>,
        msg_a: Vec<u8>,
        msg_b: Vec<u8>,
        step2: Bytes,
        at: Instant,
    },
    /// Over (paired or failed); the last message is repeated when the peer repeats.
    Done { repeat: Option<Bytes> },
}

/// The pairing state machine (an [`Endpoint`]: drive it with `tandem-net`'s driver, or in
/// virtual time).
#[derive(Debug)]
pub struct Pairing {
    config: PairingConfig,
    state: State,
    started: Instant,
    failures: u32,
    last_failure: Option<Instant>,
    /// The message to resend until answered, and when.
    pending: Option<(Bytes, Instant)>,
    out: VecDeque<Bytes>,
    events: VecDeque<PairingEvent>,
    next_pn: u64,
    /// Datagrams that were not pairing messages of this attempt.
    pub ignored: u64,
}

impl Pairing {
    /// Starts pairing at `now` (the typer sends step 1 at once).
    pub fn new(config: PairingConfig, now: Instant) -> Pairing {
        let mut p = Pairing {
            state: State::Listening,
            started: now,
            failures: 0,
            last_failure: None,
            pending: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_pn: 0,
            ignored: 0,
            config,
        };
        if p.config.role == PairingRole::EnterCode {
            p.call(now);
        }
        p
    }

    fn password(&self) -> Password {
        Password::new(digits(&self.config.code))
    }

    fn message(&mut self, step: u8, body: &[&[u8]]) -> Bytes {
        let header = security_header(TYPE_PAIR, 0, self.next_pn);
        self.next_pn += 1;
        let mut m = header.to_vec();
        m.push(step);
        for part in body {
            m.extend_from_slice(part);
        }
        Bytes::from(m)
    }

    fn call(&mut self, now: Instant) {
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a(
            &self.password(),
            &SpakeId::new(INITIATOR),
            &SpakeId::new(RESPONDER),
        );
        let step1 = self.message(1, &[&msg_a]);
        self.send_until_answered(step1, now);
        self.state = State::Calling {
            spake: Some(spake),
            msg_a,
        };
    }

    fn send_until_answered(&mut self, m: Bytes, now: Instant) {
        self.out.push_back(m.clone());
        self.pending = Some((m, now + self.config.retry));
    }

    fn finish(&mut self, event: PairingEvent, repeat: Option<Bytes>) {
        self.events.push_back(event);
        self.pending = None;
        self.state = State::Done { repeat };
    }

    fn own_key(&self) -> [u8; KEY_LEN] {
        self.config.identity.public().0
    }

    fn on_message(&mut self, now: Instant, step: u8, body: &[u8]) {
        let own = self.own_key();
        let name = self.config.name.clone().into_bytes();
        match (&mut self.state, step) {
            (State::Calling { spake, msg_a }, 2) => {
                let Some((msg_b, key, peer_name, mac_b)) = split_step2(body) else {
                    self.ignored += 1;
                    return;
                };
                let Some(k) = spake.take().and_then(|s| s.finish(msg_b).ok()) else {
                    self.ignored += 1;
                    return;
                };
                let msg_a = msg_a.clone();
                let good = verify(&mac(&k, b"B", &msg_a, msg_b, key, peer_name), mac_b);
                let mac_a = mac(&k, b"A", &msg_a, msg_b, &own, &name);
                let step3 = self.message(3, &[&own, &[name.len() as u8], &name, &mac_a]);
                if !good {
                    // Tell the shower at once, then stop: nothing here is worth keeping.
                    self.out.push_back(step3);
                    self.finish(PairingEvent::Failed(PairingFailure::WrongCode), None);
                    return;
                }
                let mut peer = [0u8; KEY_LEN];
                peer.copy_from_slice(key);
                let peer_name = String::from_utf8_lossy(peer_name).into_owned();
                self.send_until_answered(step3, now);
                self.state = State::Confirming {
                    k,
                    peer: PeerKey(peer),
                    name: peer_name,
                };
            }
            (State::Confirming { k, peer, name }, 4) => {
                if verify(&mac(k, b"OK", &[], &[], &peer.0, &[]), body) {
                    let event = PairingEvent::Paired {
                        peer: *peer,
                        name: name.clone(),
                    };
                    self.finish(event, None);
                } else {
                    self.ignored += 1;
                }
            }
            (State::Listening, 1) if body.len() == MSG_LEN => {
                if self
                    .last_failure
                    .is_some_and(|t| now < t + self.config.attempt_interval)
                {
                    self.ignored += 1;
                    return;
                }
                let (spake, msg_b) = Spake2::<Ed25519Group>::start_b(
                    &self.password(),
                    &SpakeId::new(INITIATOR),
                    &SpakeId::new(RESPONDER),
                );
                let Ok(k) = spake.finish(body) else {
                    self.ignored += 1;
                    return;
                };
                let mac_b = mac(&k, b"B", body, &msg_b, &own, &name);
                let step2 = self.message(2, &[&msg_b, &own, &[name.len() as u8], &name, &mac_b]);
                self.out.push_back(step2.clone());
                self.state = State::Answered {
                    k,
                    msg_a: body.to_vec(),
                    msg_b,
                    step2,
                    at: now,
                };
            }
            (State::Answered { msg_a, step2, .. }, 1) if body == msg_a.as_slice() => {
                // Our step 2 was lost: say it again.
                let again = step2.clone();
                self.out.push_back(again);
            }
            (
                State::Answered {
                    k, msg_a, msg_b, ..
                },
                3,
            ) => {
                let Some((key, peer_name, mac_a)) = split_step3(body) else {
                    self.ignored += 1;
                    return;
                };
                if verify(&mac(k, b"A", msg_a, msg_b, key, peer_name), mac_a) {
                    let mut peer = [0u8; KEY_LEN];
                    peer.copy_from_slice(key);
                    let ok = mac(k, b"OK", &[], &[], &own, &[]);
                    let step4 = self.message(4, &[&ok]);
                    self.out.push_back(step4.clone());
                    let name = String::from_utf8_lossy(peer_name).into_owned();
                    self.finish(
                        PairingEvent::Paired {
                            peer: PeerKey(peer),
                            name,
                        },
                        Some(step4),
                    );
                } else {
                    self.failed_attempt(now);
                }
            }
            (State::Done { repeat: Some(m) }, 3) => {
                // Our step 4 was lost.
                let again = m.clone();
                self.out.push_back(again);
            }
            _ => self.ignored += 1,
        }
    }
}

impl Pairing {
    /// (Shower) an attempt failed: count it, and give up after the last one.
    fn failed_attempt(&mut self, now: Instant) {
        self.failures += 1;
        self.last_failure = Some(now);
        if self.failures >= self.config.max_attempts {
            self.finish(PairingEvent::Failed(PairingFailure::TooManyAttempts), None);
        } else {
            self.events.push_back(PairingEvent::WrongCodeEntered {
                attempts_left: self.config.max_attempts - self.failures,
            });
            self.state = State::Listening;
        }
    }
}

/// How long the shower waits for step 3 before it counts the attempt as failed (a typer
/// whose step 3 was lost, or one that left).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

fn split_name(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = b.split_first()?;
    let len = usize::from(len);
    (len <= MAX_NAME && rest.len() >= len).then(|| rest.split_at(len))
}

/// Step 2's parts: SPAKE2 message B, key, name, MAC.
type Step2<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8]);

fn split_step2(b: &[u8]) -> Option<Step2<'_>> {
    let (msg_b, rest) = b.split_at_checked(MSG_LEN)?;
    let (key, rest) = rest.split_at_checked(KEY_LEN)?;
    let (name, mac_b) = split_name(rest)?;
    (mac_b.len() == MAC_LEN).then_some((msg_b, key, name, mac_b))
}

fn split_step3(b: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (key, rest) = b.split_at_checked(KEY_LEN)?;
    let (name, mac_a) = split_name(rest)?;
    (mac_a.len() == MAC_LEN).then_some((key, name, mac_a))
}

impl Endpoint for Pairing {
    type Event = PairingEvent;

    fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        match peek_header(&datagram) {
            Ok(h) if h.type_nibble == TYPE_PAIR && !h.sealed && datagram.len() > HEADER_LEN => {
                let step = datagram[HEADER_LEN];
                self.on_message(now, step, &datagram[HEADER_LEN + 1..]);
            }
            _ => self.ignored += 1,
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let contents = self.out.pop_front()?;
        buf.extend_from_slice(&contents);
        Some(contents.len())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Done { .. }) {
            return None;
        }
        let give_up = self.started + self.config.timeout;
        let answered = match self.state {
            State::Answered { at, .. } => at + ANSWER_TIMEOUT,
            _ => give_up,
        };
        let retry = self.pending.as_ref().map_or(give_up, |(_, t)| *t);
        Some(give_up.min(answered).min(retry))
    }

    fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Done { .. }) {
            return;
        }
        if now >= self.started + self.config.timeout {
            self.finish(PairingEvent::Failed(PairingFailure::TimedOut), None);
            return;
        }
        if let State::Answered { at, .. } = self.state
            && now >= at + ANSWER_TIMEOUT
        {
            self.failed_attempt(now);
        }
        if let Some((m, due)) = &mut self.pending
            && now >= *due
        {
            self.out.push_back(m.clone());
            *due = now + self.config.retry;
        }
    }

    fn poll_event(&mut self) -> Option<PairingEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(role: PairingRole, code: &str, name: &str, now: Instant) -> (Pairing, PeerKey) {
        let id = Identity::generate().expect("identity");
        let key = id.public();
        (
            Pairing::new(PairingConfig::new(role, code, id, name), now),
            key,
        )
    }

    /// Runs both ends until the typer (`a`) is done, dropping `a`'s first `drop_first`
    /// datagrams; returns their events.
    fn run(
        a: &mut Pairing,
        b: &mut Pairing,
        start: Instant,
        drop_first: usize,
    ) -> (Vec<PairingEvent>, Vec<PairingEvent>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        let mut dropped = 0;
        let mut now = start;
        for _ in 0..2000 {
            let typer_done = a.poll_timeout().is_none();
            while let Some(d) = a.poll_datagram(now) {
                if dropped < drop_first {
                    dropped += 1;
                } else {
                    b.handle_datagram(now, d);
                }
            }
            while let Some(d) = b.poll_datagram(now) {
                a.handle_datagram(now, d);
            }
            ea.extend(std::iter::from_fn(|| a.poll_event()));
            eb.extend(std::iter::from_fn(|| b.poll_event()));
            // The typer's end is the exchange's end (the shower may go on listening), once
            // its last message has been delivered.
            if typer_done {
                break;
            }
            now += Duration::from_millis(50);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        (ea, eb)
    }

    #[test]
    fn the_right_code_pairs_both_ways_even_through_loss() {
        let start = Instant::now();
        let code = new_code();
        assert_eq!(code.len(), 6);
        let (mut typer, typer_key) = device(PairingRole::EnterCode, &code, "Phone", start);
        let (mut shower, shower_key) = device(PairingRole::ShowCode, &code, "TV", start);
        let (et, es) = run(&mut typer, &mut shower, start, 1);
        assert_eq!(
            et,
            vec![PairingEvent::Paired {
                peer: shower_key,
                name: "TV".into()
            }]
        );
        assert_eq!(
            es,
            vec![PairingEvent::Paired {
                peer: typer_key,
                name: "Phone".into()
            }]
        );
    }

    #[test]
    fn wrong_codes_fail_on_both_sides_and_are_limited() {
        let start = Instant::now();
        let (mut shower, _) = device(PairingRole::ShowCode, "123 456", "TV", start);
        let mut now = start;
        for attempt in 1..=3u32 {
            let (mut typer, _) = device(PairingRole::EnterCode, "123457", "Phone", now);
            let (et, es) = run(&mut typer, &mut shower, now, 0);
            assert_eq!(et, vec![PairingEvent::Failed(PairingFailure::WrongCode)]);
            if attempt < 3 {
                assert_eq!(
                    es,
                    vec![PairingEvent::WrongCodeEntered {
                        attempts_left: 3 - attempt
                    }]
                );
            } else {
                assert_eq!(
                    es,
                    vec![PairingEvent::Failed(PairingFailure::TooManyAttempts)]
                );
            }
            now += Duration::from_secs(2);
        }
        // The shower is done: even the right code does not pair now.
        let (mut late, _) = device(PairingRole::EnterCode, "123456", "Phone", now);
        let (et, es) = run(&mut late, &mut shower, now, 0);
        assert_eq!(et, vec![PairingEvent::Failed(PairingFailure::TimedOut)]);
        assert!(es.is_empty());
    }

    #[test]
    fn attempts_right_after_a_failure_wait_and_garbage_is_ignored() {
        let start = Instant::now();
        let (mut shower, _) = device(PairingRole::ShowCode, "111111", "TV", start);
        let (mut wrong, _) = device(PairingRole::EnterCode, "222222", "X", start);
        let _ = run(&mut wrong, &mut shower, start, 0);
        // At once again, with the right code: ignored, the typer retries after the second.
        let (mut right, key) = device(PairingRole::EnterCode, "111111", "Phone", start);
        let (et, es) = run(&mut right, &mut shower, start, 0);
        assert!(
            matches!(et.as_slice(), [PairingEvent::Paired { .. }]),
            "{et:?}"
        );
        assert_eq!(
            es,
            vec![PairingEvent::Paired {
                peer: key,
                name: "Phone".into()
            }]
        );
        assert!(shower.ignored > 0, "the early attempt was held off");
        for junk in [
            &b""[..],
            b"\xD1\x0A",
            &[0xD1, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 9, 9][..],
        ] {
            shower.handle_datagram(start, Bytes::copy_from_slice(junk));
        }
        assert!(shower.poll_event().is_none());
    }
}
