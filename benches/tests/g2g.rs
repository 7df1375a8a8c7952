//! Smoke test of the `g2g` report binary: two seconds on `clean` through the real engine
//! and relay, checking that the JSON carries the simulator's field names, the delivered
//! bitrate and the PSNR, and that frames were shown. Counts only, no latency bound (the
//! report prints latency; it does not assert it); four seconds on `awdl-stall`, checking
//! that the real receiver recognises the relay's stalls and the bitrate holds; two seconds
//! each of libaom and OpenH264 side by side on `clean`, checking that each row names its
//! encoder, shows H.264 frames decoded by their tag, and has its own clean target. Bad
//! arguments are refused with clap's message naming the argument.

use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The streaming tests run one at a time: each is a real pipeline (encoder, decoder, both
/// network drivers, the relay) on real time, and on two cores two of them at once slow each
/// other's encoders enough to change what the other measures (the awdl-stall test's
/// receiver then takes late frames for stalls).
static STREAMING: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    STREAMING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn g2g(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_g2g"))
        .args(args)
        .output()
        .expect("the g2g binary runs")
}

#[test]
fn two_seconds_on_clean_give_the_simulators_figures_with_frames_shown() {
    let _streaming = one_at_a_time();
    let out = g2g(&[
        "--profile",
        "clean",
        "--seconds",
        "2",
        "--warmup",
        "0.5",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "g2g failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["profile"], "clean");
    let results = doc["results"].as_array().expect("results");
    let policies: Vec<&str> = results
        .iter()
        .map(|r| r["policy"].as_str().expect("policy"))
        .collect();
    assert_eq!(policies, ["latency", "fixed:50"], "the baseline runs too");
    for r in results {
        for p in ["p50", "p95", "p99", "max"] {
            assert!(r["latency_ms"][p].is_f64(), "latency_ms.{p} in {r}");
        }
        for p in ["p50", "p99"] {
            assert!(r["encode_ms"][p].as_f64().is_some_and(|v| v > 0.0), "{r}");
            assert!(r["decode_ms"][p].as_f64().is_some_and(|v| v > 0.0), "{r}");
        }
        for key in [
            "frames_sent",
            "frames_shown",
            "frames_late",
            "frames_late_outside_stalls",
            "frames_outside_stalls",
            "frames_skipped",
            "freezes_over_100ms",
            "freezes_over_200ms",
        ] {
            assert!(r[key].is_u64(), "{key} in {r}");
        }
        let sent = r["frames_sent"].as_u64().expect("sent");
        let shown = r["frames_shown"].as_u64().expect("shown");
        // 2 s at 60 fps is 120 captures; a loaded machine may capture a few fewer.
        assert!(sent >= 100, "{sent} frames captured in 2 s: {r}");
        assert!(shown > 0, "no frame shown: {r}");
        assert_eq!(
            r["frames_skipped"].as_u64(),
            Some(sent - shown),
            "every capture is shown or skipped"
        );
        // Beside the latency, the bitrate and picture quality it came at.
        for key in [
            "delivered_kbps",
            "target_kbps_mean",
            "delivered_pct_of_target",
        ] {
            assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {r}");
        }
        let psnr = &r["psnr"];
        assert!(psnr["frames_scored"].as_u64().is_some_and(|n| n > 0), "{r}");
        for key in ["p50_db", "p5_db"] {
            // Lossy AV1 of the pattern: finite, and far from noise.
            assert!(
                psnr[key]
                    .as_f64()
                    .is_some_and(|db| (20.0..70.0).contains(&db)),
                "psnr.{key} in {r}"
            );
        }
    }
    let targets = doc["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "clean has one target: {targets:?}");
    assert!(
        stderr.contains("PASS") || stderr.contains("FAIL"),
        "{stderr}"
    );
}

#[test]
fn aom_and_h264_rows_come_from_one_run_each_with_its_clean_target() {
    let _streaming = one_at_a_time();
    let out = g2g(&[
        "--profile",
        "clean",
        "--seconds",
        "2",
        "--warmup",
        "0.5",
        "--encoder",
        "aom,h264",
        "--no-baseline",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "g2g failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["encoder"], "aom,h264");
    let results = doc["results"].as_array().expect("results");
    let rows: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["encoder"].as_str().expect("encoder"),
                r["policy"].as_str().expect("policy"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("aom", "latency"), ("h264", "latency")],
        "no baseline"
    );
    for r in results {
        let shown = r["frames_shown"].as_u64().expect("shown");
        assert!(shown >= 60, "{shown} frames shown in 2 s: {r}");
        assert!(
            r["decode_ms"]["p50"].as_f64().is_some_and(|v| v > 0.0),
            "{r}"
        );
        assert!(r["delivered_kbps"].as_f64().is_some_and(|v| v > 0.0), "{r}");
        assert!(
            r["psnr"]["p50_db"]
                .as_f64()
                .is_some_and(|db| (20.0..70.0).contains(&db)),
            "{r}"
        );
        assert_eq!(r["engine"]["error"], serde_json::Value::Null, "{r}");
    }
    let targets: Vec<&str> = doc["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["target"].as_str().expect("name"))
        .collect();
    assert_eq!(
        targets.len(),
        2,
        "one clean target per encoder: {targets:?}"
    );
    assert!(targets[0].starts_with("aom clean latency"), "{targets:?}");
    assert!(targets[1].starts_with("h264 clean latency"), "{targets:?}");
}

#[test]
fn the_real_receiver_recognises_the_relays_stalls_and_keeps_the_bitrate() {
    let _streaming = one_at_a_time();
    // Four seconds through `awdl-stall` (a 30–50 ms stall every 1.05 s from 0.5 s on): the
    // receiver tells the stalls from congestion on real sockets and real time, so the
    // target stays where the encoder started it.
    let out = g2g(&[
        "--profile",
        "awdl-stall",
        "--seconds",
        "4",
        "--warmup",
        "0.5",
        "--psnr-every",
        "0",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "g2g failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let latency = &doc["results"][0];
    assert_eq!(latency["policy"], "latency");
    let stalls = latency["engine"]["stalls"].as_u64().expect("stalls");
    let windows = latency["stalls"].as_u64().expect("stall windows");
    println!(
        "{stalls} stalls recognised, {windows} windows counted; delivered {} kbit/s, target {} kbit/s",
        latency["delivered_kbps"], latency["target_kbps_mean"]
    );
    // Warm-up and grace included, the engine sees at least the counted windows but one.
    assert!(stalls + 1 >= windows && windows >= 3, "{latency}");
    // Before stalls were told apart, the target fell to ~70 % of the encoder's bitrate here
    // (and delivery with it); now it holds.
    let start = f64::from(tandem_codec::default_bitrate_kbps(640, 360, 60, 1));
    let target = latency["target_kbps_mean"].as_f64().expect("target");
    let delivered = latency["delivered_kbps"].as_f64().expect("delivered");
    assert!(
        target >= 0.9 * start,
        "target {target} of {start}: {latency}"
    );
    assert!(
        delivered >= 0.9 * start,
        "delivered {delivered} of {start}: {latency}"
    );
}

#[test]
fn bad_arguments_are_refused_naming_the_argument() {
    for (args, named) in [
        (&["--profile", "mars"][..], "--profile"),
        (&["--policy", "fixed:soon"][..], "--policy"),
        (&["--size", "641x360"][..], "--size"),
        (&["--seconds", "0"][..], "--seconds"),
        (&["--fps", "0"][..], "--fps"),
        (&["--encoder", "x264"][..], "--encoder"),
        (&["--encoder", "aom,h264@0"][..], "--encoder"),
    ] {
        let out = g2g(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
