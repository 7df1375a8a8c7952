//! A datagram transport the application brings: the app's own Network.framework
//! connection, a Wi-Fi Aware link, or anything else that carries datagrams both ways.
//!
//! Tandem's own paths are UDP sockets it opens and binds itself. On Apple platforms some
//! links are reachable only through Network.framework (Wi-Fi Aware's `realtime`
//! performance mode is the example), so a session can also run over a transport the
//! application implements: the driver hands it each batch of datagrams the endpoint
//! releases ([`DatagramTransport::send`]), and the transport hands what it receives to a
//! [`TransportInbox`] the driver gave it at [`DatagramTransport::start`].
//!
//! The inbox is the only way in, and it is bounded: a transport that delivers faster than
//! the driver drains loses the excess (counted in
//! [`crate::DriverStats::transport_dropped`]) instead of growing memory. Datagrams a
//! transport delivers are as untrusted as a socket's: a sealed session authenticates each
//! one. A transport that fails says so once ([`TransportInbox::fail`], or an error from
//! [`DatagramTransport::send`]); the driver stops the transport and, in a session over one
//! path, ends with [`crate::DriverError::Transport`] carrying the reason. In a session over
//! two paths the other path carries on, and the session ends so only when it has no path
//! left (see the driver's "Lost paths").

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// Why a transport could not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TransportError {
    /// What failed, in the transport's words.
    pub reason: String,
}

impl TransportError {
    /// An error with `reason`.
    pub fn new(reason: impl Into<String>) -> TransportError {
        TransportError {
            reason: reason.into(),
        }
    }
}

/// A link the application provides (see the module docs). Every method is called on the
/// driver's own thread; none may block for long (a send that cannot go now should queue
/// or drop, as a full socket buffer would), and none may call back into the driver's
/// handle (that would wait on the thread it runs on).
pub trait DatagramTransport: Send + Sync + 'static {
    /// The session starts: from now on, deliver every datagram received to `inbox`.
    /// Called once, before any [`DatagramTransport::send`].
    fn start(&self, inbox: TransportInbox);
    /// Sends `datagrams`, in order (a batch the endpoint released together; each is one
    /// datagram on the link, never split or joined). An error ends the transport's path
    /// with it: the session with it, unless a second path carries on.
    fn send(&self, datagrams: &[&[u8]]) -> Result<(), TransportError>;
    /// The session is over; the transport should release its link. Called once.
    fn stop(&self);
    /// The peer's address on this link, if the link has one (for messages and the
    /// session's `peer`). Default: none, shown as [`TRANSPORT_PEER`].
    fn peer_address(&self) -> Option<SocketAddr> {
        None
    }
    /// What to call the link in messages. Default "app transport".
    fn describe(&self) -> String {
        "app transport".to_owned()
    }
}

/// The address a transport's peer is reported as when the transport names none:
/// `0.0.0.0:0`, which no socket peer can have.
pub const TRANSPORT_PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// A shared handle to an application's transport, as configuration holds it (compared by
/// identity).
#[derive(Clone)]
pub struct AppTransport(pub Arc<dyn DatagramTransport>);

impl AppTransport {
    /// Wraps `transport`.
    pub fn new(transport: impl DatagramTransport) -> AppTransport {
        AppTransport(Arc::new(transport))
    }
}

impl fmt::Debug for AppTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppTransport({})", self.0.describe())
    }
}

impl PartialEq for AppTransport {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AppTransport {}

/// Where a transport delivers what it receives. Cheap to clone; usable from any thread.
/// Once the driver has ended, deliveries are dropped.
#[derive(Clone)]
pub struct TransportInbox {
    shared: Arc<InboxShared>,
}

impl fmt::Debug for TransportInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportInbox")
            .field("waiting", &self.shared.lock().datagrams.len())
            .field("dropped", &self.shared.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// What a wake-up of the driver costs the inbox: the driver's poller, notified only when
/// the inbox goes from empty to not, so a burst costs one wake-up.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct InboxShared {
    state: Mutex<InboxState>,
    capacity: usize,
    dropped: AtomicU64,
    closed: AtomicBool,
    wake: Waker,
}

#[derive(Default)]
struct InboxState {
    datagrams: VecDeque<Bytes>,
    failure: Option<String>,
}

impl InboxShared {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TransportInbox {
    pub(crate) fn new(capacity: usize, wake: Waker) -> TransportInbox {
        TransportInbox {
            shared: Arc::new(InboxShared {
                state: Mutex::new(InboxState::default()),
                capacity: capacity.max(1),
                dropped: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                wake,
            }),
        }
    }

    /// Hands the driver one received datagram. Returns false when it was dropped: the
    /// inbox is full (the driver is behind) or the session has ended.
    pub fn deliver(&self, datagram: Bytes) -> bool {
        if self.shared.closed.load(Ordering::Relaxed) {
            return false;
        }
        let was_empty = {
            let mut st = self.shared.lock();
            if st.datagrams.len() >= self.shared.capacity {
                drop(st);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            st.datagrams.push_back(datagram);
            st.datagrams.len() == 1
        };
        if was_empty {
            (self.shared.wake)();
        }
        true
    }

    /// The link failed: the session ends with `reason`. Later calls change nothing.
    pub fn fail(&self, reason: impl Into<String>) {
        {
            let mut st = self.shared.lock();
            if st.failure.is_some() {
                return;
            }
            st.failure = Some(reason.into());
        }
        (self.shared.wake)();
    }

    /// Whether the session has ended (deliveries are dropped from then on).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Moves what waits into `into` (the driver's side); the failure, if one was reported.
    pub(crate) fn drain(&self, into: &mut VecDeque<Bytes>) -> Option<String> {
        let mut st = self.shared.lock();
        into.append(&mut st.datagrams);
        st.failure.clone()
    }

    /// Deliveries dropped because the inbox was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The driver has ended: drop what waits and refuse what comes.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.lock().datagrams.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_is_bounded_wakes_once_per_burst_and_closes() {
        let wakes = Arc::new(AtomicU64::new(0));
        let w = Arc::clone(&wakes);
        let inbox = TransportInbox::new(
            3,
            Arc::new(move || {
                w.fetch_add(1, Ordering::Relaxed);
            }),
        );
        for i in 0..5u8 {
            let kept = inbox.deliver(Bytes::from(vec![i]));
            assert_eq!(kept, i < 3, "datagram {i}");
        }
        assert_eq!(
            wakes.load(Ordering::Relaxed),
            1,
            "one wake-up for the burst"
        );
        assert_eq!(inbox.dropped(), 2);
        let mut got = VecDeque::new();
        assert_eq!(inbox.drain(&mut got), None);
        assert_eq!(got.len(), 3);
        inbox.fail("radio off");
        inbox.fail("second failure is ignored");
        assert_eq!(inbox.drain(&mut got).as_deref(), Some("radio off"));
        inbox.close();
        assert!(inbox.is_closed());
        assert!(!inbox.deliver(Bytes::from_static(b"late")));
    }
}
