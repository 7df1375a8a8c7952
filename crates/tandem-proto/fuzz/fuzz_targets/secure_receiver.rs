//! A receiver behind the security layer, fed sealed and raw datagrams: no panic, bounded
//! buffers, nothing raw taken as authentic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_proto::fuzzing::drive_secure_receiver(data));
