//! A whole sealed session (handshake, stream, rehandshake after a silence, stream) with
//! hostile datagrams, replays, bit-flipped replays and drops interleaved: no panic, bounded
//! buffers, nothing hostile authenticated, the stream resumes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tandem_proto::fuzzing::drive_session(data);
});
