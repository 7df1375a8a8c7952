//! `spawn_driver`: a tokio task that runs one `tandem-proto` endpoint over a UDP socket.
//!
//! The task follows the endpoint's run-loop contract (see `tandem-proto`'s crate docs): it
//! feeds every datagram from the peer to `handle_datagram`, drains `poll_transmit` and
//! sends each datagram as soon as the endpoint releases it (the sender's pacer decides
//! when), drains `poll_event` into a bounded channel, and sleeps until the next datagram,
//! command or `poll_timeout`. Datagrams from any other address are counted and dropped.
//!
//! The application reaches the endpoint only through [`DriverHandle::call`], which runs a
//! closure on the endpoint inside the task with the current `now` (for example
//! `Sender::send_frame`), so the endpoint is never shared. Events go through a bounded
//! channel; when the application falls behind, further events are dropped and counted
//! ([`DriverStats::events_dropped`]) rather than stalling the network side.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tandem_proto::Endpoint;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::socket::{SocketConfig, open_udp};

/// Driver settings. [`DriverConfig::new`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// Local address to bind (port 0 for any).
    pub local: SocketAddr,
    /// The peer's address; only its datagrams reach the endpoint. `None` listens: the first
    /// datagram's source becomes the peer, and datagrams the endpoint releases before then
    /// are dropped (counted in [`DriverStats::send_errors`]).
    pub peer: Option<SocketAddr>,
    /// Socket options (buffers, traffic class, interface binding).
    pub socket: SocketConfig,
    /// Events the channel holds before further ones are dropped. Default 1024 (about 17 s of
    /// 60 fps frames; an application that is further behind has lost them anyway).
    pub event_capacity: usize,
    /// Largest datagram accepted, bytes. Default 2048: Tandem's datagrams fit a 1500-byte
    /// MTU, and anything larger is not ours.
    pub max_datagram: usize,
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
    /// Datagrams from other addresses, dropped.
    pub strays: u64,
    /// Sends the kernel refused (buffer full, unreachable); the protocol's loss recovery
    /// treats them as lost.
    pub send_errors: u64,
    /// Events dropped because the application's channel was full.
    pub events_dropped: u64,
}

#[derive(Debug, Default)]
struct SharedStats {
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
    strays: AtomicU64,
    send_errors: AtomicU64,
    events_dropped: AtomicU64,
}

impl SharedStats {
    fn snapshot(&self) -> DriverStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DriverStats {
            datagrams_in: get(&self.datagrams_in),
            datagrams_out: get(&self.datagrams_out),
            bytes_out: get(&self.bytes_out),
            strays: get(&self.strays),
            send_errors: get(&self.send_errors),
            events_dropped: get(&self.events_dropped),
        }
    }
}

type Call<E> = Box<dyn FnOnce(&mut E, Instant) + Send>;

/// The application's side of a running driver. Dropping it stops the task.
pub struct DriverHandle<E: Endpoint> {
    calls: mpsc::Sender<Call<E>>,
    /// Events from the endpoint, in order.
    pub events: mpsc::Receiver<E::Event>,
    stats: Arc<SharedStats>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<io::Result<E>>,
}

impl<E: Endpoint> std::fmt::Debug for DriverHandle<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHandle")
            .field("local", &self.local)
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// The driver task has ended (its endpoint is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the network driver has stopped")]
pub struct DriverStopped;

impl<E: Endpoint + Send + 'static> DriverHandle<E> {
    /// Runs `f` on the endpoint inside the driver task with the current time, and returns
    /// its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut E, Instant) -> R + Send + 'static,
    ) -> Result<R, DriverStopped> {
        let (tx, rx) = oneshot::channel();
        let call: Call<E> = Box::new(move |e, now| {
            let _ = tx.send(f(e, now));
        });
        self.calls.send(call).await.map_err(|_| DriverStopped)?;
        rx.await.map_err(|_| DriverStopped)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.stats.snapshot()
    }

    /// Stops the task and returns the endpoint (for its final statistics).
    pub async fn shutdown(self) -> io::Result<E> {
        drop(self.calls);
        self.task
            .await
            .map_err(|e| io::Error::other(format!("driver task failed: {e}")))?
    }
}

/// Opens the socket and spawns the driver task for `endpoint` on the current tokio runtime.
pub fn spawn_driver<E>(endpoint: E, config: DriverConfig) -> io::Result<DriverHandle<E>>
where
    E: Endpoint + Send + 'static,
    E::Event: Send + 'static,
{
    let opened = open_udp(config.local, &config.socket)?;
    let socket = UdpSocket::from_std(opened.socket)?;
    let (calls_tx, calls_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
    let stats = Arc::new(SharedStats::default());
    let task = tokio::spawn(run(
        endpoint,
        socket,
        config,
        calls_rx,
        events_tx,
        Arc::clone(&stats),
    ));
    Ok(DriverHandle {
        calls: calls_tx,
        events: events_rx,
        stats,
        local: opened.local,
        task,
    })
}

async fn run<E: Endpoint>(
    mut endpoint: E,
    socket: UdpSocket,
    config: DriverConfig,
    mut calls: mpsc::Receiver<Call<E>>,
    events: mpsc::Sender<E::Event>,
    stats: Arc<SharedStats>,
) -> io::Result<E> {
    let mut buf = vec![0u8; config.max_datagram + 1];
    let mut peer = config.peer;
    loop {
        let now = Instant::now();
        while let Some(t) = endpoint.poll_transmit(now) {
            let Some(to) = peer else {
                stats.send_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut sent = socket.try_send_to(&t.contents, to);
            if sent
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock)
            {
                // The send buffer is full: wait for room rather than drop media.
                socket.writable().await?;
                sent = socket.try_send_to(&t.contents, to);
            }
            match sent {
                Ok(n) => {
                    stats.datagrams_out.fetch_add(1, Ordering::Relaxed);
                    stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while let Some(event) = endpoint.poll_event() {
            if events.try_send(event).is_err() {
                stats.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let deadline = endpoint.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            call = calls.recv() => match call {
                Some(f) => f(&mut endpoint, Instant::now()),
                None => return Ok(endpoint),
            },
            ready = socket.readable() => {
                ready?;
                receive_all(&socket, &mut buf, &config, &mut peer, &mut endpoint, &stats)?;
            }
            () = sleep => endpoint.handle_timeout(Instant::now()),
        }
    }
}

/// Reads every datagram waiting on the socket into the endpoint.
fn receive_all<E: Endpoint>(
    socket: &UdpSocket,
    buf: &mut [u8],
    config: &DriverConfig,
    peer: &mut Option<SocketAddr>,
    endpoint: &mut E,
    stats: &SharedStats,
) -> io::Result<()> {
    loop {
        match socket.try_recv_from(buf) {
            Ok((n, from)) => {
                let expected = *peer.get_or_insert(from);
                if from != expected || n > config.max_datagram {
                    stats.strays.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
                // Each datagram in a buffer of its own size (the endpoint keeps slices).
                endpoint.handle_datagram(Instant::now(), Bytes::copy_from_slice(&buf[..n]));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // ICMP unreachable from an earlier send surfaces here on Linux: the peer is not
            // there (yet); keep listening.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        }
    }
}
