//! A session over a transport the application brings ends, when the transport fails, with
//! the transport's own reason: in `error()`, `failure()` and the last stats snapshot.

use std::time::Duration;

use tandem::sink::FnSink;
use tandem::{Receiver, ReceiverConfig, Remote};
use tandem_net::{AppTransport, DatagramTransport, TransportError, TransportInbox};

/// A link that fails as soon as it starts (a radio switched off under the session).
struct FailsAtOnce;

impl DatagramTransport for FailsAtOnce {
    fn start(&self, inbox: TransportInbox) {
        inbox.fail("radio off (test)");
    }
    fn send(&self, _datagrams: &[&[u8]]) -> Result<(), TransportError> {
        Ok(())
    }
    fn stop(&self) {}
    fn describe(&self) -> String {
        "failing test transport".into()
    }
}

#[test]
fn a_failed_transport_is_named_in_the_receivers_error_and_last_stats() {
    let config = ReceiverConfig {
        stats_interval: Duration::from_millis(100),
        ..ReceiverConfig::default()
    };
    let rx = Receiver::start(
        config,
        Remote::Transport {
            transport: AppTransport::new(FailsAtOnce),
            initiator: false,
        },
        Box::new(FnSink(|_| {})),
    )
    .expect("receiver starts");
    let stats = rx.stats();
    let mut last = None;
    while let Ok(s) = stats.recv_timeout(Duration::from_secs(3)) {
        let done = s.error.is_some();
        last = Some(s);
        if done {
            break;
        }
    }
    let want = "the network side stopped: the transport failed: radio off (test)";
    let last = last.expect("a stats snapshot");
    assert_eq!(last.error.as_deref(), Some(want), "{last:?}");
    assert_eq!(rx.failure().as_deref(), Some(want));
    assert_eq!(rx.error().as_deref(), Some(want));
}
