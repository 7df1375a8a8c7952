//! `PeerTable`: what a browse has found so far, merged across interfaces, and the
//! found/updated/lost events that changes to it produce.
//!
//! Backends report in two shapes. `mdns-sd` resolves a service with every address it has
//! seen on every interface at once ([`PeerTable::resolved_all`]); `dns_sd.h` reports one
//! interface at a time and withdraws one interface at a time
//! ([`PeerTable::resolved_on`], [`PeerTable::removed`]). Both end up here, so a peer seen on
//! Wi-Fi and on AWDL is one peer with addresses on two interfaces, found once and lost only
//! when the last interface loses it — whichever backend saw it.

use std::collections::BTreeMap;

use super::txt::PeerTxt;
use super::{DiscoveryEvent, Peer, PeerAddress};

/// One interface's view of a service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sighting {
    host: String,
    port: u16,
    txt: PeerTxt,
    addresses: Vec<PeerAddress>,
}

/// Peers by service instance name, each by the interface it was seen on.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: BTreeMap<String, BTreeMap<u32, Sighting>>,
    /// Peers with this id are ours: not reported.
    ignore_peer_id: Option<String>,
}

impl PeerTable {
    pub(crate) fn new(ignore_peer_id: Option<String>) -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            ignore_peer_id,
        }
    }

    /// The current peers, by instance name.
    pub(crate) fn peers(&self) -> Vec<Peer> {
        self.peers
            .iter()
            .filter_map(|(name, s)| merge(name, s))
            .collect()
    }

    /// `instance` as resolved on one interface (replacing what that interface said before).
    pub(crate) fn resolved_on(
        &mut self,
        interface: u32,
        instance: &str,
        host: &str,
        port: u16,
        txt: PeerTxt,
        addresses: Vec<PeerAddress>,
    ) -> Option<DiscoveryEvent> {
        let sighting = Sighting {
            host: host.to_owned(),
            port,
            txt,
            addresses,
        };
        self.change_sightings(instance, &sighting.txt.clone(), |s| {
            s.insert(interface, sighting);
        })
    }

    /// `instance` as resolved everywhere at once: addresses are grouped by the interface
    /// each carries, and interfaces no longer listed are dropped.
    pub(crate) fn resolved_all(
        &mut self,
        instance: &str,
        host: &str,
        port: u16,
        txt: PeerTxt,
        addresses: Vec<PeerAddress>,
    ) -> Option<DiscoveryEvent> {
        self.change_sightings(instance, &txt.clone(), |sightings| {
            sightings.clear();
            for a in addresses {
                sightings
                    .entry(a.interface)
                    .or_insert_with(|| Sighting {
                        host: host.to_owned(),
                        port,
                        txt: txt.clone(),
                        addresses: Vec::new(),
                    })
                    .addresses
                    .push(a);
            }
        })
    }

    /// Changes `instance`'s sightings (unless `txt` is ours) and says what that changed.
    fn change_sightings(
        &mut self,
        instance: &str,
        txt: &PeerTxt,
        change: impl FnOnce(&mut BTreeMap<u32, Sighting>),
    ) -> Option<DiscoveryEvent> {
        if self.ignore_peer_id.as_deref() == Some(txt.peer_id.as_str()) {
            return None;
        }
        let before = self.peer(instance);
        let sightings = self.peers.entry(instance.to_owned()).or_default();
        change(sightings);
        if sightings.is_empty() {
            self.peers.remove(instance);
        }
        self.change(instance, before)
    }

    /// `instance` withdrawn on `interface`, or everywhere (`None`).
    pub(crate) fn removed(
        &mut self,
        instance: &str,
        interface: Option<u32>,
    ) -> Option<DiscoveryEvent> {
        let before = self.peer(instance);
        match interface {
            Some(i) => {
                if let Some(s) = self.peers.get_mut(instance) {
                    s.remove(&i);
                    if s.is_empty() {
                        self.peers.remove(instance);
                    }
                }
            }
            None => {
                self.peers.remove(instance);
            }
        }
        self.change(instance, before)
    }

    /// Forgets every sighting on an interface `keep` refuses (a browse that no longer
    /// covers it will not report departures there); says what that changed, peer by peer.
    pub(crate) fn retain_interfaces(&mut self, keep: impl Fn(u32) -> bool) -> Vec<DiscoveryEvent> {
        let touched: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, s)| s.keys().any(|i| !keep(*i)))
            .map(|(name, _)| name.clone())
            .collect();
        let mut events = Vec::new();
        for instance in touched {
            let before = self.peer(&instance);
            if let Some(s) = self.peers.get_mut(&instance) {
                s.retain(|i, _| keep(*i));
                if s.is_empty() {
                    self.peers.remove(&instance);
                }
            }
            events.extend(self.change(&instance, before));
        }
        events
    }

    fn peer(&self, instance: &str) -> Option<Peer> {
        self.peers.get(instance).and_then(|s| merge(instance, s))
    }

    fn change(&self, instance: &str, before: Option<Peer>) -> Option<DiscoveryEvent> {
        match (before, self.peer(instance)) {
            (None, Some(now)) => Some(DiscoveryEvent::Found(now)),
            (Some(was), Some(now)) if was != now => Some(DiscoveryEvent::Updated(now)),
            (Some(was), None) => Some(DiscoveryEvent::Lost {
                instance: was.instance,
                peer_id: was.txt.peer_id,
            }),
            _ => None,
        }
    }
}

/// One peer from its sightings: the lowest interface index's host, port and TXT record
/// (sightings of one instance agree unless it is changing, and then the next one settles
/// it), every interface's addresses.
fn merge(instance: &str, sightings: &BTreeMap<u32, Sighting>) -> Option<Peer> {
    let first = sightings.values().next()?;
    let mut addresses: Vec<PeerAddress> = sightings
        .values()
        .flat_map(|s| s.addresses.iter().copied())
        .collect();
    addresses.sort_by_key(|a| (a.interface, a.addr.is_ipv6(), a.addr));
    addresses.dedup();
    Some(Peer {
        instance: instance.to_owned(),
        host: first.host.clone(),
        port: first.port,
        txt: first.txt.clone(),
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use crate::discovery::txt::test_txt as txt;

    fn addr(s: &str, interface: u32) -> PeerAddress {
        PeerAddress {
            addr: s.parse::<SocketAddr>().expect("address"),
            interface,
        }
    }

    #[test]
    fn per_interface_sightings_merge_and_lose_last() {
        let mut t = PeerTable::new(None);
        let e = t.resolved_on(
            2,
            "cam",
            "cam.local.",
            5000,
            txt("a"),
            vec![addr("10.0.0.2:5000", 2)],
        );
        assert!(matches!(e, Some(DiscoveryEvent::Found(ref p)) if p.addresses.len() == 1));
        // The same again: nothing new.
        let again = t.resolved_on(
            2,
            "cam",
            "cam.local.",
            5000,
            txt("a"),
            vec![addr("10.0.0.2:5000", 2)],
        );
        assert_eq!(again, None);
        // Seen on a second interface: one peer, two addresses.
        let e = t.resolved_on(
            3,
            "cam",
            "cam.local.",
            5000,
            txt("a"),
            vec![addr("[fe80::2%3]:5000", 3)],
        );
        let Some(DiscoveryEvent::Updated(p)) = e else {
            panic!("expected an update, got {e:?}");
        };
        assert_eq!(
            p.addresses,
            vec![addr("10.0.0.2:5000", 2), addr("[fe80::2%3]:5000", 3)]
        );
        assert_eq!(t.peers().len(), 1);
        // Withdrawn on one interface: still there.
        assert!(matches!(
            t.removed("cam", Some(2)),
            Some(DiscoveryEvent::Updated(_))
        ));
        let e = t.removed("cam", Some(3));
        assert_eq!(
            e,
            Some(DiscoveryEvent::Lost {
                instance: "cam".into(),
                peer_id: "a".into()
            })
        );
        assert!(t.peers().is_empty());
        assert_eq!(
            t.removed("cam", None),
            None,
            "losing a lost peer says nothing"
        );
    }

    #[test]
    fn forgetting_interfaces_loses_or_updates_whom_it_touches() {
        let mut t = PeerTable::new(None);
        // `both` on Wi-Fi (2) and AWDL (3), `awdl` on AWDL only, `wifi` on Wi-Fi only.
        let _ = t.resolved_all(
            "both",
            "b.local.",
            9,
            txt("b"),
            vec![addr("10.0.0.2:9", 2), addr("[fe80::2%3]:9", 3)],
        );
        let _ = t.resolved_on(
            3,
            "awdl",
            "a.local.",
            9,
            txt("a"),
            vec![addr("[fe80::3%3]:9", 3)],
        );
        let _ = t.resolved_on(
            2,
            "wifi",
            "w.local.",
            9,
            txt("w"),
            vec![addr("10.0.0.4:9", 2)],
        );
        let events = t.retain_interfaces(|i| i != 3);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.contains(&DiscoveryEvent::Lost {
            instance: "awdl".into(),
            peer_id: "a".into()
        }));
        assert!(events.iter().any(
            |e| matches!(e, DiscoveryEvent::Updated(p) if p.instance == "both"
                && p.addresses == vec![addr("10.0.0.2:9", 2)])
        ));
        let names: Vec<String> = t.peers().into_iter().map(|p| p.instance).collect();
        assert_eq!(names, vec!["both".to_owned(), "wifi".to_owned()]);
        assert!(
            t.retain_interfaces(|i| i != 3).is_empty(),
            "nothing left to forget"
        );
    }

    #[test]
    fn whole_resolutions_replace_and_ours_is_ignored() {
        let mut t = PeerTable::new(Some("me".into()));
        assert_eq!(
            t.resolved_all(
                "self",
                "h.local.",
                1,
                txt("me"),
                vec![addr("10.0.0.1:1", 2)]
            ),
            None
        );
        let both = vec![addr("10.0.0.2:9", 2), addr("[fe80::2%3]:9", 3)];
        assert!(matches!(
            t.resolved_all("cam", "c.local.", 9, txt("a"), both),
            Some(DiscoveryEvent::Found(_))
        ));
        // The next resolution lacks interface 3: it is dropped.
        let e = t.resolved_all("cam", "c.local.", 9, txt("a"), vec![addr("10.0.0.2:9", 2)]);
        let Some(DiscoveryEvent::Updated(p)) = e else {
            panic!("expected an update, got {e:?}");
        };
        assert_eq!(p.addresses, vec![addr("10.0.0.2:9", 2)]);
        // A new device name is an update too.
        let mut renamed = txt("a");
        renamed.device_name = "Kitchen".into();
        let e = t.resolved_all("cam", "c.local.", 9, renamed, vec![addr("10.0.0.2:9", 2)]);
        assert!(
            matches!(e, Some(DiscoveryEvent::Updated(ref p)) if p.txt.device_name == "Kitchen")
        );
        assert!(matches!(
            t.removed("cam", None),
            Some(DiscoveryEvent::Lost { .. })
        ));
    }
}
