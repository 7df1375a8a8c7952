//! Path changes: interfaces appearing, vanishing, going down or up, gaining or losing
//! addresses ([`PathMonitor`], [`PathEvent`]), and whether one session's path still stands
//! ([`path_status`], which the driver checks).
//!
//! Both poll the interface list (`getifaddrs`) rather than subscribe to the platform's
//! notifications (netlink on Linux, `SCDynamicStore` or `nw_path_monitor` on Apple): one
//! portable code path, tested here, at the cost of noticing a change up to one interval
//! late (default 500 ms for the monitor, 250 ms for a session). A listing costs tens of
//! microseconds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::iface::{Interface, KindOverrides, interfaces};

/// A change to the host's interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathEvent {
    /// A new interface.
    Appeared(Interface),
    /// An interface is gone.
    Vanished(Interface),
    /// An interface changed: up/down, carrier, addresses, MTU or kind.
    Changed {
        /// Before.
        old: Interface,
        /// After.
        new: Interface,
    },
}

impl PathEvent {
    /// The interface as it is now (as it was, for a vanished one).
    pub fn interface(&self) -> &Interface {
        match self {
            PathEvent::Appeared(i) | PathEvent::Vanished(i) => i,
            PathEvent::Changed { new, .. } => new,
        }
    }
}

/// The events that turn interface list `old` into `new` (matched by index), in index
/// order.
pub fn diff(old: &[Interface], new: &[Interface]) -> Vec<PathEvent> {
    let before: BTreeMap<u32, &Interface> = old.iter().map(|i| (i.index, i)).collect();
    let after: BTreeMap<u32, &Interface> = new.iter().map(|i| (i.index, i)).collect();
    let mut events = Vec::new();
    for (index, was) in &before {
        match after.get(index) {
            None => events.push(PathEvent::Vanished((*was).clone())),
            Some(now) if !same(was, now) => events.push(PathEvent::Changed {
                old: (*was).clone(),
                new: (*now).clone(),
            }),
            Some(_) => {}
        }
    }
    for (index, now) in &after {
        if !before.contains_key(index) {
            events.push(PathEvent::Appeared((*now).clone()));
        }
    }
    events.sort_by_key(|e| e.interface().index);
    events
}

/// Equal but for address order (the system lists them in no promised order).
fn same(a: &Interface, b: &Interface) -> bool {
    let sorted = |i: &Interface| {
        let mut v: Vec<_> = i.addrs.iter().map(|a| (a.ip, a.prefix_len)).collect();
        v.sort();
        v
    };
    a.name == b.name
        && a.mtu == b.mtu
        && a.up == b.up
        && a.running == b.running
        && a.multicast == b.multicast
        && a.kind == b.kind
        && sorted(a) == sorted(b)
}

/// How a session's path stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStatus {
    /// Usable.
    Alive,
    /// The bound interface no longer exists.
    InterfaceGone,
    /// The bound interface is down or has no carrier.
    InterfaceDown,
    /// No interface (or not the bound one) holds the local address any more.
    AddressGone,
}

/// Whether a socket bound to interface `index` (if any) and address `local` still has a
/// path, given the current interface list. An unspecified `local` only needs the interface.
pub fn path_status(list: &[Interface], index: Option<u32>, local: IpAddr) -> PathStatus {
    let holds = |i: &Interface| local.is_unspecified() || i.addrs.iter().any(|a| a.ip == local);
    match index {
        Some(index) => match list.iter().find(|i| i.index == index) {
            None => PathStatus::InterfaceGone,
            Some(i) if !(i.up && i.running) => PathStatus::InterfaceDown,
            Some(i) if !holds(i) => PathStatus::AddressGone,
            Some(_) => PathStatus::Alive,
        },
        None if list.iter().any(holds) => PathStatus::Alive,
        None => PathStatus::AddressGone,
    }
}

/// Settings of a [`PathMonitor`]. [`PathMonitorConfig::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMonitorConfig {
    /// How often the interfaces are listed. Default 500 ms.
    pub interval: Duration,
    /// Classification overrides applied to every listing. Default none.
    pub overrides: KindOverrides,
    /// Events held before further ones are dropped (and counted). Default 64.
    pub event_capacity: usize,
}

impl Default for PathMonitorConfig {
    fn default() -> Self {
        PathMonitorConfig {
            interval: Duration::from_millis(500),
            overrides: KindOverrides::new(),
            event_capacity: 64,
        }
    }
}

/// Reports [`PathEvent`]s as the host's interfaces change. Runs as a task on the current
/// tokio runtime; dropping the monitor stops it.
#[derive(Debug)]
pub struct PathMonitor {
    /// The changes, in order.
    pub events: mpsc::Receiver<PathEvent>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PathMonitor {
    /// Lists the interfaces now (the baseline later events are relative to) and starts
    /// watching. Returns the baseline with the monitor.
    pub fn spawn(config: PathMonitorConfig) -> std::io::Result<(Vec<Interface>, PathMonitor)> {
        let baseline = interfaces(&config.overrides)?;
        let (tx, rx) = mpsc::channel(config.event_capacity.max(1));
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = {
            let mut last = baseline.clone();
            let dropped = std::sync::Arc::clone(&dropped);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(config.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if tx.is_closed() {
                        return;
                    }
                    // A failed listing (rare: out of memory, a netlink hiccup) is skipped;
                    // the next one compares against the last good listing.
                    let Ok(now) = interfaces(&config.overrides) else {
                        continue;
                    };
                    for e in diff(&last, &now) {
                        if tx.try_send(e).is_err() {
                            dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    last = now;
                }
            })
        };
        Ok((
            baseline,
            PathMonitor {
                events: rx,
                dropped,
                task,
            },
        ))
    }

    /// Events dropped because the channel was full.
    pub fn events_dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for PathMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::{InterfaceKind, test_interface};

    fn iface(name: &str, index: u32, addrs: &[&str]) -> Interface {
        let addrs: Vec<(&str, u8)> = addrs.iter().map(|a| (*a, 24)).collect();
        test_interface(name, index, InterfaceKind::WifiInfrastructure, &addrs)
    }

    #[test]
    fn diffs_name_each_change() {
        let old = vec![
            iface("lo", 1, &["127.0.0.1"]),
            iface("wlan0", 2, &["10.0.0.5", "fe80::5"]),
            iface("eth0", 3, &["10.1.0.5"]),
        ];
        let mut reordered = old.clone();
        reordered[1].addrs.reverse();
        assert!(
            diff(&old, &reordered).is_empty(),
            "address order is not a change"
        );
        let mut new = old.clone();
        new[1].running = false;
        new.remove(2);
        new.push(iface("awdl0", 7, &["fe80::a"]));
        let events = diff(&old, &new);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            matches!(&events[0], PathEvent::Changed { old, new } if old.running && !new.running)
        );
        assert!(matches!(&events[1], PathEvent::Vanished(i) if i.name == "eth0"));
        assert!(matches!(&events[2], PathEvent::Appeared(i) if i.name == "awdl0"));
        let mut readdressed = old.clone();
        readdressed[1].addrs[0].ip = "10.0.0.6".parse().expect("v4");
        assert!(matches!(
            diff(&old, &readdressed).as_slice(),
            [PathEvent::Changed { .. }]
        ));
    }

    #[test]
    fn a_path_stands_while_its_interface_and_address_do() {
        let list = vec![
            iface("wlan0", 2, &["10.0.0.5"]),
            iface("eth0", 3, &["10.1.0.5"]),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            path_status(&list, Some(2), ip("10.0.0.5")),
            PathStatus::Alive
        );
        assert_eq!(
            path_status(&list, Some(2), ip("0.0.0.0")),
            PathStatus::Alive
        );
        assert_eq!(
            path_status(&list, Some(9), ip("10.0.0.5")),
            PathStatus::InterfaceGone
        );
        assert_eq!(
            path_status(&list, Some(2), ip("10.1.0.5")),
            PathStatus::AddressGone,
            "the address moved to another interface"
        );
        assert_eq!(path_status(&list, None, ip("10.1.0.5")), PathStatus::Alive);
        assert_eq!(
            path_status(&list, None, ip("10.9.0.1")),
            PathStatus::AddressGone
        );
        let mut down = list.clone();
        down[0].up = false;
        assert_eq!(
            path_status(&down, Some(2), ip("10.0.0.5")),
            PathStatus::InterfaceDown
        );
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = PathMonitorConfig::default();
        assert_eq!(c.interval, Duration::from_millis(500));
        assert!(c.overrides.is_empty());
        assert_eq!(c.event_capacity, 64);
    }
}
