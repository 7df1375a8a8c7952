//! Tandem's desktop capture sources: what `tandem-send --source screen` and `--source camera`
//! read. Each is a [`tandem::VideoSource`] that gives 8-bit I420 pictures, converted from
//! what the device gives with the `yuv` crate's SIMD kernels:
//!
//! - [`screen`]: the X11 screen or one window, with the pointer drawn in, read through
//!   MIT-SHM where the server offers it, at the frame rate asked for
//!   ([`tandem::Pacing::Scheduled`]); [`screen::xvfb`] is the virtual X server its tests and
//!   reports draw on.
//! - [`camera`]: a V4L2 camera (YUYV, NV12 or MJPEG), at the camera's own rate and with its
//!   own timestamps ([`tandem::Pacing::OwnClock`]).
//!
//! The third desktop source, Y4M on a pipe, is pure Rust and lives in the engine
//! ([`tandem::Y4mPipeSource`]).

#[cfg(target_os = "linux")]
pub mod camera;
#[cfg(target_os = "linux")]
mod planes;
#[cfg(target_os = "linux")]
pub mod screen;
