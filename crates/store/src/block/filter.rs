//! The trace-id filter of `meta.json`: a plain bloom filter.
//!
//! `bits` is a multiple of 64, stored as little-endian `u64` words, base64 (standard alphabet, padded). A trace
//! id's 16 bytes are read as two little-endian `u64`s `lo` and `hi`; with `mix` the splitmix64 finalizer,
//! `h1 = mix(hi ^ mix(lo ^ 0x9e3779b97f4a7c15))` and `h2 = mix(h1 ^ 0xc2b2ae3d27d4eb4f) | 1`; probe `i` (of
//! `k`) sets bit `(h1 + i * h2) mod bits` (wrapping `u64` arithmetic). Hashing all 16 bytes keeps 64-bit ids
//! (left-padded with zeros) spread as well as random 128-bit ones.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clew_model::TraceId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIdFilter {
    words: Vec<u64>,
    k: u32,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// `"bloom-splitmix64"`: the scheme above.
    kind: String,
    bits: u64,
    k: u32,
    data: String,
}

const KIND: &str = "bloom-splitmix64";

impl TraceIdFilter {
    /// An empty filter sized for `n` ids at false-positive rate `p`.
    pub fn with_capacity(n: usize, p: f64) -> Self {
        let p = p.clamp(1e-9, 0.5);
        let n = n.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = (-n * p.ln() / (ln2 * ln2)).ceil().max(64.0) as u64;
        let words = bits.div_ceil(64) as usize;
        let k = ((words as f64 * 64.0 / n) * ln2).round().clamp(1.0, 16.0) as u32;
        Self { words: vec![0; words], k }
    }

    pub fn insert(&mut self, id: &TraceId) {
        let bits = self.bits();
        for bit in probes(id, self.k, bits) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False only if the id was never inserted.
    pub fn may_contain(&self, id: &TraceId) -> bool {
        let bits = self.bits();
        if bits == 0 {
            return false;
        }
        probes(id, self.k, bits).all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    pub fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    pub fn k(&self) -> u32 {
        self.k
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

fn probes(id: &TraceId, k: u32, bits: u64) -> impl Iterator<Item = u64> {
    let lo = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(id.0[8..].try_into().expect("8 bytes"));
    let h1 = mix(hi ^ mix(lo ^ 0x9e3779b97f4a7c15));
    let h2 = mix(h1 ^ 0xc2b2ae3d27d4eb4f) | 1;
    (0..k as u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

impl Serialize for TraceIdFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Stored { kind: KIND.into(), bits: self.bits(), k: self.k, data: STANDARD.encode(bytes) }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TraceIdFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = Stored::deserialize(deserializer)?;
        if stored.kind != KIND {
            return Err(D::Error::custom(format!("unknown trace-id filter kind {:?}", stored.kind)));
        }
        let bytes = STANDARD.decode(stored.data.as_bytes()).map_err(D::Error::custom)?;
        if bytes.len() % 8 != 0 || bytes.len() as u64 * 8 != stored.bits || stored.k == 0 {
            return Err(D::Error::custom("trace-id filter: data does not match bits and k"));
        }
        let words = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        Ok(Self { words, k: stored.k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> TraceId {
        let mut b = [0u8; 16];
        b[8..].copy_from_slice(&i.to_be_bytes());
        TraceId(b)
    }

    #[test]
    fn no_false_negatives_and_about_the_configured_false_positive_rate() {
        let mut f = TraceIdFilter::with_capacity(10_000, 0.01);
        for i in 0..10_000 {
            f.insert(&id(i));
        }
        assert!((0..10_000).all(|i| f.may_contain(&id(i))));
        let fp = (1_000_000..1_100_000).filter(|&i| f.may_contain(&id(i))).count();
        assert!(fp < 1_500, "{fp} false positives in 100k, expected about 1k");
        let json = serde_json::to_string(&f).unwrap();
        let back: TraceIdFilter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
