//! `tandem-relay`: a UDP relay that puts a `tandem-sim` link (profile or spec string)
//! between a real sender and receiver, in both directions, in real time.
//!
//! Clients send to the relay's listening socket; the relay forwards to the target from a
//! socket of its own, and the target's replies go back to the client (learned from the
//! first datagram). Each direction runs its own [`Link`]: loss, bursts, jitter, capacity,
//! reordering, duplication exactly as in virtual time, with delivery times scheduled on the
//! wall clock. The two directions share the stall schedule (one radio) and nothing else.
//!
//! Two links on one radio ([`spawn_dual`]): a session over two paths (infrastructure Wi-Fi
//! and the peer-to-peer AWDL link, see `tandem-sim`'s dual profiles) goes through two
//! relays that share one start instant and one stall seed, so their stall schedules are
//! the same windows: with `awdl-dual`, the second link is live exactly inside the first
//! link's stall windows. Each relay keeps its own counters.
//!
//! [`RelayCounters`] keep each link's counters and how late the relay itself was: the time
//! from a datagram's scheduled delivery to its actual send, which is what the relay adds
//! beyond the profile. [`Relay::stall_windows`] gives the stall schedule it applied, as
//! instants, so a report can tell frames captured near a stall from the others.
//!
//! Threads, not tokio: tokio's timer has millisecond granularity, which made the relay
//! 1.4 ms late at p99 (measured at 50 Mbit/s on `clean`). Here one thread per socket
//! receives and schedules, and one thread sends, sleeping on a condition variable until the
//! next delivery with the thread's timer slack lowered to 1 µs on Linux.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_sim::impair::{Link, LinkConfig, LinkCounters};

/// Relay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// Where clients send.
    pub listen: SocketAddr,
    /// Where the relay forwards to.
    pub target: SocketAddr,
    /// The impairments, applied to each direction.
    pub link: LinkConfig,
    /// Seed of every random stream.
    pub seed: u64,
    /// How far ahead of a delivery the delivery thread stops sleeping and spins; zero never
    /// spins. Default [`DEFAULT_SPIN_WINDOW`].
    pub spin_window: Duration,
}

impl RelayConfig {
    /// Relays from `listen` to `target` through `link`, seed 1, with the default spin
    /// window.
    pub fn new(listen: SocketAddr, target: SocketAddr, link: LinkConfig) -> RelayConfig {
        RelayConfig {
            listen,
            target,
            link,
            seed: 1,
            spin_window: DEFAULT_SPIN_WINDOW,
        }
    }
}

/// One direction's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    /// The link's own counters (in, delivered, each kind of drop, bytes).
    pub link: LinkCounters,
    /// Datagrams actually sent on.
    pub forwarded: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
}

/// What the relay has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayCounters {
    /// Client → target.
    pub upstream: DirectionCounters,
    /// Target → client.
    pub downstream: DirectionCounters,
    /// Datagrams on the listening socket from an address other than the client's.
    pub strays: u64,
    /// Lateness of each forwarded datagram past its scheduled delivery, µs (the last
    /// 100 000).
    pub lateness_us: VecDeque<u32>,
}

const LATENESS_SAMPLES: usize = 100_000;

/// The default [`RelayConfig::spin_window`]. A timed wait wakes 45 µs late at the median
/// and 115 µs at p99 on the 2-core machine `net-report` runs on, even with 1 µs timer
/// slack, which alone would break the relay's 100 µs budget; the relay is a measuring
/// instrument, so by default it spends the CPU (at 50 Mbit/s about a quarter of a core) to
/// be on time. A run that needs the CPU more than the precision sets zero.
pub const DEFAULT_SPIN_WINDOW: Duration = Duration::from_micros(120);

/// Socket buffer requested for both relay sockets, bytes.
const RELAY_BUFFER: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    Up,
    Down,
}

/// A running relay. Dropping it stops the relay and joins its threads.
#[derive(Debug)]
pub struct Relay {
    local: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct State {
    up: Link,
    down: Link,
    queue: BinaryHeap<Reverse<Pending>>,
    client: Option<SocketAddr>,
    seq: u64,
    counters: RelayCounters,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    start: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Relay {
    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> RelayCounters {
        self.shared.lock().counters.clone()
    }

    /// The stall windows the relay has applied so far, as `(start, end)` instants: every
    /// window of the link's stall schedule that began between the relay's start and now (one
    /// in progress with its scheduled end), ascending. Both directions share the schedule
    /// (one radio), so this is each direction's. Empty for a link without stalls.
    ///
    /// A report that measures frames through the relay maps these onto its own clock to
    /// tell frames captured near a stall from the others, as the simulator does.
    pub fn stall_windows(&self) -> Vec<(Instant, Instant)> {
        let start = self.shared.start;
        let windows = self
            .shared
            .lock()
            .up
            .stall_windows(Duration::ZERO, start.elapsed());
        windows
            .into_iter()
            .map(|(s, e)| (start + s, start + e))
            .collect()
    }

    /// Whether a relay thread has stopped (only on a socket error).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }
}

/// How long a blocking receive waits before checking whether the relay is stopping.
const POLL_STOP: Duration = Duration::from_millis(100);

fn bound(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    // Bursts (a keyframe, a stall's release) must queue in the kernel, not be dropped there:
    // the link model decides what is lost. A smaller grant is accepted.
    let r = socket2::SockRef::from(&s);
    let _ = r.set_recv_buffer_size(RELAY_BUFFER);
    let _ = r.set_send_buffer_size(RELAY_BUFFER);
    s.set_read_timeout(Some(POLL_STOP))?;
    Ok(s)
}

/// Binds the sockets and starts relaying.
pub fn start(config: RelayConfig) -> io::Result<Relay> {
    start_at(&config, Instant::now(), config.seed, config.seed)
}

/// Mixed into the second link's seed by [`spawn_dual`], so its random losses and jitter
/// differ from the first link's even when both configs carry the same seed.
pub const SECOND_LINK_SALT: u64 = 0xa5d1_2b0f_0000_0002;

/// Starts two relays that apply one radio's stall schedule to two links (the two paths of
/// one session, as `tandem_sim::profile::dual_profile` pairs them): both count time from
/// one start instant and key their stall schedules by one seed, `first.seed`, so their
/// windows coincide ([`Relay::stall_windows`] is the same on both) — with `awdl-dual`, the
/// second link's peer-to-peer windows are exactly the first link's stall windows. Their
/// other random streams differ: the first link's come from `first.seed` as in [`start`],
/// the second's from `second.seed ^` [`SECOND_LINK_SALT`].
pub fn spawn_dual(first: RelayConfig, second: RelayConfig) -> io::Result<(Relay, Relay)> {
    let start = Instant::now();
    let stall_seed = first.seed;
    let one = start_at(&first, start, first.seed, stall_seed)?;
    let two = start_at(&second, start, second.seed ^ SECOND_LINK_SALT, stall_seed)?;
    Ok((one, two))
}

/// [`start`] with the time origin, the seed of the link's random streams and the seed of
/// its stall schedule given.
fn start_at(config: &RelayConfig, start: Instant, seed: u64, stall_seed: u64) -> io::Result<Relay> {
    let front = Arc::new(bound(config.listen)?);
    let back_addr: SocketAddr = if config.target.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let back = Arc::new(bound(back_addr)?);
    let local = front.local_addr()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            up: Link::with_stall_seed(&config.link, seed, stall_seed),
            down: Link::with_stall_seed(&config.link, seed ^ 0x5eed_d0e5, stall_seed),
            queue: BinaryHeap::new(),
            client: None,
            seq: 0,
            counters: RelayCounters::default(),
        }),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
        start,
    });
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.into()).spawn(f)
    };
    let threads = vec![
        spawn("relay-up", {
            let (shared, front, back) =
                (Arc::clone(&shared), Arc::clone(&front), Arc::clone(&back));
            let target = config.target;
            Box::new(move || receive(&shared, &front, &back, Direction::Up, target))
        })?,
        spawn("relay-down", {
            let (shared, front, back) =
                (Arc::clone(&shared), Arc::clone(&front), Arc::clone(&back));
            let target = config.target;
            Box::new(move || receive(&shared, &front, &back, Direction::Down, target))
        })?,
        spawn("relay-send", {
            let shared = Arc::clone(&shared);
            let target = config.target;
            let spin = config.spin_window;
            Box::new(move || deliver(&shared, &front, &back, target, spin))
        })?,
    ];
    Ok(Relay {
        local,
        shared,
        threads,
    })
}

/// Receives on the direction's socket and schedules each datagram through its direction's
/// link. Only the target is accepted downstream; upstream, the first sender is the client.
///
/// A datagram the link delivers at once, with nothing queued ahead of it, is sent from
/// here: handing it to the delivery thread would cost a thread wake-up (tens of
/// microseconds, more on a busy machine) for nothing.
fn receive(
    shared: &Shared,
    front: &UdpSocket,
    back: &UdpSocket,
    direction: Direction,
    target: SocketAddr,
) {
    let socket = match direction {
        Direction::Up => front,
        Direction::Down => back,
    };
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::Relaxed) {
        let (n, sender) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let now = Instant::now();
        let data = Bytes::copy_from_slice(&buf[..n]);
        let mut st = shared.lock();
        let expected = match direction {
            Direction::Up => *st.client.get_or_insert(sender),
            Direction::Down => target,
        };
        if sender != expected {
            st.counters.strays += 1;
            continue;
        }
        let State {
            up,
            down,
            queue,
            seq,
            counters,
            ..
        } = &mut *st;
        let link = match direction {
            Direction::Up => up,
            Direction::Down => down,
        };
        let mut immediate = Vec::new();
        for at in link.send(now - shared.start, n) {
            let due = shared.start + at;
            *seq += 1;
            let p = Pending {
                due,
                seq: *seq,
                direction,
                data: data.clone(),
            };
            if due <= now && queue.is_empty() {
                immediate.push(p);
            } else {
                queue.push(Reverse(p));
            }
        }
        match direction {
            Direction::Up => counters.upstream.link = link.counters(),
            Direction::Down => counters.downstream.link = link.counters(),
        }
        let queued = !queue.is_empty();
        for p in immediate {
            forward(&mut st, p, front, back, target);
        }
        drop(st);
        if queued {
            shared.wake.notify_one();
        }
    }
}

/// Sends one datagram on and counts it (with its lateness).
fn forward(st: &mut State, p: Pending, front: &UdpSocket, back: &UdpSocket, target: SocketAddr) {
    let sent = match p.direction {
        Direction::Up => back.send_to(&p.data, target),
        Direction::Down => match st.client {
            Some(c) => front.send_to(&p.data, c),
            None => Err(io::Error::other("no client yet")),
        },
    };
    let late = Instant::now().saturating_duration_since(p.due);
    let c = &mut st.counters;
    let d = match p.direction {
        Direction::Up => &mut c.upstream,
        Direction::Down => &mut c.downstream,
    };
    if sent.is_ok() {
        d.forwarded += 1;
    } else {
        d.send_errors += 1;
    }
    if c.lateness_us.len() >= LATENESS_SAMPLES {
        c.lateness_us.pop_front();
    }
    c.lateness_us
        .push_back(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
}

/// Sends each queued datagram at its delivery time.
fn deliver(
    shared: &Shared,
    front: &UdpSocket,
    back: &UdpSocket,
    target: SocketAddr,
    spin: Duration,
) {
    // The default 50 µs slack would make every wake-up up to 50 µs late.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let mut st = shared.lock();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match st.queue.peek().map(|Reverse(p)| p.due) {
            Some(due) if due <= now => {
                let Some(Reverse(p)) = st.queue.pop() else {
                    continue;
                };
                forward(&mut st, p, front, back, target);
            }
            Some(due) if due - now <= spin => {
                // Too close for a sleep to wake on time: spin without the lock (receivers
                // keep queueing), then deliver.
                drop(st);
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
                st = shared.lock();
            }
            next => {
                let wait = next.map_or(POLL_STOP, |d| d - now - spin);
                st = shared
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    due: Instant,
    seq: u64,
    direction: Direction,
    data: Bytes,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}
