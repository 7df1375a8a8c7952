//! Protocol data-path benchmarks (one core).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_benches::{Loopback, SESSION};
use tandem_proto::{
    Endpoint, FecMode, OutgoingFrame, Receiver, ReceiverConfig, Sender, SenderConfig,
};

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("packetize_serialize_parse_reassemble");
    for size in [16_667usize, 166_667] {
        let data = Bytes::from(vec![0x42u8; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("frame_{size}B"), |b| {
            let mut lb = Loopback::new();
            lb.frame(data.clone(), true);
            b.iter(|| black_box(lb.frame(data.clone(), false)));
        });
    }
    g.finish();
}

fn receiver_per_packet(c: &mut Criterion) {
    // Pre-serialize a long stream of 1200-byte media datagrams, then time only the receiver.
    let t0 = Instant::now();
    let mut cfg = SenderConfig::new(SESSION);
    cfg.fec = FecMode::Off;
    cfg.initial_capacity_bps = u64::MAX / 4;
    let mut tx = Sender::new(cfg, t0);
    let mut datagrams = Vec::new();
    for i in 0..2_000u32 {
        let now = t0 + Duration::from_micros(16_667 * u64::from(i));
        let frame = OutgoingFrame::av1(Bytes::from(vec![7u8; 16_667]), now, i == 0);
        tx.send_frame(now, frame).expect("frame fits");
        let later = now + Duration::from_millis(10);
        while let Some(t) = tx.poll_datagram(later) {
            datagrams.push((later, t));
        }
    }
    let mut g = c.benchmark_group("receiver");
    g.throughput(Throughput::Elements(datagrams.len() as u64));
    g.bench_function("handle_datagram_per_packet", |b| {
        b.iter(|| {
            let mut rx = Receiver::new(ReceiverConfig::new(SESSION), t0);
            for (at, d) in &datagrams {
                rx.handle_datagram(*at, d.clone());
                while rx.poll_datagram(*at).is_some() {}
                while rx.poll_event().is_some() {}
            }
            black_box(rx.stats().frames_delivered)
        });
    });
    g.finish();
}

criterion_group!(benches, pipeline, receiver_per_packet);
criterion_main!(benches);
