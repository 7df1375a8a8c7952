//! End to end: glass-to-glass latency of the real pipeline — the `tandem` sender (test
//! pattern, libaom realtime), `tandem-relay` on `clean`, the `tandem` receiver (dav1d,
//! latency policy) — on loopback at 640×360, 60 fps.
//!
//! What an iteration means here: not the wall time of a loop turn, which is the frame
//! interval (the capture clock sets it, so it says nothing), but one displayed frame's
//! capture-to-display latency read from its pixel code. `iter_custom` returns the sum of the
//! next `iters` displayed frames' latencies, so criterion's estimate is the mean
//! glass-to-glass latency per frame on `clean`, and its change detection flags a commit
//! that makes the pipeline slower (encoder, packetization, drivers, playout, decoder). The
//! `g2g` report gives the full distribution and the targets; this is the regression
//! tracker. Because criterion plans its iterations from the returned times (about 5 ms a
//! frame) while each frame takes 16.7 ms of wall time, the bench runs about three times
//! longer than its configured times.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tandem_benches::g2g::{Pipeline, PipelineConfig};
use tandem_sim::profile::parse_profile_or_spec;

/// Longest wait for the next displayed frame before the bench gives up.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

fn glass_to_glass(c: &mut Criterion) {
    let link = parse_profile_or_spec("clean").expect("the clean profile");
    // No PSNR scoring: the figure tracked here stays the one it always was.
    let config = PipelineConfig {
        psnr_every: 0,
        ..PipelineConfig::new(link)
    };
    let pipeline = Pipeline::start(&config).expect("the pipeline starts");
    // The first second carries the encoder's start-up and the first keyframe; the steady
    // state is what the bench tracks.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        let _ = pipeline.shown().recv_timeout(FRAME_TIMEOUT);
    }
    let mut g = c.benchmark_group("e2e");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("g2g_clean_640x360_aom", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    pipeline
                        .shown()
                        .recv_timeout(FRAME_TIMEOUT)
                        .expect("frames keep arriving")
                        .g2g()
                })
                .sum()
        });
    });
    g.finish();
    let unread = pipeline.codes_unread();
    pipeline.shutdown().expect("the pipeline stops cleanly");
    assert_eq!(unread, 0, "every displayed picture carried a readable code");
}

criterion_group!(benches, glass_to_glass);
criterion_main!(benches);
