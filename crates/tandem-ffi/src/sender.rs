//! The sender object: started with a config and a remote, fed pictures (I420 or the
//! camera's NV12) or already encoded frames (VideoToolbox), reporting stats to a delegate.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tandem_codec::{Frame, PlaneIndex};

use crate::error::TandemError;
use crate::live::{Kind, Live};
use crate::stats_feed::{SenderControl, StatsFeed, StatsListener};
use crate::transport::{DatagramTransport, Link};
use crate::types::{PathPolicy, Remote, SenderConfig, Stats, VideoCodec, VideoSource};

/// What a sender tells the app. Called on the sender's stats thread.
#[uniffi::export(with_foreign)]
pub trait SenderDelegate: Send + Sync {
    /// A stats snapshot, once per stats interval.
    fn on_stats(&self, stats: Stats);
    /// Something went wrong (peer gone, no answer to the handshake, encoder failed): once
    /// per change, with a message to show. The sender keeps trying unless stopped.
    fn on_error(&self, message: String);
    /// A stranger's datagram said something worth showing (another protocol version, a
    /// handshake from a device that is not paired), once per new message. Unauthenticated:
    /// show it, never stop for it.
    fn on_warning(&self, message: String);
    /// The receiver needs a keyframe (it joined, a session came up, or it lost sync): an
    /// app that encodes itself forces its next frame to be one
    /// (`kVTEncodeFrameOptionKey_ForceKeyFrame`). The engine's own encoder does so itself.
    fn on_keyframe_requested(&self);
    /// Congestion control set a new target, kbit/s: an app that encodes itself sets its
    /// encoder's average bitrate to it (`kVTCompressionPropertyKey_AverageBitRate`). The
    /// engine's own encoder follows it by itself.
    fn on_target_bitrate(&self, kbps: u32);
}

struct Forward(Arc<dyn SenderDelegate>);

impl StatsListener for Forward {
    fn on_stats(&self, stats: Stats) {
        self.0.on_stats(stats);
    }
    fn on_error(&self, message: String) {
        self.0.on_error(message);
    }
    fn on_warning(&self, message: String) {
        self.0.on_warning(message);
    }
    fn on_keyframe_requested(&self) {
        self.0.on_keyframe_requested();
    }
    fn on_target_bitrate(&self, kbps: u32) {
        self.0.on_target_bitrate(kbps);
    }
}

/// App memory holding one plane: `len` bytes at `address`, rows `stride` apart. The app
/// keeps it valid for the call (a locked `CVPixelBuffer`'s plane base address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PlaneSource {
    /// Address of the first row.
    pub address: u64,
    /// Bytes from one row to the next.
    pub stride: u32,
    /// Bytes readable at `address`.
    pub len: u64,
}

impl PlaneSource {
    /// The app's memory as a slice, checked to hold `rows` rows of `width` bytes.
    fn slice<'a>(&self, what: &str, width: usize, rows: usize) -> Result<&'a [u8], TandemError> {
        let stride = self.stride as usize;
        if self.address == 0 {
            return Err(TandemError::invalid(format!("{what}: address is null")));
        }
        if stride < width {
            return Err(TandemError::invalid(format!(
                "{what}: stride {stride} is narrower than {width}"
            )));
        }
        let need = stride * rows.saturating_sub(1) + width;
        let len = usize::try_from(self.len).unwrap_or(usize::MAX);
        if len < need {
            return Err(TandemError::invalid(format!(
                "{what}: {len} bytes; {rows} rows of {width} with stride {stride} need {need}"
            )));
        }
        let ptr = usize::try_from(self.address)
            .map_err(|_| TandemError::invalid(format!("{what}: address too large")))?
            as *const u8;
        // SAFETY: the app hands over `len` readable bytes at `address` for the call (the
        // documented contract), and `need <= len`.
        Ok(unsafe { std::slice::from_raw_parts(ptr, need) })
    }
}

/// A running sender. `stop()` or releasing it ends the session.
#[derive(Debug, uniffi::Object)]
pub struct Sender {
    inner: Mutex<Option<tandem::Sender>>,
    feed: Mutex<Option<StatsFeed>>,
    size: (u32, u32),
    link: Link,
    _live: Live,
}

impl Sender {
    /// Starts the engine's sender towards `remote` (what `new` and `over_transport` share).
    fn start(
        config: SenderConfig,
        remote: tandem::Remote,
        link: Link,
        delegate: Option<Arc<dyn SenderDelegate>>,
    ) -> Result<Arc<Sender>, TandemError> {
        let engine_config = config.to_engine()?;
        let source: Option<Box<dyn tandem::VideoSource>> = match config.source {
            Some(VideoSource::TestPattern) => Some(Box::new(tandem::TestPatternSource::new(
                config.width,
                config.height,
                config.fps,
            )?)),
            Some(VideoSource::App) | None => None,
        };
        let sender = tandem::Sender::start(engine_config, remote, source)?;
        let feed = StatsFeed::start(
            "tandem-ffi-send-stats",
            sender.stats(),
            Some(SenderControl {
                keyframe_requests: sender.keyframe_requests(),
                target_bitrates: sender.target_bitrates(),
            }),
            delegate.map(|d| Arc::new(Forward(d)) as Arc<dyn StatsListener>),
            link.clone(),
        )?;
        Ok(Arc::new(Sender {
            inner: Mutex::new(Some(sender)),
            feed: Mutex::new(Some(feed)),
            size: (config.width, config.height),
            link,
            _live: Live::new(Kind::Sender),
        }))
    }

    fn with<T>(&self, f: impl FnOnce(&tandem::Sender) -> T) -> Result<T, TandemError> {
        match self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(s) => Ok(f(s)),
            None => Err(stopped()),
        }
    }

    fn check_size(&self, width: u32, height: u32) -> Result<(), TandemError> {
        if (width, height) != self.size {
            return Err(TandemError::invalid(format!(
                "picture is {width}×{height}; this sender was configured for {}×{}",
                self.size.0, self.size.1
            )));
        }
        Ok(())
    }

    fn submit(&self, frame: Frame) -> Result<(), TandemError> {
        self.with(|s| s.submit(frame))
    }

    fn send(&self, data: Bytes, codec: VideoCodec, keyframe: bool) -> Result<u32, TandemError> {
        if data.is_empty() {
            return Err(TandemError::invalid("an encoded frame cannot be empty"));
        }
        let input = tandem::EncodedInput {
            data,
            codec: codec.into(),
            keyframe,
            captured_at: Instant::now(),
        };
        Ok(self.with(|s| s.send_encoded(input))??)
    }
}

#[uniffi::export]
impl Sender {
    /// Starts a sender towards `remote` (`.listen` waits for a receiver to reach it;
    /// advertise `localPort()` with [`crate::Discovery`] so one can find it).
    #[uniffi::constructor(default(delegate = None))]
    pub fn new(
        config: SenderConfig,
        remote: Remote,
        delegate: Option<Arc<dyn SenderDelegate>>,
    ) -> Result<Arc<Sender>, TandemError> {
        let remote = remote.to_engine()?;
        Sender::start(config, remote, Link::sockets(), delegate)
    }

    /// Starts a sender over the app's own `transport` (Swift
    /// `Sender.overTransport(config:transport:initiator:delegate:)`) instead of the engine's
    /// sockets: the config's path preference, port and interface kinds do not apply.
    /// `initiator`: this end starts a paired session's handshake (the end that opened the
    /// link: the side that connected, the Wi-Fi Aware subscriber); exactly one end of a
    /// sealed session must be it. The transport is started here and stopped by `stop()`
    /// (or when the session fails); `localAddress()` and `peer()` then say "app transport",
    /// `localPort()` is 0.
    #[uniffi::constructor(default(delegate = None))]
    pub fn over_transport(
        config: SenderConfig,
        transport: Arc<dyn DatagramTransport>,
        initiator: bool,
        delegate: Option<Arc<dyn SenderDelegate>>,
    ) -> Result<Arc<Sender>, TandemError> {
        let (link, remote) = Link::over(transport, initiator);
        Sender::start(config, remote, link, delegate)
    }

    /// Starts a sender over two of the app's own transports at once (Swift
    /// `Sender.overTransports(config:first:second:initiator:delegate:)`), the session's
    /// first path over `first` (say a `NetworkTransport` through the router) and its second
    /// over `second` (a `WiFiAwareTransport`), spread as `config.pathPolicy` says. As
    /// [`Sender::over_transport`] otherwise; the receiver gives its transports in the same
    /// order. One transport failing (its `send` throws, or it calls `inbox.fail`) closes
    /// its path and the session goes on over the other (`Stats.paths[i].failure` says
    /// why); both failing ends it.
    #[uniffi::constructor(default(delegate = None))]
    pub fn over_transports(
        config: SenderConfig,
        first: Arc<dyn DatagramTransport>,
        second: Arc<dyn DatagramTransport>,
        initiator: bool,
        delegate: Option<Arc<dyn SenderDelegate>>,
    ) -> Result<Arc<Sender>, TandemError> {
        let (link, remote) = Link::over_two(first, second, initiator);
        Sender::start(config, remote, link, delegate)
    }

    /// The local UDP port (what to advertise); 0 over an app transport.
    pub fn local_port(&self) -> Result<u16, TandemError> {
        self.with(|s| s.local_addr().port())
    }

    /// The second path's socket's local address, for a session over two paths that has one
    /// (`.addresses`, a discovered peer under `.both`); `nil` otherwise.
    pub fn second_local_address(&self) -> Result<Option<String>, TandemError> {
        self.with(|s| s.second_local_addr().map(|a| a.to_string()))
    }

    /// The local address the socket is bound to; "app transport" over one.
    pub fn local_address(&self) -> Result<String, TandemError> {
        self.with(|s| self.link.local_address(s.local_addr()))
    }

    /// The receiver's address, once one is known; "app transport" over one, once the
    /// other end has been heard.
    pub fn peer(&self) -> Result<Option<String>, TandemError> {
        self.with(|s| self.link.peer(s.peer()))
    }

    /// Whether a receiver is there to send to (its address known, the session up; in the
    /// clear, as soon as the address is known).
    /// Encoded frames sent before are refused with `NotConnected`.
    pub fn is_connected(&self) -> Result<bool, TandemError> {
        self.with(|s| s.is_connected())
    }

    /// What is wrong now, if anything (also sent to the delegate's `on_error`): over an
    /// app transport that failed, its reason.
    pub fn error(&self) -> Option<String> {
        self.with(|s| self.link.error(s.error())).unwrap_or(None)
    }

    /// Encodes a tightly packed I420 picture captured now (bytes: two copies across the
    /// boundary; [`Sender::submit_i420_from`] reads app memory once). A picture the encoder
    /// has not taken yet is replaced by a newer one.
    pub fn submit_i420(
        &self,
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<(), TandemError> {
        self.check_size(width, height)?;
        let (cw, _) = tandem_codec::frame::chroma_size(width, height);
        let frame = Frame::from_planes(
            width,
            height,
            [y, u, v],
            [width as usize, cw as usize, cw as usize],
        )?;
        self.submit(frame)
    }

    /// Encodes an I420 picture read from app memory (three planes), one copy.
    pub fn submit_i420_from(
        &self,
        width: u32,
        height: u32,
        y: PlaneSource,
        u: PlaneSource,
        v: PlaneSource,
    ) -> Result<(), TandemError> {
        self.check_size(width, height)?;
        let (cw, ch) = tandem_codec::frame::chroma_size(width, height);
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        let mut frame = Frame::black(width, height);
        for (plane, src, pw, ph, what) in [
            (PlaneIndex::Y, y, w, h, "y plane"),
            (PlaneIndex::U, u, cw, ch, "u plane"),
            (PlaneIndex::V, v, cw, ch, "v plane"),
        ] {
            let data = src.slice(what, pw, ph)?;
            for r in 0..ph {
                let start = r * src.stride as usize;
                frame
                    .row_mut(plane, r)
                    .copy_from_slice(&data[start..start + pw]);
            }
        }
        self.submit(frame)
    }

    /// Encodes a bi-planar NV12 picture (a camera's `420v`/`420f` `CVPixelBuffer`) read
    /// from app memory: one copy, chroma de-interleaved on the way.
    pub fn submit_nv12_from(
        &self,
        width: u32,
        height: u32,
        luma: PlaneSource,
        chroma: PlaneSource,
    ) -> Result<(), TandemError> {
        self.check_size(width, height)?;
        let (cw, ch) = tandem_codec::frame::chroma_size(width, height);
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        let y = luma.slice("luma plane", w, h)?;
        let uv = chroma.slice("chroma plane", cw * 2, ch)?;
        let frame = Frame::from_nv12(
            width,
            height,
            y,
            luma.stride as usize,
            uv,
            chroma.stride as usize,
        )?;
        self.submit(frame)
    }

    /// Sends an already encoded frame captured now; returns its frame id. H.264 or HEVC:
    /// one access unit (every slice of the picture) in Annex B, with the parameter sets
    /// before each keyframe's IDR, as VideoToolbox gives it after reframing (or x264, or
    /// any encoder without frame reordering); AV1: the frame's OBUs. A receiver in decoded
    /// output decodes H.264 and AV1 itself. Two copies across the boundary; see
    /// [`Sender::send_encoded_from`].
    pub fn send_encoded(
        &self,
        data: Vec<u8>,
        codec: VideoCodec,
        keyframe: bool,
    ) -> Result<u32, TandemError> {
        self.send(Bytes::from(data), codec, keyframe)
    }

    /// Sends an encoded frame read from app memory (`len` bytes at `address`, for example
    /// a `CMBlockBuffer`'s data pointer), one copy; returns its frame id.
    pub fn send_encoded_from(
        &self,
        address: u64,
        len: u64,
        codec: VideoCodec,
        keyframe: bool,
    ) -> Result<u32, TandemError> {
        let n = usize::try_from(len).map_err(|_| TandemError::invalid("len too large"))?;
        let src = PlaneSource {
            address,
            stride: u32::try_from(n).map_err(|_| TandemError::invalid("len over 4 GiB"))?,
            len,
        };
        let data = Bytes::copy_from_slice(src.slice("encoded frame", n, 1)?);
        self.send(data, codec, keyframe)
    }

    /// Makes the next encoded frame a keyframe.
    pub fn request_keyframe(&self) -> Result<(), TandemError> {
        self.with(|s| s.request_keyframe())
    }

    /// Sets the encoder's bitrate now (congestion control moves it from there).
    pub fn set_bitrate_kbps(&self, kbps: u32) -> Result<(), TandemError> {
        if kbps == 0 {
            return Err(TandemError::invalid("kbps must be above 0"));
        }
        self.with(|s| s.set_bitrate_kbps(kbps))
    }

    /// Changes how a session over two paths spreads its datagrams, from the next one on
    /// (see [`PathPolicy`]); a single-path session ignores it.
    pub fn set_path_policy(&self, policy: PathPolicy) -> Result<(), TandemError> {
        Ok(self.with(|s| s.set_path_policy(policy.into()))??)
    }

    /// The next stats snapshot (Swift `await sender.nextStats()`); throws once stopped.
    pub async fn next_stats(&self) -> Result<Stats, TandemError> {
        let feed = {
            let g = self.feed.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_ref() {
                Some(f) => f.waiter(),
                None => return Err(stopped()),
            }
        };
        feed.await
    }

    /// Stops the session and its threads. Later calls throw `Stopped`; stopping twice is
    /// fine.
    pub fn stop(&self) {
        if let Some(mut f) = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            f.stop();
        }
        let engine = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = engine
            && let Err(e) = s.shutdown()
        {
            tracing::warn!("sender stopped with: {e}");
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> TandemError {
    TandemError::Stopped {
        message: "the sender has been stopped".into(),
    }
}
