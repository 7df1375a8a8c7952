//! [`Receiver`]: network → playout → decoder → sink.
//!
//! ```text
//!  UDP ─▶ driver (proto receiver: reassembly, loss repair, jitter, playout) ─▶ events [1024]
//!       ─▶ decoder thread (dav1d or OpenH264 by each frame's codec tag, or pass-through) ─▶ pixel code read ─▶ sink
//!  stats thread: Stats every interval; restarts the protocol state when the sender did
//! ```
//!
//! Playout lives in the protocol, which marks each frame for display or decode-only; the
//! decoder thread decodes every frame (references must stay current) and hands only those
//! marked for display to the sink. The network side never waits for the decoder: the event
//! channel is bounded, and a frame dropped there (a decoder that fell far behind) makes the
//! protocol hold further deltas and ask for a keyframe.
//!
//! A sender that restarts comes back with new frame ids, maybe from a new port. Sealed, it
//! comes back with a new session, and the security layer starts the protocol state over
//! before the new stream's first datagram (its keyframe): video resumes with no request.
//! In the clear, the driver follows a new address once the old one has been silent a
//! second; the stats thread sees either the new address or datagrams that no longer make
//! frames, and starts the protocol state over, which asks for a keyframe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver as Rx, Sender as Tx, bounded};
use tandem_codec::{DecoderConfig, VideoDecoder};
use tandem_net::DriverHandle;
use tandem_proto::security::{MaybeSecure, SecureEvent};
use tandem_proto::{Endpoint, PlayoutPolicy, ReceivedFrame, ReceiverEvent};

use crate::config::{OutputMode, ReceiverConfig};
use crate::connect::{Remote, driver_config};
use crate::error::EngineError;
use crate::pipeline::{Pipeline, lock, peer_trouble};
use crate::sender::send_replacing;
use crate::sink::{DisplayFrame, EncodedVideo, FrameSink};
use crate::stats::{
    PathFigures, PathState, Stats, TIMES_KEPT, Times, Window, g2g_from_code, wall_us,
};

type Driver = DriverHandle<MaybeSecure<tandem_proto::Receiver>>;

#[derive(Debug, Default)]
struct Counters {
    frames_shown: AtomicU64,
    frames_late: AtomicU64,
    frames_skipped: AtomicU64,
    freezes: AtomicU64,
    keyframes: AtomicU64,
    decode_errors: AtomicU64,
    restarts: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Windows {
    decode: Window,
    g2g: Window,
}

struct Shared {
    counters: Counters,
    windows: Mutex<Windows>,
    /// Each decode time with its frame id, for [`Receiver::decode_times`].
    decode_times: Times,
    /// The last interval's median glass-to-glass latency, ms: the baseline "late" is
    /// measured from.
    g2g_baseline_ms: Mutex<Option<f64>>,
    frame_interval: Mutex<Duration>,
    peer_trouble: Mutex<Option<String>>,
    /// What the security layer said: the session's trouble, and warnings about strangers.
    security: Mutex<crate::security::SecurityReport>,
    fatal: Mutex<Option<String>>,
    stop: AtomicBool,
    started: Instant,
    /// The codec of the newest frame, for the stats.
    codec: crate::codec_tag::LastCodec,
}

/// A running receiver. Dropping it stops every thread and the network side.
pub struct Receiver {
    pipeline: Pipeline<MaybeSecure<tandem_proto::Receiver>>,
    shared: Arc<Shared>,
    stats: Rx<Stats>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("local", &self.pipeline.local_addr())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Starts a receiver: listening for a sender ([`Remote::Listen`]), or reaching one that
    /// waits for its receiver (an address or a discovered peer). Frames go to `sink`.
    pub fn start(
        config: ReceiverConfig,
        remote: Remote,
        sink: Box<dyn FrameSink>,
    ) -> Result<Receiver, EngineError> {
        let decoder = match config.output {
            OutputMode::Decoded => Some(VideoDecoder::new(&DecoderConfig {
                threads: config.decoder_threads.max(1),
                ..DecoderConfig::default()
            })),
            OutputMode::Encoded => None,
        };
        let (driver_cfg, _path) = driver_config(&config.net, &remote)?;
        let two_paths = remote.two_paths(&config.net);
        let proto_config = tandem_proto::ReceiverConfig {
            playout: config.playout,
            ..tandem_proto::ReceiverConfig::new(config.net.session_id)
        };
        let (mut pipeline, events) = Pipeline::start(
            "tandem-recv-net",
            crate::security::guard(
                tandem_proto::Receiver::new(proto_config.clone(), Instant::now()),
                &config.net,
                &remote,
                Instant::now(),
            )?,
            driver_cfg,
        )?;
        let driver = Arc::clone(pipeline.driver()?);
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            windows: Mutex::new(Windows::default()),
            decode_times: bounded(TIMES_KEPT),
            g2g_baseline_ms: Mutex::new(None),
            frame_interval: Mutex::new(Duration::from_micros(16_667)),
            peer_trouble: Mutex::new(None),
            security: Mutex::default(),
            fatal: Mutex::new(None),
            stop: AtomicBool::new(false),
            started: Instant::now(),
            codec: crate::codec_tag::LastCodec::new(),
        });
        let (stats_tx, stats) = bounded::<Stats>(4);
        pipeline.spawn("tandem-decode", {
            let (driver, shared) = (Arc::clone(&driver), Arc::clone(&shared));
            move || {
                tandem_net::qos::media_thread();
                decode_loop(decoder, sink, events, &driver, &shared)
            }
        })?;
        pipeline.spawn("tandem-recv-stats", {
            let (shared, drain) = (Arc::clone(&shared), stats.clone());
            move || {
                stats_loop(
                    &driver,
                    &shared,
                    &config,
                    two_paths,
                    proto_config,
                    &stats_tx,
                    &drain,
                )
            }
        })?;
        Ok(Receiver {
            pipeline,
            shared,
            stats,
        })
    }

    /// The local address the receiver's socket is bound to (where senders send).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.pipeline.local_addr()
    }

    /// The sender's address, once known.
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.pipeline.driver().ok().and_then(|d| d.peer())
    }

    /// The address the second path's socket is bound to, for a session over two paths
    /// that has one ([`crate::NetConfig::second_local`], [`crate::Remote::Addresses`], a
    /// discovered peer under [`crate::PathPreference::Both`]); `None` otherwise, or once that
    /// path is lost. Path 0's is [`Receiver::local_addr`].
    pub fn second_local_addr(&self) -> Option<std::net::SocketAddr> {
        self.pipeline
            .driver()
            .ok()
            .and_then(|d| d.second_local_addr())
    }

    /// Changes the playout policy now.
    pub fn set_playout_policy(&self, policy: PlayoutPolicy) -> Result<(), EngineError> {
        self.pipeline
            .driver()?
            .call(move |r, _| r.inner_mut().set_playout_policy(policy))
            .map_err(|_| EngineError::Stopped)
    }

    /// Asks the sender for a keyframe and holds frames until it arrives: for an app that
    /// decodes itself (encoded output) when its decoder fails. The engine's own decoder
    /// does this by itself.
    pub fn request_keyframe(&self) -> Result<(), EngineError> {
        self.pipeline
            .driver()?
            .call(|r, _| r.inner_mut().decoder_lost_sync())
            .map_err(|_| EngineError::Stopped)
    }

    /// The stats stream: one [`Stats`] per interval (the oldest is dropped when nobody
    /// reads).
    pub fn stats(&self) -> Rx<Stats> {
        self.stats.clone()
    }

    /// Each decoded frame's id (the sender's) and decode time, as it is decoded: the
    /// per-frame samples behind [`Stats::decode_ms`], for a report that wants percentiles
    /// over a whole run. The newest 1024 wait when nobody reads.
    pub fn decode_times(&self) -> Rx<(u32, Duration)> {
        self.shared.decode_times.1.clone()
    }

    /// Why the session is in trouble (peer gone, network failed), if it is.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.fatal)
            .clone()
            .or_else(|| lock(&self.shared.security).trouble())
            .or_else(|| lock(&self.shared.peer_trouble).clone())
    }

    /// What stopped this end for good, if anything: the local system failed (the socket,
    /// the network side, the decoder's start). Unlike [`Receiver::error`] it never names the
    /// sender's absence, which a sender that comes back ends: for an app deciding whether
    /// to exit.
    pub fn failure(&self) -> Option<String> {
        let fatal = lock(&self.shared.fatal).clone();
        fatal.or_else(|| {
            let driver = self.pipeline.driver().ok();
            let stopped = driver.is_none_or(|d| d.is_finished());
            stopped.then(|| crate::pipeline::network_stopped(driver.map(|d| &**d)))
        })
    }

    /// Stops the network side, then the decoder (which finishes the sink), then the rest.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), EngineError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The decoder thread ends when the driver's event channel closes, finishing the
        // sink on its way out; a sink that failed makes the stop an error.
        let result = self.pipeline.stop();
        if let Some(e) = lock(&self.shared.fatal).clone() {
            return Err(EngineError::Io {
                what: "receiving",
                source: std::io::Error::other(e),
            });
        }
        result
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Where the decoder thread is in the sender's frame ids.
#[derive(Debug, Default)]
struct Progress {
    next_id: Option<u32>,
    last_shown: Option<Instant>,
    /// The last delivered frame's id and capture time (sender clock, µs).
    last_capture: Option<(u32, u64)>,
}

impl Progress {
    /// Learns the frame interval from capture times: the spacing of consecutive ids,
    /// smoothed (gain 1/8). Returns the new estimate when there is one.
    fn interval(&mut self, id: u32, capture_us: u64, current: Duration) -> Option<Duration> {
        let prev = self.last_capture.replace((id, capture_us))?;
        let frames = id.checked_sub(prev.0).filter(|n| *n > 0)?;
        let spacing = capture_us.checked_sub(prev.1)? / u64::from(frames);
        // Pauses and nonsense are not a frame rate.
        if !(1_000..=200_000).contains(&spacing) {
            return None;
        }
        Some((current * 7 + Duration::from_micros(spacing)) / 8)
    }

    /// Frames the sender sent between the last one seen and `id` (never delivered), or
    /// `None` when `id` goes backwards: a restarted sender.
    fn gap(&mut self, id: u32) -> Option<u64> {
        let gap = match self.next_id {
            None => 0,
            Some(next) if id >= next => u64::from(id - next),
            Some(_) => {
                self.next_id = Some(id.wrapping_add(1));
                return None;
            }
        };
        self.next_id = Some(id.wrapping_add(1));
        Some(gap)
    }
}

fn decode_loop(
    mut decoder: Option<VideoDecoder>,
    mut sink: Box<dyn FrameSink>,
    mut events: tokio::sync::mpsc::Receiver<SecureEvent<ReceiverEvent>>,
    driver: &Driver,
    shared: &Shared,
) {
    let mut progress = Progress::default();
    let c = &shared.counters;
    while let Some(event) = events.blocking_recv() {
        let f = match event {
            SecureEvent::Inner(ReceiverEvent::Frame(f)) => f,
            SecureEvent::Security(e) => {
                lock(&shared.security).on_event(&e);
                continue;
            }
        };
        if let Some(gap) = progress.gap(f.frame_id) {
            c.frames_skipped.fetch_add(gap, Ordering::Relaxed);
        }
        c.bytes.fetch_add(f.data.len() as u64, Ordering::Relaxed);
        shared.codec.record(f.codec);
        if f.keyframe {
            c.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut interval = lock(&shared.frame_interval);
            if let Some(i) = progress.interval(f.frame_id, f.capture_us, *interval) {
                *interval = i;
            }
        }
        let shown = match &mut decoder {
            None => {
                sink.on_encoded(&encoded(&f, None));
                f.display
            }
            Some(d) => decode_one(d, &f, &mut *sink, driver, shared, &mut progress),
        };
        if !shown {
            c.frames_skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Err(e) = sink.finish() {
        lock(&shared.fatal).get_or_insert(format!("the sink failed: {e}"));
    }
}

fn encoded(f: &ReceivedFrame, size: Option<(u32, u32)>) -> EncodedVideo {
    EncodedVideo {
        frame_id: f.frame_id,
        codec: f.codec,
        keyframe: f.keyframe,
        display: f.display,
        capture_us: f.capture_us,
        data: f.data.clone(),
        released_at: f.released_at,
        size,
    }
}

/// Decodes `f` and shows it if playout said so; returns whether it was shown.
fn decode_one(
    decoder: &mut VideoDecoder,
    f: &ReceivedFrame,
    sink: &mut dyn FrameSink,
    driver: &Driver,
    shared: &Shared,
    progress: &mut Progress,
) -> bool {
    let c = &shared.counters;
    let Some(bitstream) = crate::codec_tag::bitstream_of(f.codec) else {
        // Not ours to decode: the app should have asked for encoded output.
        sink.on_encoded(&encoded(f, None));
        return false;
    };
    let started = Instant::now();
    let picture = match decoder.decode(bitstream, f.data.clone(), f.frame_id, f.capture_us) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%e, frame = f.frame_id, "decode failed; asking for a keyframe");
            c.decode_errors.fetch_add(1, Ordering::Relaxed);
            let _ = driver.call(|r, _| r.inner_mut().decoder_lost_sync());
            return false;
        }
    };
    let decoded_at = Instant::now();
    lock(&shared.windows).decode.push(decoded_at - started);
    let (times, drain) = &shared.decode_times;
    send_replacing(times, drain, (f.frame_id, decoded_at - started));
    sink.on_encoded(&encoded(
        f,
        picture.as_ref().map(|p| (p.width(), p.height())),
    ));
    let Some(frame) = picture else {
        return false;
    };
    if !f.display {
        return false;
    }
    let code = tandem_codec::pixelcode::read(&frame);
    let g2g = code.and_then(|k| g2g_from_code(k.capture_us, wall_us()));
    let interval = *lock(&shared.frame_interval);
    if let Some(l) = g2g {
        lock(&shared.windows).g2g.push(l);
        let late = lock(&shared.g2g_baseline_ms)
            .is_some_and(|base| l.as_secs_f64() * 1e3 > base + interval.as_secs_f64() * 1e3);
        if late {
            c.frames_late.fetch_add(1, Ordering::Relaxed);
        }
    }
    if progress
        .last_shown
        .is_some_and(|t| decoded_at - t > Duration::from_millis(100))
    {
        c.freezes.fetch_add(1, Ordering::Relaxed);
    }
    progress.last_shown = Some(decoded_at);
    c.frames_shown.fetch_add(1, Ordering::Relaxed);
    sink.on_frame(DisplayFrame {
        frame,
        keyframe: f.keyframe,
        capture_us: f.capture_us,
        completed_at: f.completed_at,
        released_at: f.released_at,
        decoded_at,
        code,
        g2g,
    });
    true
}

/// Publishes a [`Stats`] every interval; watches the peer; restarts the protocol state
/// when the sender restarted.
fn stats_loop(
    driver: &Driver,
    shared: &Shared,
    config: &ReceiverConfig,
    two_paths: bool,
    proto_config: tandem_proto::ReceiverConfig,
    out: &Tx<Stats>,
    drain: &Rx<Stats>,
) {
    let c = &shared.counters;
    let mut figures = PathFigures::default();
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut peer_changes = 0u64;
    // Restarts the security layer saw (a new authenticated session: the protocol state
    // started over already, before the new stream's first datagram).
    let mut peer_restarts = 0u64;
    // Datagrams and delivered frames when frames last moved.
    let mut progress = (Instant::now(), 0u64, 0u64);
    let mut prev_lost = (0u64, 0u64);
    let mut first_contact: Option<Instant> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        let d = driver.stats();
        let Ok((p, security, authenticated, at)) =
            driver.call(|r, now| (r.inner().stats(), r.security_stats(), r.peer(), now))
        else {
            // Not an error when we are the ones stopping it.
            if !shared.stop.load(Ordering::Relaxed) {
                let why = crate::pipeline::network_stopped(Some(driver));
                lock(&shared.fatal).get_or_insert(why.clone());
                // The last snapshot says why, so an app that reads only stats learns it.
                let stats = Stats {
                    role: "receiver",
                    elapsed_s: (now - shared.started).as_secs_f64(),
                    peer: driver.peer().map(|a| a.to_string()),
                    error: Some(why),
                    frames_shown: c.frames_shown.load(Ordering::Relaxed),
                    restarts: c.restarts.load(Ordering::Relaxed),
                    ..Stats::default()
                };
                send_replacing(out, drain, stats);
            }
            break;
        };
        if p.peer_restarts != peer_restarts {
            c.restarts.fetch_add(
                p.peer_restarts.saturating_sub(peer_restarts),
                Ordering::Relaxed,
            );
            tracing::info!("the sender started a new session; its stream starts over");
            peer_restarts = p.peer_restarts;
            // Its new address (if it moved) is part of the same restart.
            peer_changes = d.peer_changes;
            progress = (now, d.datagrams_in, p.frames_delivered);
        }
        // A new sender address, or datagrams that make no frames (a sender in the clear,
        // which has no session to say it restarted): start over.
        let stuck = d.datagrams_in > progress.1
            && p.frames_delivered == progress.2
            && now - progress.0 > config.restart_after;
        if d.peer_changes != peer_changes || stuck {
            peer_changes = d.peer_changes;
            let cfg = proto_config.clone();
            let reset = driver.call(move |r, now| {
                // The paths the driver opened stay open (as a restart the security layer
                // sees keeps them).
                let open = r.inner().stats().paths.map(|p| p.open);
                *r.inner_mut() = tandem_proto::Receiver::new(cfg, now);
                for (path, open) in tandem_proto::PathId::all().zip(open) {
                    if open {
                        r.inner_mut().set_path_open(now, path, true);
                    }
                }
            });
            if reset.is_ok() {
                c.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::info!("the sender restarted; starting over");
                // The fresh state counts the security layer's restarts from zero again.
                peer_restarts = 0;
            }
            progress = (now, d.datagrams_in, 0);
            continue;
        }
        if p.frames_delivered != progress.2 || d.datagrams_in == progress.1 {
            progress = (now, d.datagrams_in, p.frames_delivered);
        }
        if d.datagrams_in > 0 {
            first_contact.get_or_insert(now);
        }
        let trouble = peer_trouble(driver, config.net.peer_timeout, Some(shared.started));
        *lock(&shared.peer_trouble) = trouble;
        if last.0.elapsed() < config.stats_interval {
            continue;
        }
        let dt = (now - last.0).as_secs_f64().max(1e-3);
        let shown = c.frames_shown.load(Ordering::Relaxed);
        let bytes = c.bytes.load(Ordering::Relaxed);
        let (decode_ms, g2g_ms) = {
            let mut w = lock(&shared.windows);
            (w.decode.take(), w.g2g.take())
        };
        if let Some(g) = g2g_ms {
            *lock(&shared.g2g_baseline_ms) = Some(g.p50);
        }
        let expected = p.packets_lost + p.media_packets;
        let lost = (
            p.packets_lost - prev_lost.0.min(p.packets_lost),
            expected - prev_lost.1.min(expected),
        );
        prev_lost = (p.packets_lost, expected);
        let error = lock(&shared.fatal)
            .clone()
            .or_else(|| lock(&shared.security).trouble())
            .or_else(|| lock(&shared.peer_trouble).clone());
        // What the decoder thread got: the video that reached this end.
        let received_kbps = (bytes - last.2) as f64 * 8.0 / dt / 1e3;
        let paths = if two_paths {
            let states = std::array::from_fn(|i| {
                let path = &p.paths[i];
                let ago = path.last_heard.map(|t| at.saturating_duration_since(t));
                PathState::from_silence(path.open, ago)
            });
            figures.take(&p.paths, &d.paths, driver.path_peers(), states, at, dt)
        } else {
            Vec::new()
        };
        let stats = Stats {
            role: "receiver",
            codec: shared.codec.name(),
            elapsed_s: (now - shared.started).as_secs_f64(),
            peer: driver.peer().map(|a| a.to_string()),
            error,
            warnings: lock(&shared.security).warnings(),
            fps: (shown - last.1) as f64 / dt,
            bitrate_kbps: received_kbps,
            target_kbps: p.sender_target_bps / 1000,
            delivered_kbps: Some(received_kbps),
            rtt_ms: p.rtt.map(|r| r.as_secs_f64() * 1e3),
            loss_pct: if lost.1 > 0 {
                lost.0 as f64 * 100.0 / lost.1 as f64
            } else {
                0.0
            },
            jitter_ms: p.interarrival_jitter.as_secs_f64() * 1e3,
            frame_jitter_ms: p.frame_jitter.as_secs_f64() * 1e3,
            playout_delay_ms: p.playout_delay.as_secs_f64() * 1e3,
            one_way_ms: p.one_way_delay.map(|d| d.as_secs_f64() * 1e3),
            decode_ms,
            g2g_ms,
            frames_shown: shown,
            frames_late: c.frames_late.load(Ordering::Relaxed),
            frames_skipped: c.frames_skipped.load(Ordering::Relaxed),
            freezes: c.freezes.load(Ordering::Relaxed),
            stalls: p.stalls,
            stall_period_ms: p.stall_period.map(|d| d.as_secs_f64() * 1e3),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            paths,
            ..Stats::default()
        }
        .with_security(config.net.security.is_some(), security, authenticated);
        send_replacing(out, drain, stats);
        last = (now, shown, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_gaps_and_sees_restarts() {
        let mut p = Progress::default();
        assert_eq!(p.gap(0), Some(0));
        assert_eq!(p.gap(1), Some(0));
        assert_eq!(p.gap(5), Some(3), "2, 3 and 4 never came");
        assert_eq!(p.gap(0), None, "a restarted sender counts from 0 again");
        assert_eq!(p.gap(1), Some(0));
        let start = Duration::from_micros(16_667);
        assert_eq!(p.interval(0, 0, start), None, "one frame is no spacing");
        let i = p.interval(2, 66_666, start).expect("spacing");
        assert!(i > start && i < Duration::from_micros(33_333), "{i:?}");
        assert_eq!(p.interval(3, 66_666 + 5_000_000, i), None, "a pause");
    }
}
