//! Files Tandem writes play in standard tools: the dav1d command-line decoder reads our IVF,
//! and our Y4M reader reads what it writes, picture for picture equal to our own decoder's.

use std::process::Command;

use tandem_codec::{
    Dav1dDecoder, DecoderConfig, EncoderConfig, IvfWriter, TestPattern, Y4mSource, new_encoder,
};

#[test]
fn dav1d_cli_decodes_our_ivf_to_the_same_pictures() {
    if Command::new("dav1d").arg("--version").output().is_err() {
        println!("skipped: the dav1d command-line tool is not installed (Debian package `dav1d`)");
        return;
    }
    let (w, h, fps) = (320, 180, 30);
    let dir = std::env::temp_dir().join(format!("tandem-ivf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ivf_path = dir.join("stream.ivf");
    let y4m_path = dir.join("decoded.y4m");

    let mut enc = new_encoder(&EncoderConfig::new(w, h, fps)).expect("encoder opens");
    let mut dec = Dav1dDecoder::new(&DecoderConfig::default()).expect("decoder opens");
    let file = std::fs::File::create(&ivf_path).expect("create IVF");
    let mut ivf = IvfWriter::new(file, w, h, 1, fps).expect("IVF header");
    let mut ours = Vec::new();
    for frame in TestPattern::new(w, h, fps, 1).expect("pattern").take(30) {
        for unit in enc.encode(&frame).expect("encodes") {
            ivf.write_frame(&unit.data, u64::from(unit.frame_id))
                .expect("IVF frame");
            let pic = dec.decode(unit.data, unit.frame_id, 0).expect("decodes");
            ours.push(pic.expect("a picture"));
        }
    }
    ivf.finish().expect("IVF finished");

    let out = Command::new("dav1d")
        .arg("-q")
        .arg("-i")
        .arg(&ivf_path)
        .arg("-o")
        .arg(&y4m_path)
        .output()
        .expect("dav1d runs");
    assert!(
        out.status.success(),
        "dav1d rejected our IVF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = std::io::BufReader::new(std::fs::File::open(&y4m_path).expect("dav1d's output"));
    let theirs: Vec<_> = Y4mSource::new(reader)
        .expect("dav1d's Y4M header parses")
        .collect::<Result<_, _>>()
        .expect("dav1d's Y4M frames parse");
    assert_eq!(theirs.len(), ours.len());
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert!(
            a.same_picture(b),
            "picture {i} differs between dav1d's CLI and our decoder"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
