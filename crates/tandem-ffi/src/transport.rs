//! The app's own datagram transport (a Network.framework connection, a Wi-Fi Aware link):
//! [`DatagramTransport`] as a foreign trait, the [`TransportInbox`] it delivers to, and
//! the adapter that makes it the engine's [`tandem_net::DatagramTransport`] for
//! [`crate::Sender::over_transport`], [`crate::Receiver::over_transport`] and
//! [`crate::pair_over_transport`].
//!
//! The engine calls `start`, `send` and `stop` on its network thread (see
//! [`tandem_net::transport`]). A foreign method that throws something other than
//! [`TransportFailure`], or that panics on the way back, does not crash the app: a bad
//! `send` or `start` ends the session with a message naming the method, a bad `stop` is
//! logged.
//!
//! Over a transport there is no socket: `localAddress()` and `peer()` say
//! [`TRANSPORT_LABEL`] (the engine's placeholder address `0.0.0.0:0` never reaches the
//! app), `localPort()` is 0, and messages name the transport instead of that address. The
//! reason a transport failed with (its `send` threw, or it called [`TransportInbox::fail`])
//! is what `error()`, `Stats.error` and the delegate's `onError` say from then on.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tandem_net::transport::{self as net, TRANSPORT_PEER};

use crate::error::TandemError;
use crate::live::{Kind, Live};
use crate::types::Stats;

/// What a session over an app transport reports as its local address and its peer.
pub const TRANSPORT_LABEL: &str = "app transport";

/// Why a transport could not send (Swift: `throw TransportFailure.Failed(reason:)`). The
/// session ends with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportFailure {
    /// The link failed.
    #[error("{reason}")]
    Failed {
        /// What failed, in the transport's words (shown to the app's user).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> TransportFailure {
        TransportFailure::Failed {
            reason: format!(
                "the transport's send raised an unexpected error: {}",
                e.reason
            ),
        }
    }
}

/// A datagram link the app provides (Swift `protocol DatagramTransport`). The engine calls
/// every method on its network thread: none may block for long (a send that cannot go now
/// drops or queues, as a full socket buffer would) and none may call back into the session
/// that owns the transport (stopping it from here would wait on this very thread).
#[uniffi::export(with_foreign)]
pub trait DatagramTransport: Send + Sync {
    /// The session starts, once, before any `send`: from now on hand every datagram the
    /// link receives to `inbox` (from any thread), and call `inbox.fail(reason:)` if the
    /// link fails.
    fn start(&self, inbox: Arc<TransportInbox>);
    /// Sends `datagrams` in order, each as one datagram on the link (never split or
    /// joined). Throwing ends the session with the reason.
    fn send(&self, datagrams: Vec<Vec<u8>>) -> Result<(), TransportFailure>;
    /// The session is over: release the link and stop delivering. Called once, also after
    /// a failure (but never when `start` was not called: a constructor that threw).
    fn stop(&self);
}

/// Where a transport delivers what it receives. Usable from any thread; once the session
/// has ended, deliveries are dropped.
#[derive(uniffi::Object)]
pub struct TransportInbox {
    inner: net::TransportInbox,
    failure: Arc<FailureSlot>,
    _live: Live,
}

impl fmt::Debug for TransportInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportInbox")
            .field("inner", &self.inner)
            .finish()
    }
}

#[uniffi::export]
impl TransportInbox {
    /// Hands the session one received datagram. Dropped when the session is behind (its
    /// inbox is full: counted by the engine, as a full socket buffer would drop) or over.
    pub fn deliver(&self, datagram: Vec<u8>) {
        let _ = self.inner.deliver(Bytes::from(datagram));
    }

    /// The link failed: the session ends with `reason` (what `error()` and the delegate
    /// say). Later calls change nothing.
    pub fn fail(&self, reason: String) {
        if !self.inner.is_closed() {
            self.failure.record(&reason);
        }
        self.inner.fail(reason);
    }

    /// Whether the session has ended (a receive loop can stop).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// The first reason a transport failed with.
#[derive(Debug, Default)]
struct FailureSlot(Mutex<Option<String>>);

impl FailureSlot {
    fn record(&self, reason: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| reason.to_owned());
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The foreign transport as the engine's.
struct Adapter {
    foreign: Arc<dyn DatagramTransport>,
    failure: Arc<FailureSlot>,
    _live: Live,
}

impl Adapter {
    /// Runs a foreign call; a panic (a foreign error the method cannot throw) becomes the
    /// message why.
    fn call<T>(&self, method: &str, f: impl FnOnce() -> T) -> Result<T, String> {
        catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
            format!(
                "the transport's {method} failed: {}",
                panic_message(panic.as_ref())
            )
        })
    }

    fn failed(&self, reason: String) -> String {
        self.failure.record(&reason);
        reason
    }
}

impl net::DatagramTransport for Adapter {
    fn start(&self, inbox: net::TransportInbox) {
        let ffi = Arc::new(TransportInbox {
            inner: inbox.clone(),
            failure: Arc::clone(&self.failure),
            _live: Live::new(Kind::TransportInbox),
        });
        if let Err(reason) = self.call("start", || self.foreign.start(ffi)) {
            inbox.fail(self.failed(reason));
        }
    }

    fn send(&self, datagrams: &[&[u8]]) -> Result<(), net::TransportError> {
        let owned = datagrams.iter().map(|d| d.to_vec()).collect();
        match self.call("send", || self.foreign.send(owned)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(TransportFailure::Failed { reason })) | Err(reason) => {
                Err(net::TransportError::new(self.failed(reason)))
            }
        }
    }

    fn stop(&self) {
        if let Err(reason) = self.call("stop", || self.foreign.stop()) {
            tracing::warn!("{reason}");
        }
    }

    fn describe(&self) -> String {
        TRANSPORT_LABEL.to_owned()
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "it panicked".to_owned())
}

/// How a session reaches its peer, for what its FFI object reports: the engine's sockets
/// (everything as the engine says it), or one or two app transports (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Link {
    /// Over transports: where each one's failure is recorded, in the order of the session's
    /// paths.
    transports: Vec<Arc<FailureSlot>>,
}

impl Link {
    /// The engine's own sockets.
    pub(crate) fn sockets() -> Link {
        Link::default()
    }

    /// The foreign transport as the engine's, and where its failure is recorded.
    fn adapt(
        transport: Arc<dyn DatagramTransport>,
    ) -> (tandem_net::AppTransport, Arc<FailureSlot>) {
        let failure = Arc::new(FailureSlot::default());
        let adapter = Adapter {
            foreign: transport,
            failure: Arc::clone(&failure),
            _live: Live::new(Kind::Transport),
        };
        (tandem_net::AppTransport::new(adapter), failure)
    }

    /// Over `transport`, this end starting a paired session's handshake when `initiator`:
    /// the link and the engine's remote.
    pub(crate) fn over(
        transport: Arc<dyn DatagramTransport>,
        initiator: bool,
    ) -> (Link, tandem::Remote) {
        let (transport, failure) = Link::adapt(transport);
        let remote = tandem::Remote::Transport {
            transport,
            initiator,
        };
        (
            Link {
                transports: vec![failure],
            },
            remote,
        )
    }

    /// Over two transports, `first` the session's first path and `second` its second (see
    /// [`Link::over`]).
    pub(crate) fn over_two(
        first: Arc<dyn DatagramTransport>,
        second: Arc<dyn DatagramTransport>,
        initiator: bool,
    ) -> (Link, tandem::Remote) {
        let (first, first_failure) = Link::adapt(first);
        let (second, second_failure) = Link::adapt(second);
        let remote = tandem::Remote::Transports {
            first,
            second,
            initiator,
        };
        (
            Link {
                transports: vec![first_failure, second_failure],
            },
            remote,
        )
    }

    /// The local address to report.
    pub(crate) fn local_address(&self, local: SocketAddr) -> String {
        if self.transports.is_empty() {
            local.to_string()
        } else {
            TRANSPORT_LABEL.to_owned()
        }
    }

    /// The peer to report, once known.
    pub(crate) fn peer(&self, peer: Option<SocketAddr>) -> Option<String> {
        peer.map(|p| self.address(p.to_string()))
    }

    fn address(&self, addr: String) -> String {
        if !self.transports.is_empty() && addr == TRANSPORT_PEER.to_string() {
            TRANSPORT_LABEL.to_owned()
        } else {
            addr
        }
    }

    /// The session's transports' failure, once every one of them failed (the session is
    /// then over; over two, one failing leaves the other carrying it).
    fn failure(&self) -> Option<String> {
        let reasons: Vec<String> = self
            .transports
            .iter()
            .map(|f| f.get())
            .collect::<Option<_>>()?;
        match &reasons[..] {
            [] => None,
            [only] => Some(format!("the transport failed: {only}")),
            many => Some(format!(
                "the transports failed: {}",
                many.iter()
                    .enumerate()
                    .map(|(i, r)| format!("path {i}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    /// What is wrong, as the engine says it (`error`), or the transports' failure.
    pub(crate) fn error(&self, error: Option<String>) -> Option<String> {
        if self.transports.is_empty() {
            return error;
        }
        match self.failure() {
            Some(failure) => Some(failure),
            None => error.map(|e| {
                let placeholder = TRANSPORT_PEER.to_string();
                e.replace(&format!("at {placeholder}"), "over the app transport")
                    .replace(&placeholder, "the app transport")
            }),
        }
    }

    /// An error message as the app sees it (see [`Link::error`]).
    pub(crate) fn message(&self, message: String) -> String {
        self.error(Some(message)).unwrap_or_default()
    }

    /// An error a call throws, as the app sees it: over transports that failed, a
    /// `Network` error naming their reason (whatever the engine made of the link going
    /// away); otherwise the engine's, the placeholder address named as the transport.
    pub(crate) fn thrown(&self, error: TandemError) -> TandemError {
        if self.transports.is_empty() {
            return error;
        }
        match self.failure() {
            Some(message) => TandemError::Network { message },
            None => error.map_message(|m| self.message(m)),
        }
    }

    /// A stats snapshot as the app sees it: over two transports, each path's carries its
    /// transport's failure.
    pub(crate) fn stats(&self, mut stats: Stats) -> Stats {
        if self.transports.is_empty() {
            return stats;
        }
        stats.peer = stats.peer.map(|p| self.address(p));
        stats.error = self.error(stats.error);
        for path in &mut stats.paths {
            path.peer = path.peer.take().map(|p| self.address(p));
            if self.transports.len() > 1 {
                path.failure = self
                    .transports
                    .get(usize::from(path.index))
                    .and_then(|f| f.get());
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Raises;

    impl DatagramTransport for Raises {
        fn start(&self, _inbox: Arc<TransportInbox>) {}
        fn send(&self, _datagrams: Vec<Vec<u8>>) -> Result<(), TransportFailure> {
            Err(TransportFailure::Failed {
                reason: "radio off".into(),
            })
        }
        fn stop(&self) {
            panic!("stop panicked");
        }
    }

    #[test]
    fn foreign_failures_become_the_sessions_reason_and_the_placeholder_is_named() {
        let (link, remote) = Link::over(Arc::new(Raises), true);
        let tandem::Remote::Transport { transport, .. } = remote else {
            panic!("a transport remote");
        };
        assert_eq!(link.local_address(TRANSPORT_PEER), TRANSPORT_LABEL);
        assert_eq!(
            link.peer(Some(TRANSPORT_PEER)).as_deref(),
            Some(TRANSPORT_LABEL)
        );
        assert_eq!(
            link.error(Some("the peer at 0.0.0.0:0 has sent nothing".into()))
                .as_deref(),
            Some("the peer over the app transport has sent nothing")
        );
        let e = transport.0.send(&[b"x"]).expect_err("send fails");
        assert_eq!(e.reason, "radio off");
        // A stop that panics is logged, not propagated.
        transport.0.stop();
        assert_eq!(
            link.error(None).as_deref(),
            Some("the transport failed: radio off")
        );
        assert_eq!(
            Link::sockets()
                .error(Some("x at 0.0.0.0:0".into()))
                .as_deref(),
            Some("x at 0.0.0.0:0")
        );
        // A thrown error names the transport's failure, whatever the engine made of it.
        assert_eq!(
            link.thrown(TandemError::Stopped {
                message: "the pipeline has stopped".into()
            }),
            TandemError::Network {
                message: "the transport failed: radio off".into()
            }
        );
        let fine = Link::over(Arc::new(Raises), false).0;
        assert_eq!(
            fine.thrown(TandemError::Network {
                message: "no answer from 0.0.0.0:0".into()
            }),
            TandemError::Network {
                message: "no answer from the app transport".into()
            }
        );
        // Over two, one failing is no failure of the session; both failing is.
        let (two, remote) = Link::over_two(Arc::new(Raises), Arc::new(Raises), true);
        let tandem::Remote::Transports { first, second, .. } = remote else {
            panic!("a two-transport remote");
        };
        let _ = second.0.send(&[b"x"]).expect_err("send fails");
        assert_eq!(two.error(None), None);
        let stats = two.stats(Stats::from(&tandem::Stats {
            paths: vec![
                tandem::PathStats {
                    index: 0,
                    peer: Some(TRANSPORT_PEER.to_string()),
                    ..tandem::PathStats::default()
                },
                tandem::PathStats {
                    index: 1,
                    ..tandem::PathStats::default()
                },
            ],
            ..tandem::Stats::default()
        }));
        assert_eq!(stats.paths[0].peer.as_deref(), Some(TRANSPORT_LABEL));
        assert_eq!(stats.paths[0].failure, None);
        assert_eq!(stats.paths[1].failure.as_deref(), Some("radio off"));
        let _ = first.0.send(&[b"x"]).expect_err("send fails");
        assert_eq!(
            two.error(None).as_deref(),
            Some("the transports failed: path 0: radio off; path 1: radio off")
        );
        let unexpected = TransportFailure::from(uniffi::UnexpectedUniFFICallbackError::new(
            "RuntimeError('boom')",
        ));
        assert!(unexpected.to_string().contains("boom"), "{unexpected}");
    }
}
