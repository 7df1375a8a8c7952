//! `tandem-sim`: run a virtual-time streaming simulation and print its figures.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tandem_proto::{PathPolicy, PlayoutPolicy};
use tandem_sim::profile::{DUAL_PROFILE_NAMES, dual_profile, parse_profile_or_spec};
use tandem_sim::report::{Figures, figures};
use tandem_sim::runner::{Scenario, run};

/// Streams a synthetic 60 fps video between two tandem-proto endpoints through an impaired
/// link in virtual time, and reports latency, smoothness and overhead.
#[derive(Parser, Debug)]
#[command(name = "tandem-sim", version)]
struct Args {
    /// Impairment profile (clean, wifi, awdl-stall, awdl-heavy, lossy, burst, reorder, step), a
    /// spec string such as "delay=2ms,jitter=1.5ms,loss=0.1%,stall=40ms/1050ms", or a
    /// two-path profile (awdl-dual, awdl-dual-heavy, dual-independent, dual-one-dies).
    #[arg(long, default_value = "awdl-stall")]
    profile: String,
    /// How a two-path profile's session spreads datagrams: duplicate | primary-backup |
    /// adaptive.
    #[arg(long, default_value = "adaptive")]
    path_policy: PathPolicy,
    /// Same as --profile, for spec strings; overrides it.
    #[arg(long)]
    impair: Option<String>,
    /// Playout policy: latency | smooth | smooth:MIN-MAX (ms) | fixed:MS.
    #[arg(long, default_value = "latency", value_parser = parse_policy)]
    policy: PlayoutPolicy,
    /// Virtual seconds to simulate.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Frames per second.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// Encoder bitrate, e.g. 8mbit, 2500kbit.
    #[arg(long, default_value = "8mbit", value_parser = parse_bitrate)]
    bitrate: u64,
    /// Also run the fixed:50 buffer and the no-recovery baseline on the same seed; with a
    /// two-path profile, every path policy and the first path alone instead.
    #[arg(long)]
    compare: bool,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw per-frame latency over time to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn parse_policy(s: &str) -> Result<PlayoutPolicy, String> {
    s.parse()
}

fn parse_bitrate(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = lower.strip_suffix("kbit") {
        (n, 1e3)
    } else {
        (lower.as_str(), 1.0)
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok((v * mult) as u64),
        _ => Err(format!(
            "invalid bitrate {s:?}: expected e.g. 8mbit, 2500kbit or 8000000"
        )),
    }
}

fn print_table(rows: &[Figures]) {
    println!(
        "{:<16} {:<12} {:<14} {:<9} {:>6} {:>6} {:>5} {:>8} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6} {:>13}",
        "profile",
        "policy",
        "paths",
        "recovery",
        "sent",
        "shown",
        "late",
        "late-out",
        "skipped",
        "frz",
        "gap",
        "p50",
        "p95",
        "p99",
        "max",
        "recov99",
        "ovh%",
        "Mbit/s",
        "video%",
        "path MB"
    );
    for f in rows {
        println!(
            "{:<16} {:<12} {:<14} {:<9} {:>6} {:>6} {:>5} {:>8} {:>7} {:>6} {:>6.1} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>6.2} {:>6.2} {:>6.1} {:>13}",
            f.profile,
            f.policy,
            if f.path_policy.is_empty() {
                "one"
            } else {
                &f.path_policy
            },
            f.recovery,
            f.frames_sent,
            f.frames_shown,
            f.frames_late,
            f.frames_late_outside_stalls,
            f.frames_skipped,
            f.freezes_over_100ms,
            f.longest_gap_ms,
            f.latency_ms.p50,
            f.latency_ms.p95,
            f.latency_ms.p99,
            f.latency_ms.max,
            f.recovery_ms_p99,
            f.bytes_overhead_pct,
            f.video_mbps,
            f.video_pct,
            f.path_bytes
                .iter()
                .map(|b| format!("{:.1}", *b as f64 / 1e6))
                .collect::<Vec<_>>()
                .join(" + ")
        );
    }
}

fn main() {
    // The error chain names the argument and what it accepts; a backtrace would bury it.
    if let Err(e) = run_cli(Args::parse()) {
        eprintln!("tandem-sim: {e:#}");
        std::process::exit(2);
    }
}

fn run_cli(args: Args) -> Result<()> {
    let profile = args.impair.clone().unwrap_or(args.profile.clone());
    let dual = dual_profile(&profile);
    let link = match &dual {
        Some([first, _]) => first.clone(),
        None => parse_profile_or_spec(&profile).with_context(|| {
            format!(
                "--profile {profile:?} (two-path profiles: {})",
                DUAL_PROFILE_NAMES.join(", ")
            )
        })?,
    };
    if !(args.seconds > 0.0 && args.seconds <= 24.0 * 3600.0) {
        bail!(
            "--seconds must be between 0 and 86400, got {}",
            args.seconds
        );
    }
    if args.fps == 0 || args.fps > 1000 {
        bail!("--fps must be between 1 and 1000, got {}", args.fps);
    }
    let mut base = match dual.clone() {
        Some(links) => Scenario::dual(links, args.path_policy, args.seed),
        None => Scenario::new(link, args.seed),
    };
    base.duration = Duration::from_secs_f64(args.seconds);
    base.fps = args.fps;
    base.bitrate_bps = args.bitrate;
    base.policy = args.policy;
    let mut scenarios = vec![base.clone()];
    if args.compare && dual.is_some() {
        for policy in PathPolicy::ALL
            .into_iter()
            .filter(|p| *p != args.path_policy)
        {
            scenarios.push(Scenario {
                path_policy: policy,
                ..base.clone()
            });
        }
        scenarios.push(Scenario {
            second: None,
            ..base.clone()
        });
    } else if args.compare {
        let mut fixed = base.clone();
        fixed.policy = PlayoutPolicy::Fixed(Duration::from_millis(50));
        let mut none = base.clone();
        none.recovery = false;
        scenarios.push(fixed);
        scenarios.push(none);
    }
    let runs: Vec<_> = scenarios.iter().map(run).collect();
    let rows: Vec<Figures> = runs.iter().map(|r| figures(r, &profile)).collect();
    if let Some(path) = &args.plot {
        let labelled: Vec<(String, &_)> = rows
            .iter()
            .zip(&runs)
            .map(|(f, r)| {
                (
                    format!(
                        "{} — {} ({}), p50 {:.1} ms, p99 {:.1} ms",
                        f.profile, f.policy, f.recovery, f.latency_ms.p50, f.latency_ms.p99
                    ),
                    r,
                )
            })
            .collect();
        tandem_sim::plot::latency_svg(path, &labelled)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--plot {}", path.display()))?;
    }
    if args.json {
        let doc = serde_json::json!({
            "profile": profile,
            "spec": base.forward.to_string(),
            "seed": args.seed,
            "seconds": args.seconds,
            "fps": args.fps,
            "bitrate_bps": args.bitrate,
            "results": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_bitrates_parse_and_errors_name_the_value() {
        assert_eq!(
            parse_policy("fixed:50"),
            Ok(PlayoutPolicy::Fixed(Duration::from_millis(50)))
        );
        assert_eq!(
            parse_policy("smooth:5-80"),
            Ok(PlayoutPolicy::Smooth {
                min: Duration::from_millis(5),
                max: Duration::from_millis(80)
            })
        );
        assert!(
            parse_policy("fast")
                .expect_err("must be rejected")
                .contains("\"fast\"")
        );
        assert!(
            parse_policy("fixed:x")
                .expect_err("must be rejected")
                .contains("\"x\"")
        );
        assert_eq!(parse_bitrate("8mbit"), Ok(8_000_000));
        assert_eq!(parse_bitrate("2500kbit"), Ok(2_500_000));
        assert!(
            parse_bitrate("-1")
                .expect_err("must be rejected")
                .contains("\"-1\"")
        );
    }
}
