//! `tandem-recv`: the desktop receiver. Waits for a sender at `--listen ADDR`, or finds the
//! senders advertising `_tandem._udp`, lists them and connects to `--name` (or the first).
//! Shows the video in a window (when a display exists and `--headless` is not given),
//! writes it with `--out FILE.y4m|FILE.ivf`, and prints a live stats line (or
//! `--json-stats`, one JSON object per second).
//!
//! Only paired senders get a session, sealed end to end: `--pair` shows a code for a
//! sender to type once, and the keys live in `--keys DIR` from then on.
//!
//! When it stops: when you stop it (Ctrl-C, `--seconds`, the end of a file played once,
//! the window closed), or when this machine fails it (socket, codec, capture, window); with
//! a limit set (`tandem-send --peer-timeout N`, `tandem-recv --wait N`), also after N s on
//! end without its peer. Nothing else ends it: a peer that is absent, silent, restarting or
//! unreachable is a state, said in one line on stderr when it changes, while the app keeps
//! trying (`tandem-send: no receiver at ADDR; still trying`, `tandem-send: streaming to
//! ADDR`; `tandem-recv: no video from ADDR; still listening`, `tandem-recv: video from
//! ADDR`); what strangers send is only a warning on the stats line.
//!
//! ```text
//! tandem-recv --pair --listen 0.0.0.0:5000          # once: shows the code
//! tandem-recv --listen 0.0.0.0:5000 --policy latency
//! tandem-recv --name Desk --path peer-to-peer --headless --json-stats
//! tandem-recv --name Desk --path both                # Wi-Fi and AWDL at once
//! tandem-recv --listen 0.0.0.0:5000 --listen2 0.0.0.0:5001   # two sockets, two paths
//! ```
//!
//! Over two paths the sender decides which datagram goes where (`tandem-send
//! --path-policy`); the stats line ends with each path's state and what it carried.

mod window;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tandem::sink::{AnnexBFileSink, FrameSink, IvfFileSink, Tee, Y4mFileSink};
use tandem::stats::{PEER_SILENCE, PeerPresence, print_until};
use tandem::{
    KeyDir, PairingRole, PathPreference, PlayoutPolicy, Receiver, ReceiverConfig, Remote,
    StatsFormat,
};
use tandem_net::{
    BrowseOptions, DiscoveryBackend, DiscoveryEvent, Peer, SessionState, peer_to_peer_discovery,
};

#[derive(Parser, Debug)]
#[command(about = "Receive and show video from a Tandem sender", version)]
struct Args {
    /// Wait for a sender at this address (without it: find senders by discovery).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// With discovery, the sender to connect to (its advertised name); default: the first.
    #[arg(long)]
    name: Option<String>,
    /// Which link: `infrastructure`, `peer-to-peer`, `auto`, or `both` (an infrastructure
    /// and a peer-to-peer path at once: discovery waits to see the sender on both; a
    /// listener tells them apart by interface).
    #[arg(long, default_value = "auto")]
    path: PathPreference,
    /// A second socket to listen on, for a session over two paths: what the sender sends
    /// here (`tandem-send --peer2`) is the second path. Needs `--listen`.
    #[arg(long, requires = "listen", conflicts_with = "pair")]
    listen2: Option<std::net::SocketAddr>,
    /// Playout: `latency`, `smooth`, `smooth:MIN-MAX` or `fixed:MS`.
    #[arg(long, default_value = "latency")]
    policy: PlayoutPolicy,
    /// No window, even where a display exists.
    #[arg(long)]
    headless: bool,
    /// Write the video to FILE.y4m (decoded pictures), FILE.ivf (AV1 as received) or
    /// FILE.h264 (H.264 as received, Annex B).
    #[arg(long, value_parser = parse_out)]
    out: Option<PathBuf>,
    /// One JSON object of stats per second on stdout instead of the live line.
    #[arg(long)]
    json_stats: bool,
    /// Stop after this many seconds (default: until interrupted or the window closes).
    #[arg(long)]
    seconds: Option<f64>,
    /// Give up after this many seconds on end without video (default: keep waiting), and
    /// when finding senders by discovery, after this long without one (default: 10 s).
    #[arg(long)]
    wait: Option<f64>,
    /// Discovery backend: `mdns` or `dns-sd`.
    #[arg(long, default_value = "mdns")]
    discovery: DiscoveryBackend,
    /// Pair with a sender: show a code (or `--code`) and wait at `--listen` for it to be
    /// typed, then exit.
    #[arg(long, requires = "listen")]
    pair: bool,
    /// The pairing code to show (default: a fresh random one).
    #[arg(long)]
    code: Option<String>,
    /// Directory of this device's identity and paired peers (default
    /// ~/.config/tandem/recv).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Receive without authentication or encryption (trusted networks and tests only).
    #[arg(long, conflicts_with = "pair")]
    insecure: bool,
}

fn parse_out(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "y4m" || e == "ivf" || e == "h264" => Ok(p),
        _ => Err(format!("`{s}` should end in .y4m, .ivf or .h264")),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("tandem-recv: {e:#}");
        std::process::exit(1);
    }
}

/// Browses until the sender we want appears, listing every sender seen on the way. The
/// browse ends there: the session runs without discovery, so no peer-to-peer browse keeps
/// AWDL awake under it; before a session, it covers peer-to-peer links only if `--path`
/// may use them (tandem_net::discovery::policy).
fn find_sender(args: &Args) -> Result<Peer> {
    let discovery = args.discovery.open().context("--discovery")?;
    let options = BrowseOptions {
        allow_peer_to_peer: peer_to_peer_discovery(args.path, SessionState::Idle, false),
        ..BrowseOptions::default()
    };
    let mut browser = discovery.browse(&options).context("browsing")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("runtime")?;
    let wait = args.wait.unwrap_or(DISCOVERY_WAIT_S);
    let deadline = Instant::now() + Duration::from_secs_f64(wait);
    eprintln!("tandem-recv: looking for senders ({:?})…", args.discovery);
    // `--path both` needs the sender on an infrastructure and a peer-to-peer interface; a
    // sender seen on one only is kept, and taken at the deadline (the engine then names
    // the missing half).
    let mut half_seen: Option<Peer> = None;
    rt.block_on(async {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero()
                && let Some(p) = half_seen.take()
            {
                return Ok(p);
            }
            match tokio::time::timeout(left, browser.next()).await {
                Ok(Some(DiscoveryEvent::Found(p) | DiscoveryEvent::Updated(p))) => {
                    let addrs: Vec<String> =
                        p.addresses.iter().map(|a| a.addr.to_string()).collect();
                    eprintln!(
                        "  {} — {} ({}){}",
                        p.instance,
                        p.txt.device_name,
                        addrs.join(", "),
                        if p.compatible() {
                            ""
                        } else {
                            " [other protocol version]"
                        }
                    );
                    let wanted = args.name.as_deref().is_none_or(|n| n == p.instance);
                    if wanted && p.compatible() {
                        if args.path != PathPreference::Both || seen_on_both(&p) {
                            return Ok(p);
                        }
                        half_seen = Some(p);
                    }
                }
                Ok(Some(DiscoveryEvent::Lost { .. })) => {}
                Ok(None) => bail!("discovery stopped"),
                Err(_) if half_seen.is_some() => {}
                Err(_) => bail!(
                    "no {}sender found within {:.0} s (is one running with `tandem-send --name …`? \
                     on a different network, use --listen and `tandem-send --peer`)",
                    args.name
                        .as_ref()
                        .map_or(String::new(), |n| format!("`{n}` ")),
                    wait
                ),
            }
        }
    })
}

/// Whether `peer` was seen on both kinds of interface `--path both` needs.
fn seen_on_both(peer: &Peer) -> bool {
    let list = tandem_net::interfaces(&tandem_net::KindOverrides::new()).unwrap_or_default();
    tandem_net::path::plan_both(peer, &list).is_ok()
}

/// Whether a window can open here.
fn display_available() -> bool {
    cfg!(any(target_os = "macos", target_os = "windows"))
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

fn key_dir(args: &Args) -> KeyDir {
    args.keys
        .as_ref()
        .map_or_else(|| KeyDir::default_for("recv"), KeyDir::new)
}

/// Shows a code, waits for a sender to type it, stores the sender as a paired peer.
fn pair(args: &Args) -> Result<()> {
    let keys = key_dir(args);
    let identity = keys.identity().context("--keys")?;
    let Some(listen) = args.listen else {
        bail!("--pair needs --listen");
    };
    let code = args.code.clone().unwrap_or_else(tandem::pairing::new_code);
    let net = tandem::NetConfig {
        port: listen.port(),
        bind_ip: Some(listen.ip()),
        ..tandem::NetConfig::default()
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| "Tandem receiver".into());
    eprintln!("tandem-recv: pairing code  {code}  — type it on the sender (listening on {listen})");
    let (key, peer_name) = tandem::pairing::pair(
        PairingRole::ShowCode,
        &code,
        &identity,
        &name,
        &net,
        &Remote::Listen,
        |e| {
            if let tandem::pairing::PairingEvent::WrongCodeEntered { attempts_left } = e {
                eprintln!("tandem-recv: a wrong code was typed; {attempts_left} attempts left");
            }
        },
    )
    .context("pairing")?;
    keys.add_paired(key, &peer_name)?;
    eprintln!(
        "tandem-recv: paired with `{peer_name}` (id {}); keys in {}",
        key.fingerprint(),
        keys.path().display()
    );
    Ok(())
}

fn run(args: Args) -> Result<()> {
    if args.pair {
        return pair(&args);
    }
    let security = if args.insecure {
        None
    } else {
        let sec = key_dir(&args).security().context("--keys")?;
        if sec.trust.peers().is_empty() {
            bail!(
                "not paired with any sender: run `tandem-recv --pair --listen ADDR` here and \
                 `tandem-send --pair --peer ADDR --code CODE` on the sender (or receive with \
                 --insecure)"
            );
        }
        Some(sec)
    };
    let (remote, port, bind_ip) = match args.listen {
        // Over both kinds of link, a listener on every address opens the sockets that hear
        // both (IPv6 dual stack: AWDL carries IPv6 only), as an automatic one with no
        // address given does.
        Some(addr) if args.path == PathPreference::Both && addr.ip().is_unspecified() => {
            (Remote::Listen, addr.port(), None)
        }
        Some(addr) => (Remote::Listen, addr.port(), Some(addr.ip())),
        None => (Remote::Discovered(find_sender(&args)?), 0, None),
    };
    let mut config = ReceiverConfig::default()
        .playout(args.policy)
        .path(args.path)
        .port(port);
    config.net.bind_ip = bind_ip;
    config.net.second_local = args.listen2;
    config.net.security = security;
    // The engine calls a sender gone after this much silence; it only reports, and the
    // receiver keeps listening.
    config.net.peer_timeout = PEER_SILENCE;
    let mut sinks: Vec<Box<dyn FrameSink>> = Vec::new();
    match &args.out {
        Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ivf")) => {
            sinks.push(Box::new(IvfFileSink::new(p, None)));
        }
        Some(p)
            if p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("h264")) =>
        {
            sinks.push(Box::new(AnnexBFileSink::new(p)));
        }
        Some(p) => sinks.push(Box::new(Y4mFileSink::new(p, 60))),
        None => {}
    }
    let windowed = !args.headless && display_available();
    let frames = if windowed {
        let (sink, frames) = window::channel();
        sinks.push(Box::new(sink));
        Some(frames)
    } else {
        None
    };
    // Before the engine starts, so that its first stats (1 s on) find a full second gone.
    let started = Instant::now();
    let receiver = Receiver::start(config, remote.clone(), Box::new(Tee(sinks)))
        .context("starting the receiver")?;
    match &remote {
        Remote::Listen => eprintln!(
            "tandem-recv: listening on {}{} ({})",
            receiver.local_addr(),
            receiver
                .second_local_addr()
                .map_or(String::new(), |a| format!(" and {a} (the second path)")),
            args.policy
        ),
        Remote::Discovered(p) => eprintln!(
            "tandem-recv: connecting to `{}` via {} ({})",
            p.instance,
            receiver
                .peer()
                .map_or_else(|| "?".to_owned(), |a| a.to_string()),
            args.policy
        ),
        Remote::Address(a) => eprintln!("tandem-recv: connecting to {a} ({})", args.policy),
        Remote::Addresses { first, second } => eprintln!(
            "tandem-recv: connecting to {first} and {second} ({})",
            args.policy
        ),
        Remote::Transport { transport, .. } => {
            eprintln!("tandem-recv: over {transport:?} ({})", args.policy)
        }
        Remote::Transports { first, second, .. } => {
            eprintln!(
                "tandem-recv: over {first:?} and {second:?} ({})",
                args.policy
            )
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&stop);
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let format = if args.json_stats {
        StatsFormat::Json
    } else {
        StatsFormat::Line
    };
    let give_up = args.wait.map(Duration::from_secs_f64);
    let mut link = PeerPresence::new(started);
    let mut shown = 0u64;
    let stats = receiver.stats();
    let failed = std::thread::scope(|scope| -> Result<Option<String>> {
        let watcher = scope.spawn(|| {
            let mut failed = None;
            print_until(&stats, format, |s| {
                if let Some(e) = receiver.failure() {
                    failed = Some(e);
                    return true;
                }
                if let Some(s) = s {
                    // Video is there when frames were shown since the last look.
                    let up = s.frames_shown > shown;
                    shown = s.frames_shown;
                    let from = || s.peer.clone().unwrap_or_else(|| "?".to_owned());
                    match link.update(up) {
                        Some(true) => eprintln!("tandem-recv: video from {}", from()),
                        // Before the first video, `listening on` said we wait.
                        Some(false) if link.was_up => {
                            eprintln!("tandem-recv: no video from {}; still listening", from());
                        }
                        _ => {}
                    }
                }
                if let Some(limit) = give_up
                    && link.down_for() > limit
                {
                    failed = Some(format!(
                        "no video for {:.0} s (--wait)",
                        limit.as_secs_f64()
                    ));
                    return true;
                }
                stop.load(Ordering::Relaxed)
                    || args
                        .seconds
                        .is_some_and(|sec| started.elapsed().as_secs_f64() >= sec)
            });
            stop.store(true, Ordering::Relaxed);
            failed
        });
        if let Some(frames) = frames {
            let shown = window::run(&frames, "Tandem", &stop);
            stop.store(true, Ordering::Relaxed);
            shown.context("the window")?;
        }
        Ok(watcher
            .join()
            .unwrap_or_else(|_| Some("the stats thread panicked".into())))
    })?;
    receiver.shutdown().context("stopping")?;
    if let Some(e) = failed {
        bail!("{e}");
    }
    Ok(())
}

/// How long discovery looks for a sender without `--wait`.
const DISCOVERY_WAIT_S: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_name_the_argument() {
        let e = Args::try_parse_from(["tandem-recv", "--policy", "fast"]).expect_err("policy");
        assert!(
            e.to_string().contains("--policy") && e.to_string().contains("fast"),
            "{e}"
        );
        let e = Args::try_parse_from(["tandem-recv", "--out", "video.mp4"]).expect_err("out");
        assert!(e.to_string().contains("--out"), "{e}");
        let e = Args::try_parse_from(["tandem-recv", "--listen", "5000"]).expect_err("listen");
        assert!(e.to_string().contains("--listen"), "{e}");
        let e = Args::try_parse_from(["tandem-recv", "--discovery", "zeroconf"]).expect_err("d");
        assert!(e.to_string().contains("--discovery"), "{e}");
        let ok = Args::try_parse_from(["tandem-recv", "--policy", "fixed:50", "--out", "a.ivf"])
            .expect("valid");
        assert_eq!(ok.policy, PlayoutPolicy::Fixed(Duration::from_millis(50)));
        let e = Args::try_parse_from(["tandem-recv", "--path", "three"]).expect_err("path");
        assert!(
            e.to_string().contains("--path") && e.to_string().contains("both"),
            "{e}"
        );
        let e = Args::try_parse_from(["tandem-recv", "--listen2", "0.0.0.0:5001"])
            .expect_err("listen2 alone");
        assert!(e.to_string().contains("--listen"), "{e}");
        let two = Args::try_parse_from([
            "tandem-recv",
            "--listen",
            "0.0.0.0:5000",
            "--listen2",
            "0.0.0.0:5001",
            "--path",
            "both",
        ])
        .expect("valid");
        assert_eq!(two.path, PathPreference::Both);
        assert_eq!(two.listen2, Some("0.0.0.0:5001".parse().expect("addr")));
    }
}
