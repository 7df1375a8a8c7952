//! `fill`: read until a buffer is full or the stream ends, for the stream-file parsers.

use std::io::Read;

/// Fills `buf` as far as the stream allows; returns how many bytes were read, which is less
/// than `buf.len()` only at end of stream.
pub(crate) fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
