//! The threads that own the refs: one per advertisement, one per browse (with the resolves
//! and queries it starts). Each waits in `poll(2)` on its refs' sockets and on a wake
//! socket that its handle closes on drop, which is how it learns to deallocate its refs and
//! end; the handle then joins it, so nothing outlives a [`Registration`] or a [`Browser`].

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::browse::{BrowseState, OpId, Start};
use super::ffi::{Api, Op};
use super::{
    Advertisement, BACKEND, BrowseOptions, Browser, DiscoveryError, Registration, Reply,
    SERVICE_TYPE_C, describe, dns_service_flags, request_error,
};
use crate::discovery::BrowseSink;

/// Longest a browse thread sleeps without looking at its deadlines and its browser.
const MAX_WAIT: Duration = Duration::from_millis(500);

const APPLE: bool = cfg!(target_vendor = "apple");

/// A running thread; dropping this wakes it to stop and waits for it.
#[derive(Debug)]
struct Worker {
    wake: Option<UnixStream>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing our end makes the thread's end readable (end of file).
        drop(self.wake.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("dns-sd: a worker thread panicked");
        }
    }
}

/// Starts a thread running `body`, which makes its first ref and says whether that worked
/// through `ready` before it goes on; returns once it has said.
fn spawn(
    name: &str,
    body: impl FnOnce(&mpsc::SyncSender<Result<(), DiscoveryError>>, UnixStream) + Send + 'static,
) -> Result<Worker, DiscoveryError> {
    let thread_error = |e: std::io::Error| DiscoveryError::Backend {
        backend: BACKEND,
        what: "starting its thread",
        why: e.to_string(),
    };
    let (wake, theirs) = UnixStream::pair().map_err(thread_error)?;
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(&ready_tx, theirs))
        .map_err(thread_error)?;
    let mut worker = Worker {
        wake: Some(wake),
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(worker),
        Ok(Err(e)) => Err(e),
        Err(mpsc::RecvError) => {
            let _ = worker.thread.take().map(std::thread::JoinHandle::join);
            Err(DiscoveryError::Backend {
                backend: BACKEND,
                what: "starting its thread",
                why: "the thread ended before its first request".into(),
            })
        }
    }
}

/// Waits until some of `fds` are readable (their indexes) or `timeout` passes; `None` when
/// the wake socket says stop (or waiting itself fails).
fn wait(
    wake: &UnixStream,
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> Option<Vec<usize>> {
    let mut polled: Vec<PollFd<'_>> = Vec::with_capacity(fds.len() + 1);
    polled.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
    polled.extend(fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
    let timeout = match timeout {
        // Rounded up, so that a deadline is never woken for just before it.
        Some(t) => PollTimeout::from(u16::try_from(t.as_millis() + 1).unwrap_or(u16::MAX)),
        None => PollTimeout::NONE,
    };
    match poll(&mut polled, timeout) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Some(Vec::new()),
        Err(e) => {
            tracing::warn!(%e, "dns-sd: poll failed; stopping");
            return None;
        }
    }
    // Hang-ups and errors count as readable: processing the ref then fails and drops it.
    let ready = |p: &PollFd<'_>| p.revents().is_some_and(|r| !r.is_empty());
    if ready(&polled[0]) {
        return None;
    }
    Some(
        polled[1..]
            .iter()
            .enumerate()
            .filter(|(_, p)| ready(p))
            .map(|(i, _)| i)
            .collect(),
    )
}

/// Starts advertising `ad` (already validated).
pub(super) fn advertise(
    api: &'static Api,
    ad: &Advertisement,
) -> Result<Registration, DiscoveryError> {
    let name = CString::new(ad.instance.as_str()).map_err(|_| {
        DiscoveryError::InvalidAdvertisement("instance name contains a NUL byte".into())
    })?;
    let txt = ad.txt.to_wire();
    let flags = dns_service_flags(APPLE, ad.allow_peer_to_peer);
    let interface = ad.interface.unwrap_or(0);
    let port = ad.port;
    let registered = Arc::new(Mutex::new(None));
    let worker = {
        let registered = Arc::clone(&registered);
        spawn("tandem-dnssd-register", move |ready, wake| {
            let op = match Op::register(api, flags, interface, &name, SERVICE_TYPE_C, port, &txt) {
                Ok(op) => op,
                Err(code) => {
                    let _ = ready.send(Err(request_error("registering the service", code)));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let asked = name.to_string_lossy();
            let mut live = true;
            loop {
                let fds = if live { vec![op.fd()] } else { Vec::new() };
                let Some(readable) = wait(&wake, &fds, None) else {
                    break;
                };
                if readable.is_empty() {
                    continue;
                }
                match op.process() {
                    Ok(replies) => {
                        for reply in replies {
                            registration_reply(&asked, reply, &registered);
                        }
                    }
                    Err(code) => {
                        // The daemon went away: the advertisement is gone, but its handle
                        // stays valid (dropping it is all the application can do).
                        tracing::warn!(instance = %asked, error = %describe(code), "dns-sd: lost the registration");
                        live = false;
                    }
                }
            }
        })?
    };
    Ok(Registration::new(ad.instance.clone(), Box::new(worker))
        .reporting_name(registered)
        .renewable(ad.clone(), move |ad| {
            crate::discovery::validate(ad)?;
            advertise(api, ad)
        }))
}

/// What the register callback said: the name registered, or an error (which leaves the
/// registration as it was; the responder may yet succeed, for example after a rename).
fn registration_reply(asked: &str, reply: Reply, registered: &Mutex<Option<String>>) {
    match reply {
        Reply::Registered { name } => {
            if name == asked {
                tracing::info!(instance = %name, "dns-sd: registered");
            } else {
                tracing::info!(instance = %name, asked, "dns-sd: registered under another name");
            }
            *registered.lock().unwrap_or_else(PoisonError::into_inner) = Some(name);
        }
        Reply::Failed(code) => {
            tracing::warn!(instance = asked, error = %describe(code), "dns-sd: registration reported an error");
        }
        _ => {}
    }
}

/// Starts browsing; [`Browser::set_peer_to_peer`] restarts it with other flags.
pub(super) fn browse(
    api: &'static Api,
    options: &BrowseOptions,
) -> Result<Browser, DiscoveryError> {
    Browser::start(options, move |options, sink| {
        start_browse(api, options, sink)
    })
}

/// Starts a browse thread reporting into `sink`; returns its handle.
fn start_browse(
    api: &'static Api,
    options: &BrowseOptions,
    sink: BrowseSink,
) -> Result<Box<dyn std::any::Any + Send>, DiscoveryError> {
    let flags = dns_service_flags(APPLE, options.allow_peer_to_peer);
    let interface = options.interface.unwrap_or(0);
    let worker = spawn("tandem-dnssd-browse", move |ready, wake| {
        let op = match Op::browse(api, flags, interface, SERVICE_TYPE_C) {
            Ok(op) => op,
            Err(code) => {
                let _ = ready.send(Err(request_error("browsing", code)));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        run_browse(api, flags, &op, &sink, &wake);
    })?;
    Ok(Box::new(worker))
}

/// Starts one request the browse asked for.
fn start(api: &'static Api, flags: u32, s: &Start) -> Result<Op, i32> {
    // Names here came from C strings, so they hold no NUL; a failure is only a bad name.
    let c = |s: &str| CString::new(s).map_err(|_| super::ERR_BAD_PARAM);
    match s {
        Start::Resolve {
            interface,
            instance,
            domain,
            ..
        } => Op::resolve(
            api,
            flags,
            *interface,
            &c(instance)?,
            SERVICE_TYPE_C,
            &c(domain)?,
        ),
        Start::Query {
            interface,
            host,
            rrtype,
            ..
        } => Op::query(api, flags, *interface, &c(host)?, *rrtype),
    }
}

fn run_browse(api: &'static Api, flags: u32, browse: &Op, sink: &BrowseSink, wake: &UnixStream) {
    let mut state = BrowseState::default();
    let mut ops: HashMap<OpId, Op> = HashMap::new();
    let mut reported_ignored = 0;
    loop {
        let now = Instant::now();
        state.tick(now);
        // A failed start changes the state again, so drain until it is quiet.
        loop {
            let (starts, cancels) = state.drain();
            if starts.is_empty() && cancels.is_empty() {
                break;
            }
            for id in cancels {
                ops.remove(&id);
            }
            for s in starts {
                match start(api, flags, &s) {
                    Ok(op) => {
                        ops.insert(s.op(), op);
                    }
                    Err(code) => state.failed(s.op(), code),
                }
            }
        }
        if state.ignored() != reported_ignored {
            reported_ignored = state.ignored();
            tracing::debug!(
                ignored = reported_ignored,
                "dns-sd: instances ignored so far"
            );
        }
        if sink.is_closed() {
            break;
        }
        let timeout = state
            .next_deadline()
            .map_or(MAX_WAIT, |d| d.saturating_duration_since(now))
            .min(MAX_WAIT);
        let live: Vec<(OpId, &Op)> = ops.iter().map(|(id, op)| (*id, op)).collect();
        let mut fds = vec![browse.fd()];
        fds.extend(live.iter().map(|(_, op)| op.fd()));
        let Some(readable) = wait(wake, &fds, Some(timeout)) else {
            break;
        };
        drop(fds);
        let now = Instant::now();
        let mut failed = Vec::new();
        for i in readable {
            if i == 0 {
                match browse.process() {
                    Ok(replies) => {
                        for reply in replies {
                            match reply {
                                Reply::Browse {
                                    add,
                                    interface,
                                    instance,
                                    domain,
                                } => state.browsed(sink, add, interface, instance, domain),
                                Reply::Failed(code) => {
                                    tracing::warn!(error = %describe(code), "dns-sd: the browse failed; stopping it");
                                    return;
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(code) => {
                        tracing::warn!(error = %describe(code), "dns-sd: lost the browse; stopping it");
                        return;
                    }
                }
                continue;
            }
            let Some((id, op)) = live.get(i - 1) else {
                continue;
            };
            match op.process() {
                Ok(replies) => {
                    for reply in replies {
                        state.replied(sink, *id, reply, now);
                    }
                }
                Err(code) => failed.push((*id, code)),
            }
        }
        for (id, code) in failed {
            state.failed(id, code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_replies_record_the_name_and_survive_errors() {
        let slot = Mutex::new(None);
        registration_reply("Desk", Reply::Failed(-65548), &slot);
        assert_eq!(*slot.lock().expect("lock"), None);
        registration_reply(
            "Desk",
            Reply::Registered {
                name: "Desk (2)".into(),
            },
            &slot,
        );
        assert_eq!(slot.lock().expect("lock").as_deref(), Some("Desk (2)"));
    }

    #[test]
    fn waiting_wakes_for_data_timeout_and_stop() {
        let (wake_tx, wake) = UnixStream::pair().expect("pair");
        let (mut data_tx, data) = UnixStream::pair().expect("pair");
        let t = Instant::now();
        assert_eq!(
            wait(&wake, &[data.as_fd()], Some(Duration::from_millis(20))),
            Some(vec![])
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        std::io::Write::write_all(&mut data_tx, b"x").expect("write");
        assert_eq!(wait(&wake, &[data.as_fd()], None), Some(vec![0]));
        drop(wake_tx);
        assert_eq!(wait(&wake, &[data.as_fd()], None), None);
    }

    #[test]
    fn a_worker_that_fails_to_start_reports_why() {
        let e = spawn("t", |ready, _wake| {
            let _ = ready.send(Err(request_error("browsing", -65563)));
        })
        .expect_err("fails");
        assert!(matches!(e, DiscoveryError::Unavailable { .. }));
        let e = spawn("t", |_ready, _wake| {}).expect_err("fails");
        assert!(e.to_string().contains("ended before"), "{e}");
        // One that starts runs until dropped.
        let w = spawn("t", |ready, wake| {
            let _ = ready.send(Ok(()));
            while wait(&wake, &[], None).is_some() {}
        })
        .expect("starts");
        drop(w);
    }
}
