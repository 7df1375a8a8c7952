//! The whole engine found through discovery: a paired sender waits for its receiver and
//! advertises itself with `mdns-sd`, its peer id the fingerprint of its key; a receiver
//! browses, recognises the paired sender by that id, plans the path, handshakes and shows
//! the video.

use std::time::{Duration, Instant};

use tandem::sink::FnSink;
use tandem::{
    Identity, Receiver, ReceiverConfig, Remote, Security, Sender, SenderConfig, TestPatternSource,
};
use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{Advertisement, BrowseOptions, Discovery, DiscoveryEvent, MdnsSd, PeerTxt};

#[test]
fn a_receiver_finds_an_advertised_sender_and_shows_its_video() {
    let (s_sec, mut r_sec) = Security::paired_in_process("sender", "receiver").expect("keys");
    // Another paired device too, so the receiver must pick the sender by its id.
    r_sec
        .trust
        .add(Identity::generate().expect("identity").public(), "tablet")
        .expect("trust");
    let id = s_sec.identity.fingerprint();
    let source = TestPatternSource::new(640, 360, 30).expect("pattern");
    let mut sender_config = SenderConfig::default().fps(30);
    sender_config.net.security = Some(s_sec);
    let sender =
        Sender::start(sender_config, Remote::Listen, Some(Box::new(source))).expect("sender");
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
    let mut receiver_config = ReceiverConfig::default();
    receiver_config.net.security = Some(r_sec);
    let receiver = Receiver::start(
        receiver_config,
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
