//! Any bytes: parsing never panics, and whatever parses re-encodes identically.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_proto::fuzzing::parse_roundtrip(data));
