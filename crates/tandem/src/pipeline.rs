//! What every pipeline is made of: a driver (a thread of its own that owns the protocol
//! endpoint and the paths), the threads around it, and the order they stop in.
//!
//! Stopping: the driver first (its event channel closes, which ends a thread blocked on
//! it), then the threads (each sees its stop flag within 50 ms), then the driver's thread
//! is collected. Calls a thread makes into a stopped driver fail,
//! which the threads take as the end, not as an error, once the stop flag is up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tandem_net::{DriverConfig, DriverHandle, spawn_driver};
use tandem_proto::Endpoint;
use tokio::sync::mpsc;

use crate::error::EngineError;

/// A driver and the pipeline's threads.
pub(crate) struct Pipeline<E: Endpoint> {
    driver: Option<Arc<DriverHandle<E>>>,
    threads: Vec<JoinHandle<()>>,
    local: SocketAddr,
}

impl<E: Endpoint + Send + 'static> Pipeline<E>
where
    E::Event: Send + 'static,
{
    /// Starts `endpoint`'s driver on a thread named `name`; returns the pipeline and the
    /// driver's event channel.
    pub(crate) fn start(
        name: &str,
        endpoint: E,
        mut config: DriverConfig,
    ) -> Result<(Pipeline<E>, mpsc::Receiver<E::Event>), EngineError> {
        config.thread_name = name.to_owned();
        let what = if config
            .paths
            .iter()
            .all(|p| matches!(p, tandem_net::PathConfig::Transport(_)))
        {
            "starting the network driver"
        } else {
            "opening the socket"
        };
        let mut driver = spawn_driver(endpoint, config).map_err(EngineError::io(what))?;
        let events = driver.take_events();
        let local = driver.local_addr();
        Ok((
            Pipeline {
                driver: Some(Arc::new(driver)),
                threads: Vec::new(),
                local,
            },
            events,
        ))
    }

    /// The driver, for the pipeline's threads and calls.
    pub(crate) fn driver(&self) -> Result<&Arc<DriverHandle<E>>, EngineError> {
        self.driver.as_ref().ok_or(EngineError::Stopped)
    }

    /// The socket's local address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Starts a named thread that stops with the pipeline.
    pub(crate) fn spawn(
        &mut self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), EngineError> {
        let t = std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(EngineError::io("starting a thread"))?;
        self.threads.push(t);
        Ok(())
    }

    /// Stops everything in order (see the module docs). The threads must already have been
    /// told to stop.
    pub(crate) fn stop(&mut self) -> Result<(), EngineError> {
        if let Some(d) = &self.driver {
            d.stop();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let result = match self.driver.take().map(Arc::try_unwrap) {
            Some(Ok(d)) => d.shutdown().map(|_| ()),
            _ => Ok(()),
        };
        result.map_err(EngineError::from)
    }
}

/// Locks `m`, past a thread that panicked holding it (the data is counters and windows).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What to tell the app when the network side has stopped: the driver's reason (a lost
/// path, a failed transport, a socket error) when it gave one.
pub(crate) fn network_stopped<E: Endpoint + Send + 'static>(
    driver: Option<&DriverHandle<E>>,
) -> String {
    match driver.and_then(DriverHandle::end_reason) {
        Some(why) => format!("the network side stopped: {why}"),
        None => "the network side stopped".to_owned(),
    }
}

/// The peer's state, as both pipelines judge it: `None` while all is well.
pub(crate) fn peer_trouble<E: Endpoint + Send + 'static>(
    driver: &DriverHandle<E>,
    timeout: Duration,
    waiting_since: Option<Instant>,
) -> Option<String> {
    let now = Instant::now();
    match (driver.peer(), driver.peer_silent_for()) {
        _ if driver.is_finished() => Some(network_stopped(Some(driver))),
        (Some(peer), Some(silent)) if silent > timeout => {
            Some(EngineError::PeerGone { peer, silent }.to_string())
        }
        (Some(peer), None) => waiting_since
            .map(|t| now - t)
            .filter(|waited| *waited > timeout)
            .map(|waited| EngineError::NoAnswer { peer, waited }.to_string()),
        _ => None,
    }
}
