//! The one log-bucket scheme for durations, shared by the analysis sketch and the RED summaries that the store
//! writes next to each block (so a summary turns into a sketch without re-bucketing): a duration of v seconds
//! (v > [`MIN_SECONDS`]) falls in bucket ⌈log_γ v⌉ with γ = (1 + α) / (1 − α), α = [`RELATIVE_ACCURACY`];
//! smaller (or non-finite) values are counted apart, as zeros. Every value in a bucket is within α of the
//! bucket's [`representative`] value.

/// Relative accuracy α of a bucket's representative value.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Values at or below this many seconds (and non-finite ones) are zeros, in no bucket.
pub const MIN_SECONDS: f64 = 1e-9;

/// ln γ.
fn gamma_ln() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

/// The bucket of a value in seconds, `None` for a zero.
pub fn bucket_of_seconds(seconds: f64) -> Option<i32> {
    (seconds > MIN_SECONDS && seconds.is_finite()).then(|| (seconds.ln() / gamma_ln()).ceil() as i32)
}

/// The bucket of a duration in nanoseconds (the same as [`bucket_of_seconds`] of `nanos / 1e9`).
pub fn bucket_of_nanos(nanos: u64) -> Option<i32> {
    bucket_of_seconds(nanos as f64 / 1e9)
}

/// The value, in seconds, that stands for bucket `index`: 2γ^i / (γ + 1), within α of everything in it.
pub fn representative(index: i32) -> f64 {
    let gamma = gamma_ln().exp();
    2.0 * (index as f64 * gamma_ln()).exp() / (gamma + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_near_its_bucket_value() {
        for v in [1e-6, 0.001, 0.0123, 0.5, 1.0, 7.25, 3600.0] {
            let i = bucket_of_seconds(v).unwrap();
            assert!((representative(i) - v).abs() <= v * RELATIVE_ACCURACY + 1e-15, "{v}");
        }
        assert_eq!(bucket_of_seconds(0.0), None);
        assert_eq!(bucket_of_seconds(f64::NAN), None);
        assert_eq!(bucket_of_nanos(0), None);
        assert_eq!(bucket_of_nanos(250_000_000), bucket_of_seconds(0.25));
    }
}
