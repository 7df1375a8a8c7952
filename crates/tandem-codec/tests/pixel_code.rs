//! The test pattern's pixel code survives AV1 at the default bitrates: encode with libaom
//! realtime (the default encoder), decode with dav1d, read the code from the pixels.

use tandem_codec::{
    Dav1dDecoder, DecoderConfig, EncoderConfig, TestPattern, new_encoder, pixelcode,
};

/// Returns (frames decoded, codes read back with the right id and capture time).
fn survive(w: u32, h: u32, fps: u32, frames: u32) -> (u32, u32) {
    let config = EncoderConfig::new(w, h, fps);
    let mut enc = new_encoder(&config).expect("encoder opens");
    let mut dec = Dav1dDecoder::new(&DecoderConfig::default()).expect("decoder opens");
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

fn assert_survives(w: u32, h: u32, fps: u32, frames: u32) {
    let (decoded, read) = survive(w, h, fps, frames);
    assert_eq!(decoded, frames);
    println!("{w}x{h}@{fps}: {read} of {decoded} codes read");
    assert!(
        u64::from(read) * 1000 >= u64::from(decoded) * 999,
        "{w}x{h}: only {read} of {decoded} codes read (need 99.9 %)"
    );
}

#[test]
fn codes_survive_360p60_at_the_default_bitrate() {
    assert_survives(640, 360, 60, 1000);
}

#[test]
fn codes_survive_720p30_at_the_default_bitrate() {
    assert_survives(1280, 720, 30, 1000);
}
