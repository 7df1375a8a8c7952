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
use tandem_proto::multipath::MAX_PATHS;
use tandem_proto::{Endpoint, PathId, PathSet};
use tokio::sync::mpsc;

use super::split::Split;
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

/// Which session path a socket's (or transport's) datagrams belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// All of them to this one.
    Path(PathId),
    /// Each to the one its source's interface says (see [`Split`]).
    Split,
}

impl Role {
    /// Whether datagrams of session path `pid` may come and go through it.
    fn serves(self, pid: PathId) -> bool {
        match self {
            Role::Path(p) => p == pid,
            Role::Split => true,
        }
    }
}

/// One of the paths the driver runs the session over.
pub(super) enum Path {
    Udp(UdpPath),
    Transport {
        transport: AppTransport,
        inbox: TransportInbox,
        /// What the transport says the peer is (or [`TRANSPORT_PEER`]).
        peer: SocketAddr,
        /// The session path it carries.
        role: PathId,
    },
}

impl Path {
    fn role(&self) -> Role {
        match self {
            Path::Udp(u) => u.role,
            Path::Transport { role, .. } => Role::Path(*role),
        }
    }
}

/// Where a session path's peer is: which of the driver's paths, which address on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerAt {
    pub(super) path: usize,
    pub(super) addr: SocketAddr,
}

/// Where one datagram goes: up to one destination per session path, the first the one
/// that waits when its socket is full; the second gets a copy, best effort.
type Targets = [Option<(PathId, PeerAt)>; MAX_PATHS];

/// How one send on one path went.
enum Sent {
    /// The path took this many datagrams (from the front).
    Took(usize),
    /// The socket's buffer is full: nothing taken.
    Blocked,
    /// The kernel refused the first datagram (counted).
    Refused,
    /// The transport failed, for this reason.
    Failed(String),
}

pub(super) struct Owner<E: Endpoint> {
    pub(super) endpoint: E,
    pub(super) shared: Arc<Shared>,
    pub(super) paths: Vec<Path>,
    /// The peer on each session path: configured, or learned from its datagrams.
    pub(super) peers: [Option<PeerAt>; MAX_PATHS],
    /// When each session path's peer last spoke.
    pub(super) heard_at: [Option<Instant>; MAX_PATHS],
    /// The session paths the endpoint has been told are open (path 0 from the start;
    /// path 1 once it is usable, see `spawn_driver`).
    pub(super) open: [bool; MAX_PATHS],
    /// A session over two paths (a second path or a split by interface is configured):
    /// losing one path leaves the other.
    pub(super) two_paths: bool,
    /// A listener over two paths on shared sockets.
    pub(super) split: Option<Split>,
    pub(super) adopt_after: Option<Duration>,
    /// Datagrams the endpoint released and no path has taken yet, laid end to end…
    pub(super) out: Vec<u8>,
    /// …with these lengths…
    pub(super) lens: VecDeque<usize>,
    /// …for these session paths.
    pub(super) sets: VecDeque<PathSet>,
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
        // A second path usable from the start (its peer configured, or a transport).
        if self.open[PathId::SECOND.index()] {
            self.endpoint
                .set_path_open(Instant::now(), PathId::SECOND, true);
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

    /// Where session path `pid`'s datagrams go now: its peer, or before one is heard, a
    /// transport that carries it (a transport is a link to its peer already).
    fn target(&self, pid: PathId) -> Option<PeerAt> {
        if let Some(p) = self.peers[pid.index()] {
            return Some(p);
        }
        self.paths.iter().enumerate().find_map(|(i, p)| match p {
            Path::Transport { peer, role, .. } if *role == pid => Some(PeerAt {
                path: i,
                addr: *peer,
            }),
            _ => None,
        })
    }

    /// Where a datagram for `set` goes: each of its session paths that has a destination;
    /// if none has, path 0's (or, with path 0 gone, path 1's).
    fn targets(&self, set: PathSet) -> Targets {
        let mut out: Targets = [None; MAX_PATHS];
        let mut n = 0;
        for pid in set.iter() {
            if let Some(t) = self.target(pid)
                && !out[..n].iter().flatten().any(|(_, o)| *o == t)
            {
                out[n] = Some((pid, t));
                n += 1;
            }
        }
        if n == 0 {
            out[0] = PathId::all().find_map(|p| self.target(p).map(|t| (p, t)));
        }
        out
    }

    /// Whether the socket at `key` is waiting for buffer room.
    fn blocked(&self, key: usize) -> bool {
        matches!(self.paths.get(key), Some(Path::Udp(u)) if u.blocked)
    }

    /// Whether nothing should be taken from the endpoint now: the socket the next datagram
    /// goes to is full (or, with none waiting, every socket a datagram could go to is).
    fn held_back(&self) -> bool {
        if let Some(&set) = self.sets.front() {
            return self.targets(set)[0].is_some_and(|(_, t)| self.blocked(t.path));
        }
        let mut any = false;
        for pid in PathId::all() {
            if let Some(t) = self.target(pid) {
                if !self.blocked(t.path) {
                    return false;
                }
                any = true;
            }
        }
        any
    }

    /// Sends everything the endpoint has released, in batches, until a socket's buffer is
    /// full (the rest waits in `out` until it is writable). A datagram goes on each session
    /// path its transmit names that has a destination (see [`Owner::targets`]); consecutive
    /// datagrams for the same destinations go out together (UDP GSO). The first
    /// destination is waited for when full; a copy for a second one that does not fit is
    /// dropped and counted.
    pub(super) fn flush(&mut self, now: Instant) -> Result<(), DriverError> {
        loop {
            if self.held_back() {
                return Ok(());
            }
            while self.lens.len() < MAX_SEGMENTS {
                match self.endpoint.poll_transmit_on(now, &mut self.out) {
                    Some(t) => {
                        self.lens.push_back(t.len);
                        self.sets.push_back(t.paths);
                    }
                    None => break,
                }
            }
            let Some(&head) = self.sets.front() else {
                return Ok(());
            };
            let targets = self.targets(head);
            let Some((pid, to)) = targets[0] else {
                // Listening, and nobody has spoken yet: there is nowhere to send.
                SharedStats::add(&self.shared.stats.send_errors, self.lens.len() as u64);
                self.lens.clear();
                self.sets.clear();
                self.out.clear();
                continue;
            };
            // The datagrams that go where the first goes.
            let run = self
                .sets
                .iter()
                .take_while(|&&s| s == head || self.targets(s) == targets)
                .count();
            let lens = &self.lens.make_contiguous()[..run];
            let taken = match send(
                &mut self.paths[to.path],
                &self.out,
                lens,
                to.addr,
                &self.shared,
            ) {
                Sent::Took(n) => {
                    count_out(&self.shared, pid, &lens[..n]);
                    n
                }
                // The send buffer is full: wait for room rather than drop media.
                Sent::Blocked => return Ok(()),
                Sent::Refused => 1,
                Sent::Failed(reason) => {
                    self.lose(now, to.path, DriverError::Transport(reason))?;
                    continue;
                }
            };
            let mut copy_failed = None;
            if let Some((pid, to)) = targets[1] {
                let (mut done, mut at) = (0, 0);
                while done < taken {
                    let lens = &self.lens.make_contiguous()[done..taken];
                    match send(
                        &mut self.paths[to.path],
                        &self.out[at..],
                        lens,
                        to.addr,
                        &self.shared,
                    ) {
                        Sent::Took(n) => {
                            count_out(&self.shared, pid, &lens[..n]);
                            at += lens[..n].iter().sum::<usize>();
                            done += n;
                        }
                        Sent::Refused => {
                            at += lens[0];
                            done += 1;
                        }
                        Sent::Blocked => {
                            SharedStats::add(&self.shared.stats.send_errors, (taken - done) as u64);
                            break;
                        }
                        Sent::Failed(reason) => {
                            copy_failed = Some(reason);
                            break;
                        }
                    }
                }
            }
            let bytes: usize = self.lens.drain(..taken).sum();
            self.sets.drain(..taken);
            self.out.drain(..bytes);
            if let (Some(reason), Some((_, to))) = (copy_failed, targets[1]) {
                self.lose(now, to.path, DriverError::Transport(reason))?;
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

    /// What the transports delivered since the last turn. A transport's failure ends the
    /// session, unless it spans two paths and the other lives on (see [`Owner::lose`]).
    fn take_from_transports(&mut self) -> Result<(), DriverError> {
        let mut key = 0;
        while key < self.paths.len() {
            let Path::Transport { inbox, peer, .. } = &self.paths[key] else {
                key += 1;
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
            match failure {
                // The paths after it move down one: look at the same key again.
                Some(reason) => self.lose(Instant::now(), key, DriverError::Transport(reason))?,
                None => key += 1,
            }
        }
        Ok(())
    }

    /// The session path a datagram from `from` on path `key` belongs to.
    fn path_of(&self, key: usize, from: SocketAddr) -> PathId {
        match self.paths[key].role() {
            Role::Path(p) => p,
            Role::Split => self
                .split
                .as_ref()
                .map_or(PathId::FIRST, |s| s.path_of(from)),
        }
    }

    /// One datagram from `from` on path `key`, to the endpoint if it is the peer's.
    fn deliver(&mut self, now: Instant, key: usize, from: SocketAddr, datagram: Bytes) {
        let pid = self.path_of(key, from);
        let here = PeerAt {
            path: key,
            addr: from,
        };
        if self.endpoint.authenticates() {
            // An endpoint that authenticates judges every datagram itself, whatever its
            // source; each session path's peer is wherever its authentic datagrams last
            // came from. A stranger's datagrams cost the endpoint a check and are counted
            // as strays; one cannot take over the session, or open a path, by sending
            // first or sending more.
            if pid == PathId::FIRST {
                self.endpoint.handle_datagram_from(now, from, datagram);
            } else {
                // The endpoint cannot be told both the path and the source; the path is
                // what it needs (the source only names a stranger in a report).
                self.endpoint.handle_datagram_on(now, pid, datagram);
            }
            if !self.endpoint.last_datagram_authentic() {
                SharedStats::add(&self.shared.stats.strays, 1);
                return;
            }
            match self.peers[pid.index()] {
                Some(p) if p.path == key && is_peer(p.addr, from) => {}
                Some(p) => {
                    tracing::info!(old = %p.addr, new = %from, path = key, session_path = %pid, "driver: the authenticated peer moved");
                    self.set_peer(pid, here);
                    SharedStats::add(&self.shared.stats.peer_changes, 1);
                }
                None => self.set_peer(pid, here),
            }
            // Opened only now that the datagram proved authentic (the endpoint took it as
            // arriving on the path, which it tolerates for a path not yet open).
            self.open_path(now, pid);
            self.heard(now, pid);
            return;
        }
        let transport = matches!(self.paths[key], Path::Transport { .. });
        let expected = match self.peers[pid.index()] {
            Some(p) => p,
            None => {
                self.set_peer(pid, here);
                here
            }
        };
        let same = transport || (expected.path == key && is_peer(expected.addr, from));
        if !same {
            // Only a peer that was heard and then fell silent is replaced: a configured
            // peer that has not spoken yet keeps its place.
            let silent = self
                .adopt_after
                .is_some_and(|a| self.heard_at[pid.index()].is_some_and(|t| now - t >= a));
            if !silent {
                SharedStats::add(&self.shared.stats.strays, 1);
                return;
            }
            tracing::info!(old = %expected.addr, new = %from, session_path = %pid, "driver: following a new peer address");
            self.set_peer(pid, here);
            SharedStats::add(&self.shared.stats.peer_changes, 1);
        }
        self.open_path(now, pid);
        self.heard(now, pid);
        self.endpoint.handle_datagram_on(now, pid, datagram);
    }

    /// Tells the endpoint session path `pid` is usable, if it was not.
    fn open_path(&mut self, now: Instant, pid: PathId) {
        if !self.open[pid.index()] {
            self.open[pid.index()] = true;
            tracing::info!(session_path = %pid, peer = ?self.peers[pid.index()].map(|p| p.addr), "driver: the session's path is open");
            self.endpoint.set_path_open(now, pid, true);
        }
    }

    /// The peer spoke on session path `pid` (a datagram it sent reaches the endpoint).
    fn heard(&mut self, now: Instant, pid: PathId) {
        self.heard_at[pid.index()] = Some(now);
        self.shared.set_heard(now);
        let stats = &self.shared.stats;
        SharedStats::add(&stats.datagrams_in, 1);
        SharedStats::add(&stats.paths[pid.index()].datagrams_in, 1);
    }

    pub(super) fn set_peer(&mut self, pid: PathId, at: PeerAt) {
        let addr = match &self.paths[at.path] {
            Path::Udp(u) => with_scope(at.addr, u.scope()),
            Path::Transport { .. } => at.addr,
        };
        self.peers[pid.index()] = Some(PeerAt {
            path: at.path,
            addr,
        });
        self.shared.set_peer(pid, Some(addr));
    }

    /// The periodic path check (and an early one after a send failed the way a lost path
    /// fails). A lost path is dropped; see [`Owner::lose`] for when the session ends.
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
        let overrides = self
            .split
            .as_ref()
            .map(|s| &s.overrides)
            .or(self.relisten.as_ref().map(|r| &r.overrides));
        let Ok(list) = interfaces(overrides.unwrap_or(&KindOverrides::new())) else {
            for path in &mut self.paths {
                if let Path::Udp(u) = path {
                    u.watch.suspect = false;
                }
            }
            return Ok(());
        };
        if due {
            if let Some(split) = &mut self.split {
                split.update(&list);
            }
            self.check_split_peers(now, &list)?;
            let own = match (&self.split, &self.relisten) {
                (Some(s), Some(r)) if s.overrides != r.overrides => interfaces(&r.overrides).ok(),
                _ => None,
            };
            self.relisten(own.as_deref().unwrap_or(&list))?;
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
        match lost {
            Some((key, why)) => self.lose(now, key, DriverError::PathLost(why)),
            None => Ok(()),
        }
    }

    /// Path `key` (a socket or a transport) is gone, for `error`'s reason. Returns `error`
    /// when that ends the session:
    ///
    /// - one session path (no second path, no split): when it was the last path, the
    ///   path the peer is on (or no peer is known yet), or a transport — as always;
    /// - two session paths: when it was the last path, when no open session path has a
    ///   path left to carry it, or when it carried every destination the session had.
    ///   Otherwise a session path whose peer was on it is closed (the endpoint is told,
    ///   [`crate::DriverStats::paths_lost`] counts it) and the session continues on the
    ///   other.
    fn lose(&mut self, now: Instant, key: usize, error: DriverError) -> Result<(), DriverError> {
        if !self.two_paths {
            let in_use = self.peers[0].is_none_or(|p| p.path == key);
            let transport = matches!(self.paths[key], Path::Transport { .. });
            if self.paths.len() == 1 || in_use || transport {
                return Err(error);
            }
            tracing::info!(%error, "driver: a path the session does not use is gone");
            return self.remove_path(key);
        }
        // The session paths whose destination was there.
        let cut: [bool; MAX_PATHS] =
            std::array::from_fn(|i| self.target(path_id(i)).is_some_and(|t| t.path == key));
        self.remove_path(key)?;
        self.cut_session_paths(now, cut, error)
    }

    /// The session paths marked in `cut` lost their destination (see [`Owner::lose`]): their
    /// peers are forgotten and they are closed, along with any open session path no path
    /// serves any more; `error` when that leaves the session nothing.
    fn cut_session_paths(
        &mut self,
        now: Instant,
        cut: [bool; MAX_PATHS],
        error: DriverError,
    ) -> Result<(), DriverError> {
        for (i, c) in cut.iter().enumerate() {
            if *c {
                self.peers[i] = None;
                self.shared.set_peer(path_id(i), None);
            }
        }
        let serves = |owner: &Self, p: PathId| owner.paths.iter().any(|x| x.role().serves(p));
        let closing: [bool; MAX_PATHS] =
            std::array::from_fn(|i| self.open[i] && (cut[i] || !serves(self, path_id(i))));
        let reachable =
            PathId::all().any(|p| self.open[p.index()] && !closing[p.index()] && serves(self, p));
        let anywhere = PathId::all().any(|p| self.target(p).is_some());
        if self.paths.is_empty() || !reachable || (cut.contains(&true) && !anywhere) {
            return Err(error);
        }
        for p in PathId::all().filter(|p| closing[p.index()]) {
            self.open[p.index()] = false;
            self.heard_at[p.index()] = None;
            self.endpoint.set_path_open(now, p, false);
            SharedStats::add(&self.shared.stats.paths_lost, 1);
            tracing::warn!(session_path = %p, %error, "driver: one of the session's paths is lost; the session continues on the other");
        }
        if !cut.contains(&true) {
            tracing::info!(%error, "driver: a path the session does not use is gone");
        }
        Ok(())
    }

    /// A listener split by interface keeps its sockets when an interface goes (they are
    /// wildcards): a session path whose peer is an IPv6 link-local address on an interface
    /// that no longer exists is lost all the same.
    fn check_split_peers(&mut self, now: Instant, list: &[Interface]) -> Result<(), DriverError> {
        if self.split.is_none() {
            return Ok(());
        }
        let mut gone = None;
        let cut: [bool; MAX_PATHS] = std::array::from_fn(|i| match self.peers[i] {
            Some(PeerAt {
                addr: SocketAddr::V6(v6),
                ..
            }) if v6.scope_id() != 0
                && crate::iface::is_link_local_v6((*v6.ip()).into())
                && !list.iter().any(|x| x.index == v6.scope_id()) =>
            {
                gone = Some(v6);
                true
            }
            _ => false,
        });
        match gone {
            Some(v6) => self.cut_session_paths(
                now,
                cut,
                DriverError::PathLost(format!(
                    "the interface (index {}) of the peer's address {v6} no longer exists",
                    v6.scope_id()
                )),
            ),
            None => Ok(()),
        }
    }

    /// Drops path `key`: out of the poller (a transport is stopped), the keys after it
    /// moved down one.
    fn remove_path(&mut self, key: usize) -> Result<(), DriverError> {
        match self.paths.remove(key) {
            Path::Udp(u) => {
                let _ = self.shared.poller.delete(&u.socket);
                let mut second = self
                    .shared
                    .second_local
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if u.role == Role::Path(PathId::SECOND) && *second == Some(u.local) {
                    *second = None;
                }
            }
            Path::Transport {
                transport, inbox, ..
            } => {
                inbox.close();
                transport.0.stop();
            }
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
        for p in self.peers.iter_mut().flatten() {
            if p.path > key {
                p.path -= 1;
            }
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
            Path::Udp(u) if u.role != Role::Path(PathId::SECOND) => Some(u.local.port()),
            _ => None,
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
        let role = if self.split.is_some() {
            Role::Split
        } else {
            Role::Path(PathId::FIRST)
        };
        for wanted in missing_sockets(&plan, &open) {
            match open_udp(wanted.local, &wanted.socket) {
                Ok(opened) => {
                    let path = UdpPath::new(opened, &wanted.socket, self.path_down_grace, role);
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

/// Counts the datagrams of `lens`, sent on session path `pid`.
fn count_out(shared: &Shared, pid: PathId, lens: &[usize]) {
    let stats = &shared.stats;
    let bytes = lens.iter().sum::<usize>() as u64;
    let n = lens.len() as u64;
    SharedStats::add(&stats.datagrams_out, n);
    SharedStats::add(&stats.bytes_out, bytes);
    let path = &stats.paths[pid.index()];
    SharedStats::add(&path.datagrams_out, n);
    SharedStats::add(&path.bytes_out, bytes);
}

/// Session path `i` (below [`MAX_PATHS`]).
fn path_id(i: usize) -> PathId {
    PathId::new(i).unwrap_or(PathId::FIRST)
}

/// Sends a prefix of the datagrams laid end to end in `out` (lengths `lens`) on `path` to
/// `to`.
fn send(path: &mut Path, out: &[u8], lens: &[usize], to: SocketAddr, shared: &Shared) -> Sent {
    let stats = &shared.stats;
    match path {
        Path::Udp(u) => {
            let batched_before = u.batch.batched_sends;
            let dest = u.destination(to);
            match u.batch.send(&u.socket, out, lens, dest) {
                Ok(n) => {
                    SharedStats::add(&stats.batched_sends, u.batch.batched_sends - batched_before);
                    Sent::Took(n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    u.blocked = true;
                    Sent::Blocked
                }
                Err(e) => {
                    u.watch.suspect |= path_error(&e);
                    SharedStats::add(&stats.send_errors, 1);
                    Sent::Refused
                }
            }
        }
        Path::Transport { transport, .. } => {
            let mut at = 0;
            let datagrams: Vec<&[u8]> = lens
                .iter()
                .map(|&n| {
                    at += n;
                    &out[at - n..at]
                })
                .collect();
            match transport.0.send(&datagrams) {
                Ok(()) => Sent::Took(datagrams.len()),
                Err(e) => Sent::Failed(e.reason),
            }
        }
    }
}

/// Puts path `key`'s socket in the poller, for reading.
pub(super) fn register(shared: &Shared, path: &UdpPath, key: usize) -> io::Result<()> {
    // SAFETY (the poller's contract): every socket is deleted from the poller before it
    // is dropped (`Owner::close`, and `Owner::remove_path` for a lost path).
    #[allow(unsafe_code)]
    unsafe {
        shared
            .poller
            .add_with_mode(&path.socket, Event::readable(key), PollMode::Level)
    }
}
