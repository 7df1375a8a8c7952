//! One thread per pipeline that takes the engine's stats snapshots and hands each to the
//! delegate and to whoever awaits `next_stats()`, reports a changed error once, and passes
//! a sender's keyframe requests on as they come. Every snapshot is what the app sees
//! ([`Link::stats`]: over an app transport, its label and its failure), and a pipeline that
//! ends by itself because its transport failed says so once more if it had not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_channel::oneshot;

use crate::error::TandemError;
use crate::transport::Link;
use crate::types::Stats;

/// Where a feed sends what it reads.
pub(crate) trait StatsListener: Send + Sync + 'static {
    fn on_stats(&self, stats: Stats);
    fn on_error(&self, message: String);
    fn on_warning(&self, message: String);
    fn on_keyframe_requested(&self) {}
    fn on_target_bitrate(&self, kbps: u32) {
        let _ = kbps;
    }
}

/// A sender's requests for an app that encodes itself.
pub(crate) struct SenderControl {
    pub(crate) keyframe_requests: crossbeam_channel::Receiver<()>,
    pub(crate) target_bitrates: crossbeam_channel::Receiver<u32>,
}

#[derive(Debug, Default)]
struct Waiters {
    waiting: Vec<oneshot::Sender<Stats>>,
    closed: bool,
}

/// The feed: stops (and joins its thread) when dropped.
#[derive(Debug)]
pub(crate) struct StatsFeed {
    stop: Arc<AtomicBool>,
    waiters: Arc<Mutex<Waiters>>,
    thread: Option<JoinHandle<()>>,
}

impl StatsFeed {
    pub(crate) fn start(
        name: &str,
        snapshots: crossbeam_channel::Receiver<tandem::Stats>,
        control: Option<SenderControl>,
        listener: Option<Arc<dyn StatsListener>>,
        link: Link,
    ) -> Result<StatsFeed, TandemError> {
        let (keyframe_requests, target_bitrates) = match control {
            Some(c) => (c.keyframe_requests, c.target_bitrates),
            None => (crossbeam_channel::never(), crossbeam_channel::never()),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn({
                let (stop, waiters) = (Arc::clone(&stop), Arc::clone(&waiters));
                move || {
                    let mut last_error = None;
                    // The warnings already told (the engine keeps at most a few).
                    let mut told: Vec<String> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        // A short wait so that stop is seen promptly.
                        let s = crossbeam_channel::select! {
                            recv(snapshots) -> s => match s {
                                Ok(s) => s,
                                Err(_) => {
                                    // The pipeline ended by itself (its last snapshot may
                                    // not have said why): a failed transport's reason.
                                    if let (Some(l), Some(e)) = (&listener, link.error(None))
                                        && last_error.as_ref() != Some(&e)
                                    {
                                        l.on_error(e);
                                    }
                                    break;
                                }
                            },
                            recv(keyframe_requests) -> k => {
                                if let (Ok(()), Some(l)) = (k, &listener) {
                                    l.on_keyframe_requested();
                                }
                                continue;
                            },
                            recv(target_bitrates) -> k => {
                                if let (Ok(kbps), Some(l)) = (k, &listener) {
                                    l.on_target_bitrate(kbps);
                                }
                                continue;
                            },
                            default(Duration::from_millis(50)) => continue,
                        };
                        let stats = link.stats(Stats::from(&s));
                        let waiting = std::mem::take(
                            &mut waiters.lock().unwrap_or_else(|p| p.into_inner()).waiting,
                        );
                        for w in waiting {
                            let _ = w.send(stats.clone());
                        }
                        let error = stats.error.clone();
                        if let Some(l) = &listener {
                            if error != last_error
                                && let Some(e) = &error
                            {
                                l.on_error(e.clone());
                            }
                            for w in stats.warnings.iter().filter(|w| !told.contains(w)) {
                                l.on_warning(w.clone());
                            }
                            told.clone_from(&stats.warnings);
                            l.on_stats(stats);
                        }
                        last_error = error;
                    }
                    let mut w = waiters.lock().unwrap_or_else(|p| p.into_inner());
                    w.closed = true;
                    // Dropping the senders wakes every waiter with "stopped".
                    w.waiting.clear();
                }
            })
            .map_err(|e| TandemError::Stopped {
                message: format!("could not start the stats thread: {e}"),
            })?;
        Ok(StatsFeed {
            stop,
            waiters,
            thread: Some(thread),
        })
    }

    /// The next snapshot, whenever it comes (an error once the pipeline has stopped). The
    /// future holds no lock and no reference to the feed.
    pub(crate) fn waiter(
        &self,
    ) -> impl std::future::Future<Output = Result<Stats, TandemError>> + Send + 'static {
        let rx = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if w.closed {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                w.waiting.push(tx);
                Some(rx)
            }
        };
        async move {
            match rx {
                Some(rx) => rx.await.map_err(|_| stopped()),
                None => Err(stopped()),
            }
        }
    }

    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A delegate that calls stop from its own callback would join itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for StatsFeed {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> TandemError {
    TandemError::Stopped {
        message: "the pipeline has stopped".into(),
    }
}
