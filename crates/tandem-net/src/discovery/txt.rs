//! The TXT record a Tandem peer advertises, and its two encodings: key/value pairs (what
//! `mdns-sd` takes and gives) and RFC 6763 §6 wire bytes (what `dns_sd.h` takes and gives).
//!
//! Keys are short because every byte is multicast on every announcement:
//!
//! | key | value | example |
//! |---|---|---|
//! | `v` | protocol version, decimal | `1` |
//! | `id` | peer id: printable ASCII, 1–64 bytes | `4f2a9c01e8d3b7a6` |
//! | `dn` | device name, UTF-8, ≤ 100 bytes | `Ana's iPad` |
//! | `c` | codecs the peer accepts, comma-separated | `av1,h264` |
//!
//! Nothing in the record is secret: the peer id is a public identifier (a later issue makes
//! it the identity key's fingerprint), the device name is what the user sees anyway.

use std::fmt;

use tandem_proto::Codec;

/// Longest peer id accepted, bytes.
pub const MAX_PEER_ID: usize = 64;
/// Longest device name accepted, bytes.
pub const MAX_DEVICE_NAME: usize = 100;

/// What a peer says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTxt {
    /// Tandem protocol version it speaks.
    pub protocol_version: u8,
    /// Stable identifier of the peer.
    pub peer_id: String,
    /// Human-readable name of the device.
    pub device_name: String,
    /// Codecs it accepts, in its order of preference.
    pub codecs: Vec<Codec>,
}

/// Why a TXT record is not a Tandem peer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// A required key is absent.
    #[error("TXT record lacks `{0}`")]
    Missing(&'static str),
    /// A key's value cannot be read.
    #[error("TXT `{key}` is invalid: {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The wire bytes are not a sequence of length-prefixed strings.
    #[error("TXT record is malformed at byte {0}")]
    Malformed(usize),
}

/// The wire name of a codec in the `c` key.
pub fn codec_name(codec: Codec) -> String {
    match codec {
        Codec::Av1 => "av1".into(),
        Codec::H264 => "h264".into(),
        Codec::Hevc => "hevc".into(),
        Codec::RawI420 => "i420".into(),
        Codec::Other(v) => format!("x{v}"),
    }
}

fn parse_codec(name: &str) -> Option<Codec> {
    Some(match name {
        "av1" => Codec::Av1,
        "h264" => Codec::H264,
        "hevc" => Codec::Hevc,
        "i420" => Codec::RawI420,
        other => Codec::Other(
            other
                .strip_prefix('x')?
                .parse::<u8>()
                .ok()
                .filter(|v| *v < 16)?,
        ),
    })
}

impl PeerTxt {
    /// Checks the fields against the limits above (an advertisement that breaks them would
    /// be rejected by every browser).
    pub fn validate(&self) -> Result<(), TxtError> {
        check_peer_id(&self.peer_id)?;
        if self.device_name.len() > MAX_DEVICE_NAME {
            return Err(TxtError::Invalid {
                key: "dn",
                why: format!("longer than {MAX_DEVICE_NAME} bytes"),
            });
        }
        Ok(())
    }

    /// The record as key/value pairs, in a fixed order.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let codecs: Vec<String> = self.codecs.iter().map(|c| codec_name(*c)).collect();
        vec![
            ("v".into(), self.protocol_version.to_string()),
            ("id".into(), self.peer_id.clone()),
            ("dn".into(), self.device_name.clone()),
            ("c".into(), codecs.join(",")),
        ]
    }

    /// Reads the record from key/value pairs (unknown keys are ignored: a newer peer may add
    /// some; keys compare case-insensitively, as RFC 6763 §6.4 says).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<PeerTxt, TxtError> {
        let (mut v, mut id, mut dn, mut c) = (None, None, None, None);
        for (key, value) in pairs {
            let slot = match key.to_ascii_lowercase().as_str() {
                "v" => &mut v,
                "id" => &mut id,
                "dn" => &mut dn,
                "c" => &mut c,
                _ => continue,
            };
            // RFC 6763 §6.4: only the first occurrence of a key counts.
            slot.get_or_insert(value);
        }
        let text = |key: &'static str, value: Option<&[u8]>| -> Result<String, TxtError> {
            let value = value.ok_or(TxtError::Missing(key))?;
            String::from_utf8(value.to_vec()).map_err(|_| TxtError::Invalid {
                key,
                why: "not UTF-8".into(),
            })
        };
        let version = text("v", v)?;
        let protocol_version = version.parse::<u8>().map_err(|_| TxtError::Invalid {
            key: "v",
            why: format!("`{version}` is not a version number"),
        })?;
        let peer_id = text("id", id)?;
        check_peer_id(&peer_id)?;
        let device_name = text("dn", dn)?;
        // A missing codec list means the protocol's default codec only.
        let codec_list = c.map_or(Ok("av1".to_owned()), |c| text("c", Some(c)))?;
        let codecs = codec_list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_codec(s).ok_or_else(|| TxtError::Invalid {
                    key: "c",
                    why: format!("unknown codec `{s}`"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let txt = PeerTxt {
            protocol_version,
            peer_id,
            device_name,
            codecs,
        };
        txt.validate()?;
        Ok(txt)
    }

    /// The record in RFC 6763 wire format: each `key=value` string preceded by its length.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in self.to_pairs() {
            let entry = format!("{k}={v}");
            // validate() bounds every value well below 255 bytes; an over-long entry is cut
            // rather than corrupting the record.
            let bytes = &entry.as_bytes()[..entry.len().min(255)];
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Reads the record from RFC 6763 wire format.
    pub fn from_wire(wire: &[u8]) -> Result<PeerTxt, TxtError> {
        PeerTxt::from_pairs(wire_pairs(wire)?)
    }
}

/// Splits RFC 6763 wire bytes into key/value pairs (a key without `=` has an empty value).
pub fn wire_pairs(wire: &[u8]) -> Result<Vec<(&str, &[u8])>, TxtError> {
    let mut pairs = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let len = usize::from(wire[at]);
        let entry = wire
            .get(at + 1..at + 1 + len)
            .ok_or(TxtError::Malformed(at))?;
        at += 1 + len;
        if entry.is_empty() {
            // An empty string is how an empty TXT record is written.
            continue;
        }
        let (key, value) = match entry.iter().position(|b| *b == b'=') {
            Some(eq) => (&entry[..eq], &entry[eq + 1..]),
            None => (entry, &entry[entry.len()..]),
        };
        let key = std::str::from_utf8(key).map_err(|_| TxtError::Malformed(at))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn check_peer_id(id: &str) -> Result<(), TxtError> {
    let why = if id.is_empty() {
        "empty".to_owned()
    } else if id.len() > MAX_PEER_ID {
        format!("longer than {MAX_PEER_ID} bytes")
    } else if !id.bytes().all(|b| b.is_ascii_graphic()) {
        "not printable ASCII".to_owned()
    } else {
        return Ok(());
    };
    Err(TxtError::Invalid { key: "id", why })
}

impl fmt::Display for PeerTxt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (id {}, protocol {})",
            self.device_name, self.peer_id, self.protocol_version
        )
    }
}

/// A valid record for tests elsewhere in the crate: protocol 1, AV1, device "Desk".
#[cfg(test)]
pub(crate) fn test_txt(peer_id: &str) -> PeerTxt {
    PeerTxt {
        protocol_version: 1,
        peer_id: peer_id.into(),
        device_name: "Desk".into(),
        codecs: vec![Codec::Av1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PeerTxt {
        PeerTxt {
            protocol_version: 1,
            peer_id: "4f2a9c01e8d3b7a6".into(),
            device_name: "Ana's iPad".into(),
            codecs: vec![Codec::Av1, Codec::H264, Codec::Other(9)],
        }
    }

    #[test]
    fn wire_roundtrip_and_layout() {
        let t = sample();
        let wire = t.to_wire();
        assert_eq!(wire[0] as usize, "v=1".len());
        assert_eq!(&wire[1..4], b"v=1");
        assert_eq!(PeerTxt::from_wire(&wire), Ok(t.clone()));
        let pairs = t.to_pairs();
        let borrowed = pairs.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
        assert_eq!(PeerTxt::from_pairs(borrowed), Ok(t));
    }

    #[test]
    fn unknown_keys_case_and_duplicates() {
        let wire = b"\x05extra\x03V=1\x05id=ab\x05id=cd\x04dn=x\x00";
        let t = PeerTxt::from_wire(wire).expect("parses");
        assert_eq!(t.peer_id, "ab", "first occurrence wins");
        assert_eq!(t.codecs, vec![Codec::Av1], "no `c`: AV1 only");
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        assert_eq!(PeerTxt::from_wire(b"\x09id=a"), Err(TxtError::Malformed(0)));
        assert_eq!(
            PeerTxt::from_wire(b"\x05id=ab\x04dn=x"),
            Err(TxtError::Missing("v"))
        );
        let e = PeerTxt::from_wire(b"\x05v=one\x05id=ab\x04dn=x").expect_err("bad v");
        assert_eq!(
            e.to_string(),
            "TXT `v` is invalid: `one` is not a version number"
        );
        let e = PeerTxt::from_wire(b"\x03v=1\x06id=a b\x04dn=x").expect_err("bad id");
        assert_eq!(e.to_string(), "TXT `id` is invalid: not printable ASCII");
        let e = PeerTxt::from_wire(b"\x03v=1\x04id=a\x04dn=x\x06c=vp9!").expect_err("codec");
        assert_eq!(e.to_string(), "TXT `c` is invalid: unknown codec `vp9!`");
        let mut t = sample();
        t.device_name = "x".repeat(101);
        assert!(t.validate().is_err());
        t.device_name = "ok".into();
        t.peer_id = "y".repeat(65);
        assert!(t.validate().is_err());
    }
}
