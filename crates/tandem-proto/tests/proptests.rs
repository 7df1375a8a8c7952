//! Property tests: every packet type round-trips, arbitrary bytes never panic the parser,
//! and reassembly is correct under any loss, reordering and duplication.

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tandem_proto::fec::encode_parity;
use tandem_proto::packet::*;
use tandem_proto::reassembly::{FrameReassembler, Insert};

const S: u32 = 0xabcd;

fn codec() -> impl Strategy<Value = Codec> {
    (0u8..16).prop_map(Codec::from_nibble)
}

fn frame_info() -> impl Strategy<Value = FrameInfo> {
    (
        any::<u32>(),
        1..=MAX_FRAGMENTS,
        codec(),
        0u8..4,
        0u64..(1 << 48),
    )
        .prop_map(
            |(frame_id, fragment_count, codec, flags, capture_us)| FrameInfo {
                frame_id,
                fragment_count,
                codec,
                flags,
                capture_us,
            },
        )
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            any::<u32>(),
            frame_info(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 1..1200)
        )
            .prop_map(|(seq, frame, index, data)| {
                let index = index % frame.fragment_count;
                Payload::Media(MediaFragment {
                    seq,
                    frame,
                    index,
                    data: data.into(),
                })
            }),
        (
            frame_info(),
            any::<u32>(),
            1..=MAX_FRAGMENTS,
            any::<u16>(),
            2usize..600
        )
            .prop_map(|(frame, first_seq, count, index, half)| {
                Payload::Parity(ParityShard {
                    frame,
                    first_seq,
                    index: index % count,
                    count,
                    shard: Bytes::from(vec![7u8; half * 2]),
                })
            }),
        prop::collection::vec(
            (any::<u32>(), any::<u16>()),
            1..=usize::from(MAX_NACK_RANGES)
        )
        .prop_map(|r| Payload::Nack(Nack {
            ranges: r
                .into_iter()
                .map(|(first, extra)| SeqRange { first, extra })
                .collect()
        })),
        (any::<u32>(), any::<u32>()).prop_map(|(request_id, last_decoded_frame)| {
            Payload::KeyframeRequest(KeyframeRequest {
                request_id,
                last_decoded_frame,
            })
        }),
        (
            any::<[u32; 9]>(),
            any::<[u8; 4]>(),
            any::<i16>(),
            0u8..3,
            any::<[u16; 2]>()
        )
            .prop_map(|(v, l, t, u, p)| {
                Payload::Report(ReceiverReport {
                    highest_seq: v[0],
                    cumulative_lost: v[1],
                    loss_fraction_q8: l[0],
                    jitter_us: v[2],
                    frame_jitter_us: v[3],
                    receive_rate_kbps: v[4],
                    delivery_rate_kbps: v[5],
                    delay_trend: t,
                    usage: [
                        BandwidthUsage::Normal,
                        BandwidthUsage::Overusing,
                        BandwidthUsage::Underusing,
                    ][usize::from(u)],
                    playout_delay_us: v[6],
                    rtt_us: v[7],
                    queue_delay_us: v[8],
                    stall_loss_fraction_q8: l[1],
                    stall_period_ms: p[0],
                    stall_next_ms: p[1],
                    stall_length_ms: l[2],
                    stall_window_loss_q8: l[3],
                })
            }),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(ping_id, sent_us, target_kbps)| {
            Payload::Ping(Ping {
                ping_id,
                sent_us,
                target_kbps,
            })
        }),
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(ping_id, echoed_sent_us, responder_us)| {
                Payload::Pong(Pong {
                    ping_id,
                    echoed_sent_us,
                    responder_us,
                })
            }
        ),
    ]
}

proptest! {
    #[test]
    fn every_packet_type_round_trips(payload in payload(), pn in 0..=MAX_PACKET_NUMBER) {
        let p = Packet { session_id: S, packet_number: pn, payload };
        let wire = p.encode();
        prop_assert_eq!(wire.len(), p.encoded_len());
        prop_assert_eq!(Packet::parse(wire, S), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_identically(data in prop::collection::vec(any::<u8>(), 0..1400)) {
        tandem_proto::fuzzing::parse_roundtrip(&data);
    }

    #[test]
    fn truncating_a_valid_packet_is_always_rejected(payload in payload(), cut in 1usize..64) {
        let wire = Packet { session_id: S, packet_number: 1, payload }.encode();
        let keep = wire.len().saturating_sub(cut);
        let r = Packet::parse(wire.slice(..keep), S);
        // Media and parity carry variable data: a cut inside it yields a shorter valid
        // packet, never a panic; every fixed-size type must be rejected.
        if let Ok(p) = r {
            prop_assert!(matches!(p.payload, Payload::Media(_) | Payload::Parity(_)));
        }
    }

    /// Reassembly under arbitrary delivery order, duplication and loss: a frame completes
    /// exactly when enough distinct pieces arrived, with the original bytes.
    #[test]
    fn reassembly_under_loss_reorder_and_duplication(
        len in 1usize..20_000,
        parity in 0usize..6,
        deliveries in prop::collection::vec((any::<u16>(), any::<bool>()), 0..80),
    ) {
        let data: Bytes = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let per = 1169;
        let chunks: Vec<Bytes> = (0..len).step_by(per).map(|o| data.slice(o..(o + per).min(len))).collect();
        let k = chunks.len();
        let info = FrameInfo { frame_id: 5, fragment_count: k as u16, codec: Codec::Av1, flags: 0, capture_us: 9 };
        let shards = encode_parity(&chunks, parity);
        let total = k + shards.len();
        let mut r = FrameReassembler::new(8, 1 << 22, true);
        let t = Instant::now();
        let mut distinct = std::collections::HashSet::new();
        let mut completed = None;
        for (pick, _dup) in deliveries {
            let i = usize::from(pick) % total;
            let outcome = if i < k {
                r.insert_fragment(t, MediaFragment { seq: 100 + i as u32, frame: info, index: i as u16, data: chunks[i].clone() }, false)
            } else {
                r.insert_parity(t, ParityShard { frame: info, first_seq: 100, index: (i - k) as u16, count: shards.len() as u16, shard: shards[i - k].clone() })
            };
            let was_new = distinct.insert(i);
            match outcome {
                Insert::Complete(c) => {
                    prop_assert!(completed.is_none());
                    prop_assert!(distinct.len() >= k);
                    prop_assert_eq!(&c.data, &data);
                    completed = Some(c);
                    r.finish_below(6);
                }
                Insert::Duplicate => prop_assert!(!was_new),
                Insert::Stale => prop_assert!(completed.is_some()),
                Insert::Stored => prop_assert!(distinct.len() < k || completed.is_some()),
                Insert::Rejected => prop_assert!(false, "consistent input rejected"),
            }
        }
        prop_assert_eq!(completed.is_some(), distinct.len() >= k);
        prop_assert!(r.frames() <= 1);
    }
}

#[test]
fn the_fuzz_receiver_body_survives_random_streams() {
    // Valid-looking datagrams (right magic, version, session) in random order and timing.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let stream = prop::collection::vec((payload(), any::<u8>()), 1..60);
    for _ in 0..200 {
        let items = stream.new_tree(&mut runner).expect("strategy").current();
        let mut input = Vec::new();
        for (p, gap) in items {
            let d = Packet {
                session_id: tandem_proto::fuzzing::FUZZ_SESSION,
                packet_number: 1,
                payload: p,
            }
            .encode();
            input.extend_from_slice(&(d.len() as u16).to_be_bytes());
            input.push(gap);
            input.extend_from_slice(&d);
        }
        tandem_proto::fuzzing::drive_receiver(&input);
    }
}

#[test]
fn the_fuzz_session_body_survives_random_input_and_resumes_without_it() {
    // No hostile input: the session must come up, stream, rehandshake and stream again.
    let quiet = tandem_proto::fuzzing::drive_session(&[]);
    println!("{quiet:?}");
    assert!(
        quiet.delivered_early >= 10 && quiet.delivered_late >= 10,
        "{quiet:?}"
    );
    assert!(
        quiet.handshakes >= 2,
        "the silence made the sender rehandshake: {quiet:?}"
    );
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let bytes = prop::collection::vec(any::<u8>(), 0..2400);
    for _ in 0..60 {
        let data = bytes.new_tree(&mut runner).expect("strategy").current();
        let _ = tandem_proto::fuzzing::drive_session(&data);
    }
}

#[test]
fn the_fuzz_security_bodies_survive_random_input() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let bytes = prop::collection::vec(any::<u8>(), 0..3000);
    for _ in 0..100 {
        let data = bytes.new_tree(&mut runner).expect("strategy").current();
        tandem_proto::fuzzing::drive_handshake(&data);
        tandem_proto::fuzzing::drive_secure_receiver(&data);
    }
    // Sealed, valid-looking datagrams reach the receiver through the layer.
    let stream = prop::collection::vec((payload(), any::<u8>()), 1..60);
    for _ in 0..100 {
        let items = stream.new_tree(&mut runner).expect("strategy").current();
        let mut input = Vec::new();
        for (i, (p, gap)) in items.into_iter().enumerate() {
            let d = Packet {
                session_id: tandem_proto::fuzzing::FUZZ_SESSION,
                packet_number: i as u64 + 1,
                payload: p,
            }
            .encode();
            input.extend_from_slice(&(d.len() as u16).to_be_bytes());
            input.push(gap);
            input.push(1);
            input.extend_from_slice(&d);
        }
        tandem_proto::fuzzing::drive_secure_receiver(&input);
    }
}
