//! What scoring PSNR costs the glass-to-glass figures, measured in one process: the real
//! pipeline on `clean` (latency policy, 640×360@60, libaom) with PSNR off, every
//! [`DEFAULT_PSNR_EVERY`]th frame and every frame, interleaved so machine noise falls on
//! each alike, and the time one score takes on one core. Prints, asserts nothing: it is
//! the measurement behind [`DEFAULT_PSNR_EVERY`]'s doc, run by hand (about a minute):
//!
//! ```sh
//! cargo test --release -p tandem-benches --test psnr_cost -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use tandem::VideoSource;
use tandem::stats::wall_us;
use tandem_benches::g2g::{DEFAULT_PSNR_EVERY, PipelineConfig, measure, source_picture};
use tandem_codec::TestPattern;
use tandem_sim::profile::parse_profile_or_spec;

#[test]
#[ignore = "a measurement (about a minute of real streaming); run by hand with --nocapture"]
fn psnr_scoring_cost_against_no_scoring() {
    // One score, alone on a core: rebuild the source picture, compare.
    let mut source = tandem::TestPatternSource::new(640, 360, 60).expect("pattern");
    let mut pattern = TestPattern::new(640, 360, 60, 1).expect("pattern");
    let frames: Vec<_> = (0..120u64)
        .map(|i| {
            source
                .capture(wall_us() + i)
                .expect("capture")
                .picture()
                .expect("never ends")
        })
        .collect();
    let started = Instant::now();
    for f in &frames {
        let code = tandem_codec::pixelcode::read(f).expect("a code");
        let db = tandem_codec::psnr(&source_picture(&mut pattern, code), f).expect("size");
        assert!(db.is_infinite());
    }
    let each = started.elapsed() / frames.len() as u32;
    println!(
        "one score (rebuild + PSNR, 640×360): {:.3} ms",
        each.as_secs_f64() * 1e3
    );

    let link = parse_profile_or_spec("clean").expect("profile");
    let plan = [0, DEFAULT_PSNR_EVERY, 1, 0, DEFAULT_PSNR_EVERY, 1];
    println!("psnr_every  g2g p50  g2g p99  enc p50  dec p50  scored  dropped  psnr p50");
    for every in plan {
        let config = PipelineConfig {
            psnr_every: every,
            ..PipelineConfig::new(link.clone())
        };
        let m = measure(&config, Duration::from_secs(1), Duration::from_secs(8))
            .expect("the pipeline runs");
        println!(
            "{every:>10}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>6}  {:>7}  {:>8}",
            m.frames.latency_ms.p50,
            m.frames.latency_ms.p99,
            m.encode_ms.p50,
            m.decode_ms.p50,
            m.psnr.frames_scored,
            m.psnr.samples_dropped,
            m.psnr.p50_db.map_or("-".into(), |d| format!("{d:.2}")),
        );
    }
}
