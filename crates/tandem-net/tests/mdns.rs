//! The `mdns-sd` backend against itself on this host: advertise, browse, find with the TXT
//! record and the interface of each address, lose on withdrawal.

use std::time::Duration;

use tandem_net::discovery::{PROTOCOL_VERSION, SERVICE_TYPE};
use tandem_net::{
    Advertisement, BrowseOptions, Discovery, DiscoveryEvent, KindOverrides, MdnsSd, PeerTxt,
    interfaces,
};
use tandem_proto::Codec;

async fn next_event(browser: &mut tandem_net::Browser, within: Duration) -> Option<DiscoveryEvent> {
    tokio::time::timeout(within, browser.next())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_found_with_its_txt_record_and_lost_when_withdrawn() {
    assert_eq!(SERVICE_TYPE, "_tandem._udp");
    let id = format!("test-{}", std::process::id());
    let txt = PeerTxt {
        protocol_version: PROTOCOL_VERSION,
        peer_id: id.clone(),
        device_name: "Tandem test".into(),
        codecs: vec![Codec::Av1, Codec::Hevc],
    };
    let mut ad = Advertisement::new(47_001, txt.clone());
    ad.instance = format!("Tandem test {}", std::process::id());
    let mdns = MdnsSd::new().expect("mdns-sd daemon");
    let registration = mdns.advertise(&ad).expect("advertised");
    let mut browser = mdns.browse(&BrowseOptions::default()).expect("browsing");
    let peer = loop {
        match next_event(&mut browser, Duration::from_secs(10)).await {
            Some(DiscoveryEvent::Found(p) | DiscoveryEvent::Updated(p)) if p.txt.peer_id == id => {
                break p;
            }
            Some(_) => continue,
            None => panic!("not found within 10 s; peers: {:?}", browser.peers()),
        }
    };
    assert_eq!(peer.instance, ad.instance);
    assert_eq!(peer.port, 47_001);
    assert_eq!(peer.txt, txt);
    assert!(peer.compatible());
    let local = interfaces(&KindOverrides::new()).expect("interfaces");
    assert!(!peer.addresses.is_empty());
    for a in &peer.addresses {
        let iface = local
            .iter()
            .find(|i| i.index == a.interface)
            .unwrap_or_else(|| panic!("{a:?} names an interface this host has"));
        assert!(
            iface.addrs.iter().any(|x| x.ip == a.addr.ip()),
            "our own address {a:?} is one of {}'s",
            iface.name
        );
    }
    drop(registration);
    loop {
        match next_event(&mut browser, Duration::from_secs(10)).await {
            Some(DiscoveryEvent::Lost { peer_id, .. }) if peer_id == id => break,
            Some(_) => continue,
            None => panic!("not lost within 10 s after withdrawal"),
        }
    }
    assert_eq!(browser.stats().malformed, 0);

    // Our own id is ignored when asked.
    let registration = mdns.advertise(&ad).expect("advertised again");
    let options = BrowseOptions {
        ignore_peer_id: Some(id.clone()),
        ..BrowseOptions::default()
    };
    let mut own = mdns.browse(&options).expect("browsing");
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Some(e) = own.try_next() {
        if let DiscoveryEvent::Found(p) = &e {
            assert_ne!(p.txt.peer_id, id, "our own advertisement was reported");
        }
    }
    drop(registration);
}
