//! `tandem-send`: the desktop sender. Streams the test pattern, a Y4M file, Y4M on standard
//! input, the X11 screen or a window, or a V4L2 camera to a receiver: at `--peer ADDR`, or,
//! without it, advertised as `--name` on `_tandem._udp` for a receiver to find and reach.
//! Prints a live stats line (or `--json-stats`) every second, with the source's own rate and
//! the pictures it dropped beside what was sent.
//!
//! Only paired devices stream, sealed end to end: pair once with the receiver's code
//! (`tandem-recv --pair` shows it), and the keys live in `--keys DIR` from then on.
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
//! tandem-send --pair --peer 192.168.1.20:5000 --code 123456   # once
//! tandem-send --peer 192.168.1.20:5000 --seconds 10
//! tandem-send --name Desk --path peer-to-peer
//! tandem-send --name Desk --path both --path-policy adaptive   # Wi-Fi and AWDL at once
//! tandem-send --peer 192.168.1.20:5000 --peer2 192.168.1.20:5001 --path-policy duplicate
//! tandem-send --peer 192.168.1.20:5000 --source screen --fps 60
//! tandem-send --peer 192.168.1.20:5000 --source camera:/dev/video0 --size 1280x720 --fps 30
//! ffmpeg -re -i clip.mkv -f yuv4mpegpipe - | tandem-send --peer 192.168.1.20:5000 --source -
//! ```
//!
//! Over two paths (`--path both`, or `--peer` with `--peer2`) the stats line ends with each
//! path's state and what it carried each way.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tandem::stats::{PEER_SILENCE, PeerPresence, print_until};
use tandem::{
    EncoderKind, KeyDir, PairingRole, PathPolicy, PathPreference, Remote, Security, Sender,
    SenderConfig, StatsFormat, TestPatternSource, VideoSource, Y4mFileSource, Y4mPipeSource,
};
use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{
    Advertisement, DiscoveryBackend, KindOverrides, PeerTxt, SessionState, interfaces,
    peer_to_peer_discovery,
};

#[derive(Parser, Debug)]
#[command(about = "Stream video to a Tandem receiver", version)]
struct Args {
    /// What to send: `test-pattern`; a `.y4m` file; `-`, Y4M on standard input, taken at
    /// the rate it comes (`ffmpeg … -f yuv4mpegpipe - | tandem-send --source -`);
    /// `screen[:DISPLAY]`, the X11 screen (`screen`: $DISPLAY; `screen:1`: display :1);
    /// `camera[:DEVICE]`, a V4L2 camera (`camera`: /dev/video0; `camera:2`: /dev/video2).
    #[arg(long, default_value = "test-pattern", value_parser = parse_source)]
    source: SourceArg,
    /// With `--source screen`: capture this window (its X11 id, decimal or 0x hex, as
    /// `xwininfo` shows it) instead of the whole screen.
    #[arg(long, value_parser = parse_window)]
    window: Option<u32>,
    /// With `--source screen`: leave the mouse pointer out of the picture. By default it is
    /// drawn in where it is, as on the screen (X's captures never contain it; this needs
    /// the X server's XFIXES extension, and says so when it is missing).
    #[arg(long)]
    no_cursor: bool,
    /// Picture size, WIDTHxHEIGHT: the test pattern's (default 640x360), or what to ask a
    /// camera for (default: its largest size at 30 fps or more). The screen, files and
    /// pipes have their own.
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Frames per second: the test pattern's and the screen's capture rate (default 60),
    /// or what to ask a camera for (default 30, or the nearest rate it offers at the size).
    /// Files and pipes keep their own rate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=240))]
    fps: Option<u32>,
    /// Starting bitrate in kbit/s (default: 0.1 bit per pixel per frame).
    #[arg(long)]
    bitrate: Option<u32>,
    /// Encoder: `h264` (H.264, OpenH264: the lowest latency here, and what iPhones and
    /// iPads decode in hardware), `aom` (AV1, libaom realtime) or `rav1e` (AV1, pure Rust, 4
    /// frames of lag). Any receiver decodes either: each frame carries its codec.
    #[arg(long, default_value = "h264")]
    encoder: EncoderKind,
    /// Which link: `infrastructure`, `peer-to-peer`, `auto`, or `both` (an infrastructure
    /// and a peer-to-peer path at once: a receiver finds it on both, or reaches it at
    /// `--peer` and `--peer2`).
    #[arg(long, default_value = "auto")]
    path: PathPreference,
    /// How two paths share the datagrams: `duplicate` (every one on both),
    /// `primary-backup` (the first while it answers) or `adaptive` (each on the path
    /// predicted to be live).
    #[arg(long, default_value = "adaptive")]
    path_policy: PathPolicy,
    /// Name to advertise when waiting for a receiver (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// The receiver's address (it listens there); without it, advertise and wait.
    #[arg(long)]
    peer: Option<std::net::SocketAddr>,
    /// A second address of the receiver, for a session over two paths: the first goes to
    /// `--peer`, the second here (`tandem-recv --listen2`, or a second relay).
    #[arg(long, requires = "peer", conflicts_with = "pair")]
    peer2: Option<std::net::SocketAddr>,
    /// Local UDP port (0: any).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Stop after this many seconds (default: until interrupted or the source ends).
    #[arg(long)]
    seconds: Option<f64>,
    /// Loop a Y4M file instead of stopping at its end.
    #[arg(long)]
    r#loop: bool,
    /// One JSON object of stats per second on stdout instead of the live line.
    #[arg(long)]
    json_stats: bool,
    /// Discovery backend for advertising: `mdns` or `dns-sd`.
    #[arg(long, default_value = "mdns")]
    discovery: DiscoveryBackend,
    /// With `--path auto`, keep advertising over peer-to-peer links (AWDL) while a receiver
    /// streams over infrastructure. By default that advertisement stops then, because
    /// peer-to-peer discovery keeps AWDL awake and AWDL stalls the infrastructure path; it
    /// comes back when the receiver goes.
    #[arg(long)]
    keep_p2p_discovery: bool,
    /// Give up after this many seconds on end without a receiver (default: keep trying).
    #[arg(long)]
    peer_timeout: Option<f64>,
    /// Pair with the receiver at `--peer` by typing the code it shows (`--code`), then exit.
    #[arg(long, requires = "code", requires = "peer")]
    pair: bool,
    /// The pairing code the receiver shows.
    #[arg(long)]
    code: Option<String>,
    /// Directory of this device's identity and paired peers (default
    /// ~/.config/tandem/send).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Which paired receiver is at `--peer`, by its id, when several are paired.
    #[arg(long)]
    peer_id: Option<String>,
    /// Stream without authentication or encryption (trusted networks and tests only).
    #[arg(long, conflicts_with = "pair")]
    insecure: bool,
}

/// The test pattern's size and rate, and the screen's rate, when not given.
const DEFAULT_SIZE: (u32, u32) = (640, 360);
const DEFAULT_FPS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceArg {
    TestPattern,
    File(PathBuf),
    Stdin,
    /// The X11 display to capture (`None`: $DISPLAY).
    Screen(Option<String>),
    Camera(PathBuf),
}

fn parse_source(s: &str) -> Result<SourceArg, String> {
    match s {
        "test-pattern" => return Ok(SourceArg::TestPattern),
        "-" => return Ok(SourceArg::Stdin),
        "screen" => return Ok(SourceArg::Screen(None)),
        "camera" => return Ok(SourceArg::Camera(PathBuf::from("/dev/video0"))),
        _ => {}
    }
    if let Some(display) = s.strip_prefix("screen:") {
        // `screen:1` is display `:1`; `screen::1` and `screen:host:0` are as written.
        return match display {
            "" => Err(format!(
                "`{s}`: name a display after `screen:` (e.g. `screen:1`)"
            )),
            d if d.contains(':') => Ok(SourceArg::Screen(Some(d.to_owned()))),
            d => Ok(SourceArg::Screen(Some(format!(":{d}")))),
        };
    }
    if let Some(device) = s.strip_prefix("camera:") {
        // `camera:2` is /dev/video2; anything else is a path.
        return match device {
            "" => Err(format!(
                "`{s}`: name a device after `camera:` (e.g. `camera:/dev/video0`)"
            )),
            d if d.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(SourceArg::Camera(PathBuf::from(format!("/dev/video{d}"))))
            }
            d => Ok(SourceArg::Camera(PathBuf::from(d))),
        };
    }
    let path = PathBuf::from(s);
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("y4m"))
    {
        Ok(SourceArg::File(path))
    } else {
        Err(format!(
            "`{s}` is none of `test-pattern`, a .y4m file, `-` (Y4M on standard input), \
             `screen[:DISPLAY]` or `camera[:DEVICE]`"
        ))
    }
}

fn parse_window(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed
        .ok()
        .filter(|&id| id != 0)
        .ok_or_else(|| format!("`{s}` is not an X11 window id (decimal, or hex as 0x…)"))
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT"))?;
    let n = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|n| (16..=8192).contains(n) && n % 2 == 0)
            .ok_or_else(|| format!("`{v}` in `{s}` is not an even size from 16 to 8192"))
    };
    Ok((n(w)?, n(h)?))
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
        eprintln!("tandem-send: {e:#}");
        std::process::exit(1);
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "Tandem sender".into())
}

fn key_dir(args: &Args) -> KeyDir {
    args.keys
        .as_ref()
        .map_or_else(|| KeyDir::default_for("send"), KeyDir::new)
}

/// Types the receiver's code and stores it as a paired peer.
fn pair(args: &Args) -> Result<()> {
    let keys = key_dir(args);
    let identity = keys.identity().context("--keys")?;
    let (Some(peer), Some(code)) = (args.peer, args.code.as_deref()) else {
        bail!("--pair needs --peer and --code");
    };
    let name = args.name.clone().unwrap_or_else(host_name);
    eprintln!(
        "tandem-send: pairing with {peer} as `{name}` (id {})…",
        identity.fingerprint()
    );
    let (key, peer_name) = tandem::pairing::pair(
        PairingRole::EnterCode,
        code,
        &identity,
        &name,
        &tandem::NetConfig::default(),
        &Remote::Address(peer),
        |_| {},
    )
    .context("pairing")?;
    keys.add_paired(key, &peer_name)?;
    eprintln!(
        "tandem-send: paired with `{peer_name}` (id {}); keys in {}",
        key.fingerprint(),
        keys.path().display()
    );
    Ok(())
}

/// The security to stream with: the stored keys, unless `--insecure`.
fn security(args: &Args) -> Result<Option<Security>> {
    if args.insecure {
        return Ok(None);
    }
    let keys = key_dir(args);
    let mut sec = keys.security().context("--keys")?;
    if sec.trust.peers().is_empty() {
        bail!(
            "not paired with any receiver: run `tandem-recv --pair --listen ADDR` there and \
             `tandem-send --pair --peer ADDR --code CODE` here (or stream with --insecure)"
        );
    }
    if let Some(id) = &args.peer_id {
        let peer = sec
            .trust
            .by_fingerprint(id)
            .with_context(|| format!("--peer-id {id}: no paired receiver has that id"))?;
        sec.peer = Some(peer.key);
    }
    Ok(Some(sec))
}

/// Refuses the options that do not apply to `--source`, naming them.
fn check_source_options(args: &Args) -> Result<()> {
    let what = match &args.source {
        SourceArg::TestPattern => "the test pattern",
        SourceArg::File(_) => "a Y4M file",
        SourceArg::Stdin => "Y4M on standard input",
        SourceArg::Screen(_) => "the screen",
        SourceArg::Camera(_) => "a camera",
    };
    let own_size = matches!(
        args.source,
        SourceArg::File(_) | SourceArg::Stdin | SourceArg::Screen(_)
    );
    if own_size && let Some((w, h)) = args.size {
        bail!(
            "--size {w}x{h}: {what} has its own size; --size is for the test pattern and cameras"
        );
    }
    let own_rate = matches!(args.source, SourceArg::File(_) | SourceArg::Stdin);
    if own_rate && let Some(fps) = args.fps {
        bail!("--fps {fps}: {what} keeps its own rate (its Y4M header's)");
    }
    if args.window.is_some() && !matches!(args.source, SourceArg::Screen(_)) {
        bail!("--window is for --source screen, not {what}");
    }
    if args.no_cursor && !matches!(args.source, SourceArg::Screen(_)) {
        bail!("--no-cursor is for --source screen, not {what}");
    }
    if args.r#loop && !matches!(args.source, SourceArg::File(_)) {
        bail!("--loop is for a .y4m file, not {what}");
    }
    Ok(())
}

/// Opens `--source`, saying on stderr what it opened where that is not plain.
fn open_source(args: &Args) -> Result<Box<dyn VideoSource>> {
    check_source_options(args)?;
    let fps = args.fps.unwrap_or(DEFAULT_FPS);
    Ok(match &args.source {
        SourceArg::TestPattern => {
            let (w, h) = args.size.unwrap_or(DEFAULT_SIZE);
            Box::new(
                TestPatternSource::new(w, h, fps)
                    .context("--size is too small for the test pattern's pixel code")?,
            )
        }
        SourceArg::File(p) => Box::new(
            Y4mFileSource::open(p, args.r#loop)
                .with_context(|| format!("--source {}", p.display()))?,
        ),
        SourceArg::Stdin => {
            eprintln!("tandem-send: reading Y4M from standard input…");
            let source = Y4mPipeSource::stdin().context("--source - (Y4M on standard input)")?;
            let ((w, h), (num, den)) = (source.size(), source.fps());
            eprintln!(
                "tandem-send: standard input: {w}x{h} at {:.2} fps (its header's)",
                f64::from(num) / f64::from(den)
            );
            Box::new(source)
        }
        #[cfg(target_os = "linux")]
        SourceArg::Screen(display) => {
            use tandem_capture::screen::{ScreenConfig, ScreenSource};
            let config = ScreenConfig {
                display: display.clone(),
                window: args.window,
                fps,
                cursor: !args.no_cursor,
                ..ScreenConfig::default()
            };
            let source = ScreenSource::open(&config).context("--source screen")?;
            let (w, h) = source.size();
            let pointer = match source.cursor_reason() {
                None => "with the pointer".to_owned(),
                Some(_) if args.no_cursor => "without the pointer (--no-cursor)".to_owned(),
                Some(why) => format!("without the pointer ({why})"),
            };
            eprintln!(
                "tandem-send: {}: {w}x{h} at {fps} fps through {}{}, {pointer}",
                source.target(),
                source.transport(),
                source
                    .fallback_reason()
                    .map_or(String::new(), |why| format!(" ({why})"))
            );
            Box::new(source)
        }
        #[cfg(target_os = "linux")]
        SourceArg::Camera(device) => {
            use tandem_capture::camera::{CameraConfig, CameraSource};
            let config = CameraConfig {
                device: device.clone(),
                size: args.size,
                fps: args.fps,
            };
            let source = CameraSource::open(&config)
                .with_context(|| format!("--source camera:{}", device.display()))?;
            eprintln!(
                "tandem-send: camera {}: {}",
                device.display(),
                source.granted()
            );
            Box::new(source)
        }
        #[cfg(not(target_os = "linux"))]
        SourceArg::Screen(_) | SourceArg::Camera(_) => bail!(
            "--source screen and camera read X11 and V4L2, on Linux only; elsewhere, feed Y4M \
             on standard input (`--source -`)"
        ),
    })
}

fn run(args: Args) -> Result<()> {
    if args.pair {
        return pair(&args);
    }
    let security = security(&args)?;
    let source = open_source(&args)?;
    let (width, height) = source.size();
    let (num, den) = source.fps();
    let fps = (num / den.max(1)).max(1);
    let mut config = SenderConfig::default()
        .size(width, height)
        .fps(fps)
        .encoder(args.encoder)
        .path(args.path)
        .path_policy(args.path_policy)
        .port(args.port);
    if let Some(kbps) = args.bitrate {
        config = config.bitrate_kbps(kbps);
    }
    // The engine calls a receiver gone after this much silence: short, so that the state
    // line says so within 2 s; it only reports, the engine keeps trying.
    config.net.peer_timeout = PEER_SILENCE;
    let own_id = security.as_ref().map(|s| s.identity.fingerprint());
    config.net.security = security;
    let remote = match (args.peer, args.peer2) {
        (Some(first), Some(second)) => Remote::Addresses { first, second },
        (Some(_), None) if args.path == PathPreference::Both => bail!(
            "--path both with --peer needs --peer2, the receiver's address on the second path \
             (or leave out --peer and let the receiver find this sender on both)"
        ),
        (Some(a), None) => Remote::Address(a),
        (None, _) => Remote::Listen,
    };
    // Before the engine starts, so that its first stats (1 s on) find a full second gone.
    let started = Instant::now();
    let sender = Sender::start(config, remote, Some(source)).context("starting the sender")?;
    let name = args.name.clone().unwrap_or_else(host_name);
    // Advertise only when waiting to be found; over peer-to-peer links only while the
    // session may use them (tandem_net::discovery::policy).
    let p2p_now = |session| peer_to_peer_discovery(args.path, session, args.keep_p2p_discovery);
    let mut advertised = if args.peer.is_none() {
        let discovery = args.discovery.open().context("--discovery")?;
        let txt = PeerTxt {
            protocol_version: PROTOCOL_VERSION,
            // Paired receivers know us by our key's fingerprint.
            peer_id: own_id.clone().unwrap_or_else(|| {
                format!("send-{}-{}", std::process::id(), sender.local_addr().port())
            }),
            device_name: name.clone(),
            codecs: vec![tandem::codec_tag::codec_of(args.encoder.bitstream())],
        };
        let mut ad = Advertisement::new(sender.local_addr().port(), txt);
        ad.instance = name.clone();
        ad.allow_peer_to_peer = p2p_now(SessionState::Idle);
        let reg = discovery.advertise(&ad).context("advertising")?;
        eprintln!(
            "tandem-send: advertising `{name}` on port {} ({:?}); waiting for a receiver",
            sender.local_addr().port(),
            args.discovery
        );
        Some((discovery, reg))
    } else {
        eprintln!(
            "tandem-send: {width}x{height}@{fps} ({}) to {}{}",
            args.encoder,
            args.peer.map_or(String::new(), |p| p.to_string()),
            args.peer2.map_or(String::new(), |p| format!(
                " and {p} ({} over two paths)",
                args.path_policy
            ))
        );
        None
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let format = if args.json_stats {
        StatsFormat::Json
    } else {
        StatsFormat::Line
    };
    let give_up = args.peer_timeout.map(Duration::from_secs_f64);
    let mut link = PeerPresence::new(started);
    let mut failed = None;
    print_until(&sender.stats(), format, |_| {
        if let Some(e) = sender.failure() {
            failed = Some(e);
            return true;
        }
        let up = sender.is_connected() && sender.error().is_none();
        let at = || {
            sender
                .peer()
                .or(args.peer)
                .map_or_else(|| "?".to_owned(), |a| a.to_string())
        };
        let change = link.update(up);
        match change {
            Some(true) => eprintln!("tandem-send: streaming to {}", at()),
            // Advertising, nobody was expected yet: `waiting for a receiver` said it.
            Some(false) if args.peer.is_some() || link.was_up => {
                eprintln!("tandem-send: no receiver at {}; still trying", at());
            }
            _ => {}
        }
        if let (Some(up), Some((_, registration))) = (change, advertised.as_mut()) {
            // The session came up or went: the advertisement follows the policy.
            let list = if up {
                interfaces(&KindOverrides::new()).unwrap_or_default()
            } else {
                Vec::new()
            };
            let on = p2p_now(SessionState::of(up, sender.peer(), &list));
            match registration.set_peer_to_peer(on) {
                Ok(true) => eprintln!(
                    "tandem-send: advertising {} peer-to-peer links",
                    if on { "on" } else { "off" }
                ),
                Ok(false) => {}
                Err(e) => eprintln!("tandem-send: warning: advertisement unchanged: {e}"),
            }
        }
        if let Some(limit) = give_up
            && link.down_for() > limit
        {
            failed = Some(format!(
                "no receiver at {} for {:.0} s (--peer-timeout)",
                at(),
                limit.as_secs_f64()
            ));
            return true;
        }
        interrupted.load(Ordering::Relaxed)
            || sender.source_ended()
            || args
                .seconds
                .is_some_and(|s| started.elapsed().as_secs_f64() >= s)
    });
    sender.shutdown().context("stopping")?;
    if let Some(e) = failed {
        bail!("{e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_name_the_argument() {
        let e = Args::try_parse_from(["tandem-send", "--size", "640by360"]).expect_err("size");
        assert!(
            e.to_string().contains("--size") && e.to_string().contains("640by360"),
            "{e}"
        );
        let e = Args::try_parse_from(["tandem-send", "--encoder", "x264"]).expect_err("enc");
        assert!(e.to_string().contains("--encoder"), "{e}");
        let e = Args::try_parse_from(["tandem-send", "--path", "wifi"]).expect_err("path");
        assert!(
            e.to_string().contains("--path") && e.to_string().contains("wifi"),
            "{e}"
        );
        let e = Args::try_parse_from(["tandem-send", "--source", "clip.mp4"]).expect_err("src");
        assert!(e.to_string().contains("--source"), "{e}");
        let e = Args::try_parse_from(["tandem-send", "--peer", "localhost"]).expect_err("peer");
        assert!(e.to_string().contains("--peer"), "{e}");
        let e = Args::try_parse_from(["tandem-send", "--fps", "0"]).expect_err("fps");
        assert!(e.to_string().contains("--fps"), "{e}");
        let ok = Args::try_parse_from(["tandem-send", "--size", "1280x720", "--path", "p2p"])
            .expect("valid");
        assert_eq!(ok.size, Some((1280, 720)));
        assert_eq!(ok.path, PathPreference::PeerToPeer);
        assert!(!ok.keep_p2p_discovery);
        let keep = Args::try_parse_from(["tandem-send", "--keep-p2p-discovery"]).expect("valid");
        assert!(keep.keep_p2p_discovery);
        assert_eq!(keep.path_policy, PathPolicy::Adaptive);
        let e = Args::try_parse_from(["tandem-send", "--path-policy", "twice"]).expect_err("pol");
        assert!(
            e.to_string().contains("--path-policy") && e.to_string().contains("twice"),
            "{e}"
        );
        let e = Args::try_parse_from(["tandem-send", "--peer2", "10.0.0.1:5000"])
            .expect_err("peer2 alone");
        assert!(e.to_string().contains("--peer"), "{e}");
        let two = Args::try_parse_from([
            "tandem-send",
            "--path",
            "both",
            "--path-policy",
            "primary-backup",
            "--peer",
            "10.0.0.1:5000",
            "--peer2",
            "10.0.0.1:5001",
        ])
        .expect("valid");
        assert_eq!(
            (two.path, two.path_policy),
            (PathPreference::Both, PathPolicy::PrimaryBackup)
        );
        assert_eq!(two.peer2, Some("10.0.0.1:5001".parse().expect("addr")));
        assert!(parse_size("641x360").expect_err("odd").contains("even"));
    }

    #[test]
    fn every_source_parses_and_its_options_are_checked() {
        let parse = |v: &str| parse_source(v);
        assert_eq!(parse("-"), Ok(SourceArg::Stdin));
        assert_eq!(parse("screen"), Ok(SourceArg::Screen(None)));
        assert_eq!(parse("screen:1"), Ok(SourceArg::Screen(Some(":1".into()))));
        assert_eq!(
            parse("screen::1.0"),
            Ok(SourceArg::Screen(Some(":1.0".into())))
        );
        assert_eq!(
            parse("screen:box:0"),
            Ok(SourceArg::Screen(Some("box:0".into())))
        );
        assert_eq!(parse("camera"), Ok(SourceArg::Camera("/dev/video0".into())));
        assert_eq!(
            parse("camera:2"),
            Ok(SourceArg::Camera("/dev/video2".into()))
        );
        assert_eq!(
            parse("camera:/dev/v4l/by-id/usb-cam"),
            Ok(SourceArg::Camera("/dev/v4l/by-id/usb-cam".into()))
        );
        assert!(parse("screen:").expect_err("empty").contains("display"));
        assert!(parse("camera:").expect_err("empty").contains("device"));
        let e = parse("webcam").expect_err("unknown");
        assert!(e.contains("`webcam`") && e.contains("camera"), "{e}");
        assert_eq!(parse_window("0x1e00007"), Ok(0x1e0_0007));
        assert_eq!(parse_window("31457287"), Ok(31_457_287));
        assert!(parse_window("0").is_err() && parse_window("0xzz").is_err());

        let refused = |argv: &[&str]| {
            let args = Args::try_parse_from([&["tandem-send"], argv].concat()).expect("parses");
            check_source_options(&args)
                .expect_err("refused")
                .to_string()
        };
        let e = refused(&["--source", "screen", "--size", "1280x720"]);
        assert!(
            e.contains("--size 1280x720") && e.contains("the screen"),
            "{e}"
        );
        let e = refused(&["--source", "-", "--fps", "30"]);
        assert!(
            e.contains("--fps 30") && e.contains("standard input"),
            "{e}"
        );
        let e = refused(&["--source", "clip.y4m", "--size", "64x64"]);
        assert!(e.contains("--size") && e.contains("Y4M file"), "{e}");
        let e = refused(&["--window", "0x400001"]);
        assert!(e.contains("--window") && e.contains("test pattern"), "{e}");
        let e = refused(&["--source", "camera", "--no-cursor"]);
        assert!(e.contains("--no-cursor") && e.contains("a camera"), "{e}");
        let e = refused(&["--no-cursor"]);
        assert!(
            e.contains("--no-cursor") && e.contains("test pattern"),
            "{e}"
        );
        let e = refused(&["--source", "camera", "--loop"]);
        assert!(e.contains("--loop") && e.contains("camera"), "{e}");
        let e = Args::try_parse_from(["tandem-send", "--window", "main"]).expect_err("id");
        assert!(e.to_string().contains("--window"), "{e}");
        for ok in [
            &["--source", "camera:1", "--size", "1280x720", "--fps", "30"][..],
            &["--source", "screen", "--window", "0x400001", "--fps", "30"],
            &["--source", "screen:1", "--no-cursor"],
            &["--source", "clip.y4m", "--loop"],
            &["--size", "320x240", "--fps", "30"],
        ] {
            let args = Args::try_parse_from([&["tandem-send"], ok].concat()).expect("parses");
            check_source_options(&args).expect("accepted");
        }
    }
}
