//! Pairing as one `async` call: one device shows a code and waits, the other types it; both
//! get the other's [`PairedDevice`] to add to their trust store. Over the engine's sockets
//! ([`pair`]) or over the app's own transport ([`pair_over_transport`]).

use std::sync::Arc;

use futures_channel::oneshot;

use crate::error::TandemError;
use crate::keys::{Identity, PairedDevice};
use crate::transport::{DatagramTransport, Link};
use crate::types::{NetConfig, Remote};

/// Which side of the code this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PairingRole {
    /// Shows the code (from [`new_pairing_code`]) and waits for the other device.
    ShowCode,
    /// Types the code the other device shows, and reaches it.
    EnterCode,
}

/// Progress while pairing. Called on the pairing thread.
#[uniffi::export(with_foreign)]
pub trait PairingDelegate: Send + Sync {
    /// (Showing side) the other device typed a wrong code; `attempts_left` more are allowed.
    fn on_wrong_code(&self, attempts_left: u32);
}

/// A fresh 6-digit code to show.
#[uniffi::export]
pub fn new_pairing_code() -> String {
    tandem::pairing::new_code()
}

/// Pairs with another device (Swift `try await pair(...)`): `.showCode` with
/// `remote: .listen` waits for whoever types `code`; `.enterCode` reaches `remote`. Wrong
/// codes (three at most, one a second) and a 60 s limit end it with `Pairing`.
#[uniffi::export(default(delegate = None))]
pub async fn pair(
    role: PairingRole,
    code: String,
    identity: Arc<Identity>,
    device_name: String,
    net: NetConfig,
    remote: Remote,
    delegate: Option<Arc<dyn PairingDelegate>>,
) -> Result<PairedDevice, TandemError> {
    check_code(&code)?;
    let net = net.to_engine()?;
    let remote = remote.to_engine()?;
    run(
        role,
        code,
        identity,
        device_name,
        net,
        remote,
        Link::sockets(),
        delegate,
    )
    .await
}

/// Pairs with another device over the app's own `transport` (Swift `try await
/// pairOverTransport(...)`), both ends already linked by it. The end that opened the link
/// (`initiator`: it connected, the Wi-Fi Aware subscriber) types `code` and starts; the
/// other shows `code` (from [`new_pairing_code`]) and answers, as `.showCode` listens over
/// the network: over a link that a listener learns its peer from, only the end that
/// connected can speak first. Wrong codes and the time limit end it as [`pair`] does; a
/// transport that fails ends it with `Network` naming the transport's reason. The transport
/// is started here and stopped before this returns.
#[uniffi::export(default(delegate = None))]
pub async fn pair_over_transport(
    code: String,
    identity: Arc<Identity>,
    device_name: String,
    transport: Arc<dyn DatagramTransport>,
    initiator: bool,
    delegate: Option<Arc<dyn PairingDelegate>>,
) -> Result<PairedDevice, TandemError> {
    check_code(&code)?;
    let role = if initiator {
        PairingRole::EnterCode
    } else {
        PairingRole::ShowCode
    };
    let (link, remote) = Link::over(transport, initiator);
    // Over a transport the network settings do not apply.
    let net = tandem::NetConfig::default();
    run(
        role,
        code,
        identity,
        device_name,
        net,
        remote,
        link,
        delegate,
    )
    .await
}

fn check_code(code: &str) -> Result<(), TandemError> {
    if code.chars().filter(char::is_ascii_digit).count() < 6 {
        return Err(TandemError::invalid(format!(
            "code `{code}` has fewer than 6 digits"
        )));
    }
    Ok(())
}

/// Runs the engine's pairing on a thread of its own and waits for it without blocking the
/// caller's executor.
#[allow(clippy::too_many_arguments)]
async fn run(
    role: PairingRole,
    code: String,
    identity: Arc<Identity>,
    device_name: String,
    net: tandem::NetConfig,
    remote: tandem::Remote,
    link: Link,
    delegate: Option<Arc<dyn PairingDelegate>>,
) -> Result<PairedDevice, TandemError> {
    let role = match role {
        PairingRole::ShowCode => tandem::PairingRole::ShowCode,
        PairingRole::EnterCode => tandem::PairingRole::EnterCode,
    };
    let (tx, rx) = oneshot::channel();
    // The engine's pairing blocks on its own driver; a thread keeps it off the caller's
    // executor.
    std::thread::Builder::new()
        .name("tandem-ffi-pair".into())
        .spawn(move || {
            let result = tandem::pairing::pair(
                role,
                &code,
                identity.engine(),
                &device_name,
                &net,
                &remote,
                |event| {
                    if let (
                        tandem::pairing::PairingEvent::WrongCodeEntered { attempts_left },
                        Some(d),
                    ) = (event, &delegate)
                    {
                        d.on_wrong_code(*attempts_left);
                    }
                },
            );
            let _ = tx.send(
                result
                    .map(|(key, name)| PairedDevice::new(key, name))
                    .map_err(|e| link.thrown(TandemError::from(e))),
            );
        })
        .map_err(|e| TandemError::Pairing {
            message: format!("could not start the pairing thread: {e}"),
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(TandemError::Pairing {
            message: "the pairing thread ended without an answer".into(),
        })
    })
}
