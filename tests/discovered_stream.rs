//! The whole engine found through discovery: a sender waits for its receiver and advertises
//! itself with `mdns-sd`; a receiver browses, plans the path from what it found, reaches the
//! sender and shows its video.

use std::time::{Duration, Instant};

use tandem::sink::FnSink;
use tandem::{Receiver, ReceiverConfig, Remote, Sender, SenderConfig, TestPatternSource};
use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{Advertisement, BrowseOptions, Discovery, DiscoveryEvent, MdnsSd, PeerTxt};

#[test]
fn a_receiver_finds_an_advertised_sender_and_shows_its_video() {
    let source = TestPatternSource::new(640, 360, 30).expect("pattern");
    let sender = Sender::start(
        SenderConfig::default().fps(30),
        Remote::Listen,
        Some(Box::new(source)),
    )
    .expect("sender");
    let id = format!("engine-{}", std::process::id());
    let mdns = MdnsSd::new().expect("mdns-sd");
    let txt = PeerTxt {
        protocol_version: PROTOCOL_VERSION,
        peer_id: id.clone(),
        device_name: "Engine test".into(),
        codecs: vec![tandem::Codec::Av1],
    };
    let _ad = mdns
        .advertise(&Advertisement::new(sender.local_addr().port(), txt))
        .expect("advertised");
    let peer = tandem_tests::runtime().block_on(async {
        let mut browser = mdns.browse(&BrowseOptions::default()).expect("browse");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), browser.next()).await {
                Ok(Some(DiscoveryEvent::Found(p))) if p.txt.peer_id == id => break p,
                Ok(Some(_)) => {}
                _ => panic!("the sender was not found within 10 s"),
            }
        }
    });
    let (tx, frames) = crossbeam_channel::unbounded();
    let receiver = Receiver::start(
        ReceiverConfig::default(),
        Remote::Discovered(peer),
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("receiver reaches the discovered sender");
    let end = Instant::now() + Duration::from_secs(2);
    let mut shown = 0;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if frames.recv_timeout(left).is_ok() {
            shown += 1;
        }
    }
    println!("{shown} frames shown from the discovered sender");
    assert!(shown >= 20, "{shown} frames");
    assert_eq!(
        sender.peer().map(|p| p.port()),
        Some(receiver.local_addr().port()),
        "the sender learned its receiver"
    );
}
