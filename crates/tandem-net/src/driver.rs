//! `spawn_driver`: a tokio task that runs one `tandem-proto` endpoint over a UDP socket.
//!
//! The task follows the endpoint's run-loop contract (see `tandem-proto`'s crate docs): it
//! feeds every datagram from the peer to `handle_datagram`, drains `poll_transmit` and
//! sends each datagram as soon as the endpoint releases it (the sender's pacer decides
//! when; datagrams released together go out in one batch, see [`crate::batch`]), drains
//! `poll_event` into a bounded channel, and sleeps until the next datagram, command or
//! `poll_timeout` — on a [`PreciseTimer`], because pacer slots are finer than tokio's 1 ms
//! timer tick. Datagrams from any other address are counted and dropped.
//!
//! The application reaches the endpoint through [`DriverHandle::call`], which runs a
//! closure on it with the current `now` (for example `Sender::send_frame`) on the caller's
//! own thread, under the lock the task takes for each of its turns, and sends what the
//! call released before returning. A frame handed over from an encoder thread therefore
//! leaves without waiting for the task to be scheduled: that hand-off cost about 40 µs at
//! the median and 150 µs at p99 on the 2-core machine `net-report` runs on. The task is
//! then woken to re-arm its timer. Events go through a bounded channel; when the
//! application falls behind, further events are dropped and counted
//! ([`DriverStats::events_dropped`]) rather than stalling the network side.
//!
//! The session's path is checked every [`DriverConfig::path_check`] (and at once when a
//! send fails the way a vanished interface makes it fail): when the bound interface is
//! gone, or has been down or without the local address for longer than
//! [`DriverConfig::path_down_grace`], the task ends with [`DriverError::PathLost`] — the
//! event channel closes, and [`DriverHandle::shutdown`] returns the error — instead of
//! sending into nothing.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_proto::Endpoint;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use crate::batch::{BatchSender, MAX_SEGMENTS};
use crate::iface::{KindOverrides, interfaces};
use crate::socket::{SocketConfig, open_udp};
use crate::timer::PreciseTimer;
use crate::watch::{PathStatus, path_status};

/// Driver settings. [`DriverConfig::new`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// Local address to bind (port 0 for any).
    pub local: SocketAddr,
    /// The peer's address; only its datagrams reach the endpoint. `None` listens: the first
    /// datagram's source becomes the peer, and datagrams the endpoint releases before then
    /// are dropped (counted in [`DriverStats::send_errors`]). An IPv6 link-local peer without
    /// a scope id gets the bound interface's.
    pub peer: Option<SocketAddr>,
    /// Socket options (buffers, traffic class, interface binding).
    pub socket: SocketConfig,
    /// Events the channel holds before further ones are dropped. Default 1024 (about 17 s of
    /// 60 fps frames; an application that is further behind has lost them anyway).
    pub event_capacity: usize,
    /// Largest datagram accepted, bytes. Default 2048: Tandem's datagrams fit a 1500-byte
    /// MTU, and anything larger is not ours.
    pub max_datagram: usize,
    /// How often the path is checked; `None` never. Default 250 ms: a lost path ends the
    /// session within a quarter second, for tens of microseconds of work per check.
    pub path_check: Option<Duration>,
    /// How long the bound interface may be down, or without the local address, before the
    /// session ends. Default 3 s: Wi-Fi drops carrier briefly when it roams, and DHCP can
    /// re-add an address; a session should ride both out. A deleted interface ends it at
    /// once.
    pub path_down_grace: Duration,
    /// When the peer has sent nothing for this long, a datagram from another address makes
    /// that address the peer (counted in [`DriverStats::peer_changes`]): a peer that
    /// restarted on a new port, or moved to a new address, is followed instead of ignored.
    /// `None` keeps the first peer forever. Default 1 s, well past any Wi-Fi stall, so a
    /// stranger cannot take over a live session (the protocol's session id and, later,
    /// authentication reject strangers anyway).
    pub adopt_new_peer_after: Option<Duration>,
}

impl DriverConfig {
    /// The defaults for talking from `local` to `peer` (`None`: learn it, see
    /// [`DriverConfig::peer`]).
    pub fn new(local: SocketAddr, peer: Option<SocketAddr>) -> DriverConfig {
        DriverConfig {
            local,
            peer,
            socket: SocketConfig::default(),
            event_capacity: 1024,
            max_datagram: 2048,
            path_check: Some(Duration::from_millis(250)),
            path_down_grace: Duration::from_secs(3),
            adopt_new_peer_after: Some(Duration::from_secs(1)),
        }
    }
}

/// Counters the driver keeps (read with [`DriverHandle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverStats {
    /// Datagrams received from the peer and handed to the endpoint.
    pub datagrams_in: u64,
    /// Datagrams sent.
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
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why a driver ended other than by [`DriverHandle::shutdown`].
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The session's path went away.
    #[error("the session's path is gone: {0}")]
    PathLost(String),
    /// The task panicked or was cancelled.
    #[error("driver task failed: {0}")]
    Task(String),
}

/// Datagrams read per wake-up before the loop turns to sending and events again. A sender
/// faster than this receiver would otherwise keep the loop reading forever: no reports, no
/// NACKs, no frames handed on (seen in `net-report` once sends were batched: 680 ms RTT and
/// evicted frames).
const RECEIVE_BUDGET: usize = 64;

/// The endpoint and everything a turn of the driver touches, behind one lock.
struct Core<E: Endpoint> {
    endpoint: E,
    /// Datagrams the endpoint released that the kernel has not taken yet.
    out: VecDeque<Bytes>,
    batch: BatchSender,
    peer: Option<SocketAddr>,
    /// When the peer last sent a datagram.
    heard_at: Option<Instant>,
    adopt_after: Option<Duration>,
    path: PathWatch,
    buf: Vec<u8>,
    /// Dropped with the core when the task ends, which closes the application's channel.
    events: mpsc::Sender<E::Event>,
}

/// What the task and the application's handle share.
struct Shared<E: Endpoint> {
    /// `None` once the task has ended.
    core: Mutex<Option<Core<E>>>,
    socket: UdpSocket,
    stats: SharedStats,
    /// A call changed the endpoint's timers, or the handle asks the task to stop.
    wake: Notify,
    stop: AtomicBool,
    max_datagram: usize,
}

impl<E: Endpoint> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, Option<Core<E>>> {
        // A call that panicked under the lock leaves the endpoint as the panic left it;
        // the protocol tolerates that better than a driver that stops.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After anything that may have changed the endpoint: sends what it released, as far
    /// as the socket takes it now, and hands its events on.
    fn pump(&self, core: &mut Core<E>, now: Instant) {
        self.flush(core, now);
        while let Some(event) = core.endpoint.poll_event() {
            if core.events.try_send(event).is_err() {
                SharedStats::add(&self.stats.events_dropped, 1);
            }
        }
    }

    /// Sends everything the endpoint has released, in batches, until the socket's buffer is
    /// full (the rest waits in `out` for the task to see the socket writable).
    fn flush(&self, core: &mut Core<E>, now: Instant) {
        loop {
            while core.out.len() < MAX_SEGMENTS {
                match core.endpoint.poll_datagram(now) {
                    Some(t) => core.out.push_back(t),
                    None => break,
                }
            }
            if core.out.is_empty() {
                return;
            }
            let Some(to) = core.peer else {
                SharedStats::add(&self.stats.send_errors, core.out.len() as u64);
                core.out.clear();
                continue;
            };
            let pending = core.out.make_contiguous();
            let batched_before = core.batch.batched_sends;
            match core.batch.send(&self.socket, pending, to) {
                Ok(n) => {
                    let bytes: usize = core.out.drain(..n).map(|d| d.len()).sum();
                    SharedStats::add(&self.stats.datagrams_out, n as u64);
                    SharedStats::add(&self.stats.bytes_out, bytes as u64);
                    SharedStats::add(
                        &self.stats.batched_sends,
                        core.batch.batched_sends - batched_before,
                    );
                }
                // The send buffer is full: wait for room rather than drop media.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    core.path.suspect |= path_error(&e);
                    SharedStats::add(&self.stats.send_errors, 1);
                    core.out.pop_front();
                }
            }
        }
    }

    /// An endpoint that authenticates judges every datagram itself, whatever its source;
    /// the peer is wherever its authentic datagrams last came from. A stranger's datagrams
    /// cost the endpoint a check and are counted as strays; one cannot take over the
    /// session by sending first or sending more.
    fn receive_authenticated(
        &self,
        core: &mut Core<E>,
        now: Instant,
        from: SocketAddr,
        datagram: Bytes,
    ) {
        core.endpoint.handle_datagram_from(now, from, datagram);
        if !core.endpoint.last_datagram_authentic() {
            SharedStats::add(&self.stats.strays, 1);
            return;
        }
        SharedStats::add(&self.stats.datagrams_in, 1);
        match core.peer {
            Some(p) if is_peer(p, from) => {}
            Some(p) => {
                tracing::info!(old = %p, new = %from, "driver: the authenticated peer moved");
                core.peer = Some(from);
                SharedStats::add(&self.stats.peer_changes, 1);
            }
            None => core.peer = Some(from),
        }
        core.heard_at = Some(now);
    }

    /// Reads the datagrams waiting on the socket (up to [`RECEIVE_BUDGET`]) into the
    /// endpoint.
    fn receive(&self, core: &mut Core<E>) -> io::Result<()> {
        for _ in 0..RECEIVE_BUDGET {
            match self.socket.try_recv_from(&mut core.buf) {
                Ok((n, from)) => {
                    let now = Instant::now();
                    if n > self.max_datagram {
                        SharedStats::add(&self.stats.strays, 1);
                        continue;
                    }
                    // Each datagram in a buffer of its own size (the endpoint keeps slices).
                    let datagram = Bytes::copy_from_slice(&core.buf[..n]);
                    if core.endpoint.authenticates() {
                        self.receive_authenticated(core, now, from, datagram);
                        continue;
                    }
                    let expected = *core.peer.get_or_insert(from);
                    // Only a peer that was heard and then fell silent is replaced: a
                    // configured peer that has not spoken yet keeps its place.
                    let silent = |since: Option<Instant>, after: Option<Duration>| {
                        after.is_some_and(|a| since.is_some_and(|t| now - t >= a))
                    };
                    if !is_peer(expected, from) && silent(core.heard_at, core.adopt_after) {
                        tracing::info!(old = %expected, new = %from, "driver: following a new peer address");
                        core.peer = Some(from);
                        SharedStats::add(&self.stats.peer_changes, 1);
                    }
                    let expected = core.peer.unwrap_or(from);
                    if !is_peer(expected, from) {
                        SharedStats::add(&self.stats.strays, 1);
                        continue;
                    }
                    SharedStats::add(&self.stats.datagrams_in, 1);
                    core.heard_at = Some(now);
                    core.endpoint.handle_datagram(now, datagram);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // ICMP unreachable from an earlier send surfaces here on Linux: the peer is
                // not there (yet); keep listening.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
        // More may be waiting: the socket stays readable, so the loop comes straight back.
        Ok(())
    }
}

/// The application's side of a running driver. Dropping it stops the task.
pub struct DriverHandle<E: Endpoint> {
    shared: Arc<Shared<E>>,
    events: mpsc::Receiver<E::Event>,
    local: SocketAddr,
    task: Option<tokio::task::JoinHandle<Result<E, DriverError>>>,
}

impl<E: Endpoint> std::fmt::Debug for DriverHandle<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHandle")
            .field("local", &self.local)
            .field("stats", &self.shared.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<E: Endpoint> Drop for DriverHandle<E> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }
}

/// The driver task has ended (its endpoint is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the network driver has stopped")]
pub struct DriverStopped;

impl<E: Endpoint + Send + 'static> DriverHandle<E> {
    /// Runs `f` on the endpoint with the current time, on the calling thread (any thread;
    /// no runtime needed), sends what it released, and returns its result. It waits only
    /// for the lock, which the task holds for one turn at a time.
    pub fn call<R>(&self, f: impl FnOnce(&mut E, Instant) -> R) -> Result<R, DriverStopped> {
        let mut guard = self.shared.lock();
        let core = guard.as_mut().ok_or(DriverStopped)?;
        let r = f(&mut core.endpoint, Instant::now());
        self.shared.pump(core, Instant::now());
        drop(guard);
        // The endpoint's next deadline may have moved, or datagrams wait for room.
        self.shared.wake.notify_one();
        Ok(r)
    }

    /// The endpoint's next event, in order; `None` once the task has ended (see
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

    /// The peer's address: configured, or learned from its first datagram.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.shared.lock().as_ref().and_then(|c| c.peer)
    }

    /// How long ago the peer last sent a datagram (`None`: never).
    pub fn peer_silent_for(&self) -> Option<Duration> {
        let heard = self.shared.lock().as_ref().and_then(|c| c.heard_at)?;
        Some(heard.elapsed())
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.shared.stats.snapshot()
    }

    /// Whether the task has ended (path lost, socket failed); [`DriverHandle::shutdown`]
    /// says why.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Asks the task to stop, without waiting: its event channel then closes, which ends a
    /// thread blocked on it. For a handle shared by threads that must see that first;
    /// [`DriverHandle::shutdown`] afterwards collects the endpoint.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    /// Stops the task and returns the endpoint (for its final statistics), or why the task
    /// had already ended.
    pub async fn shutdown(mut self) -> Result<E, DriverError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let task = self
            .task
            .take()
            .ok_or_else(|| DriverError::Task("already shut down".into()))?;
        task.await.map_err(|e| DriverError::Task(e.to_string()))?
    }
}

/// Opens the socket and spawns the driver task for `endpoint` on the current tokio runtime.
pub fn spawn_driver<E>(endpoint: E, mut config: DriverConfig) -> io::Result<DriverHandle<E>>
where
    E: Endpoint + Send + 'static,
    E::Event: Send + 'static,
{
    let opened = open_udp(config.local, &config.socket)?;
    let socket = UdpSocket::from_std(opened.socket)?;
    let timer = PreciseTimer::new()?;
    let scope = config
        .socket
        .interface
        .map_or(scope_of(opened.local), std::num::NonZeroU32::get);
    config.peer = config.peer.map(|p| with_scope(p, scope));
    let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
    let core = Core {
        endpoint,
        out: VecDeque::new(),
        batch: BatchSender::new(&socket),
        peer: config.peer,
        heard_at: None,
        adopt_after: config.adopt_new_peer_after,
        path: PathWatch::new(&config, opened.local),
        buf: vec![0u8; config.max_datagram + 1],
        events: events_tx,
    };
    let shared = Arc::new(Shared {
        core: Mutex::new(Some(core)),
        socket,
        stats: SharedStats::default(),
        wake: Notify::new(),
        stop: AtomicBool::new(false),
        max_datagram: config.max_datagram,
    });
    let task = tokio::spawn(run(Arc::clone(&shared), timer, config.path_check));
    Ok(DriverHandle {
        shared,
        events: events_rx,
        local: opened.local,
        task: Some(task),
    })
}

fn scope_of(addr: SocketAddr) -> u32 {
    match addr {
        SocketAddr::V6(v6) => v6.scope_id(),
        SocketAddr::V4(_) => 0,
    }
}

/// An IPv6 link-local address without a scope cannot be sent to: give it `scope`.
fn with_scope(addr: SocketAddr, scope: u32) -> SocketAddr {
    match addr {
        SocketAddr::V6(mut v6)
            if v6.scope_id() == 0 && crate::iface::is_link_local_v6(v6.ip().to_owned().into()) =>
        {
            v6.set_scope_id(scope);
            SocketAddr::V6(v6)
        }
        other => other,
    }
}

/// Whether a datagram from `from` is from the peer at `expected` (a scope id of 0 on the
/// expected side matches any).
fn is_peer(expected: SocketAddr, from: SocketAddr) -> bool {
    match (expected, from) {
        (SocketAddr::V6(e), SocketAddr::V6(f)) => {
            e.ip() == f.ip()
                && e.port() == f.port()
                && (e.scope_id() == 0 || e.scope_id() == f.scope_id())
        }
        (e, f) => e == f,
    }
}

/// The path check's state.
#[derive(Debug)]
struct PathWatch {
    grace: Duration,
    index: Option<u32>,
    local: std::net::IpAddr,
    /// What to call the path in messages.
    name: String,
    unusable_since: Option<Instant>,
    /// A send failed the way a lost path fails: check now.
    suspect: bool,
}

impl PathWatch {
    fn new(config: &DriverConfig, local: SocketAddr) -> PathWatch {
        let index = config.socket.interface.map(std::num::NonZeroU32::get);
        let name = index
            .and_then(|i| {
                nix::net::if_::if_nameindex()
                    .ok()?
                    .iter()
                    .find(|n| n.index() == i)
                    .map(|n| format!("interface {} (index {i})", n.name().to_string_lossy()))
            })
            .unwrap_or_else(|| format!("local address {}", local.ip()));
        PathWatch {
            grace: config.path_down_grace,
            index,
            local: local.ip(),
            name,
            unusable_since: None,
            suspect: false,
        }
    }

    /// Checks the path; `Err` when the session must end.
    fn check(&mut self, now: Instant) -> Result<(), DriverError> {
        self.suspect = false;
        // A listing that fails says nothing about the path.
        let Ok(list) = interfaces(&KindOverrides::new()) else {
            return Ok(());
        };
        let status = path_status(&list, self.index, self.local);
        let what = match status {
            PathStatus::Alive => {
                self.unusable_since = None;
                return Ok(());
            }
            PathStatus::InterfaceGone => {
                return Err(DriverError::PathLost(format!(
                    "{} no longer exists",
                    self.name
                )));
            }
            PathStatus::InterfaceDown => "has been down".to_owned(),
            PathStatus::AddressGone => format!("has been without address {}", self.local),
        };
        let since = *self.unusable_since.get_or_insert(now);
        let down_for = now - since;
        if down_for >= self.grace {
            return Err(DriverError::PathLost(format!(
                "{} {what} for {:.1} s",
                self.name,
                down_for.as_secs_f64()
            )));
        }
        Ok(())
    }
}

/// Whether a send error is what a vanished interface or address causes.
fn path_error(e: &io::Error) -> bool {
    // ENODEV, ENETDOWN, ENETUNREACH, EADDRNOTAVAIL, ENXIO (Linux and Apple share the
    // meaning; the numbers differ, so ask the kind where std has one).
    matches!(
        e.kind(),
        io::ErrorKind::NetworkDown
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    ) || e.raw_os_error().is_some_and(|c| {
        #[cfg(unix)]
        {
            c == nix::errno::Errno::ENODEV as i32 || c == nix::errno::Errno::ENXIO as i32
        }
        #[cfg(not(unix))]
        {
            let _ = c;
            false
        }
    })
}

/// The task: drives the endpoint until stopped or the path fails, then hands it back.
async fn run<E: Endpoint>(
    shared: Arc<Shared<E>>,
    timer: PreciseTimer,
    path_check: Option<Duration>,
) -> Result<E, DriverError> {
    let result = drive(&shared, &timer, path_check).await;
    // Taking the core ends every later call and closes the event channel.
    let core = shared.lock().take();
    result?;
    core.map(|c| c.endpoint)
        .ok_or_else(|| DriverError::Task("the endpoint is gone".into()))
}

async fn drive<E: Endpoint>(
    shared: &Shared<E>,
    timer: &PreciseTimer,
    path_check: Option<Duration>,
) -> Result<(), DriverError> {
    let mut path_tick = tokio::time::interval(path_check.unwrap_or(Duration::from_secs(3600)));
    path_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (deadline, blocked) = {
            let mut guard = shared.lock();
            let core = guard
                .as_mut()
                .ok_or(DriverError::Task("the endpoint is gone".into()))?;
            let now = Instant::now();
            shared.pump(core, now);
            if core.path.suspect {
                core.path.check(now)?;
            }
            (core.endpoint.poll_timeout(), !core.out.is_empty())
        };
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            ready = shared.socket.readable() => {
                ready?;
                if let Some(core) = shared.lock().as_mut() {
                    shared.receive(core)?;
                }
            }
            ready = shared.socket.writable(), if blocked => ready?,
            () = timer.wait(deadline) => {
                let now = Instant::now();
                // The timer may wake for a deadline the endpoint has since moved.
                if deadline.is_some_and(|d| now >= d)
                    && let Some(core) = shared.lock().as_mut()
                {
                    core.endpoint.handle_timeout(now);
                }
            }
            _ = path_tick.tick(), if path_check.is_some() => {
                if let Some(core) = shared.lock().as_mut() {
                    core.path.check(Instant::now())?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = DriverConfig::new("127.0.0.1:0".parse().expect("addr"), None);
        assert_eq!(c.event_capacity, 1024);
        assert_eq!(c.max_datagram, 2048);
        assert_eq!(c.path_check, Some(Duration::from_millis(250)));
        assert_eq!(c.path_down_grace, Duration::from_secs(3));
        assert_eq!(c.adopt_new_peer_after, Some(Duration::from_secs(1)));
        assert_eq!(c.socket, SocketConfig::default());
    }

    #[test]
    fn link_local_peers_match_with_or_without_scope() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(is_peer(a("[fe80::2]:5000"), a("[fe80::2%7]:5000")));
        assert!(is_peer(a("[fe80::2%7]:5000"), a("[fe80::2%7]:5000")));
        assert!(!is_peer(a("[fe80::2%7]:5000"), a("[fe80::2%8]:5000")));
        assert!(!is_peer(a("[fe80::2]:5000"), a("[fe80::2%7]:5001")));
        assert!(is_peer(a("10.0.0.2:5000"), a("10.0.0.2:5000")));
        assert!(!is_peer(a("10.0.0.2:5000"), a("10.0.0.3:5000")));
        assert_eq!(with_scope(a("[fe80::2]:9"), 4), a("[fe80::2%4]:9"));
        assert_eq!(with_scope(a("[fe80::2%3]:9"), 4), a("[fe80::2%3]:9"));
        assert_eq!(with_scope(a("[2001:db8::2]:9"), 4), a("[2001:db8::2]:9"));
        assert_eq!(with_scope(a("10.0.0.2:9"), 4), a("10.0.0.2:9"));
    }
}
