//! A sender and a receiver in virtual time over a scripted link: the protocol's behaviour
//! end to end, without tandem-sim's impairment models (which depend on this crate).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_proto::packet::{Packet, Payload};
use tandem_proto::{
    Endpoint, FecMode, OutgoingFrame, PlayoutPolicy, ReceivedFrame, Receiver, ReceiverConfig,
    ReceiverEvent, Sender, SenderConfig, SenderEvent,
};

const SESSION: u32 = 0x5e55;
const FPS_INTERVAL: Duration = Duration::from_micros(16_667);

/// Decides per forward datagram: `None` drops it, `Some(d)` delivers after `d`.
type Script = Box<dyn FnMut(Instant, &Packet, bool) -> Option<Duration>>;

struct Pair {
    t0: Instant,
    now: Instant,
    tx: Sender,
    rx: Receiver,
    fwd: Vec<(Instant, Bytes)>,
    back: VecDeque<(Instant, Bytes)>,
    script: Script,
    next_frame: Instant,
    frame_size: usize,
    pending_keyframe: bool,
    shown: Vec<(ReceivedFrame, Instant)>,
    hidden: Vec<u32>,
    keyframe_requests: u32,
    seen_seqs: std::collections::HashSet<u32>,
}

impl Pair {
    fn new(tx: SenderConfig, rx: ReceiverConfig, script: Script) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            tx: Sender::new(tx, t0),
            // The receiver's clock started 3 s before the sender's: offsets must not matter.
            rx: Receiver::new(rx, t0 - Duration::from_secs(3)),
            fwd: Vec::new(),
            back: VecDeque::new(),
            script,
            next_frame: t0,
            frame_size: 12_000,
            pending_keyframe: true,
            shown: Vec::new(),
            hidden: Vec::new(),
            keyframe_requests: 0,
            seen_seqs: Default::default(),
        }
    }

    fn run_until(&mut self, end: Instant) {
        while self.now < end {
            let mut next = [
                Some(self.next_frame),
                self.tx.poll_timeout(),
                self.rx.poll_timeout(),
                self.fwd.iter().map(|(t, _)| *t).min(),
                self.back.front().map(|(t, _)| *t),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end)
            .min(end);
            if next < self.now {
                next = self.now;
            }
            self.now = next;
            let now = self.now;
            // Deliver due datagrams.
            self.fwd.sort_by_key(|(t, _)| *t);
            while self.fwd.first().is_some_and(|(t, _)| *t <= now) {
                let (_, d) = self.fwd.remove(0);
                self.rx.handle_datagram(now, d);
            }
            while self.back.front().is_some_and(|(t, _)| *t <= now) {
                let (_, d) = self.back.pop_front().expect("checked");
                self.tx.handle_datagram(now, d);
            }
            if self.next_frame <= now {
                let keyframe = std::mem::take(&mut self.pending_keyframe);
                let size = if keyframe {
                    self.frame_size * 4
                } else {
                    self.frame_size
                };
                let data: Bytes = (0..size).map(|i| (i as u32 ^ size as u32) as u8).collect();
                self.tx
                    .send_frame(now, OutgoingFrame::av1(data, now, keyframe))
                    .expect("frame accepted");
                self.next_frame += FPS_INTERVAL;
            }
            if self.tx.poll_timeout().is_some_and(|t| t <= now) {
                self.tx.handle_timeout(now);
            }
            if self.rx.poll_timeout().is_some_and(|t| t <= now) {
                self.rx.handle_timeout(now);
            }
            while let Some(t) = self.tx.poll_datagram(now) {
                let p = Packet::parse(t.clone(), SESSION).expect("we parse our own");
                let retransmit = match &p.payload {
                    Payload::Media(m) => !self.seen_seqs.insert(m.seq),
                    _ => false,
                };
                if let Some(d) = (self.script)(now, &p, retransmit) {
                    self.fwd.push((now + d, t));
                }
            }
            while let Some(t) = self.rx.poll_datagram(now) {
                self.back.push_back((now + Duration::from_millis(1), t));
            }
            while let Some(e) = self.tx.poll_event() {
                match e {
                    SenderEvent::KeyframeRequested => {
                        self.keyframe_requests += 1;
                        self.pending_keyframe = true;
                    }
                    SenderEvent::TargetBitrate(_) => {}
                }
            }
            while let Some(ReceiverEvent::Frame(f)) = self.rx.poll_event() {
                if f.display {
                    self.shown.push((f, now));
                } else {
                    self.hidden.push(f.frame_id);
                }
            }
        }
    }

    fn latency_of(&self, f: &ReceivedFrame, at: Instant) -> Duration {
        at - (self.t0 + Duration::from_micros(f.capture_us))
    }
}

fn one_ms() -> Script {
    Box::new(|_, _, _| Some(Duration::from_millis(1)))
}

#[test]
fn clean_link_delivers_every_frame_intact_and_fast() {
    let mut p = Pair::new(
        SenderConfig::new(SESSION),
        ReceiverConfig::new(SESSION),
        one_ms(),
    );
    p.run_until(p.t0 + Duration::from_secs(2));
    assert!(p.shown.len() >= 119, "{} shown", p.shown.len());
    assert!(p.hidden.is_empty());
    for (i, (f, at)) in p.shown.iter().enumerate() {
        assert_eq!(f.frame_id, i as u32, "in order, none missing");
        let size = if f.keyframe { 48_000 } else { 12_000 };
        assert_eq!(f.data.len(), size);
        assert!(
            f.data
                .iter()
                .enumerate()
                .all(|(j, b)| *b == (j as u32 ^ size as u32) as u8)
        );
        if !f.keyframe {
            // 1 ms link + 12 kB spread over 10 % of the frame interval.
            let l = p.latency_of(f, *at);
            assert!(l <= Duration::from_micros(2_800), "frame {i}: {l:?}");
        }
    }
    let s = p.rx.stats();
    assert_eq!(s.packets_lost, 0);
    assert!(
        s.rtt
            .is_some_and(|r| r >= Duration::from_millis(2) && r < Duration::from_millis(4))
    );
    // The receiver clock started 3 s before the sender's: sender − receiver = −3 s.
    let off = s.clock_offset_us.expect("pinged");
    assert!((off + 3_000_000).abs() < 100, "{off}");
    assert!(
        s.one_way_delay
            .is_some_and(|d| d < Duration::from_micros(1_300))
    );
}

#[test]
fn nack_repairs_random_losses_including_frame_tails() {
    let mut n = 0u32;
    let script: Script = Box::new(move |_, pkt, retransmit| {
        n += 1;
        // Every 7th original media datagram is lost; retransmissions get through.
        match &pkt.payload {
            Payload::Media(_) if !retransmit && n.is_multiple_of(7) => None,
            _ => Some(Duration::from_millis(1)),
        }
    });
    // 14 % loss would switch adaptive FEC on; this test is about NACK alone.
    let mut tx = SenderConfig::new(SESSION);
    tx.fec = FecMode::Off;
    let mut p = Pair::new(tx, ReceiverConfig::new(SESSION), script);
    p.run_until(p.t0 + Duration::from_secs(3));
    assert!(p.shown.len() >= 178, "{} shown", p.shown.len());
    let s = p.rx.stats();
    assert!(s.packets_repaired > 100, "{s:?}");
    assert_eq!(s.frames_abandoned, 0);
    assert!(p.tx.stats().retransmissions >= s.packets_repaired);
    let worst = p
        .shown
        .iter()
        .map(|(f, at)| p.latency_of(f, *at))
        .max()
        .expect("frames");
    // Repair costs one RTT (2 ms) plus the tail wait (3 ms) at most.
    assert!(worst < Duration::from_millis(12), "{worst:?}");
}

#[test]
fn fec_alone_repairs_one_loss_per_frame() {
    let mut tx = SenderConfig::new(SESSION);
    tx.fec = FecMode::Fixed(0.25);
    let mut rx = ReceiverConfig::new(SESSION);
    rx.nack = false;
    let script: Script = Box::new(|_, pkt, _| match &pkt.payload {
        Payload::Media(m) if m.index == 1 => None,
        _ => Some(Duration::from_millis(1)),
    });
    let mut p = Pair::new(tx, rx, script);
    p.run_until(p.t0 + Duration::from_secs(1));
    let s = p.rx.stats();
    assert!(p.shown.len() >= 59, "{} shown, {s:?}", p.shown.len());
    assert_eq!(
        s.frames_fec_recovered as usize,
        p.shown.len() + p.hidden.len()
    );
    assert_eq!(s.nacks_sent, 0);
}

#[test]
fn an_unrecoverable_frame_is_skipped_and_a_keyframe_restores_the_stream() {
    let script: Script = Box::new(|_, pkt, _| match &pkt.payload {
        Payload::Media(m) if m.frame.frame_id == 30 => None,
        _ => Some(Duration::from_millis(1)),
    });
    let mut rx = ReceiverConfig::new(SESSION);
    rx.nack = false;
    let mut tx = SenderConfig::new(SESSION);
    tx.fec = FecMode::Off;
    let mut p = Pair::new(tx, rx, script);
    p.run_until(p.t0 + Duration::from_secs(2));
    let s = p.rx.stats();
    assert_eq!(s.frames_abandoned, 1);
    assert!(s.keyframe_requests_sent >= 1);
    assert!(p.keyframe_requests >= 1);
    let ids: Vec<u32> = p.shown.iter().map(|(f, _)| f.frame_id).collect();
    assert!(!ids.contains(&30));
    let resumed = p
        .shown
        .iter()
        .find(|(f, _)| f.frame_id > 30)
        .expect("stream resumed");
    assert!(
        resumed.0.keyframe,
        "first frame after the gap is the requested keyframe"
    );
    // Freeze = wait for timeout (50 ms) + request + next capture + keyframe transfer.
    let before = p
        .shown
        .iter()
        .rfind(|(f, _)| f.frame_id < 30)
        .expect("frames before")
        .1;
    assert!(
        resumed.1 - before < Duration::from_millis(110),
        "{:?}",
        resumed.1 - before
    );
    assert!(ids.len() >= 110);
}

#[test]
fn latency_policy_shows_only_the_newest_frame_of_a_stall_burst() {
    let mut p = Pair::new(
        SenderConfig::new(SESSION),
        ReceiverConfig::new(SESSION),
        one_ms(),
    );
    let t0 = p.t0;
    // All forward traffic sent between 500 and 545 ms is held until 545 ms.
    p.script = Box::new(move |now, _, _| {
        let at = now - t0;
        let (s, e) = (Duration::from_millis(500), Duration::from_millis(545));
        Some(if at >= s && at < e {
            e - at + Duration::from_millis(1)
        } else {
            Duration::from_millis(1)
        })
    });
    p.run_until(t0 + Duration::from_secs(1));
    // Frames captured at 500, 516.7, 533.3 ms were held: the first two are decode-only.
    assert_eq!(p.hidden, vec![30, 31], "hidden {:?}", p.hidden);
    let after: Vec<_> = p
        .shown
        .iter()
        .filter(|(f, _)| f.frame_id >= 32)
        .take(3)
        .collect();
    assert_eq!(after[0].0.frame_id, 32);
    // The next frame after the stall is back to baseline latency.
    assert!(p.latency_of(&after[1].0, after[1].1) < Duration::from_millis(3));
}

#[test]
fn fixed_policy_delays_every_frame_by_the_buffer() {
    let mut rx = ReceiverConfig::new(SESSION);
    rx.playout = PlayoutPolicy::Fixed(Duration::from_millis(50));
    let mut p = Pair::new(SenderConfig::new(SESSION), rx, one_ms());
    p.run_until(p.t0 + Duration::from_secs(2));
    let mut lat: Vec<_> = p
        .shown
        .iter()
        .skip(5)
        .map(|(f, at)| p.latency_of(f, *at))
        .collect();
    lat.sort();
    assert!(lat[0] >= Duration::from_millis(50), "{:?}", lat[0]);
    assert!(lat[lat.len() / 2] < Duration::from_millis(53));
}

#[test]
fn malformed_and_foreign_datagrams_are_counted_and_change_nothing() {
    let t0 = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig::new(SESSION), t0);
    rx.handle_datagram(t0, Bytes::from_static(b"\xD1\x01garbage"));
    rx.handle_datagram(t0, Bytes::from_static(&[0u8; 40]));
    let mut foreign = vec![0xD1, 0x06, 0, 0, 0, 9, 0, 0, 0, 0, 0, 1];
    foreign.extend_from_slice(&[0; 12]);
    rx.handle_datagram(t0, Bytes::from(foreign));
    let s = rx.stats();
    assert_eq!(s.drops.malformed, 2);
    assert_eq!(s.drops.wrong_session, 1);
    assert_eq!(s.media_packets, 0);
    assert!(rx.poll_event().is_none());
}

#[test]
fn the_send_queue_is_bounded_and_events_do_not_pile_up() {
    let t0 = Instant::now();
    let mut c = SenderConfig::new(SESSION);
    c.initial_capacity_bps = 10_000_000;
    let mut tx = Sender::new(c, t0);
    let frame = |at| OutgoingFrame::av1(Bytes::from(vec![1u8; 200_000]), at, false);
    // 200 kB frames into a 10 Mbit/s pacer and nobody sending: 160 ms each.
    let mut refused = 0;
    for i in 0..20u64 {
        let at = t0 + Duration::from_millis(16 * i);
        match tx.send_frame(at, frame(at)) {
            Ok(_) => {}
            Err(tandem_proto::SendError::QueueFull { queued }) => {
                assert!(queued > Duration::from_secs(1));
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused >= 12, "{refused} refused");
    assert!(
        tx.queue_delay() <= Duration::from_millis(1200),
        "{:?}",
        tx.queue_delay()
    );
    // Many refusals, one keyframe request waiting.
    let events: Vec<_> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert_eq!(events, vec![SenderEvent::KeyframeRequested]);
}
