//! Pairing as one `async` call: one device shows a code and waits, the other types it; both
//! get the other's [`PairedDevice`] to add to their trust store.

use std::sync::Arc;

use futures_channel::oneshot;

use crate::error::TandemError;
use crate::keys::{Identity, PairedDevice};
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
    if code.chars().filter(char::is_ascii_digit).count() < 6 {
        return Err(TandemError::invalid(format!(
            "code `{code}` has fewer than 6 digits"
        )));
    }
    let net = net.to_engine()?;
    let remote = remote.to_engine()?;
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
                    .map_err(TandemError::from),
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
