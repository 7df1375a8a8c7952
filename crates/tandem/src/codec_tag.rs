//! Codec tags on the wire and the bitstreams the engine encodes and decodes: the one place
//! that says which tag a sender's encoder writes and which decoder a receiver opens.

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
}
