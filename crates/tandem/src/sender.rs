//! [`Sender`]: capture → encode → network.
//!
//! ```text
//!  source ──(capture thread, at the frame rate)──┐
//!  app: submit(frame) ───────────────────────────┴─▶ [mailbox: 1] ─▶ encoder thread ─▶ driver ─▶ UDP
//!  app: send_encoded(frame) ─────────────────────────────────────────────────────────▶ driver
//!                                keyframe requests, target bitrate ◀── driver events ──┘
//! ```
//!
//! The mailbox holds one picture: when the encoder is still busy with the last one, a new
//! capture replaces the waiting one (counted in [`Stats::captures_skipped`]), so the
//! encoder always takes the newest picture and a slow encoder costs frame rate, never
//! latency. The encoder thread hands each encoded frame to the driver on its own thread
//! ([`tandem_net::DriverHandle::call`]), which sends its first datagrams before returning.
//! Between frames it applies what the protocol asked for: a keyframe, a new target bitrate.
//!
//! A stats thread publishes a [`Stats`] every interval and watches the peer: silent past the
//! timeout, the stats carry the error ([`Sender::error`] too), and the sender goes on
//! trying — a receiver that comes back is served again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver as Rx, RecvTimeoutError, Sender as Tx, TrySendError, bounded};
use tandem_codec::{Encoder, EncoderConfig, Frame, new_encoder};
use tandem_net::DriverHandle;
use tandem_proto::security::{MaybeSecure, SecureEvent};
use tandem_proto::{Codec, OutgoingFrame, PathPolicy, SendError, SenderEvent};

use crate::config::SenderConfig;
use crate::connect::{Remote, driver_config};
use crate::error::EngineError;
use crate::pipeline::{Pipeline, lock, peer_trouble};
use crate::source::{Capture, Pacing, VideoSource};
use crate::stats::{PathFigures, PathState, Stats, TIMES_KEPT, Times, Window, wall_us};

type Driver = DriverHandle<MaybeSecure<tandem_proto::Sender>>;

/// A picture waiting for the encoder, with when it was captured.
struct Captured {
    frame: Frame,
    at: Instant,
}

enum Control {
    Keyframe,
    Bitrate(u32),
}

/// An encoded frame an app brings (a hardware encoder's H.264 or HEVC, for instance).
#[derive(Debug, Clone)]
pub struct EncodedInput {
    /// One access unit.
    pub data: Bytes,
    /// Its codec.
    pub codec: Codec,
    /// Decodable on its own.
    pub keyframe: bool,
    /// When the picture was captured.
    pub captured_at: Instant,
}

#[derive(Debug, Default)]
struct Counters {
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    captures_skipped: AtomicU64,
    /// Pictures the source gave the capture thread.
    captures: AtomicU64,
    /// Scheduled captures the machine was too late for.
    schedule_missed: AtomicU64,
    /// What the source says it lost itself ([`VideoSource::dropped`]).
    source_dropped: AtomicU64,
    keyframes: AtomicU64,
    /// Encoded frames the protocol refused (its queue full, or the frame invalid).
    refused: AtomicU64,
}

struct Shared {
    counters: Counters,
    encode: Mutex<Window>,
    /// The same samples one by one, with frame ids, for [`Sender::encode_times`].
    encode_times: Times,
    /// The receiver wants a keyframe (it joined, lost sync, or a session came up): for an
    /// app that encodes itself, [`Sender::keyframe_requests`]. One pending is enough.
    keyframe_requests: (Tx<()>, Rx<()>),
    /// Congestion control's newest target, kbit/s, for an app that encodes itself
    /// ([`Sender::target_bitrates`]); only the newest waits.
    target_bitrates: (Tx<u32>, Rx<u32>),
    /// Why the pipeline stopped working (capture or encoder failed); permanent.
    fatal: Mutex<Option<String>>,
    /// What is wrong with the peer now (silent, never answered); clears when it returns.
    peer_trouble: Mutex<Option<String>>,
    /// What the security layer said: the session's trouble, and warnings about strangers.
    security: Mutex<crate::security::SecurityReport>,
    stop: AtomicBool,
    started: Instant,
    /// The codec of the newest frame, for the stats.
    codec: crate::codec_tag::LastCodec,
}

impl Shared {
    fn fail(&self, e: String) {
        lock(&self.fatal).get_or_insert(e);
    }

    fn error(&self) -> Option<String> {
        let fatal = lock(&self.fatal).clone();
        fatal
            .or_else(|| lock(&self.security).trouble())
            .or_else(|| lock(&self.peer_trouble).clone())
    }
}

/// A running sender. Dropping it stops every thread and the network side.
pub struct Sender {
    pipeline: Pipeline<MaybeSecure<tandem_proto::Sender>>,
    mailbox: Tx<Captured>,
    mailbox_drain: Rx<Captured>,
    control: Tx<Control>,
    shared: Arc<Shared>,
    stats: Rx<Stats>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("local", &self.pipeline.local_addr())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Starts a sender towards `remote`, encoding what `source` captures (or, with `None`,
    /// what the app [`submit`](Sender::submit)s or [`send_encoded`](Sender::send_encoded)s).
    /// With [`Remote::Listen`] it waits for a receiver to reach it and encodes nothing until
    /// one has.
    pub fn start(
        config: SenderConfig,
        remote: Remote,
        source: Option<Box<dyn VideoSource>>,
    ) -> Result<Sender, EngineError> {
        let v = &config.video;
        let mut enc = EncoderConfig::new(v.width, v.height, v.fps).with_kind(v.encoder);
        if let Some(kbps) = v.bitrate_kbps {
            enc = enc.with_bitrate_kbps(kbps);
        }
        enc.content = v.content;
        let encoder = new_encoder(&enc)?;
        let bitrate_bps = u64::from(enc.bitrate_kbps) * 1000;

        let (driver_cfg, _path) = driver_config(&config.net, &remote)?;
        let two_paths = remote.two_paths(&config.net);
        let mut proto = tandem_proto::SenderConfig::new(config.net.session_id);
        proto.path_policy = config.path_policy;
        proto.frame_interval_hint = Duration::from_secs_f64(1.0 / f64::from(v.fps.max(1)));
        proto.start_bitrate_bps = bitrate_bps;
        proto.max_bitrate_bps = bitrate_bps;
        proto.min_bitrate_bps = proto.min_bitrate_bps.min(bitrate_bps);
        let (mut pipeline, events) = Pipeline::start(
            "tandem-send-net",
            crate::security::guard(
                tandem_proto::Sender::new(proto, Instant::now()),
                &config.net,
                &remote,
                Instant::now(),
            )?,
            driver_cfg,
        )?;
        let driver = Arc::clone(pipeline.driver()?);

        let shared = Arc::new(Shared {
            counters: Counters::default(),
            encode: Mutex::new(Window::default()),
            encode_times: bounded(TIMES_KEPT),
            keyframe_requests: bounded(1),
            target_bitrates: bounded(1),
            fatal: Mutex::new(None),
            peer_trouble: Mutex::new(None),
            security: Mutex::default(),
            stop: AtomicBool::new(false),
            started: Instant::now(),
            codec: crate::codec_tag::LastCodec::new(),
        });
        let (mailbox, mailbox_rx) = bounded::<Captured>(1);
        let (control, control_rx) = bounded::<Control>(16);
        let (stats_tx, stats) = bounded::<Stats>(4);
        pipeline.spawn("tandem-encode", {
            let (driver, shared, mailbox_rx) =
                (Arc::clone(&driver), Arc::clone(&shared), mailbox_rx.clone());
            move || {
                tandem_net::qos::media_thread();
                encode_loop(encoder, &driver, events, &mailbox_rx, &control_rx, &shared)
            }
        })?;
        let has_source = source.is_some();
        if let Some(source) = source {
            pipeline.spawn("tandem-capture", {
                let (shared, mailbox, drain) =
                    (Arc::clone(&shared), mailbox.clone(), mailbox_rx.clone());
                move || capture_loop(source, &mailbox, &drain, &shared)
            })?;
        }
        pipeline.spawn("tandem-send-stats", {
            let (driver, shared, drain) = (Arc::clone(&driver), Arc::clone(&shared), stats.clone());
            let options = StatsOptions {
                interval: config.stats_interval,
                peer_timeout: config.net.peer_timeout,
                secure: config.net.security.is_some(),
                two_paths,
                has_source,
            };
            move || stats_loop(&driver, &shared, &options, &stats_tx, &drain)
        })?;
        Ok(Sender {
            pipeline,
            mailbox,
            mailbox_drain: mailbox_rx,
            control,
            shared,
            stats,
        })
    }

    /// The local address the sender's socket is bound to (what to advertise).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.pipeline.local_addr()
    }

    /// The receiver's address, once known.
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.pipeline.driver().ok().and_then(|d| d.peer())
    }

    /// Hands the encoder a picture captured now. If the encoder has not taken the previous
    /// one yet, this one replaces it.
    pub fn submit(&self, frame: Frame) {
        post(
            &self.mailbox,
            &self.mailbox_drain,
            Captured {
                frame,
                at: Instant::now(),
            },
            &self.shared,
        );
    }

    /// Whether a receiver is there to send to: its address known and, when sealed, the
    /// session up. In the clear nothing proves a receiver listens: a sender given an
    /// address is connected from the start. Frames encoded before are not sent (the engine's own encoder waits;
    /// [`Sender::send_encoded`] refuses them).
    pub fn is_connected(&self) -> bool {
        self.pipeline
            .driver()
            .ok()
            .is_some_and(|d| d.peer().is_some() && d.is_established())
    }

    /// A value arrives each time the receiver needs a keyframe: it joined, a session came
    /// up, or it lost sync. The engine's own encoder obeys by itself; an app that encodes
    /// (VideoToolbox) forces its next frame to be a keyframe. At most one waits.
    pub fn keyframe_requests(&self) -> Rx<()> {
        self.shared.keyframe_requests.1.clone()
    }

    /// Each target bitrate congestion control sets, kbit/s, as it sets it (only the newest
    /// waits). The engine's own encoder follows it by itself; an app that encodes
    /// (VideoToolbox) sets its encoder's average bitrate to it.
    pub fn target_bitrates(&self) -> Rx<u32> {
        self.shared.target_bitrates.1.clone()
    }

    /// Sends an already encoded frame (pass-through: the engine does not look inside).
    /// Refused with [`EngineError::NotConnected`] until [`Sender::is_connected`].
    pub fn send_encoded(&self, frame: EncodedInput) -> Result<u32, EngineError> {
        if !self.is_connected() {
            return Err(EngineError::NotConnected);
        }
        let driver = self.pipeline.driver()?;
        let bytes = frame.data.len() as u64;
        self.shared.codec.record(frame.codec);
        let out = OutgoingFrame {
            data: frame.data,
            capture: frame.captured_at,
            keyframe: frame.keyframe,
            discardable: false,
            codec: frame.codec,
        };
        let id = driver
            .call(move |s, now| s.inner_mut().send_frame(now, out))
            .map_err(|_| EngineError::Stopped)?
            .map_err(|e| EngineError::Io {
                what: "sending an encoded frame",
                source: std::io::Error::other(e.to_string()),
            })?;
        let c = &self.shared.counters;
        c.frames_sent.fetch_add(1, Ordering::Relaxed);
        c.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        Ok(id)
    }

    /// Makes the next encoded frame a keyframe.
    pub fn request_keyframe(&self) {
        let _ = self.control.try_send(Control::Keyframe);
    }

    /// Sets the encoder's bitrate (congestion control moves it again from there).
    pub fn set_bitrate_kbps(&self, kbps: u32) {
        let _ = self.control.try_send(Control::Bitrate(kbps));
    }

    /// Changes how a session over two paths spreads its datagrams, from the next datagram
    /// on (see [`SenderConfig::path_policy`]); a single-path session keeps it for nothing.
    pub fn set_path_policy(&self, policy: PathPolicy) -> Result<(), EngineError> {
        self.pipeline
            .driver()?
            .call(move |s, _| s.inner_mut().set_path_policy(policy))
            .map_err(|_| EngineError::Stopped)
    }

    /// The address the second path's socket is bound to, for a session over two paths
    /// that has one ([`crate::NetConfig::second_local`], [`crate::Remote::Addresses`], a
    /// discovered peer under [`crate::PathPreference::Both`]); `None` otherwise, or once that
    /// path is lost. Path 0's is [`Sender::local_addr`].
    pub fn second_local_addr(&self) -> Option<std::net::SocketAddr> {
        self.pipeline
            .driver()
            .ok()
            .and_then(|d| d.second_local_addr())
    }

    /// The stats stream: one [`Stats`] per interval (the oldest is dropped when nobody
    /// reads).
    pub fn stats(&self) -> Rx<Stats> {
        self.stats.clone()
    }

    /// Each encoded frame's id (the picture's) and encode time, as it is encoded: the
    /// per-frame samples behind [`Stats::encode_ms`], for a report that wants percentiles
    /// over a whole run. The newest 1024 wait when nobody reads.
    pub fn encode_times(&self) -> Rx<(u32, Duration)> {
        self.shared.encode_times.1.clone()
    }

    /// Why the session is in trouble (peer gone, network failed), if it is.
    pub fn error(&self) -> Option<String> {
        self.shared.error()
    }

    /// What stopped this end for good, if anything: the local system failed (capture,
    /// encoder, the socket or the network side). Unlike [`Sender::error`] it never names
    /// the peer's absence, which a receiver that comes back ends: for an app deciding
    /// whether to exit.
    pub fn failure(&self) -> Option<String> {
        let fatal = lock(&self.shared.fatal).clone();
        fatal.or_else(|| {
            let driver = self.pipeline.driver().ok();
            let stopped = driver.is_none_or(|d| d.is_finished());
            stopped.then(|| crate::pipeline::network_stopped(driver.map(|d| &**d)))
        })
    }

    /// Whether the capture source has ended (a file played once).
    pub fn source_ended(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Stops: the source, the encoder, then the network side, in that order.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), EngineError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.pipeline.stop()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Puts `c` in the one-picture mailbox, replacing a picture still waiting there.
fn post(mailbox: &Tx<Captured>, drain: &Rx<Captured>, c: Captured, shared: &Shared) {
    if send_replacing(mailbox, drain, c) {
        shared
            .counters
            .captures_skipped
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends `value` on a bounded channel; when it is full, drops the oldest value waiting to
/// make room (and says so). For channels where only the newest matters: the encoder's
/// mailbox, the stats stream.
pub(crate) fn send_replacing<T>(tx: &Tx<T>, drain: &Rx<T>, value: T) -> bool {
    match tx.try_send(value) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => false,
        Err(TrySendError::Full(value)) => {
            let dropped = drain.try_recv().is_ok();
            let _ = tx.try_send(value);
            dropped
        }
    }
}

/// Drives `source` by its [`Pacing`] until it ends, fails, or the sender stops, posting
/// each picture to the encoder's mailbox.
fn capture_loop(
    mut source: Box<dyn VideoSource>,
    mailbox: &Tx<Captured>,
    drain: &Rx<Captured>,
    shared: &Shared,
) {
    // Wake-ups on time matter here: the default 50 µs slack is jitter on every capture.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let (num, den) = source.fps();
    let interval = Duration::from_secs_f64(f64::from(den.max(1)) / f64::from(num.max(1)));
    let pacing = source.pacing();
    let start = Instant::now();
    let mut n = 0u64;
    let c = &shared.counters;
    while !shared.stop.load(Ordering::Relaxed) {
        if pacing == Pacing::Scheduled {
            let due = start + interval.mul_f64(n as f64);
            let now = Instant::now();
            if let Some(wait) = due.checked_duration_since(now) {
                std::thread::sleep(wait);
            } else if now - due > interval {
                // Far behind (the machine stalled): skip to the present rather than burst.
                let behind = ((now - due).as_secs_f64() / interval.as_secs_f64()) as u64;
                c.schedule_missed.fetch_add(behind, Ordering::Relaxed);
                n += behind;
                continue;
            }
            n += 1;
        }
        let result = source.capture(wall_us());
        c.source_dropped.store(source.dropped(), Ordering::Relaxed);
        match result {
            Ok(Capture::Picture(frame)) => {
                c.captures.fetch_add(1, Ordering::Relaxed);
                // An own-clock source's picture was complete before this: its age counts in
                // the encode time, as the scheduled sources' capture does.
                let age = wall_us().saturating_sub(frame.capture_us);
                let now = Instant::now();
                let at = now.checked_sub(Duration::from_micros(age)).unwrap_or(now);
                post(mailbox, drain, Captured { frame, at }, shared);
            }
            Ok(Capture::Waiting) => {}
            Ok(Capture::Ended) => {
                tracing::info!("capture source ended");
                shared.stop.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                shared.fail(format!("capture failed: {e}"));
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// A receiver starts from nothing: it needs a keyframe, and an app encoder the present
/// target.
fn session_started(driver: &Driver, shared: &Shared) {
    let _ = shared.keyframe_requests.0.try_send(());
    if let Ok(bps) = driver.call(|s, _| s.inner().stats().target_bitrate_bps) {
        offer_target(shared, bps);
    }
}

/// Makes `bps` the target an app encoder sees next (replacing one not yet taken); returns
/// it in kbit/s, floored at 50.
fn offer_target(shared: &Shared, bps: u64) -> u32 {
    let kbps = u32::try_from(bps / 1000).unwrap_or(u32::MAX).max(50);
    let targets = &shared.target_bitrates;
    while targets.0.try_send(kbps).is_err() {
        let _ = targets.1.try_recv();
    }
    kbps
}

/// Encodes each picture from the mailbox and hands the result to the driver.
fn encode_loop(
    mut encoder: Box<dyn Encoder>,
    driver: &Driver,
    mut events: tokio::sync::mpsc::Receiver<SecureEvent<SenderEvent>>,
    mailbox: &Rx<Captured>,
    control: &Rx<Control>,
    shared: &Shared,
) {
    // Capture instants of frames a lagging encoder still holds, by frame id.
    let mut held: HashMap<u32, Instant> = HashMap::new();
    let mut was_connected = false;
    // The encoder never changes, so neither does the tag its frames carry.
    let codec = crate::codec_tag::codec_of(encoder.config().kind.bitstream());
    while !shared.stop.load(Ordering::Relaxed) {
        while let Ok(e) = events.try_recv() {
            match e {
                SecureEvent::Security(e) => {
                    lock(&shared.security).on_event(&e);
                    // A new session (a restarted receiver's too, on a session still up).
                    if matches!(e, tandem_proto::security::SecurityEvent::Established { .. }) {
                        session_started(driver, shared);
                    }
                }
                SecureEvent::Inner(SenderEvent::KeyframeRequested) => {
                    encoder.force_keyframe();
                    let _ = shared.keyframe_requests.0.try_send(());
                }
                SecureEvent::Inner(SenderEvent::TargetBitrate(bps)) => {
                    let kbps = offer_target(shared, bps);
                    if let Err(e) = encoder.set_target_bitrate(kbps) {
                        tracing::warn!(%e, kbps, "the encoder refused a bitrate");
                    }
                }
            }
        }
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Keyframe => encoder.force_keyframe(),
                Control::Bitrate(kbps) => {
                    let _ = encoder.set_target_bitrate(kbps);
                }
            }
        }
        let captured = match mailbox.recv_timeout(Duration::from_millis(50)) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let connected = driver.peer().is_some() && driver.is_established();
        if connected && !was_connected {
            // A plain session has no handshake to say a receiver became reachable.
            session_started(driver, shared);
        }
        was_connected = connected;
        let Some(captured) = captured else { continue };
        if !connected {
            // Nobody to send to yet: waiting for a receiver to reach us, or for the
            // handshake.
            continue;
        }
        held.insert(captured.frame.id, captured.at);
        if held.len() > 64 {
            // An encoder that never returns some frames must not grow this forever.
            held.clear();
        }
        let out = match encoder.encode(&captured.frame) {
            Ok(out) => out,
            Err(e) => {
                shared.fail(format!("encoder failed: {e}"));
                break;
            }
        };
        shared.codec.record(codec);
        for e in out {
            let at = held.remove(&e.frame_id).unwrap_or(captured.at);
            let took = at.elapsed();
            lock(&shared.encode).push(took);
            let (times, drain) = &shared.encode_times;
            send_replacing(times, drain, (e.frame_id, took));
            let bytes = e.data.len() as u64;
            let keyframe = e.keyframe;
            let frame = OutgoingFrame {
                data: e.data,
                capture: at,
                keyframe,
                discardable: false,
                codec,
            };
            let c = &shared.counters;
            match driver.call(move |s, now| s.inner_mut().send_frame(now, frame)) {
                Ok(Ok(_)) => {
                    c.frames_sent.fetch_add(1, Ordering::Relaxed);
                    c.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                    if keyframe {
                        c.keyframes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // The protocol asks for a keyframe itself after refusing a frame.
                Ok(Err(e)) => {
                    if !matches!(e, SendError::QueueFull { .. }) {
                        tracing::warn!(%e, "the protocol refused a frame");
                    }
                    c.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    if !shared.stop.load(Ordering::Relaxed) {
                        shared.fail(crate::pipeline::network_stopped(Some(driver)));
                    }
                    return;
                }
            }
        }
    }
}

/// The receive rates the receiver's reports carried over one stats interval, for
/// [`Stats::delivered_kbps`] on the sender.
#[derive(Debug, Default)]
struct Reports {
    /// Reports received so far (the protocol's count) when last looked.
    seen: u64,
    /// Sum of the rates of the interval's reports, kbit/s, and how many.
    sum_kbps: f64,
    n: u64,
}

impl Reports {
    /// Takes the protocol's report count and its latest report's rate. The protocol keeps
    /// only the latest report, so several that arrived between two looks (a burst released
    /// after a stall) all count at the latest one's rate.
    fn saw(&mut self, count: u64, rate_kbps: Option<u32>) {
        let new = count.saturating_sub(self.seen);
        self.seen = count;
        if let (true, Some(rate)) = (new > 0, rate_kbps) {
            self.sum_kbps += f64::from(rate) * new as f64;
            self.n += new;
        }
    }

    /// The interval's mean rate (`None` without a report), and a fresh interval.
    fn take(&mut self) -> Option<f64> {
        let mean = (self.n > 0).then(|| self.sum_kbps / self.n as f64);
        (self.sum_kbps, self.n) = (0.0, 0);
        mean
    }
}

/// What the stats thread needs from the config.
#[derive(Debug, Clone, Copy)]
struct StatsOptions {
    interval: Duration,
    peer_timeout: Duration,
    secure: bool,
    /// The session spans two paths: report each.
    two_paths: bool,
    /// Pictures come from a [`VideoSource`] (not the app): report its rate.
    has_source: bool,
}

/// Publishes a [`Stats`] every `interval` and watches the peer.
fn stats_loop(
    driver: &Driver,
    shared: &Shared,
    options: &StatsOptions,
    out: &Tx<Stats>,
    drain: &Rx<Stats>,
) {
    let StatsOptions {
        interval,
        peer_timeout,
        secure,
        two_paths,
        has_source,
    } = *options;
    let mut figures = PathFigures::default();
    let mut last = (Instant::now(), 0u64, 0u64, 0u64);
    let mut first_sent: Option<Instant> = None;
    let mut reports = Reports::default();
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        // A report's receive rate covers only its own 50 ms (a few frames): the interval's
        // figure averages every report, so each is read as it comes, not at the interval.
        if let Ok((count, report)) = driver.call(|s, _| {
            let p = s.inner().stats();
            (p.reports_received, p.last_report)
        }) {
            reports.saw(count, report.map(|r| r.receive_rate_kbps));
        }
        if last.0.elapsed() < interval {
            continue;
        }
        let now = Instant::now();
        let c = &shared.counters;
        let (frames, bytes, captures) = (
            c.frames_sent.load(Ordering::Relaxed),
            c.bytes_sent.load(Ordering::Relaxed),
            c.captures.load(Ordering::Relaxed),
        );
        let dt = (now - last.0).as_secs_f64().max(1e-3);
        let (proto, security, states) = match driver.call(|s, now| {
            (
                s.inner().stats(),
                s.security_stats(),
                s.peer(),
                s.inner().path_states(now),
                now,
            )
        }) {
            Ok((p, s, k, states, at)) => (Some(p), Some((s, k)), Some((states, at))),
            Err(_) => (None, None, None),
        };
        let paths = match (&proto, states) {
            (Some(p), Some((states, at))) if two_paths => figures.take(
                &p.paths,
                &driver.stats().paths,
                driver.path_peers(),
                states.map(PathState::from_scheduler),
                at,
                dt,
            ),
            _ => Vec::new(),
        };
        if frames > 0 {
            first_sent.get_or_insert(now);
        }
        let peer = driver.peer();
        let trouble = peer_trouble(driver, peer_timeout, first_sent);
        *lock(&shared.peer_trouble) = trouble;
        let error = shared.error();
        let stats = Stats {
            role: "sender",
            codec: shared.codec.name(),
            elapsed_s: (now - shared.started).as_secs_f64(),
            peer: peer.map(|p| p.to_string()),
            error,
            warnings: lock(&shared.security).warnings(),
            fps: (frames - last.1) as f64 / dt,
            bitrate_kbps: (bytes - last.2) as f64 * 8.0 / dt / 1e3,
            target_kbps: proto.as_ref().map_or(0, |s| s.target_bitrate_bps / 1000),
            delivered_kbps: reports.take(),
            rtt_ms: proto
                .as_ref()
                .and_then(|s| s.rtt)
                .map(|r| r.as_secs_f64() * 1e3),
            encode_ms: lock(&shared.encode).take(),
            frames_sent: frames,
            source_fps: has_source.then(|| (captures - last.3) as f64 / dt),
            source_dropped: c.source_dropped.load(Ordering::Relaxed)
                + c.schedule_missed.load(Ordering::Relaxed),
            captures_skipped: c.captures_skipped.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            path_policy: proto
                .as_ref()
                .filter(|_| two_paths)
                .map(|p| p.path_policy.to_string()),
            paths,
            ..Stats::default()
        };
        let stats = match security {
            Some((counters, peer)) => stats.with_security(secure, counters, peer),
            None => stats,
        };
        // An app that does not read loses old snapshots, not memory.
        send_replacing(out, drain, stats);
        last = (now, frames, bytes, captures);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_is_the_mean_of_the_intervals_reports() {
        let mut r = Reports::default();
        assert_eq!(r.take(), None, "no report yet");
        r.saw(1, Some(1000));
        r.saw(1, Some(1000)); // the same report, looked at twice
        r.saw(3, Some(1600)); // two new ones: the latest's rate stands for both
        assert_eq!(r.take(), Some(1400.0));
        assert_eq!(r.take(), None, "an interval without reports");
        r.saw(4, Some(0));
        assert_eq!(
            r.take(),
            Some(0.0),
            "a report of nothing arriving is a figure"
        );
    }
}
