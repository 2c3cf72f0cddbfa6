//! OpenTelemetry consistent probability sampling (OTEP 235): the `ot=th:…;rv:…` tracestate values.
//!
//! Randomness R is 56 bits: `rv` when present, else the trace id's low 7 bytes. A threshold T (56 bits) keeps
//! a trace iff R ≥ T, so the probability is (2^56 − T) / 2^56 and every sampler on the path agrees given the
//! same R. A later sampler may only raise T.

/// 2^56: thresholds and randomness values are below it.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
const HEX_DIGITS: usize = 14;

/// The threshold that keeps a fraction `probability` of traces, rounded to `precision` hex digits (1–14).
/// Probability 0 (or less) gives `None`: nothing can be kept, and no threshold expresses that.
pub fn probability_to_threshold(probability: f64, precision: usize) -> Option<u64> {
    if probability.is_nan() || probability <= 0.0 {
        return None;
    }
    if probability >= 1.0 {
        return Some(0);
    }
    let kept = (probability * MAX_ADJUSTED_COUNT as f64).round() as u64;
    let threshold = MAX_ADJUSTED_COUNT - kept.clamp(1, MAX_ADJUSTED_COUNT);
    let precision = precision.clamp(1, HEX_DIGITS);
    let step = 1u64 << (4 * (HEX_DIGITS - precision));
    // Round to the nearest representable threshold, staying below 2^56.
    let rounded = threshold.div_ceil(step).saturating_mul(step);
    let rounded = if rounded - threshold > step / 2 || rounded >= MAX_ADJUSTED_COUNT {
        rounded.saturating_sub(step)
    } else {
        rounded
    };
    Some(rounded)
}

pub fn threshold_to_probability(threshold: u64) -> f64 {
    (MAX_ADJUSTED_COUNT - threshold.min(MAX_ADJUSTED_COUNT)) as f64 / MAX_ADJUSTED_COUNT as f64
}

/// How many traces a kept one stands for: 2^56 / (2^56 − T).
pub fn adjusted_count(threshold: u64) -> f64 {
    MAX_ADJUSTED_COUNT as f64 / (MAX_ADJUSTED_COUNT - threshold.min(MAX_ADJUSTED_COUNT - 1)) as f64
}

/// The `th` value: 14 hex digits with the trailing zeros removed (`0` for 100%).
pub fn encode_threshold(threshold: u64) -> String {
    let full = format!("{:014x}", threshold & (MAX_ADJUSTED_COUNT - 1));
    let trimmed = full.trim_end_matches('0');
    if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() }
}

/// Reads a `th` value: 1–14 hex digits, right-padded with zeros.
pub fn decode_threshold(th: &str) -> Option<u64> {
    if th.is_empty() || th.len() > HEX_DIGITS || !th.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = u64::from_str_radix(th, 16).ok()?;
    Some(value << (4 * (HEX_DIGITS - th.len())))
}

/// Reads an `rv` value: exactly 14 hex digits.
pub fn decode_randomness(rv: &str) -> Option<u64> {
    if rv.len() != HEX_DIGITS || !rv.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(rv, 16).ok()
}

/// The trace id's low 56 bits, the default randomness.
pub fn trace_id_randomness(trace_id: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&trace_id[9..]);
    u64::from_be_bytes(low)
}

/// The `th` and `rv` of a W3C tracestate's `ot` entry, when present and valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtValues {
    pub threshold: Option<u64>,
    pub randomness: Option<u64>,
}

pub fn parse_tracestate(tracestate: &str) -> OtValues {
    let mut out = OtValues::default();
    let Some(ot) = tracestate_value(tracestate, "ot") else { return out };
    for member in ot.split(';') {
        match member.split_once(':') {
            Some(("th", value)) => out.threshold = decode_threshold(value),
            Some(("rv", value)) => out.randomness = decode_randomness(value),
            _ => {}
        }
    }
    out
}

pub use clew_model::sampling::tracestate_value;

/// Writes (or, with `None`, erases) `th` in a tracestate, keeping `rv`, other `ot` sub-keys and other vendors'
/// entries; the `ot` entry moves to the front as W3C asks of a modified entry.
pub fn with_threshold(tracestate: &str, threshold: Option<u64>) -> String {
    clew_model::sampling::with_ot_threshold(tracestate, threshold.map(encode_threshold).as_deref())
}

/// The equalizing rule: a sampler with threshold `ours` sees a trace already sampled at `incoming`. Returns the
/// threshold in effect after both, or `None` when the trace must be dropped.
pub fn equalize(randomness: u64, incoming: Option<u64>, ours: u64) -> Option<u64> {
    match incoming {
        Some(t) if t > ours => Some(t),
        _ if randomness >= ours => Some(ours),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_specification_examples() {
        assert_eq!(encode_threshold(probability_to_threshold(1.0, 14).unwrap()), "0");
        assert_eq!(encode_threshold(probability_to_threshold(0.5, 14).unwrap()), "8");
        assert_eq!(encode_threshold(probability_to_threshold(0.25, 14).unwrap()), "c");
        assert_eq!(encode_threshold(probability_to_threshold(0.1, 13).unwrap()), "e666666666666");
        assert_eq!(encode_threshold(probability_to_threshold(0.1, 14).unwrap()), "e6666666666666");
        assert_eq!(encode_threshold(probability_to_threshold(0.01, 6).unwrap()), "fd70a4");
        assert_eq!(encode_threshold(probability_to_threshold(0.01, 4).unwrap()), "fd71");
        assert_eq!(probability_to_threshold(0.0, 14), None);
    }

    #[test]
    fn decodes_thresholds_padded_right() {
        assert_eq!(decode_threshold("8"), Some(1 << 55));
        assert_eq!(decode_threshold("c"), Some(0xc0_0000_0000_0000));
        assert_eq!(decode_threshold("0"), Some(0));
        assert_eq!(decode_threshold("fd70a4"), Some(0x00fd_70a4_0000_0000));
        assert_eq!(decode_threshold(""), None);
        assert_eq!(decode_threshold("123456789abcdef"), None);
        assert_eq!(decode_threshold("xyz"), None);
        for th in ["8", "c", "fd70a4", "e666666666666", "1"] {
            assert_eq!(encode_threshold(decode_threshold(th).unwrap()), th);
        }
    }

    #[test]
    fn probabilities_and_adjusted_counts() {
        assert_eq!(threshold_to_probability(1 << 55), 0.5);
        assert_eq!(adjusted_count(1 << 55), 2.0);
        assert_eq!(adjusted_count(0xc0_0000_0000_0000), 4.0);
        assert_eq!(adjusted_count(0), 1.0);
        let t = probability_to_threshold(0.1, 14).unwrap();
        assert!((adjusted_count(t) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn reads_randomness_from_rv_or_the_trace_id() {
        let id = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
        assert_eq!(trace_id_randomness(&id), 0x11223344556677);
        let ot = parse_tracestate("vendor=x,ot=th:8;rv:abcdef01234567,z=1");
        assert_eq!(ot, OtValues { threshold: Some(1 << 55), randomness: Some(0xabcdef01234567) });
        assert_eq!(parse_tracestate("ot=rv:short"), OtValues::default());
        assert_eq!(parse_tracestate(""), OtValues::default());
    }

    #[test]
    fn writes_threshold_keeping_everything_else() {
        assert_eq!(with_threshold("", Some(1 << 55)), "ot=th:8");
        assert_eq!(with_threshold("a=1,ot=th:c;rv:abcdef01234567", Some(1 << 55)), "ot=th:8;rv:abcdef01234567,a=1");
        assert_eq!(with_threshold("a=1,ot=th:c;rv:abcdef01234567", None), "ot=rv:abcdef01234567,a=1");
        assert_eq!(with_threshold("a=1,ot=th:c", None), "a=1");
    }

    #[test]
    fn equalizing_only_raises_thresholds() {
        let half = 1u64 << 55;
        let quarter = 0xc0_0000_0000_0000u64;
        // Already sampled more strictly upstream: the incoming threshold stands.
        assert_eq!(equalize(0xd0_0000_0000_0000, Some(quarter), half), Some(quarter));
        // Upstream sampled more loosely: ours applies and is what gets written.
        assert_eq!(equalize(0x90_0000_0000_0000, Some(0), half), Some(half));
        assert_eq!(equalize(0x10_0000_0000_0000, Some(0), half), None);
        assert_eq!(equalize(0x90_0000_0000_0000, None, half), Some(half));
    }
}
