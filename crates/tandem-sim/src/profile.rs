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
//! A spec is comma-separated `key=value` pairs, optionally after a profile name it
//! modifies: `wifi,loss=1%`, or `delay=2ms,jitter=1.5ms,loss=0.1%,stall=40ms/1050ms`.
//! Keys: `delay`, `jitter` (durations: `us`, `ms`, `s`); `loss`, `dup`, `stall-loss`
//! (`%` or a fraction); `burst=AVG/MEAN` (burst loss, mean burst in datagrams);
//! `reorder=P/MIN-MAX`; `stall=DUR/PERIOD` or `stall=MIN-MAX/PERIOD`; `stall-phase`;
//! `capacity` (`kbit`, `mbit`, `gbit`, or bit/s); `capacity-step=RATE@TIME` (the rate
//! from TIME on); `queue` (duration).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::impair::{
    BurstLoss, CapacityStep, DEFAULT_STALL_PHASE, LinkConfig, ReorderConfig, StallConfig,
};

/// The AWDL channel sequence: 16 slots of 64 time units of 1.024 ms.
pub const AWDL_PERIOD: Duration = Duration::from_micros(16 * 64 * 1024);

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

/// Why a profile or spec string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A bare word that is not a profile.
    #[error("unknown profile {0:?}: expected one of {names}", names = PROFILE_NAMES.join(", "))]
    UnknownProfile(String),
    /// A key this parser does not know.
    #[error(
        "unknown key {0:?}: expected delay, jitter, loss, burst, reorder, dup, capacity, capacity-step, queue, stall, stall-loss or stall-phase"
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
                    });
                }
                "stall-loss" => stall_loss = Some(fraction(key, v)?),
                "stall-phase" => stall_phase = Some(duration(key, v)?),
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
}
