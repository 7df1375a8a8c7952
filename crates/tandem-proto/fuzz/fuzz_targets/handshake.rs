//! Bytes from the network at every handshake and pairing step: no panic, no session, no pairing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_proto::fuzzing::drive_handshake(data));
