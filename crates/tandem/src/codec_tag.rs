//! Codec tags on the wire and the bitstreams the engine encodes and decodes: the one place
//! that says which tag a sender's encoder writes and which decoder a receiver opens.

use std::sync::atomic::{AtomicU8, Ordering};

use tandem_codec::Bitstream;
use tandem_proto::Codec;

/// The bitstream a codec tag names, if the engine decodes it.
pub fn bitstream_of(codec: Codec) -> Option<Bitstream> {
    match codec {
        Codec::Av1 => Some(Bitstream::Av1),
        Codec::H264 => Some(Bitstream::H264),
        _ => None,
    }
}

/// The codec tag for a bitstream.
pub fn codec_of(bitstream: Bitstream) -> Codec {
    match bitstream {
        Bitstream::Av1 => Codec::Av1,
        Bitstream::H264 => Codec::H264,
    }
}

/// The codec of the newest frame a pipeline moved, for its stats: written by the thread
/// that sends or decodes, read by the stats thread.
#[derive(Debug)]
pub(crate) struct LastCodec(AtomicU8);

impl LastCodec {
    const NONE: u8 = 0xFF;

    pub(crate) fn new() -> LastCodec {
        LastCodec(AtomicU8::new(Self::NONE))
    }

    pub(crate) fn record(&self, codec: Codec) {
        self.0.store(codec.to_nibble(), Ordering::Relaxed);
    }

    pub(crate) fn name(&self) -> Option<String> {
        match self.0.load(Ordering::Relaxed) {
            Self::NONE => None,
            v => Some(Codec::from_nibble(v).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_bitstreams_map_both_ways() {
        for b in [Bitstream::Av1, Bitstream::H264] {
            assert_eq!(bitstream_of(codec_of(b)), Some(b));
        }
        assert_eq!(bitstream_of(Codec::Hevc), None);
        assert_eq!(bitstream_of(Codec::RawI420), None);
    }

    #[test]
    fn the_last_codec_is_named_for_the_stats() {
        let last = LastCodec::new();
        assert_eq!(last.name(), None);
        last.record(Codec::H264);
        assert_eq!(last.name().as_deref(), Some("H.264"));
        last.record(Codec::Av1);
        assert_eq!(last.name().as_deref(), Some("AV1"));
        last.record(Codec::Other(9));
        assert_eq!(last.name().as_deref(), Some("codec 9"));
    }
}
