//! `tandem-relay`: a UDP relay that puts a `tandem-sim` link (profile or spec string)
//! between a real sender and receiver, in both directions, in real time.
//!
//! Clients send to the relay's listening socket; the relay forwards to the target from a
//! socket of its own, and the target's replies go back to the client (learned from the
//! first datagram). Each direction runs its own [`Link`]: loss, bursts, jitter, capacity,
//! reordering, duplication exactly as in virtual time, with delivery times scheduled on the
//! wall clock. The two directions share the stall schedule (one radio) and nothing else.
//!
//! [`RelayCounters`] keep each link's counters and how late the relay itself was: the time
//! from a datagram's scheduled delivery to its actual send, which is what the relay adds
//! beyond the profile.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tandem_sim::impair::{Link, LinkConfig, LinkCounters};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

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

/// Socket buffer requested for both relay sockets, bytes.
const RELAY_BUFFER: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    Up,
    Down,
}

/// A running relay. Dropping it stops the relay.
#[derive(Debug)]
pub struct Relay {
    local: SocketAddr,
    counters: Arc<Mutex<RelayCounters>>,
    task: JoinHandle<io::Result<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> RelayCounters {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the relay task has stopped (only on a socket error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Binds the sockets and starts relaying on the current tokio runtime.
pub async fn start(config: RelayConfig) -> io::Result<Relay> {
    let front = UdpSocket::bind(config.listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", config.listen)))?;
    let back_addr: SocketAddr = if config.target.is_ipv6() {
        "[::]:0".parse().map_err(io::Error::other)?
    } else {
        "0.0.0.0:0".parse().map_err(io::Error::other)?
    };
    let back = UdpSocket::bind(back_addr).await?;
    // Bursts (a keyframe, a stall's release) must queue in the kernel, not be dropped there:
    // the link model decides what is lost. A smaller grant is accepted.
    for s in [&front, &back] {
        let r = socket2::SockRef::from(s);
        let _ = r.set_recv_buffer_size(RELAY_BUFFER);
        let _ = r.set_send_buffer_size(RELAY_BUFFER);
    }
    let local = front.local_addr()?;
    let counters = Arc::new(Mutex::new(RelayCounters::default()));
    let task = tokio::spawn(run(front, back, config, Arc::clone(&counters)));
    Ok(Relay {
        local,
        counters,
        task,
    })
}

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

async fn run(
    front: UdpSocket,
    back: UdpSocket,
    config: RelayConfig,
    counters: Arc<Mutex<RelayCounters>>,
) -> io::Result<()> {
    let start = Instant::now();
    let mut up = Link::with_stall_seed(&config.link, config.seed, config.seed);
    let mut down = Link::with_stall_seed(&config.link, config.seed ^ 0x5eed_d0e5, config.seed);
    let mut queue: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut client: Option<SocketAddr> = None;
    let mut seq = 0u64;
    let mut front_buf = vec![0u8; 65_536];
    let mut back_buf = vec![0u8; 65_536];
    loop {
        let next_due = queue.peek().map(|Reverse(p)| p.due);
        let sleep = async {
            match next_due {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = sleep => {
                let now = Instant::now();
                while let Some(Reverse(p)) = queue.peek() {
                    if p.due > now {
                        break;
                    }
                    let Some(Reverse(p)) = queue.pop() else { break };
                    let sent = match p.direction {
                        Direction::Up => back.try_send_to(&p.data, config.target),
                        Direction::Down => match client {
                            Some(c) => front.try_send_to(&p.data, c),
                            None => Err(io::Error::other("no client yet")),
                        },
                    };
                    let late = Instant::now().saturating_duration_since(p.due);
                    let mut c = counters.lock().unwrap_or_else(PoisonError::into_inner);
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
                    c.lateness_us.push_back(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
                }
            }
            r = front.recv_from(&mut front_buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                };
                if *client.get_or_insert(from) != from {
                    counters.lock().unwrap_or_else(PoisonError::into_inner).strays += 1;
                    continue;
                }
                seq = schedule(&mut up, Direction::Up, &front_buf[..n], start, seq, &mut queue);
                counters.lock().unwrap_or_else(PoisonError::into_inner).upstream.link = up.counters();
            }
            r = back.recv_from(&mut back_buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                };
                if from != config.target {
                    counters.lock().unwrap_or_else(PoisonError::into_inner).strays += 1;
                    continue;
                }
                seq = schedule(&mut down, Direction::Down, &back_buf[..n], start, seq, &mut queue);
                counters.lock().unwrap_or_else(PoisonError::into_inner).downstream.link = down.counters();
            }
        }
    }
}

/// Puts one datagram through `link` and queues each copy at its delivery time.
fn schedule(
    link: &mut Link,
    direction: Direction,
    data: &[u8],
    start: Instant,
    mut seq: u64,
    queue: &mut BinaryHeap<Reverse<Pending>>,
) -> u64 {
    let now = Instant::now();
    let data = Bytes::copy_from_slice(data);
    for at in link.send(now - start, data.len()) {
        seq += 1;
        queue.push(Reverse(Pending {
            due: start + at,
            seq,
            direction,
            data: data.clone(),
        }));
    }
    seq
}
