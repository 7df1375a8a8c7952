//! A stream of datagrams with timing, fed to a receiver: no panic, buffers within bounds.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_proto::fuzzing::drive_receiver(data));
