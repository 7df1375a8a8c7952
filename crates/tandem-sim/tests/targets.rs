//! The protocol's targets, asserted in virtual time (exact, so asserting them cannot flake):
//! 60 s of 60 fps, 8 Mbit/s video, seeds 1–5, through the named profiles.

use std::time::Duration;

use tandem_proto::PlayoutPolicy;
use tandem_sim::profile::profile;
use tandem_sim::report::{Figures, figures};
use tandem_sim::runner::{Scenario, run};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

fn sim(name: &str, seed: u64, policy: PlayoutPolicy, recovery: bool) -> Figures {
    let mut s = Scenario::new(profile(name).expect("named profile"), seed);
    s.policy = policy;
    s.recovery = recovery;
    let f = figures(&run(&s), name);
    println!(
        "{name} seed {seed} {} {}: shown {}/{} late-out {}/{} p50 {:.2} p99 {:.2} max {:.2} recovery {:.2} freezes {} overhead {:.2}% wall {:.0} ms",
        f.policy,
        f.recovery,
        f.frames_shown,
        f.frames_sent,
        f.frames_late_outside_stalls,
        f.frames_outside_stalls,
        f.latency_ms.p50,
        f.latency_ms.p99,
        f.latency_ms.max,
        f.recovery_ms_p99,
        f.freezes_over_100ms,
        f.bytes_overhead_pct,
        f.wall_ms
    );
    f
}

fn latency(name: &str, seed: u64) -> Figures {
    sim(name, seed, PlayoutPolicy::Latency, true)
}

#[test]
fn clean_p99_within_4ms_and_overhead_within_3_percent() {
    for seed in SEEDS {
        let f = latency("clean", seed);
        assert_eq!(f.frames_shown, f.frames_sent, "seed {seed}");
        assert!(
            f.latency_ms.p99 <= 4.0,
            "seed {seed}: p99 {}",
            f.latency_ms.p99
        );
        assert!(
            f.bytes_overhead_pct <= 3.0,
            "seed {seed}: overhead {}",
            f.bytes_overhead_pct
        );
    }
}

#[test]
fn awdl_stall_latency_policy_recovers_within_a_frame_and_beats_the_buffer() {
    for seed in SEEDS {
        let wifi = latency("wifi", seed);
        let f = latency("awdl-stall", seed);
        assert!(f.stalls >= 55, "seed {seed}: {} stalls", f.stalls);
        assert!(
            f.latency_ms.p50 <= wifi.latency_ms.p50 + 1.0,
            "seed {seed}: p50 {} vs wifi {}",
            f.latency_ms.p50,
            wifi.latency_ms.p50
        );
        let late = f.frames_late_outside_stalls as f64 / f.frames_outside_stalls as f64;
        assert!(late <= 0.005, "seed {seed}: {late} late outside stalls");
        assert!(
            f.recovery_ms_p99 <= 17.0,
            "seed {seed}: recovery {}",
            f.recovery_ms_p99
        );
        let fixed = sim(
            "awdl-stall",
            seed,
            PlayoutPolicy::Fixed(Duration::from_millis(50)),
            true,
        );
        assert!(
            fixed.latency_ms.p50 >= 50.0,
            "seed {seed}: fixed p50 {}",
            fixed.latency_ms.p50
        );
    }
}

#[test]
fn lossy_shows_995_permille_without_freezes_at_modest_overhead() {
    for seed in SEEDS {
        let wifi = latency("wifi", seed);
        let f = latency("lossy", seed);
        let shown = f.frames_shown as f64 / f.frames_sent as f64;
        assert!(shown >= 0.995, "seed {seed}: shown {shown}");
        assert!(
            f.latency_ms.p99 <= wifi.latency_ms.p99 + 15.0,
            "seed {seed}: p99 {}",
            f.latency_ms.p99
        );
        assert_eq!(f.freezes_over_100ms, 0, "seed {seed}");
        assert!(
            f.bytes_overhead_pct <= 15.0,
            "seed {seed}: overhead {}",
            f.bytes_overhead_pct
        );
    }
}

#[test]
fn burst_shows_99_percent_with_at_most_one_freeze_per_minute() {
    for seed in SEEDS {
        let f = latency("burst", seed);
        let shown = f.frames_shown as f64 / f.frames_sent as f64;
        assert!(shown >= 0.99, "seed {seed}: shown {shown}");
        assert!(
            f.freezes_over_100ms <= 1,
            "seed {seed}: {} freezes",
            f.freezes_over_100ms
        );
    }
}

#[test]
fn recovery_matters_no_recovery_baseline_is_worse_on_loss() {
    let with = latency("lossy", 1);
    let without = sim("lossy", 1, PlayoutPolicy::Latency, false);
    assert!(
        without.frames_shown * 10 < with.frames_shown * 9,
        "{} vs {}",
        without.frames_shown,
        with.frames_shown
    );
    assert_eq!(without.retransmissions, 0);
}

#[test]
fn same_seed_same_figures() {
    let a = latency("awdl-heavy", 7);
    let b = latency("awdl-heavy", 7);
    let strip = |f: Figures| Figures { wall_ms: 0.0, ..f };
    assert_eq!(strip(a), strip(b));
}

#[test]
fn a_minute_simulates_and_reports_its_wall_time() {
    // Wall time depends on the machine, so the ≤ 2 s target is a printed figure (`wall_ms`
    // in every report), not an assertion; this test checks only that it is reported.
    let f = latency("awdl-stall", 1);
    println!(
        "60 s of awdl-stall simulated in {:.0} ms of wall time",
        f.wall_ms
    );
    assert!(f.wall_ms > 0.0);
}

#[test]
fn a_link_slower_than_the_encoder_keeps_latency_bounded() {
    // 8 Mbit/s video into a 6 Mbit/s link: without congestion control the queue (500 ms
    // drop-tail) fills and latency runs to seconds. The sender must learn the capacity
    // itself (the runner does not tell it), cut the bitrate, and skip captures while its
    // own queue is long.
    let link = "wifi,capacity=6mbit".parse().expect("spec");
    let mut s = Scenario::new(link, 1);
    s.duration = Duration::from_secs(30);
    let f = figures(&run(&s), "wifi,capacity=6mbit");
    println!("{f:?}");
    let shown = f.frames_shown as f64 / f.frames_sent as f64;
    let kbps = f.bytes_payload as f64 * 8.0 / 30.0 / 1000.0;
    assert!(f.latency_ms.p95 <= 40.0, "p95 {}", f.latency_ms.p95);
    assert!(shown >= 0.8, "shown {shown}");
    assert!(kbps < 6_000.0, "{kbps} kbit/s sent into a 6 Mbit/s link");
}
