//! `tandem-relay --listen ADDR --to ADDR --profile SPEC`: relays UDP through a `tandem-sim`
//! link in real time and prints its counters every second.
//!
//! With a dual profile (`awdl-dual`, …: the two paths of one session, see `tandem-sim`'s
//! `dual_profile`), `--listen2 ADDR --to2 ADDR` relay the second path through the second
//! link, on the same radio schedule as the first (see `tandem_relay::spawn_dual`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tandem_relay::{Relay, RelayConfig, spawn_dual, start};
use tandem_sim::impair::LinkConfig;
use tandem_sim::profile::{DUAL_PROFILE_NAMES, dual_profile, parse_profile_or_spec};

#[derive(Parser, Debug)]
#[command(about = "Relay UDP through a tandem-sim impairment profile, both directions")]
struct Args {
    /// Address clients send to.
    #[arg(long)]
    listen: SocketAddr,
    /// Address to forward to.
    #[arg(long)]
    to: SocketAddr,
    /// Profile name or spec string, as in tandem-sim (`awdl-stall`, `wifi,loss=1%`), or a
    /// dual profile (`awdl-dual`, `awdl-dual-heavy`, `dual-independent`, `dual-one-dies`),
    /// which needs --listen2 and --to2.
    #[arg(long, default_value = "clean")]
    profile: String,
    /// With a dual profile: address clients send to on the second path.
    #[arg(long)]
    listen2: Option<SocketAddr>,
    /// With a dual profile: address to forward to on the second path.
    #[arg(long)]
    to2: Option<SocketAddr>,
    /// Seed of every random stream (with a dual profile, of both links' shared stall
    /// schedule and the first link's other streams).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
    /// Microseconds before each delivery that the relay spins instead of sleeping, to be on
    /// time (0: never spin, save the CPU).
    #[arg(long, default_value_t = tandem_relay::DEFAULT_SPIN_WINDOW.as_micros() as u64)]
    spin_us: u64,
}

/// What the arguments ask for: one link, or two on one radio.
#[derive(Debug)]
enum Plan {
    One(Box<LinkConfig>),
    Two(Box<[LinkConfig; 2]>, SocketAddr, SocketAddr),
}

/// Reads the profile and checks that the second path's addresses come exactly with a
/// dual profile.
fn plan(args: &Args) -> Result<Plan> {
    match (dual_profile(&args.profile), args.listen2, args.to2) {
        (Some(links), Some(listen2), Some(to2)) => Ok(Plan::Two(Box::new(links), listen2, to2)),
        (Some(_), None, _) => bail!(
            "the dual profile {:?} relays two paths: --listen2 (where clients send on the \
             second path) is missing",
            args.profile
        ),
        (Some(_), _, None) => bail!(
            "the dual profile {:?} relays two paths: --to2 (where the second path forwards \
             to) is missing",
            args.profile
        ),
        (None, None, None) => Ok(Plan::One(Box::new(
            parse_profile_or_spec(&args.profile)
                .map_err(|e| anyhow::anyhow!("--profile {:?}: {e}", args.profile))?,
        ))),
        (None, _, _) => bail!(
            "--listen2 and --to2 need a dual profile ({}); --profile is {:?}",
            DUAL_PROFILE_NAMES.join(", "),
            args.profile
        ),
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("tandem-relay: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let config = |listen, to, link| RelayConfig {
        seed: args.seed,
        spin_window: Duration::from_micros(args.spin_us),
        ..RelayConfig::new(listen, to, link)
    };
    let relays: Vec<Relay> = match plan(&args)? {
        Plan::One(link) => {
            vec![start(config(args.listen, args.to, *link)).context("starting the relay")?]
        }
        Plan::Two(links, listen2, to2) => {
            let [first, second] = *links;
            let (a, b) = spawn_dual(
                config(args.listen, args.to, first),
                config(listen2, to2, second),
            )
            .context("starting the relays")?;
            vec![a, b]
        }
    };
    let targets = [args.to, args.to2.unwrap_or(args.to)];
    for (i, (relay, to)) in relays.iter().zip(targets).enumerate() {
        eprintln!(
            "tandem-relay: link {}: {} -> {to}",
            i + 1,
            relay.local_addr()
        );
    }
    let mut elapsed = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        elapsed += 1;
        for (i, relay) in relays.iter().enumerate() {
            let c = relay.counters();
            let mut late: Vec<f64> = c.lateness_us.iter().map(|&v| f64::from(v)).collect();
            late.sort_by(f64::total_cmp);
            let link = if relays.len() > 1 {
                format!("  link {}", i + 1)
            } else {
                String::new()
            };
            println!(
                "{elapsed:>5} s{link}  up {} in / {} out  down {} in / {} out  strays {}  relay lateness p99 {} us",
                c.upstream.link.datagrams_in,
                c.upstream.forwarded,
                c.downstream.link.datagrams_in,
                c.downstream.forwarded,
                c.strays,
                tandem_sim::report::percentile(&late, 0.99)
            );
        }
        if relays.iter().any(Relay::is_finished) {
            bail!("the relay stopped (socket error)");
        }
        if args.seconds.is_some_and(|s| elapsed >= s) {
            return Ok(());
        }
    }
}
