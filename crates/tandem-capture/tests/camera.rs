//! The camera source without a camera: conversions of recorded buffers (ffmpeg-made
//! fixtures, see `fixtures/README.md`) against ffmpeg's own I420, the MJPEG frame without
//! Huffman tables that webcams send, and the errors for devices that are not there or are
//! not cameras.
#![cfg(target_os = "linux")]

use std::path::PathBuf;

use tandem_capture::camera::convert::{Converter, PixelFormat, lacks_huffman_tables};
use tandem_capture::camera::{CameraConfig, CameraSource};
use tandem_codec::frame::{PlaneIndex, psnr};
use tandem_codec::{CodecError, Frame};

const W: u32 = 160;
const H: u32 = 120;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ffmpeg's I420 of the pattern.
fn reference() -> Frame {
    let data = fixture("testsrc2_160x120.i420");
    let (y, c) = ((W * H) as usize, (W * H / 4) as usize);
    Frame::from_planes(
        W,
        H,
        [
            data[..y].to_vec(),
            data[y..y + c].to_vec(),
            data[y + c..].to_vec(),
        ],
        [W as usize, W as usize / 2, W as usize / 2],
    )
    .expect("reference frame")
}

/// The largest difference of any sample of `plane`.
fn max_error(a: &Frame, b: &Frame, plane: PlaneIndex) -> u8 {
    (0..a.plane_size(plane).1)
        .flat_map(|y| {
            a.row(plane, y)
                .iter()
                .zip(b.row(plane, y))
                .map(|(x, z)| x.abs_diff(*z))
        })
        .max()
        .unwrap_or(0)
}

fn plane_psnr(a: &Frame, b: &Frame, plane: PlaneIndex) -> f64 {
    let (mut sse, mut n) = (0.0, 0.0);
    for y in 0..a.plane_size(plane).1 {
        for (x, z) in a.row(plane, y).iter().zip(b.row(plane, y)) {
            let d = f64::from(*x) - f64::from(*z);
            sse += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0 * 255.0 / (sse / n)).log10()
}

fn convert(format: PixelFormat, data: &[u8]) -> Frame {
    Converter::new(format, W, H, 0)
        .expect("converter")
        .convert(data)
        .expect("converts")
}

#[test]
fn nv12_matches_ffmpeg_exactly() {
    let got = convert(PixelFormat::Nv12, &fixture("testsrc2_160x120.nv12"));
    // NV12 and I420 carry the same samples, only laid out differently.
    assert!(got.same_picture(&reference()));
}

#[test]
fn yuyv_matches_ffmpeg_luma_exactly_and_chroma_closely() {
    let got = convert(PixelFormat::Yuyv, &fixture("testsrc2_160x120.yuyv"));
    let want = reference();
    assert_eq!(max_error(&got, &want, PlaneIndex::Y), 0, "luma is copied");
    // Chroma: YUYV has every row's, I420 one per row pair; the kernel keeps the even row's,
    // ffmpeg filtered its own from the pattern, so the two differ at vertical colour edges.
    let p = psnr(&got, &want).expect("same size");
    assert!(p > 38.0, "PSNR {p:.1} dB");
}

#[test]
fn mjpeg_decodes_to_limited_range_i420_close_to_ffmpegs() {
    let got = convert(PixelFormat::Mjpeg, &fixture("testsrc2_160x120.mjpg"));
    let want = reference();
    // Full range came in; limited range must come out: JPEG's white (255) is 235 here.
    let p = psnr(&got, &want).expect("same size");
    let planes =
        [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V].map(|pl| plane_psnr(&got, &want, pl));
    // Measured: 35.6 dB (Y 42.8, U 33.1, V 30.2); ffmpeg's own decode of the same file to
    // yuv420p against the same reference: 40.8 dB (Y 47.3, U 38.6, V 35.5). The difference is
    // the trip through RGB (zune-jpeg upsamples the 4:2:2 chroma, `yuv` subsamples it again).
    assert!(
        p > 34.5 && planes[0] > 41.0,
        "PSNR {p:.1} dB, per plane {planes:.1?}"
    );
    // Largest errors, at the pattern's sharp, saturated colour edges. Measured: Y 23, U 46,
    // V 69; ffmpeg's decode: Y 9, U 19, V 31. Through RGB, the JPEG's ringing around saturated
    // edges leaves the RGB gamut and is clipped there, which moves luma too. These bounds
    // catch a wrong matrix or range (tens of levels everywhere), not that.
    let errors = [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V].map(|pl| max_error(&got, &want, pl));
    assert!(
        errors[0] <= 28 && errors[1] <= 80 && errors[2] <= 80,
        "max errors {errors:?}"
    );
    let mean_y = |f: &Frame| {
        let n = (W * H) as f64;
        (0..H as usize)
            .flat_map(|y| f.row(PlaneIndex::Y, y).to_vec())
            .map(f64::from)
            .sum::<f64>()
            / n
    };
    let (g, w) = (mean_y(&got), mean_y(&want));
    assert!((g - w).abs() < 1.0, "mean luma {g:.2}, ffmpeg's {w:.2}");
}

/// The JPEG with its DHT segments (marker `FF C4`) removed, as a webcam sends MJPEG.
fn without_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker == 0xDA {
            // Start of scan: the entropy-coded data follows; keep everything from here.
            out.extend_from_slice(&jpeg[i..]);
            return out;
        }
        if marker != 0xC4 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    panic!("no start of scan");
}

#[test]
fn mjpeg_without_huffman_tables_decodes_with_the_standard_ones() {
    let full = fixture("testsrc2_160x120.mjpg");
    let stripped = without_huffman_tables(&full);
    assert!(
        !stripped.windows(2).any(|w| w == [0xFF, 0xC4]) && stripped.len() < full.len(),
        "the DHT segment is gone"
    );
    assert!(lacks_huffman_tables(&stripped) && !lacks_huffman_tables(&full));
    let with = convert(PixelFormat::Mjpeg, &full);
    let without = convert(PixelFormat::Mjpeg, &stripped);
    assert!(without.same_picture(&with), "same picture either way");
    // The same frame marked as AVI1 MJPEG (an APP0 `AVI1` segment after the start marker),
    // which zune-jpeg decodes with the standard tables by itself.
    let mut avi1 = stripped[..2].to_vec();
    avi1.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    avi1.extend_from_slice(b"AVI1\0\0\0\0\0\0\0\0\0\0");
    avi1.extend_from_slice(&stripped[2..]);
    assert!(!lacks_huffman_tables(&avi1));
    let marked = convert(PixelFormat::Mjpeg, &avi1);
    assert!(marked.same_picture(&with));
}

#[test]
fn damaged_buffers_are_errors_not_panics() {
    let mut yuyv = Converter::new(PixelFormat::Yuyv, W, H, 0).expect("converter");
    let short = yuyv.convert(&[0; 100]);
    assert!(
        matches!(short, Err(CodecError::InvalidFrame(_))),
        "{short:?}"
    );
    let mut mjpeg = Converter::new(PixelFormat::Mjpeg, W, H, 0).expect("converter");
    let jpeg = fixture("testsrc2_160x120.mjpg");
    for bad in [&[][..], &jpeg[..200], &[0xFF; 64][..]] {
        assert!(mjpeg.convert(bad).is_err());
    }
    // A frame of another size than granted.
    let mut other = Converter::new(PixelFormat::Mjpeg, 320, 240, 0).expect("converter");
    let e = other.convert(&jpeg).expect_err("wrong size");
    assert!(e.to_string().contains("160×120"), "{e}");
    assert!(
        Converter::new(PixelFormat::Yuyv, 161, 120, 0).is_err(),
        "odd width"
    );
    assert!(
        Converter::new(PixelFormat::Yuyv, 160, 120, 100).is_err(),
        "narrow stride"
    );
}

#[test]
fn padded_rows_are_read_by_stride() {
    // The NV12 fixture with 32 bytes of padding after every row, as some drivers give it.
    let tight = fixture("testsrc2_160x120.nv12");
    let stride = W as usize + 32;
    let mut padded = Vec::new();
    for row in tight.chunks(W as usize) {
        padded.extend_from_slice(row);
        padded.extend_from_slice(&[0xAA; 32]);
    }
    let got = Converter::new(PixelFormat::Nv12, W, H, stride)
        .expect("converter")
        .convert(&padded)
        .expect("converts");
    assert!(got.same_picture(&reference()));
    let yuyv = fixture("testsrc2_160x120.yuyv");
    let stride = 2 * W as usize + 64;
    let mut padded = Vec::new();
    for row in yuyv.chunks(2 * W as usize) {
        padded.extend_from_slice(row);
        padded.extend_from_slice(&[0x55; 64]);
    }
    let got = Converter::new(PixelFormat::Yuyv, W, H, stride)
        .expect("converter")
        .convert(&padded)
        .expect("converts");
    assert!(got.same_picture(&convert(PixelFormat::Yuyv, &yuyv)));
}

fn open_error(device: &str) -> String {
    let config = CameraConfig {
        device: device.into(),
        ..CameraConfig::default()
    };
    match CameraSource::open(&config) {
        Ok(s) => panic!("{device} opened: {:?}", s.granted()),
        Err(CodecError::Capture(m)) => m,
        Err(other) => panic!("not a capture error: {other:?}"),
    }
}

#[test]
fn a_missing_device_is_named_with_the_ones_there_are() {
    let m = open_error("/dev/video99");
    assert!(
        m.contains("/dev/video99") && m.contains("does not exist"),
        "{m}"
    );
    // Which nodes exist: none on this machine, some on one with cameras.
    assert!(
        m.contains("no /dev/video* node") || m.contains("the video nodes here are"),
        "{m}"
    );
    let m = open_error("/nonexistent/camera");
    assert!(m.contains("/nonexistent/camera"), "{m}");
}

#[test]
fn a_file_that_is_not_a_camera_says_so() {
    let m = open_error("/dev/null");
    assert!(
        m.contains("/dev/null") && m.contains("not a V4L2 device"),
        "{m}"
    );
    let m = open_error(env!("CARGO_MANIFEST_DIR"));
    assert!(m.contains(env!("CARGO_MANIFEST_DIR")), "{m}");
}

/// Conversion times at 720p and 1080p (`cargo test --release -p tandem-capture --test camera
/// -- --ignored --nocapture`); the MJPEG frames are made with ffmpeg, so it must be installed.
#[test]
#[ignore = "a measurement, not a check; needs ffmpeg"]
fn conversion_times() {
    let dir = std::env::temp_dir().join(format!("tandem-camera-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        for (format, pix, ext) in [
            (PixelFormat::Yuyv, "yuyv422", "yuyv"),
            (PixelFormat::Nv12, "nv12", "nv12"),
            (PixelFormat::Mjpeg, "yuvj422p", "mjpg"),
        ] {
            let path = dir.join(format!("{w}x{h}.{ext}"));
            let mut cmd = std::process::Command::new("ffmpeg");
            cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!("testsrc2=size={w}x{h}:rate=1"))
                .args(["-frames:v", "1", "-pix_fmt", pix]);
            if format == PixelFormat::Mjpeg {
                cmd.args(["-c:v", "mjpeg", "-q:v", "4", "-f", "mjpeg"]);
            } else {
                cmd.args(["-f", "rawvideo"]);
            }
            let status = cmd.arg(&path).status().expect("ffmpeg runs");
            assert!(status.success());
            let data = std::fs::read(&path).expect("read");
            let mut c = Converter::new(format, w, h, 0).expect("converter");
            c.convert(&data).expect("warm-up");
            let runs = 50;
            let start = std::time::Instant::now();
            for _ in 0..runs {
                std::hint::black_box(c.convert(&data).expect("converts"));
            }
            let each = start.elapsed() / runs;
            println!(
                "{format} {w}x{h} ({} bytes): {each:?} per frame",
                data.len()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
