//! Encode and decode time per frame, on the test pattern at the default bitrates (libaom,
//! rav1e and OpenH264 encoding; dav1d and OpenH264 decoding their encoders' streams), and
//! the test pattern's own render time.
//!
//! Encoders run on a stream (each iteration encodes the next frame), as they do live; the
//! decoder decodes a pre-encoded stream in a loop, restarting at its keyframe.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tandem_codec::{
    DecoderConfig, EncoderConfig, EncoderKind, Frame, TestPattern, new_decoder, new_encoder,
};

const SIZES: [(u32, u32, u32); 2] = [(640, 360, 60), (1280, 720, 30)];

fn frames(w: u32, h: u32, fps: u32, n: u32) -> Vec<Frame> {
    let pattern = TestPattern::new(w, h, fps, 1).expect("pattern size");
    (0..n).map(|i| pattern.frame_at(i)).collect()
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_frame");
    g.measurement_time(Duration::from_secs(8));
    // Flat sampling: each sample times the same number of calls. With linear sampling a
    // lagging encoder (rav1e returns nothing for several calls, then works in bursts) skews
    // the regression slope far below the real per-frame cost.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    for kind in [EncoderKind::Aom, EncoderKind::Rav1e, EncoderKind::OpenH264] {
        for (w, h, fps) in SIZES {
            if kind == EncoderKind::Rav1e && w > 640 {
                // rav1e at 720p takes over 100 ms a frame here: minutes of bench for a
                // figure the codec report already prints.
                continue;
            }
            let src = frames(w, h, fps, 120);
            let config = EncoderConfig::new(w, h, fps).with_kind(kind);
            g.bench_function(format!("{kind}_{w}x{h}"), |b| {
                let mut enc = new_encoder(&config).expect("encoder opens");
                let mut i = 0usize;
                b.iter(|| {
                    let out = enc.encode(&src[i % src.len()]).expect("encodes");
                    i += 1;
                    black_box(out)
                });
            });
        }
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_frame");
    // Each decoder on its own encoder's stream: dav1d on libaom's, OpenH264 on OpenH264's.
    for (kind, name) in [
        (EncoderKind::Aom, "dav1d"),
        (EncoderKind::OpenH264, "openh264"),
    ] {
        for (w, h, fps) in SIZES {
            let config = EncoderConfig::new(w, h, fps).with_kind(kind);
            let mut enc = new_encoder(&config).expect("encoder opens");
            let units: Vec<_> = frames(w, h, fps, 120)
                .iter()
                .flat_map(|f| enc.encode(f).expect("encodes"))
                .collect();
            g.bench_function(format!("{name}_{w}x{h}"), |b| {
                let mut dec = new_decoder(kind.bitstream(), &DecoderConfig::default())
                    .expect("decoder opens");
                let mut i = 0usize;
                b.iter(|| {
                    // Wrapping restarts at unit 0, the keyframe, so every unit decodes.
                    let u = &units[i % units.len()];
                    i += 1;
                    black_box(
                        dec.decode(u.data.clone(), u.frame_id, u.capture_us)
                            .expect("decodes"),
                    )
                });
            });
        }
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("render_pattern");
    for (w, h) in [(640, 360), (1280, 720), (1920, 1080)] {
        let pattern = TestPattern::new(w, h, 60, 1).expect("pattern size");
        g.bench_function(format!("{w}x{h}"), |b| {
            let mut n = 0u32;
            b.iter(|| {
                n = n.wrapping_add(1);
                black_box(pattern.frame_at(n))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, render, encode, decode);
criterion_main!(benches);
