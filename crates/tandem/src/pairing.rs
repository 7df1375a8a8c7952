//! Pairing two devices over the network, blocking: one shows a code and listens, the other
//! types it and reaches the first (see `tandem_proto::security::pairing` for the protocol).
//! The result is the peer to add to the trust store; storing it is the app's business.

use std::time::Instant;

use tandem_proto::security::{Identity, Pairing, PairingConfig, PairingRole, PeerKey};

use crate::config::NetConfig;
use crate::connect::{Remote, driver_config};
use crate::error::EngineError;
use crate::pipeline::Pipeline;

pub use tandem_proto::security::PairingEvent;
pub use tandem_proto::security::pairing::{PairingFailure, new_code};

/// Pairs with the device at `remote` (or, with [`Remote::Listen`] and
/// [`PairingRole::ShowCode`], whichever device types `code`). `progress` sees every event
/// on the way (a wrong code typed, with the attempts left). Returns the peer's key and name.
pub fn pair(
    role: PairingRole,
    code: &str,
    identity: &Identity,
    name: &str,
    net: &NetConfig,
    remote: &Remote,
    mut progress: impl FnMut(&PairingEvent),
) -> Result<(PeerKey, String), EngineError> {
    let (config, _) = driver_config(net, remote)?;
    let endpoint = Pairing::new(
        PairingConfig::new(role, code, identity.clone(), name),
        Instant::now(),
    );
    let (mut pipeline, mut events) = Pipeline::start("tandem-pair-net", endpoint, config)?;
    let result = loop {
        match events.blocking_recv() {
            Some(e) => {
                progress(&e);
                match e {
                    PairingEvent::Paired { peer, name } => break Ok((peer, name)),
                    PairingEvent::Failed(f) => break Err(EngineError::Pairing(f)),
                    PairingEvent::WrongCodeEntered { .. } => {}
                }
            }
            None => break Err(EngineError::Stopped),
        }
    };
    // The last message (step 4) is already on its way; repeats are answered until here.
    std::thread::sleep(std::time::Duration::from_millis(300));
    pipeline.stop()?;
    result
}
