//! The mouse pointer in captured pictures. X's `GetImage` and `ShmGetImage` never contain
//! it (the server draws the pointer as a sprite or hardware overlay on top of the
//! framebuffer they read), so [`Pointer`] fetches its image with the XFIXES extension and
//! [`CursorImage::blend`] draws it over the captured BGRX pixels before conversion.
//!
//! What is asked of the server each frame, and why (the cheapest correct scheme):
//! - `QueryPointer` on the captured drawable: a 32-byte reply giving the pointer's position
//!   relative to that drawable's origin (the root, or the window's inside corner, wherever
//!   the window has moved since the source opened: no `TranslateCoordinates` needed).
//! - `GetCursorImage` only when the cursor's image has changed. XFIXES has no position-only
//!   request, but it sends a `CursorNotify` event with the new image's serial whenever the
//!   displayed cursor changes (selected once with `SelectCursorInput` on the root), so the
//!   image (4 bytes a pixel: 9 KB at 48×48, 16 KB at 64×64) is fetched again only when that
//!   serial differs from the cached image's. Polling the event queue costs no request.
//!
//! Both are sent in the same write as the frame's image requests, and their replies come
//! first (the server answers in order), so the pointer costs no extra round trip. A cursor
//! changed between the event check and the capture is drawn with its previous image until
//! the next frame.
//!
//! Pixels: XFIXES gives the image as 32-bit ARGB, "the color components are pre-multiplied
//! with the alpha component" (the XFIXES protocol, `fixesproto.txt` in xorgproto, section
//! 7.3 GetCursorImage), alpha in the most significant byte and blue in the least.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{self, ConnectionExt as _, CursorNotifyMask, GetCursorImageReply};
use x11rb::protocol::xproto::{self, ConnectionExt as _, QueryPointerReply};
use x11rb::rust_connection::RustConnection;

/// The XFIXES version asked for: 1 has `GetCursorImage`, `SelectCursorInput` and
/// `CursorNotify`, all this uses.
const XFIXES_VERSION: (u32, u32) = (1, 0);

/// A cursor's picture, as XFIXES `GetCursorImage` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CursorImage {
    width: u32,
    height: u32,
    /// The hotspot, the pixel of the image at the pointer's position.
    xhot: u32,
    yhot: u32,
    /// The server's number for this image (what `CursorNotify` events name).
    serial: u32,
    /// `width × height` pixels row by row, premultiplied ARGB (alpha high, blue low).
    argb: Vec<u32>,
}

impl CursorImage {
    /// The reply's image, or `None` for an empty one or one with too few pixels.
    fn from_reply(r: GetCursorImageReply) -> Option<CursorImage> {
        let (width, height) = (u32::from(r.width), u32::from(r.height));
        let n = width as usize * height as usize;
        if n == 0 || r.cursor_image.len() < n {
            return None;
        }
        let mut argb = r.cursor_image;
        argb.truncate(n);
        Some(CursorImage {
            width,
            height,
            xhot: u32::from(r.xhot),
            yhot: u32::from(r.yhot),
            serial: r.cursor_serial,
            argb,
        })
    }

    /// Draws the cursor over rows `top ..` of a BGRX picture `width` pixels wide, with its
    /// hotspot at `pointer` (picture coordinates, anywhere, even outside the picture).
    /// `band` holds those rows only, `stride` bytes apart (as many whole rows as it holds);
    /// only the part of the cursor's rectangle inside both the picture's columns and the
    /// band's rows is touched, and the fourth byte of each pixel is left as it is.
    ///
    /// Each pixel is composited "over" with premultiplied alpha: `out = src + dst × (255 −
    /// alpha) / 255`, rounded, per channel (saturating, for an image whose colour exceeds its
    /// alpha).
    pub(super) fn blend(
        &self,
        pointer: (i32, i32),
        band: &mut [u8],
        stride: usize,
        width: u32,
        top: u32,
    ) {
        if stride == 0 {
            return;
        }
        let rows = (band.len() / stride) as i64;
        let cols = i64::from(width).min((stride / 4) as i64);
        let left = i64::from(pointer.0) - i64::from(self.xhot);
        let upper = i64::from(pointer.1) - i64::from(self.yhot);
        let top = i64::from(top);
        // The picture rectangle to draw, in picture coordinates: x0..x1, y0..y1.
        let (x0, x1) = (left.max(0), (left + i64::from(self.width)).min(cols));
        let (y0, y1) = (
            upper.max(top),
            (upper + i64::from(self.height)).min(top + rows),
        );
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let cw = self.width as usize;
        for y in y0..y1 {
            let src_row = (y - upper) as usize * cw;
            let src = &self.argb[src_row + (x0 - left) as usize..src_row + (x1 - left) as usize];
            let dst_row = (y - top) as usize * stride;
            let dst = &mut band[dst_row + x0 as usize * 4..dst_row + x1 as usize * 4];
            for (px, &s) in dst.chunks_exact_mut(4).zip(src) {
                over(px, s);
            }
        }
    }
}

/// One premultiplied ARGB pixel over one BGRX pixel.
fn over(dst: &mut [u8], src: u32) {
    let alpha = src >> 24;
    if src == 0 {
        return; // transparent: most of a cursor's rectangle
    }
    let [b, g, r] = [src as u8, (src >> 8) as u8, (src >> 16) as u8];
    if alpha == 255 {
        dst[..3].copy_from_slice(&[b, g, r]);
        return;
    }
    let keep = 255 - alpha;
    for (d, s) in dst[..3].iter_mut().zip([b, g, r]) {
        let v = u32::from(s) + (u32::from(*d) * keep + 127) / 255;
        *d = v.min(255) as u8;
    }
}

/// The pointer of one capture connection: the cached cursor image, and whether the server
/// has said it changed since.
#[derive(Debug)]
pub(super) struct Pointer {
    image: Option<CursorImage>,
    /// Fetch the image with the next frame's requests.
    stale: bool,
}

/// One frame's pointer requests, in the order sent (and answered).
pub(super) struct Requests<'c> {
    image: Option<Cookie<'c, RustConnection, GetCursorImageReply>>,
    position: Cookie<'c, RustConnection, QueryPointerReply>,
}

impl Pointer {
    /// Checks that the server offers XFIXES and asks it for `CursorNotify` events; the
    /// error says why the pointer cannot be drawn.
    pub(super) fn start(conn: &RustConnection, root: xproto::Window) -> Result<Pointer, String> {
        if conn
            .extension_information(xfixes::X11_EXTENSION_NAME)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err("the server does not offer XFIXES".to_owned());
        }
        // XFIXES refuses every other request of a client that has not said its version.
        let (major, minor) = XFIXES_VERSION;
        conn.xfixes_query_version(major, minor)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("XFIXES QueryVersion failed: {e}"))?;
        conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| format!("XFIXES SelectCursorInput failed: {e}"))?;
        Ok(Pointer {
            image: None,
            stale: true,
        })
    }

    /// The cursor image last fetched (`None` before the first frame, or while the server
    /// displays no cursor).
    pub(super) fn image(&self) -> Option<&CursorImage> {
        self.image.as_ref()
    }

    /// Sends this frame's requests (not flushed): the cursor's image if a `CursorNotify`
    /// since the last fetch names another, and the pointer's position relative to
    /// `drawable`.
    pub(super) fn request<'c>(
        &mut self,
        conn: &'c RustConnection,
        drawable: xproto::Drawable,
    ) -> Result<Requests<'c>, ConnectionError> {
        while let Some(event) = conn.poll_for_event()? {
            if let Event::XfixesCursorNotify(n) = event
                && self.image.as_ref().map(|i| i.serial) != Some(n.cursor_serial)
            {
                self.stale = true;
            }
        }
        let image = if self.stale {
            Some(conn.xfixes_get_cursor_image()?)
        } else {
            None
        };
        let position = conn.query_pointer(drawable)?;
        Ok(Requests { image, position })
    }

    /// Reads the replies to [`Pointer::request`]: where the hotspot is in the drawable, or
    /// `None` when there is nothing to draw (no cursor displayed, or the pointer on another
    /// screen). An error is the drawable's (gone) or the connection's.
    pub(super) fn receive(
        &mut self,
        requests: Requests<'_>,
    ) -> Result<Option<(i32, i32)>, ReplyError> {
        if let Some(cookie) = requests.image {
            self.stale = false;
            self.image = match cookie.reply() {
                Ok(r) => CursorImage::from_reply(r),
                // `Cursor` error: no cursor is displayed at all (a null cursor). A
                // `CursorNotify` will say when one is.
                Err(ReplyError::X11Error(_)) => None,
                Err(e) => return Err(e),
            };
        }
        let at = requests.position.reply()?;
        Ok((at.same_screen && self.image.is_some())
            .then(|| (i32::from(at.win_x), i32::from(at.win_y))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture `width × height` of BGRX, rows `stride` bytes apart, every pixel
    /// different; padding bytes 0xEE.
    fn picture(width: usize, height: usize, stride: usize) -> Vec<u8> {
        let mut p = vec![0xEE; stride * height];
        for y in 0..height {
            for x in 0..width {
                let v = (y * width + x) as u8;
                p[y * stride + x * 4..][..4].copy_from_slice(&[v, v.wrapping_mul(3), 90, 7]);
            }
        }
        p
    }

    /// An opaque `width × height` cursor, every pixel different, hotspot `hot`.
    fn opaque(width: u32, height: u32, hot: (u32, u32)) -> CursorImage {
        CursorImage {
            width,
            height,
            xhot: hot.0,
            yhot: hot.1,
            serial: 1,
            argb: (0..width * height)
                .map(|i| 0xff00_0000 | (200 << 16) | (i << 8) | (255 - i))
                .collect(),
        }
    }

    /// What blending `cursor` (opaque) with its top-left at `(left, upper)` must give:
    /// every picture pixel inside the rectangle is the cursor's (fourth byte kept), every
    /// other byte (padding too) unchanged.
    fn expected(
        before: &[u8],
        width: usize,
        stride: usize,
        cursor: &CursorImage,
        (left, upper): (i64, i64),
    ) -> Vec<u8> {
        let mut out = before.to_vec();
        for y in 0..before.len() / stride {
            for x in 0..width {
                let (cx, cy) = (x as i64 - left, y as i64 - upper);
                if (0..i64::from(cursor.width)).contains(&cx)
                    && (0..i64::from(cursor.height)).contains(&cy)
                {
                    let s = cursor.argb[cy as usize * cursor.width as usize + cx as usize];
                    out[y * stride + x * 4..][..3].copy_from_slice(&[
                        s as u8,
                        (s >> 8) as u8,
                        (s >> 16) as u8,
                    ]);
                }
            }
        }
        out
    }

    #[test]
    fn premultiplied_pixels_are_composited_over() {
        let dst = [200u8, 100, 255, 9]; // B G R X
        let blend = |src: u32| {
            let mut d = dst;
            over(&mut d, src);
            d
        };
        assert_eq!(blend(0), dst, "transparent");
        assert_eq!(
            blend(0xff_10_20_30),
            [0x30, 0x20, 0x10, 9],
            "opaque replaces"
        );
        // Half alpha, red 128 premultiplied (full red at half coverage): red is
        // 128 + 255 × 127/255 = 255, where straight alpha would give 64 + 127 = 191.
        assert_eq!(blend(0x80_80_00_00), [100, 50, 255, 9]);
        // Half alpha, black: the picture darkened by half.
        assert_eq!(blend(0x80_00_00_00), [100, 50, 127, 9]);
        // A colour above its alpha (not premultiplied) saturates instead of wrapping.
        assert_eq!(blend(0x10_ff_ff_ff), [255, 255, 255, 9]);
    }

    #[test]
    fn the_cursor_is_clipped_at_every_edge_and_placed_by_its_hotspot() {
        let (w, h, stride) = (8usize, 6usize, 8 * 4 + 8);
        let before = picture(w, h, stride);
        let cursor = opaque(4, 3, (1, 2));
        // Pointer positions (hotspot) to the image's top-left: minus (1, 2).
        for pointer in [
            (3, 3),   // inside
            (0, 1),   // over the left and top edges
            (-1, -1), // one column and row in, at the top-left corner
            (8, 6),   // over the right and bottom edges
            (9, 7),   // just the top-left pixel in the bottom-right corner
            (3, -10), // wholly above
            (3, 20),  // wholly below
            (-10, 3), // wholly left
            (20, 3),  // wholly right
            (i32::MIN, i32::MAX),
        ] {
            let mut got = before.clone();
            cursor.blend(pointer, &mut got, stride, w as u32, 0);
            let top_left = (i64::from(pointer.0) - 1, i64::from(pointer.1) - 2);
            let want = expected(&before, w, stride, &cursor, top_left);
            assert!(got == want, "pointer at {pointer:?}");
        }
        // Narrower than the stride says: columns past `width` are padding, untouched.
        let mut got = before.clone();
        cursor.blend((7, 3), &mut got, stride, 6, 0);
        assert_eq!(got, expected(&before, 6, stride, &cursor, (6, 1)));
    }

    #[test]
    fn band_by_band_is_the_same_as_the_whole_picture() {
        let (w, h, stride) = (10usize, 12usize, 10 * 4);
        let before = picture(w, h, stride);
        let mut cursor = opaque(5, 7, (2, 3));
        // Half-transparent pixels too, so the blend itself is compared, not only placement.
        for (i, p) in cursor.argb.iter_mut().enumerate() {
            if i % 3 == 0 {
                *p = 0x60_30_20_10;
            }
        }
        for pointer in [(4, 5), (0, 0), (9, 11), (5, 2)] {
            let mut whole = before.clone();
            cursor.blend(pointer, &mut whole, stride, w as u32, 0);
            let mut banded = before.clone();
            for (top, rows) in [(0usize, 4usize), (4, 2), (6, 6)] {
                let band = &mut banded[top * stride..(top + rows) * stride];
                cursor.blend(pointer, band, stride, w as u32, top as u32);
            }
            assert!(whole == banded, "pointer at {pointer:?}");
            assert!(whole != before, "pointer at {pointer:?} drew something");
        }
    }

    #[test]
    fn a_reply_with_too_few_pixels_is_no_image() {
        let reply = |w: u16, h: u16, n: usize| GetCursorImageReply {
            sequence: 0,
            length: 0,
            x: 0,
            y: 0,
            width: w,
            height: h,
            xhot: 1,
            yhot: 1,
            cursor_serial: 5,
            cursor_image: vec![0xff00_0000; n],
        };
        assert_eq!(CursorImage::from_reply(reply(2, 2, 3)), None);
        assert_eq!(CursorImage::from_reply(reply(0, 0, 0)), None);
        let ok = CursorImage::from_reply(reply(2, 2, 5)).expect("an image");
        assert_eq!(
            (ok.width, ok.height, ok.serial, ok.argb.len()),
            (2, 2, 5, 4)
        );
    }
}
