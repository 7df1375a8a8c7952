//! Reed-Solomon forward error correction over one frame's fragments.
//!
//! A frame of `k` fragments gets `m` parity shards. Fragments differ in length (the last
//! one is short), so each data shard is the fragment prefixed with its 2-byte length and
//! zero-padded to a common even size; a recovered shard's prefix gives back the exact
//! fragment. Any `k` of the `k + m` shards rebuild the frame, so FEC repairs a loss
//! without waiting a round trip — which matters only when the round trip is long or losses
//! come faster than NACKs can repair them.
//!
//! [`FecPolicy`] decides `m`, following libwebrtc's reasoning: when the RTT is under 20 ms
//! a NACK round trip is cheaper than permanent parity overhead, so parity is off unless
//! losses are heavy; above that, protection rises with the measured loss and RTT.

use std::time::Duration;

use bytes::Bytes;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Encodes `fragments` into `parity` recovery shards (all of equal, even length).
///
/// Returns an empty list when `parity == 0` or the shape is unsupported by the codec.
pub fn encode_parity(fragments: &[Bytes], parity: usize) -> Vec<Bytes> {
    encode_parity_counted(fragments, parity, &mut 0)
}

/// [`encode_parity`], adding to `copied` the payload bytes it copies: each fragment into its
/// shard buffer, and each parity shard out of the encoder (the Reed-Solomon library's own
/// working copies are not counted).
pub(crate) fn encode_parity_counted(
    fragments: &[Bytes],
    parity: usize,
    copied: &mut u64,
) -> Vec<Bytes> {
    if parity == 0 || fragments.is_empty() {
        return Vec::new();
    }
    let shard_len = shard_len_for(fragments.iter().map(Bytes::len).max().unwrap_or(0));
    if !ReedSolomonEncoder::supports(fragments.len(), parity) {
        return Vec::new();
    }
    let Ok(mut enc) = ReedSolomonEncoder::new(fragments.len(), parity, shard_len) else {
        return Vec::new();
    };
    let mut shard = vec![0u8; shard_len];
    for f in fragments {
        fill_shard(&mut shard, f);
        *copied += f.len() as u64;
        if enc.add_original_shard(&shard).is_err() {
            return Vec::new();
        }
    }
    match enc.encode() {
        Ok(result) => {
            *copied += (parity * shard_len) as u64;
            result.recovery_iter().map(Bytes::copy_from_slice).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// Shard size for fragments up to `max_fragment` bytes: length prefix, padded to even.
pub fn shard_len_for(max_fragment: usize) -> usize {
    let n = max_fragment + 2;
    n + (n & 1)
}

fn fill_shard(shard: &mut [u8], fragment: &[u8]) {
    shard.fill(0);
    shard[..2].copy_from_slice(&(fragment.len() as u16).to_be_bytes());
    shard[2..2 + fragment.len()].copy_from_slice(fragment);
}

/// Rebuilds missing fragments from the ones present and the parity shards.
///
/// `fragments[i]` is `Some` for each fragment received; `parity` lists `(index, shard)`.
/// Returns `(index, fragment)` for each fragment rebuilt, or `None` when too little arrived
/// or the shards are inconsistent (a hostile or corrupted shard yields `None`, never a
/// panic).
pub fn recover(
    fragments: &[Option<Bytes>],
    parity_count: usize,
    parity: &[(usize, Bytes)],
) -> Option<Vec<(usize, Bytes)>> {
    recover_counted(fragments, parity_count, parity, &mut 0)
}

/// [`recover`], adding to `copied` the payload bytes it copies: each fragment present into
/// its shard buffer, and each rebuilt fragment out of the decoder (the Reed-Solomon
/// library's own working copies are not counted).
pub(crate) fn recover_counted(
    fragments: &[Option<Bytes>],
    parity_count: usize,
    parity: &[(usize, Bytes)],
    copied: &mut u64,
) -> Option<Vec<(usize, Bytes)>> {
    let k = fragments.len();
    let present = fragments.iter().filter(|f| f.is_some()).count();
    if present == k || present + parity.len() < k {
        return None;
    }
    let shard_len = parity.first()?.1.len();
    if shard_len < 4 || shard_len % 2 != 0 || parity.iter().any(|(_, s)| s.len() != shard_len) {
        return None;
    }
    let mut dec = ReedSolomonDecoder::new(k, parity_count, shard_len).ok()?;
    let mut shard = vec![0u8; shard_len];
    for (i, f) in fragments.iter().enumerate() {
        if let Some(f) = f {
            if f.len() + 2 > shard_len {
                return None;
            }
            fill_shard(&mut shard, f);
            *copied += f.len() as u64;
            dec.add_original_shard(i, &shard).ok()?;
        }
    }
    for (i, s) in parity {
        dec.add_recovery_shard(*i, s).ok()?;
    }
    let result = dec.decode().ok()?;
    let mut out = Vec::new();
    for (i, s) in result.restored_original_iter() {
        let len = usize::from(u16::from_be_bytes([s[0], s[1]]));
        if len == 0 || len + 2 > s.len() {
            return None;
        }
        *copied += len as u64;
        out.push((i, Bytes::copy_from_slice(&s[2..2 + len])));
    }
    Some(out)
}

/// How much parity to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FecMode {
    /// Parity chosen from measured loss and RTT (default).
    Adaptive,
    /// No parity at all (the no-recovery baseline, or NACK-only operation).
    Off,
    /// A constant parity ratio (parity shards per data fragment), for experiments.
    Fixed(f32),
}

/// Chooses the number of parity shards per frame.
#[derive(Clone, Copy, Debug)]
pub struct FecPolicy {
    mode: FecMode,
    ratio: f32,
}

/// Below this RTT a NACK round trip repairs a loss faster than it is worth paying parity on
/// every frame (libwebrtc switches to NACK-only under 20 ms RTT).
pub const NACK_ONLY_RTT: Duration = Duration::from_millis(20);
/// Loss (fraction) at which parity starts even on a short-RTT path: beyond it, NACKs of
/// NACKs pile up and frames miss their slot.
pub const NACK_ONLY_MAX_LOSS: f32 = 0.05;
/// Ceiling on the parity ratio.
pub const MAX_RATIO: f32 = 0.5;

impl FecPolicy {
    /// A policy in `mode`, starting with no parity until feedback arrives.
    pub fn new(mode: FecMode) -> Self {
        let ratio = match mode {
            FecMode::Fixed(r) => r.clamp(0.0, 1.0),
            _ => 0.0,
        };
        Self { mode, ratio }
    }

    /// Updates from the latest loss fraction (0..1) and smoothed RTT.
    pub fn update(&mut self, loss: f32, rtt: Duration) {
        if self.mode != FecMode::Adaptive {
            return;
        }
        let short_rtt = rtt < NACK_ONLY_RTT;
        self.ratio = if short_rtt && loss < NACK_ONLY_MAX_LOSS {
            0.0
        } else {
            // Enough parity to cover about twice the measured loss, plus a floor that grows
            // with RTT: each RTT of waiting for a retransmission is a frame slot missed.
            let rtt_term = (rtt.as_secs_f32() * 1000.0 / 20.0 - 1.0).clamp(0.0, 4.0) * 0.02;
            (2.0 * loss + 0.02 + rtt_term).min(MAX_RATIO)
        };
    }

    /// Current parity ratio.
    pub fn ratio(&self) -> f32 {
        self.ratio
    }

    /// Parity shards for a frame of `fragments` fragments.
    pub fn parity_for(&self, fragments: usize, keyframe: bool) -> usize {
        if self.ratio <= 0.0 {
            return 0;
        }
        // Keyframes are large and costly to lose (the whole chain waits for them).
        let ratio = if keyframe {
            (self.ratio * 1.5).min(MAX_RATIO)
        } else {
            self.ratio
        };
        ((fragments as f32 * ratio).ceil() as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frags(lens: &[usize]) -> Vec<Bytes> {
        lens.iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from((0..n).map(|j| (i * 31 + j) as u8).collect::<Vec<_>>()))
            .collect()
    }

    #[test]
    fn recovers_any_lost_subset_up_to_parity_count() {
        let f = frags(&[1169, 1169, 1169, 500]);
        let parity = encode_parity(&f, 2);
        assert_eq!(parity.len(), 2);
        for lost_a in 0..4 {
            for lost_b in lost_a + 1..4 {
                let have: Vec<_> = f
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (i != lost_a && i != lost_b).then(|| b.clone()))
                    .collect();
                let ps: Vec<_> = parity.iter().cloned().enumerate().collect();
                let got = recover(&have, 2, &ps).expect("recoverable");
                assert_eq!(got.len(), 2);
                for (i, b) in got {
                    assert_eq!(b, f[i]);
                }
            }
        }
    }

    #[test]
    fn too_few_shards_or_bad_shards_do_not_recover() {
        let f = frags(&[100, 100, 100]);
        let parity = encode_parity(&f, 1);
        let have = vec![Some(f[0].clone()), None, None];
        assert!(recover(&have, 1, &[(0, parity[0].clone())]).is_none());
        let odd = Bytes::from(vec![0u8; 7]);
        let have = vec![Some(f[0].clone()), Some(f[1].clone()), None];
        assert!(recover(&have, 1, &[(0, odd)]).is_none());
        assert!(recover(&have, 1, &[(5, parity[0].clone())]).is_none());
    }

    #[test]
    fn policy_is_nack_only_on_short_rtt_and_rises_with_loss_and_rtt() {
        let mut p = FecPolicy::new(FecMode::Adaptive);
        assert_eq!(p.parity_for(10, false), 0, "no parity before feedback");
        p.update(0.01, Duration::from_millis(5));
        assert_eq!(p.ratio(), 0.0);
        p.update(0.10, Duration::from_millis(5));
        let heavy_loss = p.ratio();
        assert!(heavy_loss > 0.2);
        p.update(0.01, Duration::from_millis(60));
        let long_rtt = p.ratio();
        assert!(long_rtt > 0.0 && long_rtt < heavy_loss);
        assert!(p.parity_for(10, true) > p.parity_for(10, false));
        assert_eq!(p.parity_for(1, false), 1);
        let mut off = FecPolicy::new(FecMode::Off);
        off.update(0.5, Duration::from_millis(100));
        assert_eq!(off.parity_for(10, true), 0);
    }
}
