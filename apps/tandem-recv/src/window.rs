//! PLACEHOLDER (being implemented on branch `window`): the video window.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use crossbeam_channel::Receiver;
use tandem::DisplayFrame;
use tandem::sink::FrameSink;

/// The sink half: hands the newest frame to the window.
pub struct WindowSink;

impl FrameSink for WindowSink {
    fn on_frame(&mut self, _frame: DisplayFrame) {}
}

/// A sink and the frames it posts.
pub fn channel() -> (WindowSink, Receiver<DisplayFrame>) {
    let (_tx, rx) = crossbeam_channel::bounded(1);
    (WindowSink, rx)
}

/// Shows frames until closed or `stop`.
pub fn run(_frames: &Receiver<DisplayFrame>, _title: &str, _stop: &AtomicBool) -> Result<()> {
    anyhow::bail!("no window yet")
}
