//! The driver's thread: the one owner of the endpoint and its paths.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use polling::{Event, Events, PollMode};
use tandem_proto::Endpoint;
use tokio::sync::mpsc;

use super::udp::{UdpPath, is_peer, path_error, with_scope};
use super::{Command, DriverError, Relisten, Shared, SharedStats};
use crate::batch::MAX_SEGMENTS;
use crate::iface::{Interface, KindOverrides, interfaces};
use crate::listen::{canonical_peer, listen_plan, missing_sockets};
use crate::path::PathPreference;
use crate::socket::open_udp;
use crate::transport::{AppTransport, TransportInbox};

/// Datagrams read per socket per wake-up before the loop turns to sending and events again.
/// A sender faster than this receiver would otherwise keep the loop reading forever: no
/// reports, no NACKs, no frames handed on (seen in `net-report` once sends were batched:
/// 680 ms RTT and evicted frames).
const RECEIVE_BUDGET: usize = 64;

/// Commands run per turn before the loop looks at the sockets again, so a caller that
/// floods commands cannot starve the receive side.
const COMMAND_BUDGET: usize = 64;

/// One of the paths the driver runs the session over.
pub(super) enum Path {
    Udp(UdpPath),
    Transport {
        transport: AppTransport,
        inbox: TransportInbox,
        /// What the transport says the peer is (or [`TRANSPORT_PEER`]).
        peer: SocketAddr,
    },
}

/// Where the peer is: which path, which address on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerAt {
    pub(super) path: usize,
    pub(super) addr: SocketAddr,
}

pub(super) struct Owner<E: Endpoint> {
    pub(super) endpoint: E,
    pub(super) shared: Arc<Shared>,
    pub(super) paths: Vec<Path>,
    /// The peer: configured, or learned from its datagrams.
    pub(super) peer: Option<PeerAt>,
    pub(super) heard_at: Option<Instant>,
    pub(super) adopt_after: Option<Duration>,
    /// Datagrams the endpoint released and no path has taken yet, laid end to end…
    pub(super) out: Vec<u8>,
    /// …with these lengths.
    pub(super) lens: VecDeque<usize>,
    pub(super) max_datagram: usize,
    /// The buffer the next datagram is received into; each datagram keeps its own.
    pub(super) rx_buf: BytesMut,
    pub(super) from_transports: VecDeque<Bytes>,
    pub(super) commands: Receiver<Command<E>>,
    pub(super) events: mpsc::Sender<E::Event>,
    pub(super) path_check: Option<Duration>,
    pub(super) next_path_check: Option<Instant>,
    /// A listener that opens the sockets its plan lacks at each path check.
    pub(super) relisten: Option<Relisten>,
    /// Sockets a re-plan could not open (said once each; tried again at every check).
    pub(super) relisten_refused: Vec<SocketAddr>,
    pub(super) path_down_grace: Duration,
}

impl<E: Endpoint> Owner<E> {
    /// Runs until stopped or a path fails; always stops the transports and takes the
    /// sockets out of the poller.
    pub(super) fn run(&mut self) -> Result<(), DriverError> {
        for (key, path) in self.paths.iter().enumerate() {
            match path {
                Path::Udp(u) => register(&self.shared, u, key)?,
                Path::Transport {
                    transport, inbox, ..
                } => transport.0.start(inbox.clone()),
            }
        }
        let result = self.turns();
        self.close();
        result
    }

    fn close(&mut self) {
        for path in &self.paths {
            match path {
                Path::Udp(u) => {
                    let _ = self.shared.poller.delete(&u.socket);
                }
                Path::Transport {
                    transport, inbox, ..
                } => {
                    inbox.close();
                    transport.0.stop();
                }
            }
        }
    }

    fn turns(&mut self) -> Result<(), DriverError> {
        let mut ready = Events::new();
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                self.endpoint.handle_timeout(now);
            }
            self.check_paths(now)?;
            self.run_commands()?;
            self.take_from_transports()?;
            self.flush(Instant::now())?;
            self.hand_on_events();
            self.shared
                .established
                .store(self.endpoint.is_established(), Ordering::Release);
            let deadline = [self.endpoint.poll_timeout(), self.next_path_check]
                .into_iter()
                .flatten()
                .min();
            self.want_writable()?;
            ready.clear();
            match deadline {
                Some(d) => self.shared.poller.wait_deadline(&mut ready, d)?,
                None => self.shared.poller.wait(&mut ready, None)?,
            };
            for event in ready.iter() {
                if event.writable
                    && let Some(Path::Udp(u)) = self.paths.get_mut(event.key)
                {
                    u.blocked = false;
                }
                if event.readable {
                    self.receive(event.key)?;
                }
            }
        }
    }

    /// Runs the commands waiting (each sends what it released before the next runs, so a
    /// frame leaves as soon as it is handed over).
    fn run_commands(&mut self) -> Result<(), DriverError> {
        for _ in 0..COMMAND_BUDGET {
            match self.commands.try_recv() {
                Ok(command) => {
                    let now = Instant::now();
                    let answer = command(&mut self.endpoint, now);
                    let flushed = self.flush(now);
                    answer();
                    flushed?;
                }
                Err(TryRecvError::Empty) => return Ok(()),
                // Every handle is gone: nobody can use the session any more.
                Err(TryRecvError::Disconnected) => {
                    self.shared.stop.store(true, Ordering::Relaxed);
                    return Ok(());
                }
            }
        }
        // More wait: come straight back after a look at the sockets.
        self.shared.poller.notify()?;
        Ok(())
    }

    fn hand_on_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            if self.events.try_send(event).is_err() {
                SharedStats::add(&self.shared.stats.events_dropped, 1);
            }
        }
    }

    /// Asks the poller to report writability for the paths waiting for buffer room.
    fn want_writable(&mut self) -> io::Result<()> {
        for (key, path) in self.paths.iter_mut().enumerate() {
            if let Path::Udp(u) = path
                && u.blocked != u.writable_interest
            {
                let interest = if u.blocked {
                    Event::all(key)
                } else {
                    Event::readable(key)
                };
                self.shared
                    .poller
                    .modify_with_mode(&u.socket, interest, PollMode::Level)?;
                u.writable_interest = u.blocked;
            }
        }
        Ok(())
    }

    /// Where the endpoint's datagrams go now.
    fn target(&self) -> Option<PeerAt> {
        if let Some(p) = self.peer {
            return Some(p);
        }
        // Nobody heard yet: a transport is a link to its peer already.
        self.paths.iter().enumerate().find_map(|(i, p)| match p {
            Path::Transport { peer, .. } => Some(PeerAt {
                path: i,
                addr: *peer,
            }),
            Path::Udp(_) => None,
        })
    }

    /// Sends everything the endpoint has released, in batches, until a socket's buffer is
    /// full (the rest waits in `out` until it is writable).
    pub(super) fn flush(&mut self, now: Instant) -> Result<(), DriverError> {
        loop {
            let blocked = self
                .target()
                .and_then(|t| match self.paths.get(t.path) {
                    Some(Path::Udp(u)) => Some(u.blocked),
                    _ => None,
                })
                .unwrap_or(false);
            if blocked {
                return Ok(());
            }
            while self.lens.len() < MAX_SEGMENTS {
                match self.endpoint.poll_transmit(now, &mut self.out) {
                    Some(n) => self.lens.push_back(n),
                    None => break,
                }
            }
            if self.lens.is_empty() {
                return Ok(());
            }
            let Some(to) = self.target() else {
                // Listening, and nobody has spoken yet: there is nowhere to send.
                SharedStats::add(&self.shared.stats.send_errors, self.lens.len() as u64);
                self.lens.clear();
                self.out.clear();
                continue;
            };
            let stats = &self.shared.stats;
            match &mut self.paths[to.path] {
                Path::Udp(u) => {
                    let lens = self.lens.make_contiguous();
                    let batched_before = u.batch.batched_sends;
                    let dest = u.destination(to.addr);
                    match u.batch.send(&u.socket, &self.out, lens, dest) {
                        Ok(n) => {
                            let bytes: usize = self.lens.drain(..n).sum();
                            self.out.drain(..bytes);
                            SharedStats::add(&stats.datagrams_out, n as u64);
                            SharedStats::add(&stats.bytes_out, bytes as u64);
                            SharedStats::add(
                                &stats.batched_sends,
                                u.batch.batched_sends - batched_before,
                            );
                        }
                        // The send buffer is full: wait for room rather than drop media.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            u.blocked = true;
                            return Ok(());
                        }
                        Err(e) => {
                            u.watch.suspect |= path_error(&e);
                            SharedStats::add(&stats.send_errors, 1);
                            if let Some(first) = self.lens.pop_front() {
                                self.out.drain(..first);
                            }
                        }
                    }
                }
                Path::Transport { transport, .. } => {
                    let mut at = 0;
                    let datagrams: Vec<&[u8]> = self
                        .lens
                        .iter()
                        .map(|&n| {
                            at += n;
                            &self.out[at - n..at]
                        })
                        .collect();
                    transport
                        .0
                        .send(&datagrams)
                        .map_err(|e| DriverError::Transport(e.reason))?;
                    SharedStats::add(&stats.datagrams_out, datagrams.len() as u64);
                    SharedStats::add(&stats.bytes_out, at as u64);
                    self.lens.clear();
                    self.out.clear();
                }
            }
        }
    }

    /// Reads what waits on path `key`'s socket (up to [`RECEIVE_BUDGET`] datagrams).
    fn receive(&mut self, key: usize) -> Result<(), DriverError> {
        for _ in 0..RECEIVE_BUDGET {
            let Some(Path::Udp(u)) = self.paths.get(key) else {
                return Ok(());
            };
            match u.socket.recv_from(&mut self.rx_buf) {
                Ok((n, from)) => {
                    let now = Instant::now();
                    if n > self.max_datagram {
                        SharedStats::add(&self.shared.stats.strays, 1);
                        continue;
                    }
                    // Each datagram keeps the buffer it arrived in, uniquely owned: a sealed
                    // session opens it in place and the receiver keeps slices of it, so the
                    // payload is not copied before reassembly.
                    let fresh = BytesMut::zeroed(self.max_datagram + 1);
                    let mut datagram = std::mem::replace(&mut self.rx_buf, fresh);
                    datagram.truncate(n);
                    self.deliver(now, key, canonical_peer(from), datagram.freeze());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // ICMP unreachable from an earlier send surfaces here on Linux: the peer is
                // not there (yet); keep listening.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // More may be waiting: the socket stays readable, so the loop comes straight back.
        Ok(())
    }

    /// What the transports delivered since the last turn; a transport's failure ends the
    /// session.
    fn take_from_transports(&mut self) -> Result<(), DriverError> {
        for key in 0..self.paths.len() {
            let Path::Transport { inbox, peer, .. } = &self.paths[key] else {
                continue;
            };
            let peer = *peer;
            let failure = inbox.drain(&mut self.from_transports);
            let dropped = inbox.dropped();
            self.shared
                .stats
                .transport_dropped
                .fetch_max(dropped, Ordering::Relaxed);
            while let Some(datagram) = self.from_transports.pop_front() {
                if datagram.len() > self.max_datagram {
                    SharedStats::add(&self.shared.stats.strays, 1);
                    continue;
                }
                self.deliver(Instant::now(), key, peer, datagram);
            }
            if let Some(reason) = failure {
                return Err(DriverError::Transport(reason));
            }
        }
        Ok(())
    }

    /// One datagram from `from` on path `key`, to the endpoint if it is the peer's.
    fn deliver(&mut self, now: Instant, key: usize, from: SocketAddr, datagram: Bytes) {
        let here = PeerAt {
            path: key,
            addr: from,
        };
        if self.endpoint.authenticates() {
            // An endpoint that authenticates judges every datagram itself, whatever its
            // source; the peer is wherever its authentic datagrams last came from. A
            // stranger's datagrams cost the endpoint a check and are counted as strays;
            // one cannot take over the session by sending first or sending more.
            self.endpoint.handle_datagram_from(now, from, datagram);
            if !self.endpoint.last_datagram_authentic() {
                SharedStats::add(&self.shared.stats.strays, 1);
                return;
            }
            match self.peer {
                Some(p) if p.path == key && is_peer(p.addr, from) => {}
                Some(p) => {
                    tracing::info!(old = %p.addr, new = %from, path = key, "driver: the authenticated peer moved");
                    self.set_peer(here);
                    SharedStats::add(&self.shared.stats.peer_changes, 1);
                }
                None => self.set_peer(here),
            }
            self.heard(now);
            SharedStats::add(&self.shared.stats.datagrams_in, 1);
            return;
        }
        let transport = matches!(self.paths[key], Path::Transport { .. });
        let expected = match self.peer {
            Some(p) => p,
            None => {
                self.set_peer(here);
                here
            }
        };
        let same = transport || (expected.path == key && is_peer(expected.addr, from));
        if !same {
            // Only a peer that was heard and then fell silent is replaced: a configured
            // peer that has not spoken yet keeps its place.
            let silent = self
                .adopt_after
                .is_some_and(|a| self.heard_at.is_some_and(|t| now - t >= a));
            if !silent {
                SharedStats::add(&self.shared.stats.strays, 1);
                return;
            }
            tracing::info!(old = %expected.addr, new = %from, "driver: following a new peer address");
            self.set_peer(here);
            SharedStats::add(&self.shared.stats.peer_changes, 1);
        }
        self.heard(now);
        SharedStats::add(&self.shared.stats.datagrams_in, 1);
        self.endpoint.handle_datagram(now, datagram);
    }

    fn heard(&mut self, now: Instant) {
        self.heard_at = Some(now);
        self.shared.set_heard(now);
    }

    pub(super) fn set_peer(&mut self, at: PeerAt) {
        let addr = match &self.paths[at.path] {
            Path::Udp(u) => with_scope(at.addr, u.scope()),
            Path::Transport { .. } => at.addr,
        };
        self.peer = Some(PeerAt {
            path: at.path,
            addr,
        });
        self.shared.set_peer(addr);
    }

    /// The periodic path check (and an early one after a send failed the way a lost path
    /// fails). A lost path is dropped; the session ends when the path the peer is on, or
    /// the last path, is lost.
    fn check_paths(&mut self, now: Instant) -> Result<(), DriverError> {
        let due = self.next_path_check.is_some_and(|t| now >= t);
        if due {
            self.next_path_check = self.path_check.map(|p| now + p);
        }
        let checking = due
            || self
                .paths
                .iter()
                .any(|p| matches!(p, Path::Udp(u) if u.watch.suspect));
        if !checking {
            return Ok(());
        }
        // One listing for the whole check; one that fails says nothing about the paths.
        let overrides = self.relisten.as_ref().map(|r| &r.overrides);
        let Ok(list) = interfaces(overrides.unwrap_or(&KindOverrides::new())) else {
            for path in &mut self.paths {
                if let Path::Udp(u) = path {
                    u.watch.suspect = false;
                }
            }
            return Ok(());
        };
        if due {
            self.relisten(&list)?;
        }
        let mut lost = None;
        for (key, path) in self.paths.iter_mut().enumerate() {
            if let Path::Udp(u) = path
                && (due || u.watch.suspect)
                && let Err(why) = u.watch.check(now, &list)
            {
                lost = Some((key, why));
                break;
            }
        }
        let Some((key, why)) = lost else {
            return Ok(());
        };
        let in_use = self.peer.is_none_or(|p| p.path == key);
        if self.paths.len() == 1 || in_use {
            return Err(DriverError::PathLost(why));
        }
        tracing::info!(%why, "driver: a path the session does not use is gone");
        if let Path::Udp(u) = self.paths.remove(key) {
            let _ = self.shared.poller.delete(&u.socket);
        }
        // Keys are indices: re-register the sockets after the removed one.
        for (k, path) in self.paths.iter_mut().enumerate().skip(key) {
            if let Path::Udp(u) = path {
                self.shared.poller.modify_with_mode(
                    &u.socket,
                    Event::readable(k),
                    PollMode::Level,
                )?;
                u.writable_interest = false;
            }
        }
        if let Some(p) = self.peer.as_mut()
            && p.path > key
        {
            p.path -= 1;
        }
        self.publish_locals();
        Ok(())
    }

    /// A listener's re-plan (see [`Relisten`]): opens the sockets its listen plan, made
    /// again for today's interfaces, lacks. A socket that cannot open yet (an address
    /// still tentative, a port another program holds there) is said once and tried again
    /// at the next check; it does not end the session.
    fn relisten(&mut self, list: &[Interface]) -> Result<(), DriverError> {
        let Some(relisten) = &self.relisten else {
            return Ok(());
        };
        let Some(port) = self.paths.iter().find_map(|p| match p {
            Path::Udp(u) => Some(u.local.port()),
            Path::Transport { .. } => None,
        }) else {
            return Ok(());
        };
        let Ok(plan) = listen_plan(
            relisten.platform,
            list,
            port,
            PathPreference::Automatic,
            &relisten.base,
        ) else {
            return Ok(());
        };
        let open: Vec<_> = self
            .paths
            .iter()
            .filter_map(|p| match p {
                Path::Udp(u) => Some((u.local, u.interface())),
                Path::Transport { .. } => None,
            })
            .collect();
        for wanted in missing_sockets(&plan, &open) {
            match open_udp(wanted.local, &wanted.socket) {
                Ok(opened) => {
                    let path = UdpPath::new(opened, &wanted.socket, self.path_down_grace);
                    register(&self.shared, &path, self.paths.len())?;
                    tracing::info!(local = %path.local, "driver: listening on a new interface");
                    self.relisten_refused.retain(|a| *a != wanted.local);
                    self.paths.push(Path::Udp(path));
                    self.publish_locals();
                }
                Err(e) => {
                    if !self.relisten_refused.contains(&wanted.local) {
                        tracing::warn!(local = %wanted.local, %e, "driver: cannot listen there yet");
                        self.relisten_refused.push(wanted.local);
                    }
                }
            }
        }
        Ok(())
    }

    /// Puts the UDP paths' local addresses in the snapshot.
    pub(super) fn publish_locals(&self) {
        let locals = self
            .paths
            .iter()
            .filter_map(|p| match p {
                Path::Udp(u) => Some(u.local),
                Path::Transport { .. } => None,
            })
            .collect();
        *self
            .shared
            .locals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = locals;
    }
}

/// Puts path `key`'s socket in the poller, for reading.
fn register(shared: &Shared, path: &UdpPath, key: usize) -> io::Result<()> {
    // SAFETY (the poller's contract): every socket is deleted from the poller before it
    // is dropped (`Owner::close`, and `Owner::check_paths` for a lost path).
    #[allow(unsafe_code)]
    unsafe {
        shared
            .poller
            .add_with_mode(&path.socket, Event::readable(key), PollMode::Level)
    }
}
