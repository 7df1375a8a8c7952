//! What every pipeline is made of: a driver on a runtime of its own, the threads around it,
//! and the order they stop in.
//!
//! Stopping: the driver first (its event channel closes, which ends a thread blocked on
//! it), then the threads (each sees its stop flag within 50 ms), then the driver's task is
//! collected and the runtime shut down. Calls a thread makes into a stopped driver fail,
//! which the threads take as the end, not as an error, once the stop flag is up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tandem_net::{DriverConfig, DriverHandle, spawn_driver};
use tandem_proto::Endpoint;
use tokio::sync::mpsc;

use crate::error::EngineError;

/// A driver, its runtime and the pipeline's threads.
pub(crate) struct Pipeline<E: Endpoint> {
    driver: Option<Arc<DriverHandle<E>>>,
    runtime: Option<tokio::runtime::Runtime>,
    threads: Vec<JoinHandle<()>>,
    local: SocketAddr,
}

impl<E: Endpoint + Send + 'static> Pipeline<E>
where
    E::Event: Send + 'static,
{
    /// Starts `endpoint`'s driver on a one-worker runtime named `name`; returns the pipeline
    /// and the driver's event channel.
    pub(crate) fn start(
        name: &str,
        endpoint: E,
        config: DriverConfig,
    ) -> Result<(Pipeline<E>, mpsc::Receiver<E::Event>), EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(EngineError::io("starting the network runtime"))?;
        let mut driver = {
            let _enter = runtime.enter();
            spawn_driver(endpoint, config).map_err(EngineError::io("opening the socket"))?
        };
        let events = driver.take_events();
        let local = driver.local_addr();
        Ok((
            Pipeline {
                driver: Some(Arc::new(driver)),
                runtime: Some(runtime),
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
        let result = match (self.driver.take().map(Arc::try_unwrap), &self.runtime) {
            (Some(Ok(d)), Some(rt)) => rt.block_on(d.shutdown()).map(|_| ()),
            _ => Ok(()),
        };
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        result.map_err(EngineError::from)
    }
}

/// Locks `m`, past a thread that panicked holding it (the data is counters and windows).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The peer's state, as both pipelines judge it: `None` while all is well.
pub(crate) fn peer_trouble<E: Endpoint + Send + 'static>(
    driver: &DriverHandle<E>,
    timeout: Duration,
    waiting_since: Option<Instant>,
) -> Option<String> {
    let now = Instant::now();
    match (driver.peer(), driver.peer_silent_for()) {
        _ if driver.is_finished() => Some("the network side stopped".to_owned()),
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
