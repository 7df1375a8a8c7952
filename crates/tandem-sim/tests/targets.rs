//! The protocol's targets, asserted in virtual time (exact, so asserting them cannot flake):
//! 60 s of 60 fps, 8 Mbit/s video, seeds 1–5, through the named profiles.

use std::time::Duration;

use tandem_proto::PlayoutPolicy;
use tandem_sim::impair::LinkConfig;
use tandem_sim::profile::profile;
use tandem_sim::report::{Figures, figures, frame_figures, latency_between};
use tandem_sim::runner::{Scenario, run};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

fn sim(name: &str, seed: u64, policy: PlayoutPolicy, recovery: bool) -> Figures {
    let mut s = Scenario::new(profile(name).expect("named profile"), seed);
    s.policy = policy;
    s.recovery = recovery;
    let f = figures(&run(&s), name);
    report(name, seed, &f);
    f
}

fn report(name: &str, seed: u64, f: &Figures) {
    println!(
        "{name} seed {seed} {} {}: video {:.2} Mbit/s ({:.1} %) shown {}/{} late-out {}/{} p50 {:.2} p95 {:.2} p99 {:.2} max {:.2} recovery {:.2} freezes {} overhead {:.2}% wall {:.0} ms",
        f.policy,
        f.recovery,
        f.video_mbps,
        f.video_pct,
        f.frames_shown,
        f.frames_sent,
        f.frames_late_outside_stalls,
        f.frames_outside_stalls,
        f.latency_ms.p50,
        f.latency_ms.p95,
        f.latency_ms.p99,
        f.latency_ms.max,
        f.recovery_ms_p99,
        f.freezes_over_100ms,
        f.bytes_overhead_pct,
        f.wall_ms
    );
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

fn spec(spec: &str, seed: u64) -> Figures {
    let link: LinkConfig = spec.parse().expect("spec");
    let f = figures(&run(&Scenario::new(link, seed)), spec);
    report(spec, seed, &f);
    f
}

/// The targets a link with stalls must meet against the same link without them: ≥ 90 % of
/// its video delivered, p50 within 1 ms, ≤ 0.5 % of frames away from stalls late.
fn assert_stalls_cost_nothing(label: &str, f: &Figures, clear: &Figures) {
    assert!(
        f.video_mbps >= 0.9 * clear.video_mbps,
        "{label}: {:.2} Mbit/s delivered, {:.2} without stalls",
        f.video_mbps,
        clear.video_mbps
    );
    assert!(
        f.latency_ms.p50 <= clear.latency_ms.p50 + 1.0,
        "{label}: p50 {} vs {} without stalls",
        f.latency_ms.p50,
        clear.latency_ms.p50
    );
    let late = f.frames_late_outside_stalls as f64 / f.frames_outside_stalls as f64;
    assert!(late <= 0.005, "{label}: {late} late outside stalls");
}

#[test]
fn stalls_are_not_congestion_the_video_keeps_its_bitrate() {
    // The named AWDL profiles against `wifi`, the same link without the stalls.
    for seed in SEEDS {
        let wifi = latency("wifi", seed);
        for name in ["awdl-stall", "awdl-heavy"] {
            let f = latency(name, seed);
            assert_stalls_cost_nothing(&format!("{name} seed {seed}"), &f, &wifi);
        }
    }
}

#[test]
fn awdl_heavy_settles_within_17ms_once_the_stalls_are_forecast() {
    // Inside `awdl-heavy`'s stalls the radio loses 10 % of what it holds. Once the receiver
    // has learned the period (four stalls), the sender gives frames sent into a forecast
    // stall parity, and the burst completes them without a NACK round trip.
    for seed in SEEDS {
        let s = Scenario::new(profile("awdl-heavy").expect("named"), seed);
        let r = run(&s);
        let all = frame_figures(&r.frames, s.frame_interval(), &r.stall_windows);
        let forecast = frame_figures(&r.frames, s.frame_interval(), &r.stall_windows[5..]);
        println!(
            "awdl-heavy seed {seed}: settling p99 {:.2} ms over all {} stalls, {:.2} from the sixth; {} frames protected",
            all.recovery_ms_p99,
            all.stalls,
            forecast.recovery_ms_p99,
            r.sender.stall_protected_frames
        );
        assert!(
            forecast.recovery_ms_p99 <= 17.0,
            "seed {seed}: settling {}",
            forecast.recovery_ms_p99
        );
        assert!(r.sender.stall_protected_frames > 0);
    }
}

#[test]
fn any_stall_up_to_100ms_every_500ms_or_more_keeps_90_percent_of_the_video() {
    // Stalls of D ≤ 100 ms every P ≥ 500 ms on links of 20 Mbit/s and more, each against
    // the same link without them (seeds 1–5 for the corners, seed 1 inside). The settling
    // time is not asserted here: on the 20 Mbit/s link a frame captured in a 65–100 ms stall
    // waits for the held data to drain (28–40 ms measured), which no controller can shorten.
    for capacity in ["20mbit", "60mbit"] {
        let link = format!("delay=3ms,jitter=2ms,loss=0.3%,capacity={capacity}");
        for (stall, seeds) in [
            ("100ms/500ms", &SEEDS[..]),
            ("30ms/500ms", &SEEDS[..1]),
            ("65ms/730ms", &SEEDS[..]),
            ("100ms/1049ms", &SEEDS[..1]),
            ("30ms-90ms/2000ms", &SEEDS[..1]),
        ] {
            for &seed in seeds {
                let clear = spec(&link, seed);
                let label = format!("{link},stall={stall}");
                let f = spec(&label, seed);
                assert_stalls_cost_nothing(&format!("{label} seed {seed}"), &f, &clear);
            }
        }
    }
}

#[test]
fn a_link_slower_than_the_encoder_keeps_latency_bounded() {
    // 8 Mbit/s video into a 6 Mbit/s link: without congestion control the queue (500 ms
    // drop-tail) fills and latency runs to seconds. The sender must learn the capacity
    // itself (the runner does not tell it), cut the bitrate, and skip captures while its
    // own queue is long. Before stalls were told from queues (issue 15), 60 s on seeds
    // 1–5 gave p95 23.2–24.8 ms with 4.0–4.8 Mbit/s delivered: no worse than that.
    for seed in SEEDS {
        let f = spec("wifi,capacity=6mbit", seed);
        let shown = f.frames_shown as f64 / f.frames_sent as f64;
        assert!(
            f.latency_ms.p95 <= 24.8,
            "seed {seed}: p95 {}",
            f.latency_ms.p95
        );
        assert!(f.video_mbps >= 3.95, "seed {seed}: {} Mbit/s", f.video_mbps);
        assert!(
            f.video_mbps < 6.0,
            "seed {seed}: {} Mbit/s into 6",
            f.video_mbps
        );
        assert!(shown >= 0.8, "seed {seed}: shown {shown}");
        // The same link stalling still backs off: the stalls are not a licence to queue.
        let f = spec("wifi,capacity=6mbit,stall=30ms-50ms/1049ms", seed);
        assert!(
            f.latency_ms.p95 <= 40.0,
            "stalling, seed {seed}: p95 {}",
            f.latency_ms.p95
        );
        assert!(
            f.video_mbps < 6.0,
            "stalling, seed {seed}: {} Mbit/s",
            f.video_mbps
        );
    }
}

#[test]
fn a_capacity_step_down_is_followed_within_two_seconds() {
    // `step`: 20 Mbit/s falling to 4 at t = 20 s. Latency over the 2 s after the step stays
    // within 150 ms at p99, and from 2 s after it the latency is that of a steady 4 Mbit/s
    // link (+5 ms at p95): a 60 fps frame at 4 Mbit/s takes ~14 ms to serialize, so the
    // `wifi` p95 itself is out of any controller's reach there.
    let step = Duration::from_secs(20);
    for seed in SEEDS {
        let r = run(&Scenario::new(profile("step").expect("step"), seed));
        let after = latency_between(&r.frames, step, step + Duration::from_secs(2));
        let settled = latency_between(
            &r.frames,
            step + Duration::from_secs(2),
            step + Duration::from_secs(12),
        );
        let steady = spec("wifi,capacity=4mbit", seed);
        let wifi = latency("wifi", seed);
        println!(
            "step seed {seed}: 2 s after the step p99 {:.2} max {:.2}; from 2 s on p95 {:.2} (steady 4 Mbit/s p95 {:.2}, wifi p95 {:.2})",
            after.p99, after.max, settled.p95, steady.latency_ms.p95, wifi.latency_ms.p95
        );
        assert!(
            after.p99 <= 150.0,
            "seed {seed}: p99 {} after the step",
            after.p99
        );
        assert!(
            settled.p95 <= steady.latency_ms.p95 + 5.0,
            "seed {seed}: p95 {} from 2 s after the step",
            settled.p95
        );
    }
}

#[test]
fn the_receiver_learns_the_awdl_period() {
    let r = run(&Scenario::new(profile("awdl-stall").expect("named"), 1));
    let s = &r.receiver;
    println!(
        "awdl-stall seed 1: {} of {} stalls recognised, {} capped, {:?} in episodes, period {:?}",
        s.stalls,
        r.stall_windows.len(),
        s.stalls_capped,
        s.stalled,
        s.stall_period
    );
    let period = s.stall_period.expect("a period").as_secs_f64();
    let awdl = tandem_sim::profile::AWDL_PERIOD.as_secs_f64();
    assert!((period - awdl).abs() < 0.002, "{period} s");
    assert!(s.stalls * 10 >= r.stall_windows.len() as u64 * 9);
    assert_eq!(s.stalls_capped, 0);
}
