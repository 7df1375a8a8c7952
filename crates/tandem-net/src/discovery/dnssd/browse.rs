//! What a `dns_sd.h` browse knows, kept apart from the calls that feed it so that it is
//! tested without a daemon.
//!
//! `dns_sd.h` answers in steps, one interface at a time: the browse says an instance
//! appeared on an interface, a resolve of it there gives host, port and TXT record, and
//! address queries for the host (A and AAAA; Avahi has no `DNSServiceGetAddrInfo`) give
//! the addresses, one per answer. [`BrowseState`] decides which request to start or stop
//! next and reports each step to the peer table as soon as there is an address to use.
//!
//! Everything is bounded, because every name in it comes from the network: instances
//! tracked ([`MAX_INSTANCES`]), requests in flight ([`MAX_OPS`]; Avahi's compatibility
//! library spends a thread and a D-Bus connection on each), and how long a resolve or a
//! query may run. Avahi reports a service once per IP protocol on the same interface, so
//! appearances are counted and the instance is withdrawn with the last one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::super::txt::PeerTxt;
use super::super::{BrowseSink, PeerAddress};
use super::{Reply, TYPE_A, TYPE_AAAA, describe, peer_address};

/// Identifies one request the browse started.
pub(super) type OpId = u64;

/// Instances (per interface) tracked at once; more are ignored and counted.
pub(super) const MAX_INSTANCES: usize = 1024;
/// Requests in flight at once, the browse itself not counted. A resolve reserves room for
/// the two address queries that follow it.
pub(super) const MAX_OPS: usize = 64;
/// A resolve that has not answered by then is given up.
pub(super) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// An address query that has not answered by then is stopped.
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// An address query stops this long after its first answer: a host's other addresses come
/// right behind it, and later changes are not worth a request per peer.
pub(super) const QUERY_LINGER: Duration = Duration::from_secs(1);

/// A request to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Start {
    /// `DNSServiceResolve` of `instance` on `interface`.
    Resolve {
        op: OpId,
        interface: u32,
        instance: String,
        domain: String,
    },
    /// `DNSServiceQueryRecord` of `rrtype` for `host` on `interface`.
    Query {
        op: OpId,
        interface: u32,
        host: String,
        rrtype: u16,
    },
}

impl Start {
    pub(super) fn op(&self) -> OpId {
        match self {
            Start::Resolve { op, .. } | Start::Query { op, .. } => *op,
        }
    }
}

/// (instance, interface index).
type Key = (String, u32);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Service {
    host: String,
    port: u16,
    txt: PeerTxt,
}

#[derive(Debug)]
enum Phase {
    /// Seen; its resolve waits for room.
    Waiting,
    Resolving {
        op: OpId,
        deadline: Instant,
    },
    /// Resolved; its addresses so far, and the queries still running.
    Addressed {
        service: Service,
        addresses: BTreeSet<PeerAddress>,
        queries: Vec<(OpId, Instant)>,
    },
    /// Its resolve failed, timed out or gave a TXT record that is not a peer's: left alone
    /// until the browse withdraws it (and perhaps reports it again).
    GaveUp,
}

#[derive(Debug)]
struct Entry {
    /// Appearances reported minus withdrawals.
    appearances: u32,
    domain: String,
    phase: Phase,
}

/// One browse's instances and requests. See the module docs.
#[derive(Debug, Default)]
pub(super) struct BrowseState {
    entries: BTreeMap<Key, Entry>,
    /// The instance each live request is for.
    ops: HashMap<OpId, Key>,
    next_op: OpId,
    starts: Vec<Start>,
    cancels: Vec<OpId>,
    ignored: u64,
}

impl BrowseState {
    /// Instances ignored because [`MAX_INSTANCES`] were tracked.
    pub(super) fn ignored(&self) -> u64 {
        self.ignored
    }

    /// The requests to start and to stop (deallocate) since the last call.
    pub(super) fn drain(&mut self) -> (Vec<Start>, Vec<OpId>) {
        (
            std::mem::take(&mut self.starts),
            std::mem::take(&mut self.cancels),
        )
    }

    /// The browse reported `instance` appearing (`add`) or gone on `interface`.
    pub(super) fn browsed(
        &mut self,
        sink: &BrowseSink,
        add: bool,
        interface: u32,
        instance: String,
        domain: String,
    ) {
        let key = (instance, interface);
        if add {
            if let Some(e) = self.entries.get_mut(&key) {
                e.appearances = e.appearances.saturating_add(1);
            } else if self.entries.len() >= MAX_INSTANCES {
                self.ignored += 1;
                tracing::debug!(instance = key.0, "dns-sd: too many instances; ignoring one");
            } else {
                let entry = Entry {
                    appearances: 1,
                    domain,
                    phase: Phase::Waiting,
                };
                self.entries.insert(key, entry);
            }
            return;
        }
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        e.appearances = e.appearances.saturating_sub(1);
        if e.appearances > 0 {
            return;
        }
        if let Some(e) = self.entries.remove(&key) {
            self.stop_all(&e.phase);
        }
        sink.update(|t| t.removed(&key.0, Some(key.1)));
    }

    /// A request answered.
    pub(super) fn replied(&mut self, sink: &BrowseSink, op: OpId, reply: Reply, now: Instant) {
        let Some(key) = self.ops.get(&op).cloned() else {
            // Stopped already; a reply in the same batch as the one that stopped it.
            return;
        };
        match reply {
            Reply::Resolved {
                host, port, txt, ..
            } => self.resolved(sink, &key, op, host, port, &txt, now),
            Reply::Address { add, interface, ip } => {
                self.address(sink, &key, op, add, interface, ip, now);
            }
            Reply::Failed(code) => self.failed(op, code),
            Reply::Browse { .. } | Reply::Registered { .. } => {}
        }
    }

    /// A request failed, to start or later: it is forgotten, and a failed resolve gives
    /// its instance up.
    pub(super) fn failed(&mut self, op: OpId, code: i32) {
        let Some(key) = self.ops.remove(&op) else {
            return;
        };
        self.cancels.push(op);
        tracing::debug!(instance = key.0, interface = key.1, error = %describe(code), "dns-sd: request failed");
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        match &mut e.phase {
            Phase::Resolving { op: o, .. } if *o == op => e.phase = Phase::GaveUp,
            Phase::Addressed { queries, .. } => queries.retain(|(q, _)| *q != op),
            _ => {}
        }
    }

    /// Stops what has run too long, and starts resolves while there is room.
    pub(super) fn tick(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (key, e) in &mut self.entries {
            match &mut e.phase {
                Phase::Resolving { op, deadline } if *deadline <= now => {
                    tracing::debug!(
                        instance = key.0,
                        interface = key.1,
                        "dns-sd: resolve timed out"
                    );
                    expired.push(*op);
                    e.phase = Phase::GaveUp;
                }
                Phase::Addressed { queries, .. } => queries.retain(|(op, deadline)| {
                    let keep = *deadline > now;
                    if !keep {
                        expired.push(*op);
                    }
                    keep
                }),
                _ => {}
            }
        }
        for op in expired {
            self.stop(op);
        }
        let mut room = MAX_OPS.saturating_sub(self.load());
        for (key, e) in &mut self.entries {
            if room < 3 {
                break;
            }
            if !matches!(e.phase, Phase::Waiting) {
                continue;
            }
            room -= 3;
            let op = self.next_op;
            self.next_op += 1;
            self.ops.insert(op, key.clone());
            e.phase = Phase::Resolving {
                op,
                deadline: now + RESOLVE_TIMEOUT,
            };
            self.starts.push(Start::Resolve {
                op,
                interface: key.1,
                instance: key.0.clone(),
                domain: e.domain.clone(),
            });
        }
    }

    /// When [`BrowseState::tick`] next has something to stop.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .flat_map(|e| match &e.phase {
                Phase::Resolving { deadline, .. } => vec![*deadline],
                Phase::Addressed { queries, .. } => queries.iter().map(|(_, d)| *d).collect(),
                Phase::Waiting | Phase::GaveUp => Vec::new(),
            })
            .min()
    }

    /// Requests in flight, each resolve counting the queries it will start.
    fn load(&self) -> usize {
        self.entries
            .values()
            .map(|e| match &e.phase {
                Phase::Resolving { .. } => 3,
                Phase::Addressed { queries, .. } => queries.len(),
                Phase::Waiting | Phase::GaveUp => 0,
            })
            .sum()
    }

    fn stop(&mut self, op: OpId) {
        if self.ops.remove(&op).is_some() {
            self.cancels.push(op);
        }
    }

    fn stop_all(&mut self, phase: &Phase) {
        match phase {
            Phase::Resolving { op, .. } => self.stop(*op),
            Phase::Addressed { queries, .. } => {
                for (op, _) in queries {
                    self.stop(*op);
                }
            }
            Phase::Waiting | Phase::GaveUp => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn resolved(
        &mut self,
        sink: &BrowseSink,
        key: &Key,
        op: OpId,
        host: String,
        port: u16,
        txt: &[u8],
        now: Instant,
    ) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if !matches!(e.phase, Phase::Resolving { op: o, .. } if o == op) {
            return;
        }
        // One answer is all a resolve is for.
        self.ops.remove(&op);
        self.cancels.push(op);
        let txt = match PeerTxt::from_wire(txt) {
            Ok(t) => t,
            Err(error) => {
                sink.malformed(&key.0, &error);
                e.phase = Phase::GaveUp;
                return;
            }
        };
        let mut queries = Vec::with_capacity(2);
        for rrtype in [TYPE_A, TYPE_AAAA] {
            let q = self.next_op;
            self.next_op += 1;
            self.ops.insert(q, key.clone());
            queries.push((q, now + QUERY_TIMEOUT));
            self.starts.push(Start::Query {
                op: q,
                interface: key.1,
                host: host.clone(),
                rrtype,
            });
        }
        e.phase = Phase::Addressed {
            service: Service { host, port, txt },
            addresses: BTreeSet::new(),
            queries,
        };
    }

    #[allow(clippy::too_many_arguments)]
    fn address(
        &mut self,
        sink: &BrowseSink,
        key: &Key,
        op: OpId,
        add: bool,
        interface: u32,
        ip: std::net::IpAddr,
        now: Instant,
    ) {
        let Some(Entry {
            phase:
                Phase::Addressed {
                    service,
                    addresses,
                    queries,
                },
            ..
        }) = self.entries.get_mut(key)
        else {
            return;
        };
        if let Some((_, deadline)) = queries.iter_mut().find(|(q, _)| *q == op) {
            *deadline = (*deadline).min(now + QUERY_LINGER);
        }
        // The answer's interface scopes a link-local address; the browse's is where it
        // was seen.
        let scope = if interface == 0 { key.1 } else { interface };
        let a = peer_address(ip, service.port, scope, key.1);
        let changed = if add {
            addresses.insert(a)
        } else {
            addresses.remove(&a)
        };
        if !changed {
            return;
        }
        sink.update(|t| {
            if addresses.is_empty() {
                t.removed(&key.0, Some(key.1))
            } else {
                t.resolved_on(
                    key.1,
                    &key.0,
                    &service.host,
                    service.port,
                    service.txt.clone(),
                    addresses.iter().copied().collect(),
                )
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{BrowseOptions, Browser, DiscoveryEvent};
    use super::*;
    use std::net::{IpAddr, SocketAddr};

    use crate::discovery::txt::test_txt as txt;

    fn resolved(port: u16, txt: &PeerTxt) -> Reply {
        Reply::Resolved {
            interface: 2,
            host: "desk.local.".into(),
            port,
            txt: txt.to_wire(),
        }
    }

    fn address(add: bool, ip: &str) -> Reply {
        Reply::Address {
            add,
            interface: 2,
            ip: ip.parse::<IpAddr>().expect("ip"),
        }
    }

    fn resolve_op(starts: &[Start]) -> OpId {
        match starts {
            [Start::Resolve { op, .. }] => *op,
            other => panic!("expected one resolve, got {other:?}"),
        }
    }

    #[test]
    fn browse_resolve_query_then_withdraw() {
        let (mut browser, sink) = Browser::channel(&BrowseOptions::default());
        let mut s = BrowseState::default();
        let t0 = Instant::now();
        // Avahi reports the instance once per IP protocol.
        s.browsed(&sink, true, 2, "Desk".into(), "local.".into());
        s.browsed(&sink, true, 2, "Desk".into(), "local.".into());
        s.tick(t0);
        let (starts, cancels) = s.drain();
        assert!(cancels.is_empty());
        assert_eq!(
            starts,
            vec![Start::Resolve {
                op: 0,
                interface: 2,
                instance: "Desk".into(),
                domain: "local.".into()
            }]
        );
        s.replied(&sink, 0, resolved(7000, &txt("a")), t0);
        let (starts, cancels) = s.drain();
        assert_eq!(cancels, vec![0], "a resolve stops after its answer");
        assert_eq!(
            starts
                .iter()
                .map(|s| match s {
                    Start::Query { host, rrtype, .. } => (host.as_str(), *rrtype),
                    other => panic!("expected queries, got {other:?}"),
                })
                .collect::<Vec<_>>(),
            vec![("desk.local.", TYPE_A), ("desk.local.", TYPE_AAAA)]
        );
        assert_eq!(browser.try_next(), None, "no address yet: not found");
        let (a, aaaa) = (starts[0].op(), starts[1].op());
        s.replied(&sink, a, address(true, "10.0.0.2"), t0);
        let Some(DiscoveryEvent::Found(p)) = browser.try_next() else {
            panic!("expected a find");
        };
        assert_eq!((p.port, p.host.as_str()), (7000, "desk.local."));
        assert_eq!(
            p.addresses,
            vec![PeerAddress {
                addr: SocketAddr::from(([10, 0, 0, 2], 7000)),
                interface: 2
            }]
        );
        // The same address again (the other protocol): nothing new.
        s.replied(&sink, a, address(true, "10.0.0.2"), t0);
        assert_eq!(browser.try_next(), None);
        s.replied(&sink, aaaa, address(true, "fe80::2"), t0);
        let Some(DiscoveryEvent::Updated(p)) = browser.try_next() else {
            panic!("expected an update");
        };
        assert_eq!(p.addresses[1].addr, "[fe80::2%2]:7000".parse().expect("v6"));
        // Linger: the answered queries stop a second after their answers.
        assert_eq!(s.next_deadline(), Some(t0 + QUERY_LINGER));
        s.tick(t0 + QUERY_LINGER);
        let (starts, mut cancels) = s.drain();
        cancels.sort_unstable();
        assert!(starts.is_empty());
        assert_eq!(cancels, vec![a, aaaa]);
        assert_eq!(s.next_deadline(), None);
        // One withdrawal of two: still there; the second: lost.
        s.browsed(&sink, false, 2, "Desk".into(), "local.".into());
        assert_eq!(browser.try_next(), None);
        s.browsed(&sink, false, 2, "Desk".into(), "local.".into());
        assert_eq!(
            browser.try_next(),
            Some(DiscoveryEvent::Lost {
                instance: "Desk".into(),
                peer_id: "a".into()
            })
        );
        assert!(s.entries.is_empty() && s.ops.is_empty());
    }

    #[test]
    fn withdrawal_cancels_what_is_pending_and_stale_replies_are_ignored() {
        let (mut browser, sink) = Browser::channel(&BrowseOptions::default());
        let mut s = BrowseState::default();
        let t0 = Instant::now();
        s.browsed(&sink, true, 3, "Cam".into(), "local.".into());
        s.tick(t0);
        let op = resolve_op(&s.drain().0);
        s.browsed(&sink, false, 3, "Cam".into(), "local.".into());
        assert_eq!(s.drain(), (vec![], vec![op]));
        s.replied(&sink, op, resolved(1, &txt("c")), t0);
        assert_eq!(s.drain(), (vec![], vec![]));
        assert_eq!(browser.try_next(), None);
        // A withdrawal of something never seen is nothing.
        s.browsed(&sink, false, 3, "Other".into(), "local.".into());
        assert_eq!(browser.try_next(), None);
    }

    #[test]
    fn timeouts_failures_and_bad_records_give_up_without_leaking() {
        let (browser, sink) = Browser::channel(&BrowseOptions::default());
        let mut s = BrowseState::default();
        let t0 = Instant::now();
        for name in ["slow", "broken", "junk"] {
            s.browsed(&sink, true, 2, name.into(), "local.".into());
        }
        s.tick(t0);
        let (starts, _) = s.drain();
        assert_eq!(starts.len(), 3);
        let op_of = |name: &str| {
            starts
                .iter()
                .find_map(|s| match s {
                    Start::Resolve { op, instance, .. } if instance == name => Some(*op),
                    _ => None,
                })
                .expect("resolve started")
        };
        s.failed(op_of("broken"), -65537);
        s.replied(
            &sink,
            op_of("junk"),
            Reply::Resolved {
                interface: 2,
                host: "j.local.".into(),
                port: 9,
                txt: b"\x05hello".to_vec(),
            },
            t0,
        );
        assert_eq!(browser.stats().malformed, 1);
        assert_eq!(s.next_deadline(), Some(t0 + RESOLVE_TIMEOUT));
        s.tick(t0 + RESOLVE_TIMEOUT);
        let (starts, mut cancels) = s.drain();
        cancels.sort_unstable();
        assert!(starts.is_empty(), "given-up instances are not retried");
        assert_eq!(cancels.len(), 3);
        assert!(s.ops.is_empty());
        assert_eq!(s.next_deadline(), None);
        // A query that never answers stops at its timeout.
        s.browsed(&sink, true, 2, "quiet".into(), "local.".into());
        s.tick(t0);
        let op = resolve_op(&s.drain().0);
        s.replied(&sink, op, resolved(5, &txt("q")), t0);
        s.drain();
        assert_eq!(s.next_deadline(), Some(t0 + QUERY_TIMEOUT));
        s.tick(t0 + QUERY_TIMEOUT);
        assert_eq!(s.drain().1.len(), 2);
        assert!(s.ops.is_empty());
    }

    #[test]
    fn requests_and_instances_are_bounded() {
        let (_browser, sink) = Browser::channel(&BrowseOptions::default());
        let mut s = BrowseState::default();
        let t0 = Instant::now();
        for i in 0..MAX_INSTANCES + 5 {
            s.browsed(&sink, true, 2, format!("peer {i}"), "local.".into());
        }
        assert_eq!(s.entries.len(), MAX_INSTANCES);
        assert_eq!(s.ignored(), 5);
        s.tick(t0);
        let (starts, _) = s.drain();
        assert_eq!(
            starts.len(),
            MAX_OPS / 3,
            "each resolve reserves its queries"
        );
        // Resolving one makes room for nothing yet (its queries take the room)...
        let first = starts[0].op();
        s.replied(&sink, first, resolved(1, &txt("p")), t0);
        s.tick(t0);
        let (starts, _) = s.drain();
        assert_eq!(starts.len(), 2, "only its two queries");
        // ...and once they end, the next waiting instance starts.
        s.tick(t0 + QUERY_TIMEOUT);
        let (starts, _) = s.drain();
        assert!(
            starts.iter().all(|s| matches!(s, Start::Resolve { .. })) && !starts.is_empty(),
            "{starts:?}"
        );
        assert!(s.load() <= MAX_OPS);
    }

    #[test]
    fn removing_the_last_address_withdraws_the_interface() {
        let (mut browser, sink) = Browser::channel(&BrowseOptions::default());
        let mut s = BrowseState::default();
        let t0 = Instant::now();
        s.browsed(&sink, true, 2, "Desk".into(), "local.".into());
        s.tick(t0);
        let op = resolve_op(&s.drain().0);
        s.replied(&sink, op, resolved(7000, &txt("a")), t0);
        let a = s.drain().0[0].op();
        s.replied(&sink, a, address(true, "10.0.0.2"), t0);
        assert!(matches!(browser.try_next(), Some(DiscoveryEvent::Found(_))));
        s.replied(&sink, a, address(false, "10.0.0.2"), t0);
        assert!(matches!(
            browser.try_next(),
            Some(DiscoveryEvent::Lost { .. })
        ));
    }
}
