//! `TestPattern`: a deterministic moving test source that looks enough like a game to load an
//! AV1 encoder realistically, with a [pixel code](crate::pixelcode) in every frame.
//!
//! Each frame is, back to front:
//!
//! * a textured background scrolled a few pixels per frame like a game camera: a precomputed
//!   512×512 tile of three octaves of smooth value noise, floor-tile seams with a bevel, and a
//!   little fine grain, wrapped around as it pans;
//! * colour that varies smoothly in space and time: a scrolled tile of low-frequency chroma
//!   noise plus slowly travelling sinusoidal gradients;
//! * moving sprites at different speeds, bouncing off the edges of the play area: shaded discs
//!   with an off-centre highlight, panelled boxes with dark outlines, and a striped,
//!   anti-aliased bar that rotates while it drifts;
//! * a HUD strip along the bottom with sharp lines and text-like glyph blocks (static) and a
//!   meter whose fill changes over time;
//! * the pixel code in the top-left corner, drawn last so nothing covers it.
//!
//! Everything is a function of the frame number and the size alone (the noise comes from a
//! fixed-seed SplitMix64), so [`TestPattern::frame_at`] gives the same picture for the same
//! `n` on every call and every run. The camera moves at least 4 pixels per frame and the code
//! changes with every frame, so no two consecutive frames are identical.
//!
//! # Cost
//!
//! Rendering writes every sample once or twice, mostly through `copy_from_slice` and simple
//! vectorisable loops; per-pixel work on sprites is limited to the pixels they cover. Measured
//! by `cargo bench -p tandem-benches --bench codec -- render_pattern` (one core, allocating
//! each frame included, shared 2-vCPU AMD EPYC VM, ranges over runs):
//!
//! | size      | time per frame    |
//! |-----------|-------------------|
//! | 640×360   | 0.09–0.14 ms      |
//! | 1280×720  | 0.31–0.40 ms      |
//! | 1920×1080 | 0.64–0.87 ms      |
//!
//! Building a `TestPattern` (noise tiles and HUD) is a one-off of 10–16 ms.

use crate::error::CodecError;
use crate::frame::{Frame, PlaneIndex, chroma_size};
use crate::pixelcode::{self, PixelCode};

/// Side of the luma background tile; a power of two so wrapping is a mask.
const TILE: usize = 512;
/// Side of the chroma background tile (half the luma tile, as in I420).
const CTILE: usize = TILE / 2;
/// Entries in the sine table used for the time-varying colour gradients.
const SINE_LEN: usize = 1024;
/// Sprite positions are kept in 1/16 pixel so slow sprites still move smoothly at 360p.
const SUBPX: i64 = 16;

/// SplitMix64: tiny, seedable, good enough for textures.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A shaded disc of radius `r`.
    Disc { r: f32 },
    /// A panelled box.
    Panel { w: f32, h: f32 },
    /// A striped bar that turns once every `turn_frames` frames.
    Bar {
        half_len: f32,
        half_thick: f32,
        turn_frames: u32,
    },
}

impl Shape {
    /// Width and height of the bounding box.
    fn extent(self) -> (f32, f32) {
        match self {
            Shape::Disc { r } => (2.0 * r, 2.0 * r),
            Shape::Panel { w, h } => (w, h),
            Shape::Bar {
                half_len,
                half_thick,
                ..
            } => {
                let side = 2.0 * (half_len + half_thick) + 2.0;
                (side, side)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sprite {
    shape: Shape,
    /// Start of the bounding box's top-left corner, in 1/16 px.
    start: (i64, i64),
    /// Velocity in 1/16 px per frame.
    vel: (i64, i64),
    luma: u8,
    u: u8,
    v: u8,
}

/// The precomputed static part of the HUD strip.
#[derive(Debug, Clone)]
struct Hud {
    /// First luma row of the strip.
    top: usize,
    /// Luma rows, `width` bytes each.
    y: Vec<u8>,
    /// First chroma row of the strip (`top / 2`; `top` is even).
    ctop: usize,
    /// Chroma rows (U and V alike), chroma-width bytes each.
    c: Vec<u8>,
    /// The meter's interior in luma pixels: x, y (relative to `top`), width, height.
    meter: (usize, usize, usize, usize),
}

/// A deterministic, moving, game-like test source with a pixel code in every frame.
///
/// It is an endless [`Iterator`] of frames numbered from 0 on the pattern's own timeline.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    next: u32,
    tile_y: Vec<u8>,
    tile_u: Vec<u8>,
    tile_v: Vec<u8>,
    /// One period of a sine, scaled to ±1024.
    sine: Vec<i32>,
    sprites: Vec<Sprite>,
    hud: Hud,
}

impl TestPattern {
    /// A pattern of `width × height` luma pixels at `fps_num / fps_den` frames per second.
    ///
    /// Odd sizes are accepted. Fails with [`CodecError::InvalidFrame`] if the frame cannot hold
    /// the pixel code (see [`pixelcode::fits`]; at least 144×64) and with
    /// [`CodecError::InvalidConfig`] if either part of the frame rate is zero.
    pub fn new(width: u32, height: u32, fps_num: u32, fps_den: u32) -> Result<Self, CodecError> {
        if !pixelcode::fits(width, height) {
            let (min_w, min_h) = pixelcode::area(width, height);
            return Err(CodecError::InvalidFrame(format!(
                "test pattern of {width}×{height}: the pixel code needs at least {min_w}×{min_h}"
            )));
        }
        if fps_num == 0 || fps_den == 0 {
            return Err(CodecError::InvalidConfig(format!(
                "test pattern frame rate {fps_num}/{fps_den}"
            )));
        }
        let mut rng = SplitMix64(0x7A4D_E3C0_DEC0_FFEE);
        let tile_y = luma_tile(&mut rng);
        let tile_u = chroma_tile(&mut rng);
        let tile_v = chroma_tile(&mut rng);
        let sine = (0..SINE_LEN)
            .map(|i| (1024.0 * (i as f64 * std::f64::consts::TAU / SINE_LEN as f64).sin()) as i32)
            .collect();
        let hud = build_hud(width as usize, height as usize, &mut rng);
        let sprites = build_sprites(height as f32);
        Ok(TestPattern {
            width,
            height,
            fps_num,
            fps_den,
            next: 0,
            tile_y,
            tile_u,
            tile_v,
            sine,
            sprites,
            hud,
        })
    }

    /// Luma width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Luma height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The number the next call to [`next_frame`](Self::next_frame) will give its frame.
    pub fn position(&self) -> u32 {
        self.next
    }

    /// Makes frame `n` the next one [`next_frame`](Self::next_frame) returns.
    pub fn seek(&mut self, n: u32) {
        self.next = n;
    }

    /// Capture time of frame `n` on the pattern's own timeline: `n × 10⁶ × den / num` µs,
    /// rounded down.
    pub fn timeline_us(&self, n: u32) -> u64 {
        let us = u128::from(n) * 1_000_000 * u128::from(self.fps_den) / u128::from(self.fps_num);
        // n < 2³², den < 2³², 10⁶ < 2²⁰ and num ≥ 1, so the quotient is below 2⁸⁴; saturating
        // only matters for absurd rates like 1/4294967295 fps far in the future.
        u64::try_from(us).unwrap_or(u64::MAX)
    }

    /// The next frame: id `n` (counting from 0, or from the last [`seek`](Self::seek)) and
    /// capture time [`timeline_us(n)`](Self::timeline_us), both in the frame's metadata and in
    /// its pixel code. The counter wraps after `u32::MAX`.
    pub fn next_frame(&mut self) -> Frame {
        let n = self.advance();
        self.render(n, self.timeline_us(n))
    }

    /// Like [`next_frame`](Self::next_frame), but stamps `capture_us` (a live sender's real
    /// clock) instead of the pattern's timeline, in the metadata and the pixel code (which
    /// keeps its low 48 bits). The picture is the same as `frame_at(n)`'s apart from the code.
    pub fn next_frame_at(&mut self, capture_us: u64) -> Frame {
        let n = self.advance();
        self.render(n, capture_us)
    }

    /// Frame `n` with capture time [`timeline_us(n)`](Self::timeline_us), without moving the
    /// counter. The same `n` always gives the same frame.
    pub fn frame_at(&self, n: u32) -> Frame {
        self.render(n, self.timeline_us(n))
    }

    fn advance(&mut self) -> u32 {
        let n = self.next;
        self.next = n.wrapping_add(1);
        n
    }

    fn render(&self, n: u32, capture_us: u64) -> Frame {
        let mut frame = Frame::black(self.width, self.height).with_meta(n, capture_us);
        let t = u64::from(n);
        self.draw_background(&mut frame, t);
        let play_h = self.hud.top;
        for sprite in &self.sprites {
            self.draw_sprite(&mut frame, sprite, t, play_h);
        }
        self.draw_hud(&mut frame, t);
        pixelcode::stamp(
            &mut frame,
            PixelCode {
                frame_id: n,
                capture_us,
            },
        );
        frame
    }

    fn sin(&self, phase: u64) -> i32 {
        self.sine[(phase % SINE_LEN as u64) as usize]
    }

    fn draw_background(&self, frame: &mut Frame, t: u64) {
        // The camera pans right 4 px per frame and sways up and down; offsets stay even so
        // the chroma tile moves by exactly half as much and stays registered with the luma.
        let ox = (t * 4 % TILE as u64) as usize;
        let oy = 2 * triangle(t as i64, 48) as usize;
        let (_, h) = frame.plane_size(PlaneIndex::Y);
        for y in 0..h {
            let src = (y + oy) % TILE * TILE;
            copy_wrapped(
                &self.tile_y[src..src + TILE],
                ox,
                frame.row_mut(PlaneIndex::Y, y),
            );
        }

        let (cw, ch) = frame.plane_size(PlaneIndex::U);
        let (cox, coy) = (ox / 2, oy / 2);
        // Travelling sinusoids: a column term and a row term per plane, so the gradient costs
        // one add per sample and a handful of table look-ups per row or column.
        let phase = t * 3;
        let col_term = |freq: u64, shift: u64, amp: i32| -> Vec<i16> {
            (0..cw as u64)
                .map(|x| {
                    let p = x * freq * SINE_LEN as u64 / cw as u64 + phase * shift;
                    (self.sin(p) * amp / 1024) as i16
                })
                .collect()
        };
        let row_term = |freq: u64, shift: u64, amp: i32| -> Vec<i16> {
            (0..ch as u64)
                .map(|y| {
                    let p = y * freq * SINE_LEN as u64 / ch as u64 + phase * shift + 256;
                    (self.sin(p) * amp / 1024) as i16
                })
                .collect()
        };
        let planes = [
            (
                PlaneIndex::U,
                &self.tile_u,
                col_term(1, 2, 22),
                row_term(1, 1, 14),
            ),
            (
                PlaneIndex::V,
                &self.tile_v,
                col_term(2, 1, 14),
                row_term(1, 3, 22),
            ),
        ];
        for (plane, tile, cols, rows) in planes {
            for (y, &r) in rows.iter().enumerate().take(ch) {
                let src = (y + coy) % CTILE * CTILE;
                let out = frame.row_mut(plane, y);
                copy_wrapped(&tile[src..src + CTILE], cox, out);
                for (o, &c) in out.iter_mut().zip(&cols) {
                    *o = (i16::from(*o) + c + r).clamp(16, 240) as u8;
                }
            }
        }
    }

    fn draw_sprite(&self, frame: &mut Frame, s: &Sprite, t: u64, play_h: usize) {
        let (w, _) = frame.plane_size(PlaneIndex::Y);
        let (ew, eh) = s.shape.extent();
        let range_x = ((w as f32 - ew).max(1.0) * SUBPX as f32) as i64;
        let range_y = ((play_h as f32 - eh).max(1.0) * SUBPX as f32) as i64;
        let t = t as i64;
        let x0 = triangle(s.start.0 + s.vel.0 * t, range_x) as f32 / SUBPX as f32;
        let y0 = triangle(s.start.1 + s.vel.1 * t, range_y) as f32 / SUBPX as f32;
        let clip = Clip {
            w,
            h: play_h,
            cw: w.div_ceil(2),
            ch: play_h / 2,
        };
        match s.shape {
            Shape::Disc { r } => draw_disc(frame, &clip, x0 + r, y0 + r, r, s),
            Shape::Panel { w: pw, h: ph } => draw_panel(frame, &clip, x0, y0, pw, ph, s),
            Shape::Bar {
                half_len,
                half_thick,
                turn_frames,
            } => {
                let turn = u64::from(turn_frames.max(1));
                let angle = (t as u64 % turn) as f32 * std::f32::consts::TAU / turn as f32;
                let (cx, cy) = (x0 + ew / 2.0, y0 + eh / 2.0);
                draw_bar(frame, &clip, (cx, cy), half_len, half_thick, angle, s);
            }
        }
    }

    fn draw_hud(&self, frame: &mut Frame, t: u64) {
        let hud = &self.hud;
        let (w, h) = frame.plane_size(PlaneIndex::Y);
        for (i, src) in hud.y.chunks_exact(w).enumerate() {
            if hud.top + i < h {
                frame
                    .row_mut(PlaneIndex::Y, hud.top + i)
                    .copy_from_slice(src);
            }
        }
        let (cw, ch) = frame.plane_size(PlaneIndex::U);
        for (i, src) in hud.c.chunks_exact(cw).enumerate() {
            if hud.ctop + i < ch {
                frame
                    .row_mut(PlaneIndex::U, hud.ctop + i)
                    .copy_from_slice(src);
                frame
                    .row_mut(PlaneIndex::V, hud.ctop + i)
                    .copy_from_slice(src);
            }
        }
        // The meter fills and drains over 5 s at 60 fps, green when full, red when low.
        let (mx, my, mw, mh) = hud.meter;
        if mw == 0 || mh == 0 {
            return;
        }
        let level = triangle(t as i64, 300) as usize;
        let fill = mw * level / 300;
        for y in hud.top + my..(hud.top + my + mh).min(h) {
            frame.row_mut(PlaneIndex::Y, y)[mx..mx + fill].fill(150);
        }
        let (u, v) = if level > 150 { (70, 60) } else { (90, 220) };
        for cy in (hud.top + my).div_ceil(2)..((hud.top + my + mh) / 2).min(ch) {
            frame.row_mut(PlaneIndex::U, cy)[mx / 2..(mx + fill) / 2].fill(u);
            frame.row_mut(PlaneIndex::V, cy)[mx / 2..(mx + fill) / 2].fill(v);
        }
    }
}

impl Iterator for TestPattern {
    type Item = Frame;

    /// Always `Some(self.next_frame())`: the pattern never ends.
    fn next(&mut self) -> Option<Frame> {
        Some(self.next_frame())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// The area sprites may draw into, in luma and chroma samples.
struct Clip {
    w: usize,
    h: usize,
    cw: usize,
    ch: usize,
}

/// `x` folded into `[0, range]` like a ball bouncing between two walls.
fn triangle(x: i64, range: i64) -> i64 {
    let range = range.max(1);
    let m = x.rem_euclid(2 * range);
    if m > range { 2 * range - m } else { m }
}

/// Fills `out` from the cyclic row `src` starting at `start`.
fn copy_wrapped(src: &[u8], start: usize, out: &mut [u8]) {
    let mut pos = start % src.len();
    let mut rest = out;
    while !rest.is_empty() {
        let take = (src.len() - pos).min(rest.len());
        let (head, tail) = rest.split_at_mut(take);
        head.copy_from_slice(&src[pos..pos + take]);
        rest = tail;
        pos = 0;
    }
}

/// Range of sample indices `[lo, hi)` covering `[a, b)` clipped to `[0, limit)`.
fn span(a: f32, b: f32, limit: usize) -> (usize, usize) {
    let lo = a.floor().max(0.0) as usize;
    let hi = (b.ceil().max(0.0) as usize).min(limit);
    (lo.min(hi), hi)
}

fn draw_disc(frame: &mut Frame, clip: &Clip, cx: f32, cy: f32, r: f32, s: &Sprite) {
    // Lit from the top left: brightness falls off with the distance from a highlight a third
    // of a radius up and left of the centre.
    let (hx, hy) = (cx - r / 3.0, cy - r / 3.0);
    let falloff = 110.0 / (r * r);
    let top = f32::from(s.luma) + 45.0;
    let (y0, y1) = span(cy - r, cy + r, clip.h);
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - cy;
        let half = r * r - dy * dy;
        if half <= 0.0 {
            continue;
        }
        let half = half.sqrt();
        let (x0, x1) = span(cx - half + 0.5, cx + half - 0.5, clip.w);
        let hdy = y as f32 + 0.5 - hy;
        let hdy2 = hdy * hdy;
        let row = &mut frame.row_mut(PlaneIndex::Y, y)[x0..x1];
        for (i, p) in row.iter_mut().enumerate() {
            let dx = (x0 + i) as f32 + 0.5 - hx;
            *p = (top - falloff * (dx * dx + hdy2)).clamp(16.0, 235.0) as u8;
        }
    }
    let (ccx, ccy, cr) = (cx / 2.0, cy / 2.0, r / 2.0);
    let (y0, y1) = span(ccy - cr, ccy + cr, clip.ch);
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - ccy;
        let half = cr * cr - dy * dy;
        if half <= 0.0 {
            continue;
        }
        let half = half.sqrt();
        let (x0, x1) = span(ccx - half + 0.5, ccx + half - 0.5, clip.cw);
        frame.row_mut(PlaneIndex::U, y)[x0..x1].fill(s.u);
        frame.row_mut(PlaneIndex::V, y)[x0..x1].fill(s.v);
    }
}

fn draw_panel(frame: &mut Frame, clip: &Clip, x: f32, y: f32, w: f32, h: f32, s: &Sprite) {
    let (x0, x1) = span(x, x + w, clip.w);
    let (y0, y1) = span(y, y + h, clip.h);
    if x0 == x1 {
        return;
    }
    // Outline and panel sizes scale with the sprite so the look is the same at every size.
    let edge = (h / 24.0).max(1.0) as usize;
    let panel = (h / 4.0).max(2.0) as usize;
    let (bx, by) = (x.max(0.0) as usize, y.max(0.0) as usize);
    let base = i32::from(s.luma);
    let dark = (base / 3).max(16) as u8;
    // The checkerboard only has two kinds of row, so build both once and copy them.
    let template = |parity: usize| -> Vec<u8> {
        (x0..x1)
            .map(|px| {
                if px < x0 + edge || px + edge >= x1 {
                    return dark;
                }
                let rx = px - bx;
                let check = if (rx / panel + parity).is_multiple_of(2) {
                    10
                } else {
                    -10
                };
                let grad = rx as i32 * 50 / w.max(1.0) as i32 - 25;
                (base + grad + check).clamp(16, 235) as u8
            })
            .collect()
    };
    let rows = [template(0), template(1)];
    for yy in y0..y1 {
        let ry = yy - by;
        let row = &mut frame.row_mut(PlaneIndex::Y, yy)[x0..x1];
        if ry < edge || yy + edge >= y1 {
            row.fill(dark);
        } else {
            row.copy_from_slice(&rows[ry / panel % 2]);
        }
    }
    let (cx0, cx1) = span(x / 2.0, (x + w) / 2.0, clip.cw);
    let (cy0, cy1) = span(y / 2.0, (y + h) / 2.0, clip.ch);
    for cy in cy0..cy1 {
        frame.row_mut(PlaneIndex::U, cy)[cx0..cx1].fill(s.u);
        frame.row_mut(PlaneIndex::V, cy)[cx0..cx1].fill(s.v);
    }
}

/// The offsets `d` with `|c0 + k·d| ≤ limit`, or `None` if there are none.
fn slab(c0: f32, k: f32, limit: f32) -> Option<(f32, f32)> {
    if k.abs() < 1e-6 {
        return (c0.abs() <= limit).then_some((f32::MIN, f32::MAX));
    }
    let (a, b) = ((-limit - c0) / k, (limit - c0) / k);
    Some((a.min(b), a.max(b)))
}

/// Columns `[lo, hi)` of a row where a bar centred `dy` rows away from `cx` can cover pixels:
/// the intersection of its two slabs, so the per-pixel work is spent on the bar, not its
/// bounding box.
fn bar_columns(
    cx: f32,
    dy: f32,
    (sin, cos): (f32, f32),
    hl: f32,
    ht: f32,
    w: usize,
) -> (usize, usize) {
    let (Some((a0, a1)), Some((b0, b1))) = (slab(dy * sin, cos, hl), slab(dy * cos, -sin, ht))
    else {
        return (0, 0);
    };
    let (d0, d1) = (a0.max(b0), a1.min(b1));
    if d0 > d1 {
        return (0, 0);
    }
    span(cx + d0 - 1.0, cx + d1 + 1.0, w)
}

fn draw_bar(
    frame: &mut Frame,
    clip: &Clip,
    (cx, cy): (f32, f32),
    half_len: f32,
    half_thick: f32,
    angle: f32,
    s: &Sprite,
) {
    let (sin, cos) = angle.sin_cos();
    let reach = half_len + half_thick + 1.0;
    let stripe = (half_len / 4.0).max(2.0);
    let light = f32::from(s.luma);
    let dim = (light - 70.0).max(16.0);
    let (y0, y1) = span(cy - reach, cy + reach, clip.h);
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - cy;
        let (x0, x1) = bar_columns(cx, dy, (sin, cos), half_len + 0.5, half_thick + 0.5, clip.w);
        let row = &mut frame.row_mut(PlaneIndex::Y, y)[x0..x1];
        for (i, p) in row.iter_mut().enumerate() {
            let dx = (x0 + i) as f32 + 0.5 - cx;
            let along = dx * cos + dy * sin;
            let across = dy * cos - dx * sin;
            // One pixel of coverage ramp at the edges keeps the rotating edge from crawling.
            let cover = (half_thick - across.abs() + 0.5).clamp(0.0, 1.0)
                * (half_len - along.abs() + 0.5).clamp(0.0, 1.0);
            if cover > 0.0 {
                let band = ((along + half_len) / stripe) as i32;
                let fg = if band % 2 == 0 { light } else { dim };
                let bg = f32::from(*p);
                *p = (bg + (fg - bg) * cover) as u8;
            }
        }
    }
    let (ccx, ccy) = (cx / 2.0, cy / 2.0);
    let (hl, ht) = (half_len / 2.0, half_thick / 2.0);
    let (y0, y1) = span(ccy - reach / 2.0, ccy + reach / 2.0, clip.ch);
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - ccy;
        let (x0, x1) = bar_columns(ccx, dy, (sin, cos), hl, ht, clip.cw);
        for x in x0..x1 {
            let dx = x as f32 + 0.5 - ccx;
            let along = dx * cos + dy * sin;
            let across = dy * cos - dx * sin;
            if along.abs() <= hl && across.abs() <= ht {
                frame.row_mut(PlaneIndex::U, y)[x] = s.u;
                frame.row_mut(PlaneIndex::V, y)[x] = s.v;
            }
        }
    }
}

/// Smooth value noise on a lattice of `cells × cells` random values that wraps around, so the
/// tile it fills is seamless; `size` samples per side.
fn value_noise(rng: &mut SplitMix64, size: usize, cells: usize) -> Vec<f32> {
    let lattice: Vec<f32> = (0..cells * cells).map(|_| rng.next_f32()).collect();
    let step = size / cells;
    let smooth = |f: f32| f * f * (3.0 - 2.0 * f);
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let (gy, fy) = (y / step, smooth((y % step) as f32 / step as f32));
        let (r0, r1) = (gy % cells * cells, (gy + 1) % cells * cells);
        for x in 0..size {
            let (gx, fx) = (x / step, smooth((x % step) as f32 / step as f32));
            let (c0, c1) = (gx % cells, (gx + 1) % cells);
            let top = lattice[r0 + c0] + (lattice[r0 + c1] - lattice[r0 + c0]) * fx;
            let bottom = lattice[r1 + c0] + (lattice[r1 + c1] - lattice[r1 + c0]) * fx;
            out.push(top + (bottom - top) * fy);
        }
    }
    out
}

/// The luma background: three octaves of value noise for terrain-like shading, floor-tile
/// seams with a one-pixel bevel for sharp structure, and a little grain for fine detail.
fn luma_tile(rng: &mut SplitMix64) -> Vec<u8> {
    let coarse = value_noise(rng, TILE, 4);
    let medium = value_noise(rng, TILE, 16);
    let fine = value_noise(rng, TILE, 64);
    let seam = 64;
    let mut tile = Vec::with_capacity(TILE * TILE);
    for y in 0..TILE {
        for x in 0..TILE {
            let i = y * TILE + x;
            let mut v = 40.0 + 120.0 * coarse[i] + 50.0 * medium[i] + 24.0 * fine[i];
            let (sx, sy) = (x % seam, y % seam);
            if sx < 2 || sy < 2 {
                v -= 30.0;
            } else if sx == 2 || sy == 2 {
                v += 18.0;
            }
            v += (rng.next_u64() % 13) as f32 - 6.0;
            tile.push(v.clamp(16.0, 235.0) as u8);
        }
    }
    tile
}

/// A chroma background plane: low-frequency value noise around neutral, enough to tint the
/// terrain without looking like confetti.
fn chroma_tile(rng: &mut SplitMix64) -> Vec<u8> {
    let coarse = value_noise(rng, CTILE, 4);
    let medium = value_noise(rng, CTILE, 8);
    coarse
        .iter()
        .zip(&medium)
        .map(|(c, m)| (128.0 + 60.0 * (c - 0.5) + 24.0 * (m - 0.5)) as u8)
        .collect()
}

fn build_sprites(height: f32) -> Vec<Sprite> {
    // Sizes and speeds are fractions of the height so every resolution shows the same scene.
    let px = |f: f32| f * height;
    let sub = |f: f32| (f * height * SUBPX as f32).round() as i64;
    let sprite = |shape, start: (f32, f32), vel: (f32, f32), (luma, u, v)| Sprite {
        shape,
        start: (sub(start.0), sub(start.1)),
        vel: (sub(vel.0), sub(vel.1)),
        luma,
        u,
        v,
    };
    vec![
        sprite(
            Shape::Panel {
                w: px(0.20),
                h: px(0.12),
            },
            (0.9, 0.3),
            (0.0075, -0.0045),
            (150, 100, 170),
        ),
        sprite(
            Shape::Panel {
                w: px(0.07),
                h: px(0.26),
            },
            (0.2, 0.1),
            (-0.0105, 0.0035),
            (100, 160, 110),
        ),
        sprite(
            Shape::Disc { r: px(0.13) },
            (0.5, 0.2),
            (0.0042, 0.0031),
            (120, 90, 150),
        ),
        sprite(
            Shape::Disc { r: px(0.09) },
            (0.1, 0.4),
            (0.0125, 0.0040),
            (160, 170, 90),
        ),
        sprite(
            Shape::Disc { r: px(0.05) },
            (1.2, 0.0),
            (-0.0210, 0.0150),
            (180, 80, 200),
        ),
        sprite(
            Shape::Bar {
                half_len: px(0.14),
                half_thick: px(0.018),
                turn_frames: 180,
            },
            (0.6, 0.35),
            (0.0030, -0.0020),
            (210, 150, 60),
        ),
    ]
}

/// The HUD strip along the bottom: a dark band with a bright rule on top, two lines of
/// text-like glyphs on the left and an outlined meter on the right.
fn build_hud(width: usize, height: usize, rng: &mut SplitMix64) -> Hud {
    let hud_h = ((height / 10) & !1).max(8).min(height);
    let top = (height - hud_h) & !1;
    let hud_h = height - top;
    let (cw, _) = chroma_size(width as u32, height as u32);
    let cw = cw as usize;
    let mut y = vec![28u8; width * hud_h];
    let rule = (hud_h / 24).max(1);
    y[..rule * width].fill(200);

    // Glyphs are 5×7 grids of random cells, the way a real HUD's text looks to an encoder:
    // sharp, high-contrast, irregular.
    let g = (hud_h / 24).max(1);
    let (glyph_w, glyph_h) = (6 * g, 9 * g);
    let text_right = width * 3 / 5;
    let mut line_top = rule + 2 * g;
    while line_top + glyph_h <= hud_h {
        let mut x = 2 * g;
        while x + glyph_w <= text_right {
            let word = 3 + (rng.next_u64() % 6) as usize;
            for _ in 0..word {
                if x + glyph_w > text_right {
                    break;
                }
                let bits = rng.next_u64();
                for gy in 0..7 {
                    for gx in 0..5 {
                        if bits >> (gy * 5 + gx) & 1 == 1 && !(bits >> 40).is_multiple_of(5) {
                            for py in 0..g {
                                let row = (line_top + gy * g + py) * width;
                                y[row + x + gx * g..row + x + gx * g + g].fill(220);
                            }
                        }
                    }
                }
                x += glyph_w;
            }
            x += glyph_w;
        }
        line_top += glyph_h + 2 * g;
    }

    // Meter outline; its interior is filled per frame.
    let (mx0, mx1) = (width * 2 / 3, width - width / 20);
    let (my0, my1) = (hud_h / 3, hud_h - hud_h / 4);
    let line = (hud_h / 24).max(1);
    let mut meter = (0, 0, 0, 0);
    if mx1 > mx0 + 2 * line + 2 && my1 > my0 + 2 * line + 2 {
        for yy in my0..my1 {
            let row = &mut y[yy * width + mx0..yy * width + mx1];
            if yy < my0 + line || yy + line >= my1 {
                row.fill(235);
            } else {
                let len = row.len();
                row[..line].fill(235);
                row[len - line..].fill(235);
            }
        }
        meter = (
            mx0 + line + 1,
            my0 + line + 1,
            mx1 - mx0 - 2 * line - 2,
            my1 - my0 - 2 * line - 2,
        );
    }

    let c = vec![128u8; cw * hud_h.div_ceil(2)];
    Hud {
        top,
        y,
        ctop: top / 2,
        c,
        meter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixelcode::read;

    #[test]
    fn rejects_frames_too_small_for_the_code_and_zero_rates() {
        assert!(matches!(
            TestPattern::new(143, 64, 60, 1),
            Err(CodecError::InvalidFrame(_))
        ));
        assert!(matches!(
            TestPattern::new(144, 63, 60, 1),
            Err(CodecError::InvalidFrame(_))
        ));
        assert!(matches!(
            TestPattern::new(0, 0, 60, 1),
            Err(CodecError::InvalidFrame(_))
        ));
        assert!(matches!(
            TestPattern::new(640, 360, 0, 1),
            Err(CodecError::InvalidConfig(_))
        ));
        assert!(matches!(
            TestPattern::new(640, 360, 60, 0),
            Err(CodecError::InvalidConfig(_))
        ));
        assert!(TestPattern::new(144, 64, 60, 1).is_ok());
    }

    #[test]
    fn frame_at_is_deterministic() {
        let a = TestPattern::new(640, 360, 60, 1).expect("valid size");
        let b = TestPattern::new(640, 360, 60, 1).expect("valid size");
        for n in [0, 1, 59, 1000, 123_456, u32::MAX] {
            let f = a.frame_at(n);
            assert_eq!(f, a.frame_at(n), "frame {n} twice from one pattern");
            assert_eq!(f, b.frame_at(n), "frame {n} from two patterns");
        }
        let mut it = TestPattern::new(640, 360, 60, 1).expect("valid size");
        for n in 0..10 {
            assert_eq!(it.next_frame(), a.frame_at(n));
        }
    }

    #[test]
    fn consecutive_frames_differ_in_content_not_just_the_code() {
        let p = TestPattern::new(640, 360, 60, 1).expect("valid size");
        let (_, code_h) = pixelcode::area(640, 360);
        let mut prev = p.frame_at(0);
        for n in 1..400 {
            let f = p.frame_at(n);
            let changed = (code_h as usize..360)
                .filter(|&y| f.row(PlaneIndex::Y, y) != prev.row(PlaneIndex::Y, y))
                .count();
            assert!(
                changed > 100,
                "frame {n}: only {changed} rows changed below the code"
            );
            prev = f;
        }
    }

    #[test]
    fn ids_capture_times_and_codes_for_300_frames() {
        for (w, h) in [(640, 360), (1280, 720)] {
            let mut p = TestPattern::new(w, h, 60, 1).expect("valid size");
            for n in 0..300u32 {
                let f = p.next_frame();
                let us = u64::from(n) * 1_000_000 / 60;
                assert_eq!((f.id, f.capture_us), (n, us), "{w}×{h}");
                assert_eq!(
                    read(&f),
                    Some(PixelCode {
                        frame_id: n,
                        capture_us: us
                    }),
                    "{w}×{h} frame {n}"
                );
            }
        }
    }

    #[test]
    fn fractional_rates_follow_the_timeline() {
        let p = TestPattern::new(640, 360, 30_000, 1001).expect("valid size");
        assert_eq!(p.timeline_us(0), 0);
        assert_eq!(p.timeline_us(1), 33_366);
        assert_eq!(p.timeline_us(30_000), 1_001_000_000);
        assert_eq!(
            p.timeline_us(u32::MAX),
            u64::from(u32::MAX) * 1_001_000_000 / 30_000
        );
        assert_eq!(p.frame_at(30_000).capture_us, 1_001_000_000);
    }

    #[test]
    fn next_frame_at_stamps_the_callers_clock() {
        let mut p = TestPattern::new(1280, 720, 60, 1).expect("valid size");
        let reference = p.frame_at(0);
        let live = 1_723_456_789_012_345u64;
        let f = p.next_frame_at(live);
        assert_eq!((f.id, f.capture_us), (0, live));
        let code = read(&f).expect("code reads back");
        assert_eq!(code.frame_id, 0);
        assert_eq!(code.capture_us, live & pixelcode::CAPTURE_MASK);
        // Same picture as the timeline's frame 0 outside the code.
        let (_, code_h) = pixelcode::area(1280, 720);
        for y in code_h as usize..720 {
            assert_eq!(f.row(PlaneIndex::Y, y), reference.row(PlaneIndex::Y, y));
        }
        assert_eq!(p.next_frame().id, 1);
        p.seek(77);
        assert_eq!(p.position(), 77);
        assert_eq!(p.next().map(|f| f.id), Some(77));
    }

    #[test]
    fn counter_wraps_after_u32_max() {
        let mut p = TestPattern::new(160, 90, 60, 1).expect("valid size");
        p.seek(u32::MAX);
        assert_eq!(p.next_frame().id, u32::MAX);
        assert_eq!(p.next_frame().id, 0);
    }

    #[test]
    fn odd_and_extreme_sizes_render_with_a_readable_code() {
        for (w, h) in [(144, 64), (160, 90), (321, 181), (1919, 1081), (3840, 2160)] {
            let p = TestPattern::new(w, h, 60, 1).expect("valid size");
            for n in [0, 7, 1001] {
                let f = p.frame_at(n);
                assert_eq!((f.width(), f.height()), (w, h));
                assert_eq!(read(&f).map(|c| c.frame_id), Some(n), "{w}×{h} frame {n}");
            }
        }
    }

    /// Statistics that separate "game-like" from both flat and white noise: plenty of spread,
    /// but neighbouring pixels strongly correlated.
    #[test]
    fn content_is_textured_but_not_noise() {
        let p = TestPattern::new(1280, 720, 60, 1).expect("valid size");
        for n in [0, 100, 250] {
            let f = p.frame_at(n);
            let (mut sum, mut sum2, mut grad, mut count) = (0f64, 0f64, 0f64, 0f64);
            for y in 200..600 {
                let row = f.row(PlaneIndex::Y, y);
                for x in 1..1280 {
                    let v = f64::from(row[x]);
                    sum += v;
                    sum2 += v * v;
                    grad += (v - f64::from(row[x - 1])).abs();
                    count += 1.0;
                }
            }
            let mean = sum / count;
            let sd = (sum2 / count - mean * mean).sqrt();
            let mean_grad = grad / count;
            assert!(sd > 20.0, "frame {n}: luma spread {sd:.1} is too flat");
            assert!(
                mean_grad > 1.5,
                "frame {n}: mean gradient {mean_grad:.2}, no detail"
            );
            assert!(
                mean_grad < sd / 2.0,
                "frame {n}: gradient {mean_grad:.2} looks like noise"
            );

            let u: Vec<u8> = (0..360)
                .flat_map(|y| f.row(PlaneIndex::U, y).to_vec())
                .collect();
            let (lo, hi) = (u.iter().min(), u.iter().max());
            let spread = hi.zip(lo).map(|(h, l)| h - l).unwrap_or(0);
            assert!(spread > 40, "frame {n}: U spread {spread}, colour too flat");
        }
    }

    #[test]
    fn colour_changes_over_time() {
        let p = TestPattern::new(640, 360, 60, 1).expect("valid size");
        let (a, b) = (p.frame_at(0), p.frame_at(30));
        let (_, code_h) = pixelcode::area(640, 360);
        let diff: u32 = (code_h as usize / 2..150)
            .flat_map(|y| {
                a.row(PlaneIndex::V, y)
                    .iter()
                    .zip(b.row(PlaneIndex::V, y))
                    .map(|(x, y)| u32::from(x.abs_diff(*y)))
                    .collect::<Vec<_>>()
            })
            .sum();
        assert!(diff > 10_000, "V barely changed in half a second: {diff}");
    }
}
