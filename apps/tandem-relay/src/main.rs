//! `tandem-relay --listen ADDR --to ADDR --profile SPEC`: relays UDP through a `tandem-sim`
//! link in real time and prints its counters every second.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tandem_relay::{RelayConfig, start};
use tandem_sim::profile::parse_profile_or_spec;

#[derive(Parser, Debug)]
#[command(about = "Relay UDP through a tandem-sim impairment profile, both directions")]
struct Args {
    /// Address clients send to.
    #[arg(long)]
    listen: SocketAddr,
    /// Address to forward to.
    #[arg(long)]
    to: SocketAddr,
    /// Profile name or spec string, as in tandem-sim (`awdl-stall`, `wifi,loss=1%`).
    #[arg(long, default_value = "clean", value_parser = parse_link)]
    profile: tandem_sim::impair::LinkConfig,
    /// Seed of every random stream.
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

fn parse_link(s: &str) -> Result<tandem_sim::impair::LinkConfig, String> {
    parse_profile_or_spec(s).map_err(|e| e.to_string())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("tandem-relay: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let relay = start(RelayConfig {
        seed: args.seed,
        spin_window: Duration::from_micros(args.spin_us),
        ..RelayConfig::new(args.listen, args.to, args.profile)
    })
    .context("starting the relay")?;
    eprintln!("tandem-relay: {} -> {}", relay.local_addr(), args.to);
    let mut elapsed = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        elapsed += 1;
        let c = relay.counters();
        let mut late: Vec<f64> = c.lateness_us.iter().map(|&v| f64::from(v)).collect();
        late.sort_by(f64::total_cmp);
        println!(
            "{elapsed:>5} s  up {} in / {} out  down {} in / {} out  strays {}  relay lateness p99 {} us",
            c.upstream.link.datagrams_in,
            c.upstream.forwarded,
            c.downstream.link.datagrams_in,
            c.downstream.forwarded,
            c.strays,
            tandem_sim::report::percentile(&late, 0.99)
        );
        if relay.is_finished() {
            anyhow::bail!("the relay stopped (socket error)");
        }
        if args.seconds.is_some_and(|s| elapsed >= s) {
            return Ok(());
        }
    }
}
