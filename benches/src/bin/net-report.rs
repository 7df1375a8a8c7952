//! `net-report`: what the network driver costs, measured on loopback in one run.
//!
//! - `plain`: a socket2 UDP socket sending 1200-byte datagrams as fast as it can to another,
//!   read by a thread; the baseline.
//! - `driver`: a `tandem-proto` sender and receiver, each on its own `tandem-net` driver task,
//!   the application handing the sender 120 kB frames as fast as it accepts them (FEC off,
//!   capacity unbounded: the protocol's own limits only).
//! - `latency`: one-datagram frames at 50 Mbit/s, from the application's `send_frame` call to
//!   the receiver's frame event, against the plain loop's one-way time at the same rate; the
//!   difference is what the driver and protocol add per datagram.
//! - `relay`: `tandem-relay` with the `clean` profile at 50 Mbit/s: how late it sends each
//!   datagram past the delivery time the profile scheduled.
//!
//! Targets (issue 4): driver ≥ 60 % of the plain loop and ≥ 1 Gbit/s; added latency p99
//! ≤ 200 µs at 50 Mbit/s; relay lateness p99 ≤ 100 µs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use serde::Serialize;
use tandem_net::socket::{SocketConfig, open_udp};
use tandem_net::{DriverConfig, DriverHandle, DriverStopped, spawn_driver};
use tandem_proto::{
    FecMode, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, SendError, Sender,
    SenderConfig,
};
use tandem_sim::report::Percentiles;

#[derive(Parser, Debug)]
#[command(about = "Driver throughput and latency against a plain socket loop, and relay lateness")]
struct Args {
    /// Print one JSON document instead of lines.
    #[arg(long)]
    json: bool,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

const PAYLOAD: usize = 1200;
const SESSION: u32 = 0x0e7;

#[derive(Serialize, Debug)]
struct Throughput {
    datagrams_per_s: f64,
    mbit_per_s: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    plain: Throughput,
    driver: Throughput,
    driver_over_plain: f64,
    plain_one_way_us: Percentiles,
    driver_one_way_us: Percentiles,
    added_latency_us: Added,
    relay_lateness_us: Percentiles,
}

#[derive(Serialize, Debug)]
struct Added {
    p50: f64,
    p99: f64,
}

fn plain_socket() -> Result<UdpSocket> {
    let s = open_udp("127.0.0.1:0".parse()?, &SocketConfig::default())?.socket;
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// Blasts datagrams for `seconds`; returns what the reader received per second.
fn plain_throughput(seconds: f64) -> Result<Throughput> {
    let rx = plain_socket()?;
    let tx = plain_socket()?;
    let to = rx.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if rx.recv_from(&mut buf).is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    let payload = vec![0x5au8; PAYLOAD];
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let _ = tx.send_to(&payload, to);
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let n = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(rate(n, elapsed))
}

fn rate(datagrams: u64, seconds: f64) -> Throughput {
    Throughput {
        datagrams_per_s: datagrams as f64 / seconds,
        mbit_per_s: datagrams as f64 * PAYLOAD as f64 * 8.0 / seconds / 1e6,
    }
}

fn sender_config() -> SenderConfig {
    let mut c = SenderConfig::new(SESSION);
    c.fec = FecMode::Off;
    c.initial_capacity_bps = 10_000_000_000;
    c.max_bitrate_bps = 10_000_000_000;
    c
}

/// A sender and a listening receiver, each on its own driver task, on loopback.
fn driver_pair() -> Result<(DriverHandle<Sender>, DriverHandle<Receiver>)> {
    let t0 = Instant::now();
    let rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), t0),
        DriverConfig::new("127.0.0.1:0".parse()?, None),
    )?;
    let tx = spawn_driver(
        Sender::new(sender_config(), t0),
        DriverConfig::new("127.0.0.1:0".parse()?, Some(rx.local_addr())),
    )?;
    Ok((tx, rx))
}

/// Hands the sender one AV1 frame captured now.
async fn send(
    tx: &DriverHandle<Sender>,
    data: Bytes,
    keyframe: bool,
) -> Result<Result<u32, SendError>, DriverStopped> {
    tx.call(move |s: &mut Sender, now| s.send_frame(now, OutgoingFrame::av1(data, now, keyframe)))
        .await
}

/// Frames through two driver tasks as fast as the sender accepts them.
async fn driver_throughput(seconds: f64) -> Result<Throughput> {
    let (tx, mut rx) = driver_pair()?;
    let frame = Bytes::from(vec![0x33u8; 100 * PAYLOAD]);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut bytes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(100), rx.events.recv()).await {
                    Ok(Some(ReceiverEvent::Frame(f))) => bytes += f.data.len() as u64,
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            (bytes, rx.stats().datagrams_in)
        })
    };
    let start = Instant::now();
    let mut first = true;
    while start.elapsed().as_secs_f64() < seconds {
        let data = frame.clone();
        let keyframe = std::mem::take(&mut first);
        let r = send(&tx, data, keyframe).await?;
        if let Err(SendError::QueueFull { .. }) = r {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    // Frames still in flight at the end arrive within milliseconds on loopback.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (bytes, datagrams) = counter.await?;
    drop(tx);
    Ok(Throughput {
        datagrams_per_s: datagrams as f64 / elapsed,
        mbit_per_s: bytes as f64 * 8.0 / elapsed / 1e6,
    })
}

/// One-way times of the plain loop at `mbit` Mbit/s: the sender stamps its clock in the
/// payload, the reader subtracts.
fn plain_one_way(mbit: f64, count: u32) -> Result<Vec<f64>> {
    let rx = plain_socket()?;
    let tx = plain_socket()?;
    let to = rx.local_addr()?;
    let base = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            if n >= 8 {
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&buf[..8]);
                let sent = u64::from_be_bytes(stamp);
                out.push(base.elapsed().as_nanos() as f64 / 1e3 - sent as f64 / 1e3);
            }
        }
        out
    });
    let interval = Duration::from_secs_f64(PAYLOAD as f64 * 8.0 / (mbit * 1e6));
    let mut payload = vec![0u8; PAYLOAD];
    for i in 0..count {
        let due = base + interval * i;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        payload[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_be_bytes());
        let _ = tx.send_to(&payload, to);
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))
}

/// One-datagram frames through the drivers at `mbit`: `send_frame` call to frame event.
async fn driver_one_way(mbit: f64, count: u32) -> Result<Vec<f64>> {
    let (tx, mut rx) = driver_pair()?;
    let interval = Duration::from_secs_f64(PAYLOAD as f64 * 8.0 / (mbit * 1e6));
    let collector = tokio::spawn(async move {
        let mut arrivals = Vec::new();
        while let Ok(Some(ReceiverEvent::Frame(f))) =
            tokio::time::timeout(Duration::from_millis(500), rx.events.recv()).await
        {
            arrivals.push((f.frame_id, Instant::now()));
        }
        arrivals
    });
    let data = Bytes::from(vec![0x11u8; PAYLOAD - 100]);
    let mut sent_at = Vec::new();
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(w).await;
        }
        let d = data.clone();
        let at = Instant::now();
        let id = send(&tx, d, i == 0).await?;
        if let Ok(id) = id {
            sent_at.push((id, at));
        }
    }
    let arrivals = collector.await?;
    let sent: std::collections::HashMap<u32, Instant> = sent_at.into_iter().collect();
    Ok(arrivals
        .iter()
        .filter_map(|(id, at)| {
            sent.get(id)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1e6)
        })
        .collect())
}

/// The relay's lateness at `mbit` on `clean`.
fn relay_lateness(mbit: f64, seconds: f64) -> Result<Vec<f64>> {
    let sink = plain_socket()?;
    let relay = tandem_relay::start(tandem_relay::RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        target: sink.local_addr()?,
        link: tandem_sim::profile::parse_profile_or_spec("clean")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        seed: 1,
    })?;
    let to: SocketAddr = relay.local_addr();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while sink.recv_from(&mut buf).is_ok() {}
    });
    let tx = plain_socket()?;
    let interval = Duration::from_secs_f64(PAYLOAD as f64 * 8.0 / (mbit * 1e6));
    let payload = vec![0u8; PAYLOAD];
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed().as_secs_f64() < seconds {
        let due = start + interval * i;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        let _ = tx.send_to(&payload, to);
        i += 1;
    }
    std::thread::sleep(Duration::from_millis(50));
    let late = relay
        .counters()
        .lateness_us
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    drop(relay);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(late)
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("net-report: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    eprintln!("net-report: plain loop");
    let plain = plain_throughput(args.seconds)?;
    eprintln!("net-report: driver");
    let driver = runtime.block_on(driver_throughput(args.seconds))?;
    eprintln!("net-report: latency at 50 Mbit/s");
    let count = (50e6 * 2.0 / (PAYLOAD as f64 * 8.0)) as u32;
    let plain_lat = Percentiles::of(&plain_one_way(50.0, count)?);
    let driver_lat = Percentiles::of(&runtime.block_on(driver_one_way(50.0, count))?);
    eprintln!("net-report: relay at 50 Mbit/s");
    let relay = Percentiles::of(&relay_lateness(50.0, args.seconds)?);
    let report = Report {
        driver_over_plain: driver.mbit_per_s / plain.mbit_per_s,
        plain,
        driver,
        added_latency_us: Added {
            p50: driver_lat.p50 - plain_lat.p50,
            p99: driver_lat.p99 - plain_lat.p99,
        },
        plain_one_way_us: plain_lat,
        driver_one_way_us: driver_lat,
        relay_lateness_us: relay,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report:#?}");
    }
    Ok(())
}
