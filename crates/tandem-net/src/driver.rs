//! `spawn_driver`: one thread that owns a `tandem-proto` endpoint and runs it over a set of
//! datagram paths.
//!
//! # Paths
//!
//! A path is a UDP socket the driver opens ([`PathConfig::Udp`]: bound to an interface
//! when a path was chosen, batched sends with UDP GSO where the OS has it, see
//! [`crate::batch`]) or a link the application brings ([`PathConfig::Transport`], see
//! [`crate::transport`]). The driver receives on every path and sends on the one the peer
//! was last heard on (before that: the configured peer's, or the transport's). A listener
//! reachable on several interfaces opens one socket per interface; all of them are one
//! session path.
//!
//! A session may span two paths at once ([`DriverConfig::second_path`]; see
//! `tandem-proto`'s `multipath` module): every socket or transport in
//! [`DriverConfig::paths`] is session path 0 ([`PathId::FIRST`]) and the second path's
//! socket or transport is session path 1 ([`PathId::SECOND`]) — or, for a listener on
//! shared wildcard sockets, [`DriverConfig::split_by_interface`] tells each datagram's path
//! by the interface its source is on. The driver then keeps one peer per session path
//! ([`DriverHandle::path_peers`]), each learned and followed by the rules above on its own
//! path, hands every datagram in with the path it arrived on
//! (`Endpoint::handle_datagram_on`), and sends each datagram the endpoint releases
//! (`Endpoint::poll_transmit_on`) on every session path its transmit names that has a
//! peer (on path 0 if none of them has one, on path 1 if path 0 has none either). Runs of
//! datagrams for the same paths go out batched, as on one path; the copy for a second path
//! is best effort (one that does not fit the socket's buffer is dropped and counted in
//! [`DriverStats::send_errors`], where the first path's datagram waits for room).
//!
//! The endpoint learns when the second path is usable (`Endpoint::set_path_open`): at the
//! start when its peer is configured (or it is a transport), otherwise when the first
//! datagram there that the endpoint finds authentic arrives (for an endpoint that does not
//! authenticate, the first datagram there). A datagram the endpoint does not find
//! authentic costs a counter ([`DriverStats::strays`]) and nothing else: it opens no path
//! and moves no peer. [`DriverStats::paths`] counts each session path's datagrams.
//!
//! # One owner
//!
//! The endpoint and the paths belong to the driver's thread alone; no protocol call runs on
//! any other thread. The thread follows the endpoint's run-loop contract (see
//! `tandem-proto`'s crate docs): it feeds every datagram to `handle_datagram`, drains
//! `poll_transmit` into one buffer of its own and sends what the endpoint releases at
//! once, hands `poll_event` on through a bounded channel, and sleeps until the next
//! datagram, command or `poll_timeout` — in one `poll` system call with a nanosecond
//! deadline (a timerfd on Linux, kqueue's timespec on Apple; crate `polling`). A pacer
//! slot therefore leaves from the thread that waited for it, without a hop through a timer
//! thread or an async runtime, and tokio's 1 ms timer tick is not involved.
//!
//! The application talks to the endpoint through [`DriverHandle::call`]: the closure
//! travels through a bounded queue to the driver's thread, which wakes, runs it with the
//! current `now`, sends what it released, and returns its result (a frame handed over by
//! an encoder thread thus leaves before the encoder thread is told its frame id). What the
//! driver knows of the session — the peer, when it last spoke, counters — is a snapshot any
//! thread reads without waking the driver ([`DriverHandle::peer`],
//! [`DriverHandle::stats`]). Events go through a bounded channel; when the application
//! falls behind, further events are dropped and counted ([`DriverStats::events_dropped`])
//! rather than stalling the network side.
//!
//! # Lost paths
//!
//! Each socket's path is checked every [`DriverConfig::path_check`] (and at once when a
//! send fails the way a vanished interface makes it fail): when the bound interface is
//! gone, or has been down or without the local address for longer than
//! [`DriverConfig::path_down_grace`], the path is dropped. In a session over one path,
//! when it was the path in use (or the last one) the driver ends with
//! [`DriverError::PathLost`] — the event channel closes, and [`DriverHandle::shutdown`]
//! returns the error — instead of sending into nothing; a transport that fails ends it
//! with [`DriverError::Transport`].
//!
//! In a session over two paths, losing a path (its socket's interface gone, its transport
//! failed) closes the session path whose peer was there: the endpoint is told
//! (`set_path_open(.., false)`), its peer is forgotten, a warning is logged and
//! [`DriverStats::paths_lost`] counts it, and the session continues on the other path — the
//! second path's loss as well as the first's. It ends as above only when the last path
//! goes: when no socket or transport is left, when no open session path has one left, or
//! when the lost one carried every peer the session had. A listener split by interface
//! keeps its wildcard sockets when an interface goes; it loses the session path whose
//! peer's IPv6 link-local address was scoped to that interface. A session path closed this
//! way opens again if its peer is heard again on a path that remains (a listener's new
//! socket, say).

mod owner;
mod split;
mod udp;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use polling::Poller;
use tandem_proto::multipath::MAX_PATHS;
use tandem_proto::{Endpoint, PathId};
use tokio::sync::mpsc;

use crate::socket::{SocketConfig, open_udp};
use crate::transport::{AppTransport, TRANSPORT_PEER, TransportInbox};
use owner::{Owner, Path, PeerAt, Role};
use split::Split;
use udp::UdpPath;

/// One path of a session (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathConfig {
    /// A UDP socket bound to `local` (port 0 for any) with `socket`'s options.
    Udp {
        /// Local address to bind.
        local: SocketAddr,
        /// Socket options (buffers, traffic class, interface binding).
        socket: SocketConfig,
    },
    /// A link the application provides.
    Transport(AppTransport),
}

impl From<crate::listen::ListenSocket> for PathConfig {
    /// One socket of a listen plan ([`crate::listen_plan`]) as a path.
    fn from(s: crate::listen::ListenSocket) -> PathConfig {
        PathConfig::Udp {
            local: s.local,
            socket: s.socket,
        }
    }
}

/// The second path of a session over two paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondPath {
    /// Its socket (or the application's transport). A UDP socket binds exactly its
    /// `local` (port 0: any port; it does not take the first path's port).
    pub path: PathConfig,
    /// The peer's address on it; `None`: learned from the first datagram the endpoint finds
    /// authentic there (or, for an endpoint that does not authenticate, the first datagram
    /// there).
    pub peer: Option<SocketAddr>,
}

/// Driver settings. [`DriverConfig::new`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// The paths to run the session over; at least one.
    pub paths: Vec<PathConfig>,
    /// The peer's address on the UDP paths (session path 0's; the second path's is
    /// [`SecondPath::peer`]); only its datagrams reach an endpoint that does not
    /// authenticate. `None` listens: the first datagram's source becomes the peer, and
    /// datagrams the endpoint releases before then are dropped (counted in
    /// [`DriverStats::send_errors`]). An IPv6 link-local peer without a scope id gets the
    /// bound interface's.
    pub peer: Option<SocketAddr>,
    /// Events the channel holds before further ones are dropped. Default 1024 (about 17 s of
    /// 60 fps frames; an application that is further behind has lost them anyway).
    pub event_capacity: usize,
    /// Calls queued for the driver's thread before [`DriverHandle::call`] waits for room.
    /// Default 64: two seconds of frames at 30 fps, far more than a thread that waits for
    /// each call's answer ever queues.
    pub command_capacity: usize,
    /// Datagrams a transport may deliver ahead of the driver before further ones are
    /// dropped (and counted). Default 4096: a 60 fps keyframe burst plus an AWDL stall's
    /// backlog (about 100 ms at 50 Mbit/s is 520 datagrams) many times over, and at most
    /// 8 MiB.
    pub transport_inbox: usize,
    /// Largest datagram accepted, bytes. Default 2048: Tandem's datagrams fit a 1500-byte
    /// MTU, and anything larger is not ours.
    pub max_datagram: usize,
    /// How often the paths are checked; `None` never. Default 250 ms: a lost path ends the
    /// session within a quarter second, for tens of microseconds of work per check.
    pub path_check: Option<Duration>,
    /// How long the bound interface may be down, or without the local address, before the
    /// path is lost. Default 3 s: Wi-Fi drops carrier briefly when it roams, and DHCP can
    /// re-add an address; a session should ride both out. A deleted interface loses it at
    /// once.
    pub path_down_grace: Duration,
    /// When the peer has sent nothing for this long, a datagram from another address makes
    /// that address the peer (counted in [`DriverStats::peer_changes`]): a peer that
    /// restarted on a new port, or moved to a new address, is followed instead of ignored.
    /// `None` keeps the first peer forever. Default 1 s, well past any Wi-Fi stall, so a
    /// stranger cannot take over a live session. Endpoints that authenticate follow the
    /// peer's authentic datagrams instead, at once.
    pub adopt_new_peer_after: Option<Duration>,
    /// The driver thread's name. Default "tandem-net".
    pub thread_name: String,
    /// A listener that keeps itself reachable on every interface it is advertised on: at
    /// each path check it makes its [`crate::listen_plan`] again and opens the sockets it
    /// lacks (see [`Relisten`]). Default `None`.
    pub relisten: Option<Relisten>,
    /// The session's second path (see the module docs, # Paths). Default `None`: one path.
    pub second_path: Option<SecondPath>,
    /// A listener over two paths on shared (wildcard) sockets: a datagram whose source is on a
    /// peer-to-peer interface (as `crate::iface` classifies it with these overrides; for an IPv6
    /// link-local source, the interface of its scope id) belongs to path 1, any other to path 0.
    /// Default None (every datagram on `paths` is path 0).
    pub split_by_interface: Option<crate::iface::KindOverrides>,
}

/// What a listener's driver needs to make its listen plan again as interfaces change: on
/// the iOS family a peer-to-peer interface (AWDL) that comes up after the listener
/// started, or comes back with a new link-local address, gets a socket bound to it (see
/// [`crate::listen`]); macOS and Linux plans are one wildcard socket, which stays. Sockets
/// whose address went away are dropped by the path check like any lost path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relisten {
    /// The platform the plan is for ([`crate::listen::Platform::current`] outside tests).
    pub platform: crate::listen::Platform,
    /// Interface kinds the application set.
    pub overrides: crate::iface::KindOverrides,
    /// Buffers and traffic class for new sockets.
    pub base: SocketConfig,
}

impl DriverConfig {
    /// The defaults for talking from a UDP socket at `local` (default [`SocketConfig`]) to
    /// `peer` (`None`: learn it, see [`DriverConfig::peer`]).
    pub fn new(local: SocketAddr, peer: Option<SocketAddr>) -> DriverConfig {
        DriverConfig::with_paths(
            vec![PathConfig::Udp {
                local,
                socket: SocketConfig::default(),
            }],
            peer,
        )
    }

    /// The defaults over the application's `transport`.
    pub fn over_transport(transport: AppTransport) -> DriverConfig {
        DriverConfig::with_paths(vec![PathConfig::Transport(transport)], None)
    }

    /// The defaults over `paths`.
    pub fn with_paths(paths: Vec<PathConfig>, peer: Option<SocketAddr>) -> DriverConfig {
        DriverConfig {
            paths,
            peer,
            event_capacity: 1024,
            command_capacity: 64,
            transport_inbox: 4096,
            max_datagram: 2048,
            path_check: Some(Duration::from_millis(250)),
            path_down_grace: Duration::from_secs(3),
            adopt_new_peer_after: Some(Duration::from_secs(1)),
            thread_name: "tandem-net".to_owned(),
            relisten: None,
            second_path: None,
            split_by_interface: None,
        }
    }

    /// The first UDP path's socket options, to change them (`None` without one).
    pub fn socket_mut(&mut self) -> Option<&mut SocketConfig> {
        self.paths.iter_mut().find_map(|p| match p {
            PathConfig::Udp { socket, .. } => Some(socket),
            PathConfig::Transport(_) => None,
        })
    }
}

/// One session path's share of [`DriverStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverPathStats {
    /// Datagrams received from the peer on this path and handed to the endpoint.
    pub datagrams_in: u64,
    /// Datagrams sent on this path (a datagram sent on both paths counts on each).
    pub datagrams_out: u64,
    /// Bytes sent on this path.
    pub bytes_out: u64,
}

/// Counters the driver keeps (read with [`DriverHandle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverStats {
    /// Datagrams received from the peer and handed to the endpoint.
    pub datagrams_in: u64,
    /// Datagrams sent (a datagram sent on both paths counts twice).
    pub datagrams_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// System calls that sent more than one datagram (UDP GSO).
    pub batched_sends: u64,
    /// Datagrams from other addresses, dropped; for an endpoint that authenticates, the
    /// datagrams it did not find authentic.
    pub strays: u64,
    /// Sends the kernel refused (buffer full, unreachable); the protocol's loss recovery
    /// treats them as lost.
    pub send_errors: u64,
    /// Events dropped because the application's channel was full.
    pub events_dropped: u64,
    /// Times a silent peer was replaced by a new address (see
    /// [`DriverConfig::adopt_new_peer_after`]).
    pub peer_changes: u64,
    /// Datagrams a transport delivered while its inbox was full, dropped.
    pub transport_dropped: u64,
    /// Session paths lost while the session continued on the other (see the module docs,
    /// # Lost paths).
    pub paths_lost: u64,
    /// Per session path: index 0 is path 0 ([`PathId::FIRST`]), 1 the second path.
    pub paths: [DriverPathStats; MAX_PATHS],
}

#[derive(Debug, Default)]
struct SharedStats {
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
    batched_sends: AtomicU64,
    strays: AtomicU64,
    send_errors: AtomicU64,
    events_dropped: AtomicU64,
    peer_changes: AtomicU64,
    transport_dropped: AtomicU64,
    paths_lost: AtomicU64,
    paths: [PathCounters; MAX_PATHS],
}

#[derive(Debug, Default)]
struct PathCounters {
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl SharedStats {
    fn snapshot(&self) -> DriverStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DriverStats {
            datagrams_in: get(&self.datagrams_in),
            datagrams_out: get(&self.datagrams_out),
            bytes_out: get(&self.bytes_out),
            batched_sends: get(&self.batched_sends),
            strays: get(&self.strays),
            send_errors: get(&self.send_errors),
            events_dropped: get(&self.events_dropped),
            peer_changes: get(&self.peer_changes),
            transport_dropped: get(&self.transport_dropped),
            paths_lost: get(&self.paths_lost),
            paths: std::array::from_fn(|i| DriverPathStats {
                datagrams_in: get(&self.paths[i].datagrams_in),
                datagrams_out: get(&self.paths[i].datagrams_out),
                bytes_out: get(&self.paths[i].bytes_out),
            }),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why a driver ended other than by [`DriverHandle::shutdown`].
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A socket or the poller failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The session's path went away.
    #[error("the session's path is gone: {0}")]
    PathLost(String),
    /// The application's transport failed.
    #[error("the transport failed: {0}")]
    Transport(String),
    /// The driver's thread panicked.
    #[error("driver thread failed: {0}")]
    Task(String),
}

/// What the driver's thread and the handles share: the poller it sleeps in, counters and
/// the snapshot of the peer. Nothing of the endpoint.
struct Shared {
    poller: Poller,
    stats: SharedStats,
    stop: AtomicBool,
    /// Each session path's peer.
    peers: Mutex<[Option<SocketAddr>; MAX_PATHS]>,
    /// The second path's socket's local address, while it has one.
    second_local: Mutex<Option<SocketAddr>>,
    /// When the peer last spoke: nanoseconds after `epoch`, plus one (0: never).
    heard: AtomicU64,
    epoch: Instant,
    /// The endpoint's `is_established`, as of the driver's last turn.
    established: AtomicBool,
    /// Why the driver's thread ended, when it ended with an error.
    ended: Mutex<Option<String>>,
    /// Every UDP socket's local address, in the order of the paths.
    locals: Mutex<Vec<SocketAddr>>,
}

impl Shared {
    fn set_peer(&self, path: PathId, peer: Option<SocketAddr>) {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)[path.index()] = peer;
    }

    fn peers(&self) -> [Option<SocketAddr>; MAX_PATHS] {
        *self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_heard(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.epoch).as_nanos();
        self.heard.store(
            u64::try_from(ns).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Relaxed,
        );
    }

    fn heard_at(&self) -> Option<Instant> {
        match self.heard.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }

    fn wake(&self) {
        // A poller that cannot be notified has failed; the driver's own wait reports it.
        let _ = self.poller.notify();
    }
}

/// A call for the driver's thread: it runs on the endpoint and returns the answer, to send
/// once what the call released has gone out (so the caller's wake-up costs the datagram
/// nothing).
type Command<E> = Box<dyn FnOnce(&mut E, Instant) -> Answer + Send>;

/// A call's answer, sent to its caller after the flush.
type Answer = Box<dyn FnOnce() + Send>;

/// The application's side of a running driver. Dropping it stops the driver's thread.
pub struct DriverHandle<E: Endpoint> {
    shared: Arc<Shared>,
    commands: Option<SyncSender<Command<E>>>,
    events: mpsc::Receiver<E::Event>,
    thread: Option<JoinHandle<Result<E, DriverError>>>,
    owner: ThreadId,
}

impl<E: Endpoint> std::fmt::Debug for DriverHandle<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHandle")
            .field(
                "locals",
                &*self
                    .shared
                    .locals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            )
            .field("stats", &self.shared.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<E: Endpoint> Drop for DriverHandle<E> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
    }
}

/// The driver has ended (its endpoint is gone), or the call came from the driver's own
/// thread (a transport calling back into its session), which would wait on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the network driver has stopped")]
pub struct DriverStopped;

impl<E: Endpoint + Send + 'static> DriverHandle<E> {
    /// Runs `f` on the endpoint, on the driver's thread, with the current time; sends what
    /// it released; returns its result. Waits for the driver's thread to take the call
    /// (it wakes for it) and for `f` to run.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut E, Instant) -> R + Send + 'static,
    ) -> Result<R, DriverStopped> {
        if std::thread::current().id() == self.owner {
            return Err(DriverStopped);
        }
        let commands = self.commands.as_ref().ok_or(DriverStopped)?;
        let (reply, answer) = sync_channel(1);
        let command: Command<E> = Box::new(move |endpoint, now| {
            let answer = f(endpoint, now);
            Box::new(move || {
                let _ = reply.send(answer);
            })
        });
        commands.send(command).map_err(|_| DriverStopped)?;
        self.shared.wake();
        answer.recv().map_err(|_| DriverStopped)
    }

    /// The endpoint's next event, in order; `None` once the driver has ended (see
    /// [`DriverHandle::shutdown`] for why).
    pub async fn next_event(&mut self) -> Option<E::Event> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<E::Event> {
        self.events.try_recv().ok()
    }

    /// Takes the event channel, for a thread of its own (`blocking_recv` works outside a
    /// runtime); the handle's own event methods then see nothing. What is left of the
    /// handle is `&self` only, so it can be shared (`Arc`) by the threads that call into
    /// the endpoint.
    pub fn take_events(&mut self) -> mpsc::Receiver<E::Event> {
        let (_, empty) = mpsc::channel(1);
        std::mem::replace(&mut self.events, empty)
    }

    /// Why the driver ended, when it ended with an error (a lost path, a failed transport,
    /// a socket error): what [`DriverHandle::shutdown`] will return, readable before it
    /// from any thread. `None` while it runs and after a clean stop.
    pub fn end_reason(&self) -> Option<String> {
        self.shared
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether media can flow (the endpoint's [`Endpoint::is_established`]: a sealed
    /// session is up), as of the driver's last turn; read without waking the driver.
    pub fn is_established(&self) -> bool {
        self.shared.established.load(Ordering::Acquire)
    }

    /// The peer's address: configured, or learned from its first datagram; a transport's
    /// peer is what the transport names, or [`TRANSPORT_PEER`]. Over two paths, path 0's
    /// peer, or path 1's while path 0 has none (see [`DriverHandle::path_peers`]).
    pub fn peer(&self) -> Option<SocketAddr> {
        let [first, second] = self.shared.peers();
        first.or(second)
    }

    /// The peer's address on each session path (index 0: path 0, 1: the second path);
    /// `None` where it is not known yet, or its path was lost.
    pub fn path_peers(&self) -> [Option<SocketAddr>; MAX_PATHS] {
        self.shared.peers()
    }

    /// The address the second path's socket is bound to (`None` without one, over a
    /// transport, or once that path is lost).
    pub fn second_local_addr(&self) -> Option<SocketAddr> {
        *self
            .shared
            .second_local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long ago the peer last sent a datagram (`None`: never).
    pub fn peer_silent_for(&self) -> Option<Duration> {
        Some(self.shared.heard_at()?.elapsed())
    }

    /// The address the first socket is bound to ([`TRANSPORT_PEER`]'s unspecified address
    /// for a session over a transport only).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()
            .first()
            .copied()
            .unwrap_or(TRANSPORT_PEER)
    }

    /// The addresses of every socket, in the order of the paths (a listener's grow and
    /// shrink as its interfaces come and go, see [`Relisten`]).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .locals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.shared.stats.snapshot()
    }

    /// Whether the driver has ended (path lost, socket or transport failed);
    /// [`DriverHandle::shutdown`] says why.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the driver to stop, without waiting: its event channel then closes, which ends
    /// a thread blocked on it. For a handle shared by threads that must see that first;
    /// [`DriverHandle::shutdown`] afterwards collects the endpoint.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
    }

    /// Stops the driver and returns the endpoint (for its final statistics), or why the
    /// driver had already ended. Waits for its thread.
    pub fn shutdown(mut self) -> Result<E, DriverError> {
        self.stop();
        self.commands = None;
        let thread = self
            .thread
            .take()
            .ok_or_else(|| DriverError::Task("already shut down".into()))?;
        thread
            .join()
            .map_err(|_| DriverError::Task("the driver's thread panicked".into()))?
    }
}

/// Opens the paths and starts the driver's thread for `endpoint`. Needs no async runtime.
pub fn spawn_driver<E>(endpoint: E, config: DriverConfig) -> io::Result<DriverHandle<E>>
where
    E: Endpoint + Send + 'static,
    E::Event: Send + 'static,
{
    if config.paths.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a driver needs at least one path",
        ));
    }
    let shared = Arc::new(Shared {
        poller: Poller::new().map_err(|e| io::Error::new(e.kind(), format!("poller: {e}")))?,
        stats: SharedStats::default(),
        stop: AtomicBool::new(false),
        peers: Mutex::new([None; MAX_PATHS]),
        second_local: Mutex::new(None),
        heard: AtomicU64::new(0),
        epoch: Instant::now(),
        established: AtomicBool::new(endpoint.is_established()),
        ended: Mutex::new(None),
        locals: Mutex::new(Vec::new()),
    });
    let split = config.split_by_interface.as_ref().map(|overrides| {
        // Listed once here, then at every path check; none listed: all is path 0 until then.
        let list = crate::iface::interfaces(overrides).unwrap_or_default();
        Split::new(overrides.clone(), &list)
    });
    let role = if split.is_some() {
        Role::Split
    } else {
        Role::Path(PathId::FIRST)
    };
    let mut paths = Vec::with_capacity(config.paths.len() + 1);
    let mut locals: Vec<SocketAddr> = Vec::new();
    for path in &config.paths {
        match path {
            PathConfig::Udp { local, socket } => {
                // One port for the session: a path asking for port 0 after another takes
                // that one's (a listener's sockets, see `crate::listen`).
                let mut local = *local;
                if local.port() == 0
                    && let Some(first) = locals.first()
                {
                    local.set_port(SocketAddr::port(first));
                }
                let opened = open_udp(local, socket)?;
                locals.push(opened.local);
                paths.push(Path::Udp(UdpPath::new(
                    opened,
                    socket,
                    config.path_down_grace,
                    role,
                )));
            }
            PathConfig::Transport(transport) => {
                paths.push(transport_path(&shared, &config, transport, PathId::FIRST));
            }
        }
    }
    // The second path, last; usable from the start with a configured peer, or over a
    // transport (a link to its peer already).
    let mut second_open = false;
    let mut second_peer = None;
    if let Some(second) = &config.second_path {
        match &second.path {
            PathConfig::Udp { local, socket } => {
                let opened = open_udp(*local, socket)?;
                *shared
                    .second_local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(opened.local);
                let udp = UdpPath::new(
                    opened,
                    socket,
                    config.path_down_grace,
                    Role::Path(PathId::SECOND),
                );
                if let Some(peer) = second.peer {
                    if !udp.reaches(peer) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "the second path's socket ({}) cannot send to its peer {peer}",
                                udp.local
                            ),
                        ));
                    }
                    second_open = true;
                    second_peer = Some(PeerAt {
                        path: paths.len(),
                        addr: peer,
                    });
                }
                paths.push(Path::Udp(udp));
            }
            PathConfig::Transport(transport) => {
                second_open = true;
                paths.push(transport_path(&shared, &config, transport, PathId::SECOND));
            }
        }
    }
    let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
    let (commands_tx, commands_rx) = sync_channel(config.command_capacity.max(1));
    let mut owner = Owner {
        endpoint,
        shared: Arc::clone(&shared),
        paths,
        peers: [None; MAX_PATHS],
        heard_at: [None; MAX_PATHS],
        open: [true, second_open],
        two_paths: config.second_path.is_some() || split.is_some(),
        split,
        adopt_after: config.adopt_new_peer_after,
        out: Vec::with_capacity(64 * 1500),
        lens: VecDeque::new(),
        sets: VecDeque::new(),
        max_datagram: config.max_datagram,
        rx_buf: BytesMut::zeroed(config.max_datagram + 1),
        from_transports: VecDeque::new(),
        commands: commands_rx,
        events: events_tx,
        path_check: config.path_check,
        next_path_check: config.path_check.map(|p| Instant::now() + p),
        relisten: config.relisten.clone(),
        relisten_refused: Vec::new(),
        path_down_grace: config.path_down_grace,
    };
    owner.publish_locals();
    if let Some(peer) = config.peer {
        // The configured peer is on the first socket that can send to it (not the second
        // path's); split by interface, on the session path its interface says.
        let path = owner.paths.iter().position(|p| match p {
            Path::Udp(u) => u.role != Role::Path(PathId::SECOND) && u.reaches(peer),
            Path::Transport { .. } => false,
        });
        if let Some(path) = path {
            let pid = owner
                .split
                .as_ref()
                .map_or(PathId::FIRST, |s| s.path_of(peer));
            owner.set_peer(pid, PeerAt { path, addr: peer });
            if pid == PathId::SECOND {
                owner.open[PathId::SECOND.index()] = true;
            }
        }
    }
    if let Some(at) = second_peer {
        owner.set_peer(PathId::SECOND, at);
    }
    let thread = std::thread::Builder::new()
        .name(config.thread_name.clone())
        .spawn(move || {
            crate::qos::media_thread();
            let result = owner.run();
            if let Err(e) = &result {
                *owner
                    .shared
                    .ended
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
            }
            result.map(|()| owner.endpoint)
        })?;
    Ok(DriverHandle {
        owner: thread.thread().id(),
        shared,
        commands: Some(commands_tx),
        events: events_rx,
        thread: Some(thread),
    })
}

/// The application's `transport` as a path of the driver, carrying session path `role`.
fn transport_path(
    shared: &Arc<Shared>,
    config: &DriverConfig,
    transport: &AppTransport,
    role: PathId,
) -> Path {
    let wake = {
        let shared = Arc::downgrade(shared);
        Arc::new(move || {
            if let Some(s) = shared.upgrade() {
                s.wake();
            }
        })
    };
    Path::Transport {
        transport: transport.clone(),
        inbox: TransportInbox::new(config.transport_inbox, wake),
        peer: transport.0.peer_address().unwrap_or(TRANSPORT_PEER),
        role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = DriverConfig::new("127.0.0.1:0".parse().expect("addr"), None);
        assert_eq!(c.event_capacity, 1024);
        assert_eq!(c.command_capacity, 64);
        assert_eq!(c.transport_inbox, 4096);
        assert_eq!(c.max_datagram, 2048);
        assert_eq!(c.path_check, Some(Duration::from_millis(250)));
        assert_eq!(c.path_down_grace, Duration::from_secs(3));
        assert_eq!(c.adopt_new_peer_after, Some(Duration::from_secs(1)));
        assert_eq!(c.thread_name, "tandem-net");
        assert_eq!(c.second_path, None);
        assert_eq!(c.split_by_interface, None);
        assert_eq!(
            c.paths,
            vec![PathConfig::Udp {
                local: "127.0.0.1:0".parse().expect("addr"),
                socket: SocketConfig::default()
            }]
        );
    }
}
