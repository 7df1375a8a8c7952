//! Discovery following the peer-to-peer policy mid-session, with the `mdns-sd` backend on
//! this host: an advertisement and a browse each restart without peer-to-peer and back,
//! and the peer stays found through it (this host has no peer-to-peer interface, so
//! nothing it was seen on goes away).

use std::time::Duration;

use tandem_net::discovery::{PROTOCOL_VERSION, SessionState, peer_to_peer_discovery};
use tandem_net::{
    Advertisement, BrowseOptions, Discovery, DiscoveryEvent, MdnsSd, PathPreference, PeerTxt,
};

/// Waits for `id` to be found or updated; `None` if it is not within `within`.
async fn seen(
    browser: &mut tandem_net::Browser,
    id: &str,
    within: Duration,
) -> Option<tandem_net::Peer> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, browser.next()).await {
            Ok(Some(DiscoveryEvent::Found(p) | DiscoveryEvent::Updated(p)))
                if p.txt.peer_id == id =>
            {
                return Some(p);
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertisement_and_browse_follow_the_policy_and_the_peer_stays_found() {
    let id = format!("restart-{}", std::process::id());
    let txt = PeerTxt {
        protocol_version: PROTOCOL_VERSION,
        peer_id: id.clone(),
        device_name: "Tandem restart test".into(),
        codecs: vec![tandem_proto::Codec::Av1],
    };
    let mut ad = Advertisement::new(47_011, txt);
    ad.instance = format!("Tandem restart {}", std::process::id());
    // Automatic, nobody yet: peer-to-peer included.
    let path = PathPreference::Automatic;
    ad.allow_peer_to_peer = peer_to_peer_discovery(path, SessionState::Idle, false);
    assert!(ad.allow_peer_to_peer);
    let mdns = MdnsSd::new().expect("mdns-sd daemon");
    let mut registration = mdns.advertise(&ad).expect("advertised");
    let mut browser = mdns.browse(&BrowseOptions::default()).expect("browsing");
    assert!(
        seen(&mut browser, &id, Duration::from_secs(10))
            .await
            .is_some(),
        "not found within 10 s"
    );

    // The session comes up over infrastructure: both drop peer-to-peer.
    let now = peer_to_peer_discovery(path, SessionState::UpInfrastructure, false);
    assert!(!now);
    assert!(registration.set_peer_to_peer(now).expect("re-advertised"));
    assert_eq!(registration.allows_peer_to_peer(), Some(false));
    assert!(browser.set_peer_to_peer(now).expect("browse restarted"));
    assert!(!browser.options().allow_peer_to_peer);
    assert!(!browser.set_peer_to_peer(now).expect("already so"));
    // Re-advertised and re-browsed, the peer is heard again and stays in the table.
    let peer = seen(&mut browser, &id, Duration::from_secs(10)).await;
    assert!(
        peer.is_some(),
        "not heard again; peers: {:?}",
        browser.peers()
    );
    assert!(
        browser.peers().iter().any(|p| p.txt.peer_id == id),
        "{:?}",
        browser.peers()
    );

    // The session drops: connecting again, peer-to-peer back on.
    let now = peer_to_peer_discovery(path, SessionState::Connecting, false);
    assert!(registration.set_peer_to_peer(now).expect("re-advertised"));
    assert!(browser.set_peer_to_peer(now).expect("browse restarted"));
    assert!(browser.peers().iter().any(|p| p.txt.peer_id == id));
    drop(registration);
    let lost = async {
        loop {
            match browser.next().await {
                Some(DiscoveryEvent::Lost { peer_id, .. }) if peer_id == id => break true,
                Some(_) => continue,
                None => break false,
            }
        }
    };
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), lost).await,
        Ok(true),
        "the restarted browse still hears the withdrawal"
    );
}
