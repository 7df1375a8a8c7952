//! The test pattern's pixel code survives each live encoder at the default bitrates: encode
//! with libaom realtime (AV1) or OpenH264 (H.264), decode with dav1d or OpenH264, read the
//! code from the pixels.

use tandem_codec::{
    DecoderConfig, EncoderConfig, EncoderKind, TestPattern, new_decoder, new_encoder, pixelcode,
};

/// Returns (frames decoded, codes read back with the right id and capture time).
fn survive(kind: EncoderKind, w: u32, h: u32, fps: u32, frames: u32) -> (u32, u32) {
    let config = EncoderConfig::new(w, h, fps).with_kind(kind);
    let mut enc = new_encoder(&config).expect("encoder opens");
    let mut dec = new_decoder(kind.bitstream(), &DecoderConfig::default()).expect("decoder opens");
    let mut pattern = TestPattern::new(w, h, fps, 1).expect("pattern size");
    let (mut decoded, mut read) = (0, 0);
    for _ in 0..frames {
        let frame = pattern.next_frame();
        for unit in enc.encode(&frame).expect("encodes") {
            let pic = dec
                .decode(unit.data, unit.frame_id, unit.capture_us)
                .expect("decodes")
                .expect("a picture per unit");
            decoded += 1;
            let code = pixelcode::read(&pic);
            if code.is_some_and(|c| c.frame_id == pic.id && c.capture_us == pic.capture_us) {
                read += 1;
            }
        }
    }
    (decoded, read)
}

fn assert_survives(kind: EncoderKind, w: u32, h: u32, fps: u32, frames: u32) {
    let (decoded, read) = survive(kind, w, h, fps, frames);
    assert_eq!(decoded, frames);
    println!("{kind} {w}x{h}@{fps}: {read} of {decoded} codes read");
    assert!(
        u64::from(read) * 1000 >= u64::from(decoded) * 999,
        "{kind} {w}x{h}: only {read} of {decoded} codes read (need 99.9 %)"
    );
}

#[test]
fn codes_survive_360p60_at_the_default_bitrate() {
    assert_survives(EncoderKind::Aom, 640, 360, 60, 1000);
}

#[test]
fn codes_survive_720p30_at_the_default_bitrate() {
    assert_survives(EncoderKind::Aom, 1280, 720, 30, 1000);
}

#[test]
fn codes_survive_h264_at_the_default_bitrates() {
    assert_survives(EncoderKind::OpenH264, 640, 360, 60, 1000);
    assert_survives(EncoderKind::OpenH264, 1280, 720, 30, 300);
}
