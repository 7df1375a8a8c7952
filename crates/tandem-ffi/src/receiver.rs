//! The receiver object: frames to a delegate (decoded pictures, or encoded frames for
//! VideoToolbox), stats and errors too, and the playout policy changeable live.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::TandemError;
use crate::frames::{DecodedFrame, EncodedFrame};
use crate::live::{Kind, Live};
use crate::stats_feed::{StatsFeed, StatsListener};
use crate::transport::{DatagramTransport, Link};
use crate::types::{PlayoutPolicy, ReceiverConfig, Remote, Stats};

/// What a receiver tells the app.
#[uniffi::export(with_foreign)]
pub trait ReceiverDelegate: Send + Sync {
    /// A decoded picture to show (decoded output), on the decoder thread: return quickly
    /// (copy it into a pixel buffer and hand that to the main queue).
    fn on_frame(&self, frame: Arc<DecodedFrame>);
    /// An encoded frame as it arrived (encoded output), on the decoder thread, in order.
    fn on_encoded(&self, frame: Arc<EncodedFrame>);
    /// A stats snapshot, once per stats interval, on the stats thread.
    fn on_stats(&self, stats: Stats);
    /// Something went wrong with this end or its own session (the peer fell silent, the
    /// session lapsed, the decoder failed), once per change, on the stats thread.
    fn on_error(&self, message: String);
    /// A stranger's datagram said something worth showing (another protocol version, a
    /// handshake from a device that is not paired), once per new message, on the stats
    /// thread. Unauthenticated: show it, never stop for it.
    fn on_warning(&self, message: String);
}

struct Forward(Arc<dyn ReceiverDelegate>);

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
}

/// The engine's sink: hands each frame to the delegate.
struct DelegateSink {
    delegate: Arc<dyn ReceiverDelegate>,
    encoded: bool,
}

impl tandem::FrameSink for DelegateSink {
    fn on_frame(&mut self, frame: tandem::DisplayFrame) {
        self.delegate.on_frame(DecodedFrame::new(frame));
    }

    fn on_encoded(&mut self, frame: &tandem::EncodedVideo) {
        // In decoded mode the decoder already took the bytes; only encoded output is the
        // app's to decode.
        if self.encoded {
            self.delegate.on_encoded(EncodedFrame::new(frame.clone()));
        }
    }
}

/// A running receiver. `stop()` or releasing it ends the session.
#[derive(Debug, uniffi::Object)]
pub struct Receiver {
    inner: Mutex<Option<tandem::Receiver>>,
    feed: Mutex<Option<StatsFeed>>,
    link: Link,
    _live: Live,
}

impl Receiver {
    /// Starts the engine's receiver towards `remote` (what `new` and `over_transport`
    /// share).
    fn start(
        config: ReceiverConfig,
        remote: tandem::Remote,
        link: Link,
        delegate: Arc<dyn ReceiverDelegate>,
    ) -> Result<Arc<Receiver>, TandemError> {
        let engine_config = config.to_engine()?;
        let sink = DelegateSink {
            delegate: Arc::clone(&delegate),
            encoded: engine_config.output == tandem::OutputMode::Encoded,
        };
        let receiver = tandem::Receiver::start(engine_config, remote, Box::new(sink))?;
        let feed = StatsFeed::start(
            "tandem-ffi-recv-stats",
            receiver.stats(),
            None,
            Some(Arc::new(Forward(delegate))),
            link.clone(),
        )?;
        Ok(Arc::new(Receiver {
            inner: Mutex::new(Some(receiver)),
            feed: Mutex::new(Some(feed)),
            link,
            _live: Live::new(Kind::Receiver),
        }))
    }

    fn engine(&self) -> MutexGuard<'_, Option<tandem::Receiver>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&tandem::Receiver) -> T) -> Result<T, TandemError> {
        match self.engine().as_ref() {
            Some(r) => Ok(f(r)),
            None => Err(stopped()),
        }
    }
}

#[uniffi::export]
impl Receiver {
    /// Starts a receiver: `.listen` for a sender, or reaching a sender that waits
    /// (`.address`, `.discovered`).
    #[uniffi::constructor]
    pub fn new(
        config: ReceiverConfig,
        remote: Remote,
        delegate: Arc<dyn ReceiverDelegate>,
    ) -> Result<Arc<Receiver>, TandemError> {
        let remote = remote.to_engine()?;
        Receiver::start(config, remote, Link::sockets(), delegate)
    }

    /// Starts a receiver over the app's own `transport` (Swift
    /// `Receiver.overTransport(config:transport:initiator:delegate:)`) instead of the
    /// engine's sockets: the config's path preference, port and interface kinds do not
    /// apply. `initiator`: this end starts a paired session's handshake (the end that
    /// opened the link: the side that connected, the Wi-Fi Aware subscriber); exactly one
    /// end of a sealed session must be it. The transport is started here and stopped by
    /// `stop()` (or when the session fails); `localAddress()` and `peer()` then say
    /// "app transport", `localPort()` is 0.
    #[uniffi::constructor]
    pub fn over_transport(
        config: ReceiverConfig,
        transport: Arc<dyn DatagramTransport>,
        initiator: bool,
        delegate: Arc<dyn ReceiverDelegate>,
    ) -> Result<Arc<Receiver>, TandemError> {
        let (link, remote) = Link::over(transport, initiator);
        Receiver::start(config, remote, link, delegate)
    }

    /// Starts a receiver over two of the app's own transports at once (Swift
    /// `Receiver.overTransports(config:first:second:initiator:delegate:)`): the session's
    /// first path over `first`, its second over `second`, in the sender's order. As
    /// [`Receiver::over_transport`] otherwise. One transport failing closes its path and
    /// the session goes on over the other; both failing ends it.
    #[uniffi::constructor]
    pub fn over_transports(
        config: ReceiverConfig,
        first: Arc<dyn DatagramTransport>,
        second: Arc<dyn DatagramTransport>,
        initiator: bool,
        delegate: Arc<dyn ReceiverDelegate>,
    ) -> Result<Arc<Receiver>, TandemError> {
        let (link, remote) = Link::over_two(first, second, initiator);
        Receiver::start(config, remote, link, delegate)
    }

    /// The local UDP port (where senders send; what to advertise); 0 over an app
    /// transport.
    pub fn local_port(&self) -> Result<u16, TandemError> {
        self.with(|r| r.local_addr().port())
    }

    /// The local address the socket is bound to; "app transport" over one.
    pub fn local_address(&self) -> Result<String, TandemError> {
        self.with(|r| self.link.local_address(r.local_addr()))
    }

    /// The second path's socket's local address, for a session over two paths that has one
    /// (`NetConfig.secondLocalAddress`, `.addresses`, a discovered peer under `.both`);
    /// `nil` otherwise.
    pub fn second_local_address(&self) -> Result<Option<String>, TandemError> {
        self.with(|r| r.second_local_addr().map(|a| a.to_string()))
    }

    /// The sender's address, once known; "app transport" over one, once the other end has
    /// been heard.
    pub fn peer(&self) -> Result<Option<String>, TandemError> {
        self.with(|r| self.link.peer(r.peer()))
    }

    /// What is wrong now, if anything: over an app transport that failed, its reason.
    pub fn error(&self) -> Option<String> {
        self.with(|r| self.link.error(r.error())).unwrap_or(None)
    }

    /// Asks the sender for a keyframe, holding frames until it comes: for an app whose own
    /// decoder (VideoToolbox, encoded output) failed. The engine's decoder does it itself.
    pub fn request_keyframe(&self) -> Result<(), TandemError> {
        Ok(self.with(|r| r.request_keyframe())??)
    }

    /// Changes the playout policy now.
    pub fn set_playout_policy(&self, policy: PlayoutPolicy) -> Result<(), TandemError> {
        Ok(self.with(|r| r.set_playout_policy(policy.into()))??)
    }

    /// The next stats snapshot (Swift `await receiver.nextStats()`); throws once stopped.
    pub async fn next_stats(&self) -> Result<Stats, TandemError> {
        let next = {
            let g = self.feed.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_ref() {
                Some(f) => f.waiter(),
                None => return Err(stopped()),
            }
        };
        next.await
    }

    /// Stops the session and its threads; later calls throw `Stopped`.
    pub fn stop(&self) {
        if let Some(mut f) = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            f.stop();
        }
        let engine = self.engine().take();
        if let Some(r) = engine
            && let Err(e) = r.shutdown()
        {
            tracing::warn!("receiver stopped with: {e}");
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> TandemError {
    TandemError::Stopped {
        message: "the receiver has been stopped".into(),
    }
}
