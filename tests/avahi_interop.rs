//! Both discovery backends against a real avahi-daemon: what avahi-utils see of our
//! advertisements, what we see of theirs, and the dns_sd.h backend through Avahi's
//! compatibility library (and without a daemon).
//!
//! Each test starts its own daemon (one at a time: they share avahi's D-Bus name) in a
//! network namespace joined to ours by a veth link, and keeps `mdns-sd` to that link, so
//! nothing here depends on or reaches the machine's network; the last test runs the daemon
//! on a host interface beside `mdns-sd` instead, to show that the two share UDP port 5353
//! on one host. Without root or avahi-utils, a test prints `skipped: <reason>` and passes.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{
    Advertisement, BrowseOptions, Browser, Discovery, DiscoveryError, DiscoveryEvent,
    KindOverrides, MdnsSd, NativeDnsSd, Peer, PeerTxt, interfaces,
};
use tandem_proto::Codec;
use tandem_tests::avahi::{AvahiDaemon, NETNS_ADDR, Placement, Resolved, TANDEM_TYPE};

/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(15);

macro_rules! or_skip {
    ($fixture:expr) => {
        match $fixture {
            Ok(v) => v,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        }
    };
}

fn peer_txt(id: &str, device_name: &str) -> PeerTxt {
    PeerTxt {
        protocol_version: PROTOCOL_VERSION,
        peer_id: id.into(),
        device_name: device_name.into(),
        codecs: vec![Codec::Av1, Codec::H264],
    }
}

/// The index of interface `name` here.
fn index_of(name: &str) -> u32 {
    interfaces(&KindOverrides::new())
        .expect("interfaces")
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no interface {name}"))
        .index
}

/// The next event that `pick` accepts, within [`STEP`].
async fn wait_for<T>(
    browser: &mut Browser,
    what: &str,
    mut pick: impl FnMut(DiscoveryEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, browser.next()).await {
            Ok(Some(e)) => {
                if let Some(v) = pick(e) {
                    return v;
                }
            }
            Ok(None) => panic!("the browse stopped while waiting for {what}"),
            Err(_) => panic!(
                "no {what} within {STEP:?}; peers now: {:?}",
                browser.peers()
            ),
        }
    }
}

/// A find (or update) of `instance` whose addresses satisfy `ready`.
async fn found(browser: &mut Browser, instance: &str, ready: impl Fn(&Peer) -> bool) -> Peer {
    wait_for(browser, &format!("find of {instance:?}"), |e| match e {
        DiscoveryEvent::Found(p) | DiscoveryEvent::Updated(p)
            if p.instance == instance && ready(&p) =>
        {
            Some(p)
        }
        _ => None,
    })
    .await
}

async fn lost(browser: &mut Browser, peer_id: &str) {
    wait_for(browser, &format!("loss of {peer_id:?}"), |e| match e {
        DiscoveryEvent::Lost { peer_id: p, .. } if p == peer_id => Some(()),
        _ => None,
    })
    .await;
}

/// avahi-browse's resolutions of `instance` once there are some, within [`STEP`].
async fn avahi_sees(daemon: &AvahiDaemon, instance: &str) -> Vec<Resolved> {
    let deadline = Instant::now() + STEP;
    loop {
        let lines: Vec<Resolved> = daemon
            .browse_resolved(TANDEM_TYPE)
            .into_iter()
            .filter(|r| r.name == instance)
            .collect();
        if !lines.is_empty() {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "avahi-browse did not resolve {instance:?} within {STEP:?}; daemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn assert_txt_is(line: &Resolved, txt: &PeerTxt) {
    assert_eq!(
        line.txt_value("v"),
        Some(PROTOCOL_VERSION.to_string().as_str())
    );
    assert_eq!(line.txt_value("id"), Some(txt.peer_id.as_str()));
    assert_eq!(line.txt_value("dn"), Some(txt.device_name.as_str()));
    assert_eq!(line.txt_value("c"), Some("av1,h264"));
}

/// The TXT strings avahi-publish is given for a peer.
fn publish_txt(txt: &PeerTxt) -> Vec<String> {
    txt.to_pairs()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avahi_browse_sees_our_mdns_sd_advertisement() {
    let daemon = or_skip!(AvahiDaemon::start(Placement::OwnNamespace));
    let link = index_of(daemon.link().expect("a link"));
    let pid = std::process::id();
    let txt = peer_txt(&format!("mdns-{pid}"), "Ana's desk");
    let mut ad = Advertisement::new(47_301, txt.clone());
    ad.instance = format!("Tandem mdns {pid}");
    ad.interface = Some(link);
    let mdns = MdnsSd::new().expect("mdns-sd");
    let _registration = mdns.advertise(&ad).expect("advertised");

    let lines = avahi_sees(&daemon, &ad.instance).await;
    println!("avahi-browse resolved {lines:?}");
    for line in &lines {
        assert_eq!(line.port, 47_301, "{line:?}");
        assert_eq!(line.service_type, TANDEM_TYPE);
        assert_txt_is(line, &txt);
    }
    assert!(
        lines.iter().any(|l| l.address == "198.51.100.1"),
        "our end of the link is among the addresses: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_mdns_sd_browser_finds_and_loses_an_avahi_published_service() {
    let daemon = or_skip!(AvahiDaemon::start(Placement::OwnNamespace));
    let link = index_of(daemon.link().expect("a link"));
    let pid = std::process::id();
    let instance = format!("Avahi peer {pid}");
    let txt = PeerTxt {
        codecs: vec![Codec::Av1],
        ..peer_txt(&format!("avahi-{pid}"), "Avahi peer")
    };
    let mdns = MdnsSd::new().expect("mdns-sd");
    let options = BrowseOptions {
        interface: Some(link),
        ..BrowseOptions::default()
    };
    let mut browser = mdns.browse(&options).expect("browsing");
    let published = daemon.publish(&instance, 47_302, &publish_txt(&txt));

    let ours = NETNS_ADDR.parse::<std::net::IpAddr>().expect("address");
    let peer = found(&mut browser, &instance, |p| {
        p.addresses.iter().any(|a| a.addr.ip() == ours)
    })
    .await;
    println!("mdns-sd found {peer:?}");
    assert_eq!(peer.port, 47_302);
    assert_eq!(peer.txt, txt);
    assert_eq!(peer.host, format!("{}.", daemon.host_name()));
    assert!(
        peer.addresses.iter().all(|a| a.interface == link),
        "{peer:?}"
    );

    published.withdraw();
    lost(&mut browser, &txt.peer_id).await;
    assert_eq!(browser.stats().malformed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_dns_sd_registers_browses_and_loses_through_avahi() {
    let daemon = or_skip!(AvahiDaemon::start(Placement::OwnNamespace));
    let native = match NativeDnsSd::new() {
        Err(DiscoveryError::Unavailable { why, .. }) if why.contains("libdns_sd.so.1") => {
            println!("skipped: {why}");
            return;
        }
        other => other.expect("dns_sd.h through avahi-daemon"),
    };
    let pid = std::process::id();

    // Register: avahi confirms the name, and avahi-browse resolves it with its TXT record.
    let txt = peer_txt(&format!("native-{pid}"), "Native peer");
    let mut ad = Advertisement::new(47_303, txt.clone());
    ad.instance = format!("Tandem native {pid}");
    let registration = native.advertise(&ad).expect("registered");
    let deadline = Instant::now() + STEP;
    while registration.registered_name().is_none() {
        assert!(
            Instant::now() < deadline,
            "avahi did not confirm the registration"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        registration.registered_name().as_deref(),
        Some(ad.instance.as_str())
    );
    let lines = avahi_sees(&daemon, &ad.instance).await;
    println!("avahi-browse resolved {lines:?}");
    for line in &lines {
        assert_eq!(line.port, 47_303, "{line:?}");
        assert_txt_is(line, &txt);
    }

    // Browse: an avahi-publish'ed service is found with its address, port and TXT record;
    // our own advertisement is not reported.
    let options = BrowseOptions {
        ignore_peer_id: Some(txt.peer_id.clone()),
        ..BrowseOptions::default()
    };
    let mut browser = native.browse(&options).expect("browsing");
    let other = PeerTxt {
        codecs: vec![Codec::Av1],
        ..peer_txt(&format!("published-{pid}"), "Published peer")
    };
    let instance = format!("Published {pid}");
    let published = daemon.publish(&instance, 47_304, &publish_txt(&other));
    // Both of the daemon's addresses on its link: the IPv4 one, and the IPv6 link-local
    // one scoped to the interface the answer came on.
    let ours = NETNS_ADDR.parse::<std::net::IpAddr>().expect("address");
    let scoped_link_local = |a: &tandem_net::PeerAddress| match a.addr {
        std::net::SocketAddr::V6(v6) => {
            v6.ip().is_unicast_link_local() && v6.scope_id() == a.interface
        }
        std::net::SocketAddr::V4(_) => false,
    };
    let peer = found(&mut browser, &instance, |p| {
        p.addresses.iter().any(|a| a.addr.ip() == ours) && p.addresses.iter().any(scoped_link_local)
    })
    .await;
    println!("dns-sd found {peer:?}");
    assert_eq!(peer.port, 47_304);
    assert_eq!(peer.txt, other);
    assert_eq!(peer.host, format!("{}.", daemon.host_name()));
    assert!(peer.addresses.iter().all(|a| a.addr.port() == 47_304));
    assert!(
        browser.peers().iter().all(|p| p.txt.peer_id != txt.peer_id),
        "our own advertisement was reported"
    );

    // Withdrawn: lost.
    published.withdraw();
    lost(&mut browser, &other.peer_id).await;
    assert_eq!(browser.stats().malformed, 0);

    // Dropping the registration withdraws it.
    drop(registration);
    let deadline = Instant::now() + STEP;
    while daemon
        .browse_resolved(TANDEM_TYPE)
        .iter()
        .any(|r| r.name == ad.instance)
    {
        assert!(Instant::now() < deadline, "still advertised after the drop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_dns_sd_without_avahi_daemon_is_unavailable() {
    let expected = "avahi-daemon is not running (start it: avahi-daemon -D, needs dbus)";
    let unavailable = |r: Result<_, DiscoveryError>, what: &str| match r {
        Err(DiscoveryError::Unavailable { backend, why }) => {
            assert_eq!(backend, "dns-sd");
            assert_eq!(why, expected, "{what}");
        }
        Err(e) => panic!("{what}: expected Unavailable, got {e}"),
        Ok(_) => panic!("{what} worked without avahi-daemon"),
    };

    // Made while a daemon runs, used after it stopped.
    let daemon = or_skip!(AvahiDaemon::start(Placement::OwnNamespace));
    let native = match NativeDnsSd::new() {
        Err(DiscoveryError::Unavailable { why, .. }) if why.contains("libdns_sd.so.1") => {
            println!("skipped: {why}");
            return;
        }
        other => other.expect("dns_sd.h through avahi-daemon"),
    };
    let mut browser = native.browse(&BrowseOptions::default()).expect("browsing");
    let ad = Advertisement::new(47_305, peer_txt("absent", "Absent"));
    let registration = native.advertise(&ad).expect("registered");
    let _no_daemon = daemon.stop();
    // What was running when it stopped: the browse ends, the registration drops cleanly.
    let deadline = tokio::time::Instant::now() + STEP;
    while let Some(e) = tokio::time::timeout_at(deadline, browser.next())
        .await
        .expect("the browse ends when avahi-daemon stops")
    {
        println!("event before the end: {e:?}");
    }
    drop(registration);
    unavailable(native.browse(&BrowseOptions::default()).map(drop), "browse");
    unavailable(native.advertise(&ad).map(drop), "advertise");
    // And made without one.
    unavailable(NativeDnsSd::new().map(drop), "NativeDnsSd::new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avahi_and_mdns_sd_share_port_5353_on_one_host() {
    // A host interface both can use; not one of the links the other tests make.
    let host_interface = interfaces(&KindOverrides::new())
        .expect("interfaces")
        .into_iter()
        .find(|i| {
            i.usable()
                && i.multicast
                && !i.name.starts_with("tav")
                && i.kind != tandem_net::InterfaceKind::Loopback
                && i.addrs.iter().any(|a| a.ip.is_ipv4())
        });
    let Some(interface) = host_interface else {
        println!("skipped: no multicast interface with an IPv4 address on this host");
        return;
    };
    let daemon = or_skip!(AvahiDaemon::start(Placement::Host {
        interface: interface.name.clone()
    }));
    let pid = std::process::id();
    let mdns = MdnsSd::new().expect("mdns-sd beside avahi-daemon");

    let txt = peer_txt(&format!("cohost-{pid}"), "Cohost");
    let mut ad = Advertisement::new(47_306, txt.clone());
    ad.instance = format!("Tandem cohost {pid}");
    ad.interface = Some(interface.index);
    let _registration = mdns.advertise(&ad).expect("advertised");
    let lines = avahi_sees(&daemon, &ad.instance).await;
    println!(
        "avahi-browse beside mdns-sd on {} resolved {lines:?}",
        interface.name
    );
    assert!(lines.iter().all(|l| l.port == 47_306), "{lines:?}");
    assert_txt_is(&lines[0], &txt);

    let options = BrowseOptions {
        interface: Some(interface.index),
        ignore_peer_id: Some(txt.peer_id.clone()),
        ..BrowseOptions::default()
    };
    let mut browser = mdns.browse(&options).expect("browsing");
    let other = PeerTxt {
        codecs: vec![Codec::Av1],
        ..peer_txt(&format!("cohost-avahi-{pid}"), "Cohost avahi")
    };
    let instance = format!("Cohost avahi {pid}");
    let published = daemon.publish(&instance, 47_307, &publish_txt(&other));
    let peer = found(&mut browser, &instance, |p| !p.addresses.is_empty()).await;
    println!(
        "mdns-sd beside avahi-daemon on {} found {peer:?}",
        interface.name
    );
    assert_eq!(peer.port, 47_307);
    assert_eq!(peer.txt, other);
    published.withdraw();
    lost(&mut browser, &other.peer_id).await;
}
