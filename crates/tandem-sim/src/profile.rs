//! The named measurement profiles of the design, and spec strings for any other condition.
//!
//! | profile | link |
//! |---|---|
//! | `clean` | 0.5 ms, 100 Mbit/s |
//! | `wifi` | 2 ms ± 1.5 ms, 0.1 % random loss |
//! | `awdl-stall` | `wifi` + a 30–50 ms stall every 1.049 s, released in a burst |
//! | `awdl-heavy` | `wifi` + 30–90 ms stalls every 1.049 s, 10 % loss inside them |
//! | `lossy` | `wifi` + 1 % random loss (1.1 % in all) |
//! | `burst` | `wifi` + Gilbert-Elliott loss, 2 % average in bursts of mean 5 |
//! | `reorder` | `wifi` + 2 % of datagrams delayed an extra 5–15 ms |
//! | `step` | `wifi` at 20 Mbit/s, falling to 4 Mbit/s at t = 20 s |
//!
//! Every link but `step`'s has 100 Mbit/s capacity and a 500 ms drop-tail queue unless a spec says
//! otherwise. The first stall starts at 500 ms. The period is the AWDL channel sequence
//! exactly: 16 slots × 64 TU × 1.024 ms = 1048.576 ms ("about 1.05 s" in the design). The
//! exact value matters: a round 1050 ms is 63 frame intervals at 60 fps, which would make
//! every stall begin on a capture instant, an alignment real radios never keep. The stall
//! lengths follow the 30–90 ms stalls reported for infrastructure Wi-Fi while AWDL is
//! active (see `shared/DESIGN.md`).
//!
//! # Two paths
//!
//! [`dual_profile`] names pairs of links, one per path of a session that sends over two
//! (path 0 the infrastructure or first path, path 1 the peer-to-peer or second path). They
//! are not in [`PROFILE_NAMES`]: a single-path run cannot take them.
//!
//! | dual profile | path 0 | path 1 |
//! |---|---|---|
//! | `awdl-dual` | `awdl-stall` exactly | `wifi`, live only inside the same windows, less a 500 µs switch at each end |
//! | `awdl-dual-heavy` | `awdl-heavy` exactly | as `awdl-dual`'s, with `awdl-heavy`'s 30–90 ms windows |
//! | `dual-independent` | `wifi` | `wifi` |
//! | `dual-one-dies` | `wifi`, silent from t = 20 s to t = 25 s | `wifi` |
//!
//! The two AWDL pairs are the two sides of one radio (see
//! [the shared radio](crate::impair#the-shared-radio)): build them with the same stall
//! seed ([`Link::with_stall_seed`](crate::impair::Link::with_stall_seed)) so their windows
//! coincide, and with different link seeds so their random losses and jitter do not. The
//! peer-to-peer side takes `wifi`'s delay, jitter and loss: it is the same radio and PHY.
//! One hop instead of two through the router would argue for less delay, but no
//! measurement of AWDL's own delay was found, so the two paths differ only in their
//! schedule (our assumption). It loses
//! nothing extra while it waits for a window: AWDL peers share the synchronized schedule
//! and keep a frame for the next window in which both are on the same channel (OWL,
//! `src/schedule.c`: `awdl_can_send_unicast_in`), so the router's losses while the radio
//! is away (`awdl-heavy`'s 10 %) have no counterpart there. The switching time,
//! [`AWDL_SWITCH`], is our assumption. `dual-independent` and `dual-one-dies` are two
//! `wifi` links that share no radio (two adapters, say), so neither has a stall schedule;
//! build them with different seeds.
//!
//! # Spec strings
//!
//! A spec is comma-separated `key=value` pairs, optionally after a profile name it
//! modifies: `wifi,loss=1%`, or `delay=2ms,jitter=1.5ms,loss=0.1%,stall=40ms/1050ms`.
//! Keys: `delay`, `jitter` (durations: `us`, `ms`, `s`); `loss`, `dup`, `stall-loss`
//! (`%` or a fraction); `burst=AVG/MEAN` (burst loss, mean burst in datagrams);
//! `reorder=P/MIN-MAX`; `stall=DUR/PERIOD` or `stall=MIN-MAX/PERIOD`; `stall-phase`;
//! `stall-channel` (`infra` or `p2p`: the side of the radio schedule);
//! `stall-switch` (the channel-switching time); `capacity` (`kbit`, `mbit`, `gbit`, or
//! bit/s); `capacity-step=RATE@TIME` (the rate from TIME on); `queue` (duration);
//! `outage=FROM-TO` (the path is silent in that interval).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::impair::{
    BurstLoss, CapacityStep, Channel, DEFAULT_STALL_PHASE, LinkConfig, Outage, ReorderConfig,
    StallConfig,
};

/// The AWDL channel sequence: 16 slots of 64 time units of 1.024 ms.
pub const AWDL_PERIOD: Duration = Duration::from_micros(16 * 64 * 1024);

/// The channel-switching time of the dual-path AWDL profiles, spent at each end of a
/// window. Our assumption: no published figure for Apple's radios was found (see
/// [the shared radio](crate::impair#the-shared-radio)).
pub const AWDL_SWITCH: Duration = Duration::from_micros(500);

/// Names accepted by [`profile`].
pub const PROFILE_NAMES: &[&str] = &[
    "clean",
    "wifi",
    "awdl-stall",
    "awdl-heavy",
    "lossy",
    "burst",
    "reorder",
    "step",
];

/// Names accepted by [`dual_profile`].
pub const DUAL_PROFILE_NAMES: &[&str] = &[
    "awdl-dual",
    "awdl-dual-heavy",
    "dual-independent",
    "dual-one-dies",
];

/// Why a profile or spec string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A bare word that is not a profile.
    #[error("unknown profile {0:?}: expected one of {names}", names = PROFILE_NAMES.join(", "))]
    UnknownProfile(String),
    /// A key this parser does not know.
    #[error(
        "unknown key {0:?}: expected delay, jitter, loss, burst, reorder, dup, capacity, capacity-step, queue, stall, stall-loss, stall-phase, stall-channel, stall-switch or outage"
    )]
    UnknownKey(String),
    /// A value that does not parse for its key.
    #[error("invalid value {value:?} for {key:?}: expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The offending value.
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
}

/// The named profile, if `name` is one.
pub fn profile(name: &str) -> Option<LinkConfig> {
    let ms = Duration::from_millis;
    let wifi = LinkConfig {
        base_delay: ms(2),
        jitter: Duration::from_micros(1500),
        loss: 0.001,
        ..LinkConfig::default()
    };
    let stall = |max: u64, loss_in_stall: f64| StallConfig {
        period: AWDL_PERIOD,
        min: ms(30),
        max: ms(max),
        phase: DEFAULT_STALL_PHASE,
        loss_in_stall,
        serves: Channel::Infrastructure,
        switch: Duration::ZERO,
    };
    Some(match name {
        "clean" => LinkConfig::default(),
        "wifi" => wifi,
        "awdl-stall" => LinkConfig {
            stall: Some(stall(50, 0.0)),
            ..wifi
        },
        "awdl-heavy" => LinkConfig {
            stall: Some(stall(90, 0.10)),
            ..wifi
        },
        "lossy" => LinkConfig {
            loss: 0.011,
            ..wifi
        },
        "burst" => LinkConfig {
            burst_loss: Some(BurstLoss {
                avg_loss: 0.02,
                mean_burst: 5.0,
            }),
            ..wifi
        },
        "reorder" => LinkConfig {
            reorder: Some(ReorderConfig {
                probability: 0.02,
                min_extra: ms(5),
                max_extra: ms(15),
            }),
            ..wifi
        },
        "step" => LinkConfig {
            capacity_bps: 20_000_000,
            capacity_step: Some(CapacityStep {
                at: Duration::from_secs(20),
                bits_per_second: 4_000_000,
            }),
            ..wifi
        },
        _ => return None,
    })
}

/// The named pair of links, if `name` is a dual profile: path 0 the infrastructure (or
/// first) path, path 1 the peer-to-peer (or second) path.
pub fn dual_profile(name: &str) -> Option<[LinkConfig; 2]> {
    let wifi = profile("wifi")?;
    // The AWDL side of an infrastructure link's radio: the same windows, live only inside
    // them.
    let peer_of = |infra: &LinkConfig| {
        infra.stall.map(|s| LinkConfig {
            stall: Some(StallConfig {
                serves: Channel::PeerToPeer,
                switch: AWDL_SWITCH,
                loss_in_stall: 0.0,
                ..s
            }),
            ..wifi.clone()
        })
    };
    let radio = |infra: LinkConfig| peer_of(&infra).map(|p2p| [infra, p2p]);
    match name {
        "awdl-dual" => radio(profile("awdl-stall")?),
        "awdl-dual-heavy" => radio(profile("awdl-heavy")?),
        "dual-independent" => Some([wifi.clone(), wifi]),
        "dual-one-dies" => Some([
            LinkConfig {
                outage: Some(Outage {
                    from: Duration::from_secs(20),
                    to: Duration::from_secs(25),
                }),
                ..wifi.clone()
            },
            wifi,
        ]),
        _ => None,
    }
}

/// A bare profile name or a spec string.
pub fn parse_profile_or_spec(s: &str) -> Result<LinkConfig, ProfileError> {
    s.parse()
}

fn invalid(key: &str, value: &str, expected: &'static str) -> ProfileError {
    ProfileError::InvalidValue {
        key: key.into(),
        value: value.into(),
        expected,
    }
}

fn duration(key: &str, v: &str) -> Result<Duration, ProfileError> {
    const EXPECT: &str = "a duration like 2ms, 1500us or 1.05s";
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(invalid(key, v, EXPECT));
    };
    match num.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() && x * scale < 3600.0 => {
            Ok(Duration::from_nanos((x * scale * 1e9).round() as u64))
        }
        _ => Err(invalid(key, v, EXPECT)),
    }
}

fn fraction(key: &str, v: &str) -> Result<f64, ProfileError> {
    const EXPECT: &str = "a percentage like 0.1% or a fraction like 0.001";
    let x = match v.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|x| x / 100.0),
        None => v.parse::<f64>(),
    }
    .map_err(|_| invalid(key, v, EXPECT))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(invalid(key, v, EXPECT))
    }
}

fn rate(key: &str, v: &str) -> Result<u64, ProfileError> {
    const EXPECT: &str = "a rate like 100mbit, 500kbit, 1gbit or bits per second";
    let lower = v.to_ascii_lowercase();
    let (num, mult) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)]
        .iter()
        .find_map(|(suffix, m)| lower.strip_suffix(suffix).map(|n| (n.to_string(), *m)))
        .unwrap_or((lower.clone(), 1.0));
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok((x * mult).round() as u64),
        _ => Err(invalid(key, v, EXPECT)),
    }
}

fn range(key: &str, v: &str, expected: &'static str) -> Result<(Duration, Duration), ProfileError> {
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let (a, b) = (
        duration(key, a).map_err(|_| invalid(key, v, expected))?,
        duration(key, b).map_err(|_| invalid(key, v, expected))?,
    );
    if b < a {
        return Err(invalid(key, v, expected));
    }
    Ok((a, b))
}

impl FromStr for LinkConfig {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, ProfileError> {
        let mut parts = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .peekable();
        let mut c = match parts.peek() {
            Some(first) if !first.contains('=') => {
                let name = parts.next().unwrap_or_default();
                profile(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()))?
            }
            _ => LinkConfig::default(),
        };
        let mut stall_loss = None;
        let mut stall_phase = None;
        let mut stall_switch = None;
        let mut stall_channel = None;
        for part in parts {
            let Some((key, v)) = part.split_once('=') else {
                return Err(ProfileError::UnknownProfile(part.into()));
            };
            match key {
                "delay" => c.base_delay = duration(key, v)?,
                "jitter" => c.jitter = duration(key, v)?,
                "loss" => c.loss = fraction(key, v)?,
                "dup" => c.duplicate = fraction(key, v)?,
                "capacity" => c.capacity_bps = rate(key, v)?,
                "queue" => c.queue_limit = duration(key, v)?,
                "capacity-step" => {
                    const EXPECT: &str = "RATE@TIME like 4mbit@20s";
                    let (r, t) = v.split_once('@').ok_or_else(|| invalid(key, v, EXPECT))?;
                    c.capacity_step = Some(CapacityStep {
                        bits_per_second: rate(key, r).map_err(|_| invalid(key, v, EXPECT))?,
                        at: duration(key, t).map_err(|_| invalid(key, v, EXPECT))?,
                    });
                }
                "burst" => {
                    const EXPECT: &str = "AVG/MEAN_BURST like 2%/5";
                    let (a, m) = v.split_once('/').ok_or_else(|| invalid(key, v, EXPECT))?;
                    let avg_loss = fraction(key, a).map_err(|_| invalid(key, v, EXPECT))?;
                    let mean_burst = m
                        .parse::<f64>()
                        .ok()
                        .filter(|m| *m >= 1.0 && m.is_finite())
                        .ok_or_else(|| invalid(key, v, EXPECT))?;
                    c.burst_loss = (avg_loss > 0.0).then_some(BurstLoss {
                        avg_loss,
                        mean_burst,
                    });
                }
                "reorder" => {
                    const EXPECT: &str = "P/MIN-MAX like 2%/5ms-15ms";
                    let (p, r) = v.split_once('/').ok_or_else(|| invalid(key, v, EXPECT))?;
                    let probability = fraction(key, p).map_err(|_| invalid(key, v, EXPECT))?;
                    let (min_extra, max_extra) = range(key, r, EXPECT)?;
                    c.reorder = (probability > 0.0).then_some(ReorderConfig {
                        probability,
                        min_extra,
                        max_extra,
                    });
                }
                "stall" => {
                    const EXPECT: &str = "DUR/PERIOD or MIN-MAX/PERIOD like 30ms-50ms/1050ms";
                    let (d, p) = v.split_once('/').ok_or_else(|| invalid(key, v, EXPECT))?;
                    let (min, max) = range(key, d, EXPECT)?;
                    let period = duration(key, p).map_err(|_| invalid(key, v, EXPECT))?;
                    if period.is_zero() || max >= period {
                        return Err(invalid(key, v, EXPECT));
                    }
                    let prev = c.stall;
                    c.stall = (!max.is_zero()).then_some(StallConfig {
                        period,
                        min,
                        max,
                        phase: prev.map_or(DEFAULT_STALL_PHASE, |s| s.phase),
                        loss_in_stall: prev.map_or(0.0, |s| s.loss_in_stall),
                        serves: prev.map_or(Channel::Infrastructure, |s| s.serves),
                        switch: prev.map_or(Duration::ZERO, |s| s.switch),
                    });
                }
                "stall-loss" => stall_loss = Some(fraction(key, v)?),
                "stall-phase" => stall_phase = Some(duration(key, v)?),
                "stall-switch" => stall_switch = Some(duration(key, v)?),
                "stall-channel" => {
                    stall_channel = Some(match v {
                        "infra" | "infrastructure" => Channel::Infrastructure,
                        "p2p" | "peer-to-peer" => Channel::PeerToPeer,
                        _ => return Err(invalid(key, v, "infra or p2p")),
                    })
                }
                "outage" => {
                    const EXPECT: &str = "FROM-TO like 20s-25s";
                    let (from, to) = range(key, v, EXPECT)?;
                    c.outage = Some(Outage { from, to });
                }
                other => return Err(ProfileError::UnknownKey(other.into())),
            }
        }
        if let Some(s) = &mut c.stall {
            if let Some(l) = stall_loss {
                s.loss_in_stall = l;
            }
            if let Some(p) = stall_phase {
                s.phase = p;
            }
            if let Some(d) = stall_switch {
                s.switch = d;
            }
            if let Some(side) = stall_channel {
                s.serves = side;
            }
        }
        Ok(c)
    }
}

fn us(d: Duration) -> String {
    format!("{}us", d.as_nanos() as f64 / 1e3)
}

/// Writes a spec that parses back to an equal config.
impl fmt::Display for LinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delay={},jitter={},loss={},capacity={},queue={}",
            us(self.base_delay),
            us(self.jitter),
            self.loss,
            self.capacity_bps,
            us(self.queue_limit)
        )?;
        if let Some(s) = &self.capacity_step {
            write!(f, ",capacity-step={}@{}", s.bits_per_second, us(s.at))?;
        }
        if let Some(b) = &self.burst_loss {
            write!(f, ",burst={}/{}", b.avg_loss, b.mean_burst)?;
        }
        if let Some(r) = &self.reorder {
            write!(
                f,
                ",reorder={}/{}-{}",
                r.probability,
                us(r.min_extra),
                us(r.max_extra)
            )?;
        }
        if self.duplicate > 0.0 {
            write!(f, ",dup={}", self.duplicate)?;
        }
        if let Some(s) = &self.stall {
            write!(
                f,
                ",stall={}-{}/{},stall-loss={},stall-phase={}",
                us(s.min),
                us(s.max),
                us(s.period),
                s.loss_in_stall,
                us(s.phase)
            )?;
            if s.serves == Channel::PeerToPeer {
                write!(f, ",stall-channel=p2p")?;
            }
            if !s.switch.is_zero() {
                write!(f, ",stall-switch={}", us(s.switch))?;
            }
        }
        if let Some(o) = &self.outage {
            write!(f, ",outage={}-{}", us(o.from), us(o.to))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_round_trips_through_its_spec() {
        for name in PROFILE_NAMES {
            let c = profile(name).expect("named");
            let spec = c.to_string();
            assert_eq!(spec.parse::<LinkConfig>(), Ok(c), "{name}: {spec}");
            assert_eq!(
                parse_profile_or_spec(name),
                profile(name).ok_or(ProfileError::UnknownProfile(String::new()))
            );
        }
    }

    #[test]
    fn profiles_match_the_design_table() {
        let clean = profile("clean").expect("clean");
        assert_eq!(
            (clean.base_delay, clean.capacity_bps, clean.loss),
            (Duration::from_micros(500), 100_000_000, 0.0)
        );
        let heavy = profile("awdl-heavy").expect("heavy");
        let s = heavy.stall.expect("stalls");
        assert_eq!(
            (s.min, s.max, s.period, s.loss_in_stall),
            (
                Duration::from_millis(30),
                Duration::from_millis(90),
                AWDL_PERIOD,
                0.10
            )
        );
        assert_eq!(AWDL_PERIOD, Duration::from_nanos(1_048_576_000));
        assert_eq!(profile("lossy").expect("lossy").loss, 0.011);
        assert_eq!(
            profile("burst").expect("burst").burst_loss,
            Some(BurstLoss {
                avg_loss: 0.02,
                mean_burst: 5.0
            })
        );
    }

    #[test]
    fn spec_keys_and_units() {
        let c: LinkConfig = "delay=2ms,jitter=1500us,loss=0.1%,stall=40ms/1050ms,capacity=100mbit"
            .parse()
            .expect("spec");
        assert_eq!(c.base_delay, Duration::from_millis(2));
        assert_eq!(c.jitter, Duration::from_micros(1500));
        assert!((c.loss - 0.001).abs() < 1e-12);
        let s = c.stall.expect("stall");
        assert_eq!(
            (s.min, s.max, s.period),
            (
                Duration::from_millis(40),
                Duration::from_millis(40),
                Duration::from_millis(1050)
            )
        );
        let c: LinkConfig = "wifi,loss=1%,burst=2%/5,reorder=2%/5ms-15ms,dup=0.01,capacity=1.5gbit,queue=1s,stall=30ms-50ms/1.05s,stall-loss=10%,stall-phase=0ms".parse().expect("spec");
        assert_eq!(c.jitter, Duration::from_micros(1500), "wifi base kept");
        assert_eq!(c.capacity_bps, 1_500_000_000);
        assert_eq!(c.queue_limit, Duration::from_secs(1));
        assert_eq!(c.duplicate, 0.01);
        assert_eq!(
            c.reorder.expect("reorder").max_extra,
            Duration::from_millis(15)
        );
        let s = c.stall.expect("stall");
        assert_eq!(
            (s.loss_in_stall, s.phase, s.period),
            (0.1, Duration::ZERO, Duration::from_millis(1050))
        );
        assert_eq!(
            "capacity=500kbit"
                .parse::<LinkConfig>()
                .expect("kbit")
                .capacity_bps,
            500_000
        );
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let e = |s: &str| s.parse::<LinkConfig>().expect_err("must fail").to_string();
        assert!(e("delay=abc").contains("\"abc\"") && e("delay=abc").contains("\"delay\""));
        assert!(e("loss=150%").contains("\"loss\""));
        assert!(e("capacity=fast").contains("\"capacity\""));
        assert!(e("stall=60ms/50ms").contains("\"stall\""));
        assert!(e("burst=2%").contains("\"burst\""));
        assert!(e("reorder=2%/15ms-5ms").contains("\"reorder\""));
        assert!(e("warp=9").contains("\"warp\""));
        assert!(e("capacity-step=4mbit").contains("\"capacity-step\""));
        let step = "wifi,capacity=20mbit,capacity-step=4mbit@20s"
            .parse::<LinkConfig>()
            .expect("step");
        assert_eq!(Some(step), profile("step"));
        assert!(e("cafe").contains("\"cafe\"") && e("cafe").contains("awdl-stall"));
    }

    #[test]
    fn dual_profiles_exist_and_pair_the_single_path_ones() {
        let wifi = profile("wifi").expect("wifi");
        for name in DUAL_PROFILE_NAMES {
            let paths = dual_profile(name).expect("named");
            assert!(!PROFILE_NAMES.contains(name) && profile(name).is_none());
            for c in paths {
                let spec = c.to_string();
                assert_eq!(spec.parse::<LinkConfig>(), Ok(c), "{name}: {spec}");
            }
        }
        assert!(dual_profile("wifi").is_none() && dual_profile("awdl-stall").is_none());

        for (dual, single, max, loss) in [
            ("awdl-dual", "awdl-stall", 50, 0.0),
            ("awdl-dual-heavy", "awdl-heavy", 90, 0.10),
        ] {
            let [infra, p2p] = dual_profile(dual).expect("dual");
            assert_eq!(
                Some(infra.clone()),
                profile(single),
                "{dual}: path 0 is {single}"
            );
            let (si, sp) = (infra.stall.expect("stall"), p2p.stall.expect("stall"));
            assert_eq!(si.serves, Channel::Infrastructure);
            assert_eq!(
                (si.max, si.loss_in_stall),
                (Duration::from_millis(max), loss)
            );
            assert_eq!(sp.serves, Channel::PeerToPeer);
            assert_eq!(
                (sp.min, sp.max, sp.phase, sp.period),
                (si.min, si.max, si.phase, si.period),
                "{dual}: one radio, one schedule"
            );
            assert_eq!((sp.switch, sp.loss_in_stall), (AWDL_SWITCH, 0.0));
            assert_eq!(LinkConfig { stall: None, ..p2p }, wifi);
        }
        assert!(AWDL_SWITCH <= Duration::from_millis(1));

        assert_eq!(
            dual_profile("dual-independent"),
            Some([wifi.clone(), wifi.clone()])
        );
        let [dies, lives] = dual_profile("dual-one-dies").expect("dual");
        assert_eq!(
            dies.outage,
            Some(Outage {
                from: Duration::from_secs(20),
                to: Duration::from_secs(25)
            })
        );
        assert_eq!(
            LinkConfig {
                outage: None,
                ..dies
            },
            wifi
        );
        assert_eq!(lives, wifi);
    }

    #[test]
    fn awdl_dual_paths_on_one_stall_seed_take_turns() {
        use crate::impair::Link;
        let [infra, p2p] = dual_profile("awdl-dual").expect("dual");
        let a = Link::with_stall_seed(&infra, 1, 77);
        let b = Link::with_stall_seed(&p2p, 2, 77);
        let windows = a.stall_windows(Duration::ZERO, Duration::from_secs(10));
        assert_eq!(
            windows,
            b.stall_windows(Duration::ZERO, Duration::from_secs(10))
        );
        let (mut a_only, mut b_only) = (0, 0);
        for i in 0..100_000u32 {
            let t = Duration::from_micros(100) * i;
            let near_edge = windows.iter().any(|(s, e)| {
                (t >= *s && t < *s + AWDL_SWITCH) || (t >= *e - AWDL_SWITCH && t < *e)
            });
            match (a.live_at(t), b.live_at(t)) {
                (true, false) => a_only += 1,
                (false, true) => b_only += 1,
                (x, y) => assert!(near_edge && !x && !y, "{t:?}: {x} {y}"),
            }
        }
        // One window of 30–50 ms a sequence: the peer-to-peer side is live 3–5 % of the time.
        let share = f64::from(b_only) / f64::from(a_only + b_only);
        assert!((0.025..0.05).contains(&share), "{share}");
    }

    #[test]
    fn spec_keys_for_two_paths() {
        let c: LinkConfig =
            "wifi,stall=30ms-50ms/1048.576ms,stall-channel=p2p,stall-switch=500us,outage=20s-25s"
                .parse()
                .expect("spec");
        let s = c.stall.expect("stall");
        assert_eq!(
            (s.serves, s.switch),
            (Channel::PeerToPeer, Duration::from_micros(500))
        );
        assert_eq!(s.period, AWDL_PERIOD);
        assert_eq!(
            c.outage,
            Some(Outage {
                from: Duration::from_secs(20),
                to: Duration::from_secs(25)
            })
        );
        assert_eq!(c.to_string().parse::<LinkConfig>(), Ok(c));
        // The defaults write nothing new: single-path specs are unchanged.
        let stall = profile("awdl-stall").expect("stall").to_string();
        assert!(!stall.contains("stall-channel") && !stall.contains("stall-switch"));
        assert!(!stall.contains("outage"));
        let e = |s: &str| s.parse::<LinkConfig>().expect_err("must fail").to_string();
        assert!(e("wifi,stall=40ms/1s,stall-channel=sideways").contains("\"stall-channel\""));
        assert!(e("outage=25s-20s").contains("\"outage\""));
        assert!(e("stall-switch=fast").contains("\"stall-switch\""));
    }
}
