//! A token bucket on the sampler's clock (milliseconds), so rate limits can be tested on simulated time.

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last_ms: Option<u64>,
}

impl TokenBucket {
    /// Starts full, like the collector's limiter.
    pub fn new(per_second: u64, capacity: u64) -> Self {
        Self { per_second: per_second as f64, capacity: capacity as f64, tokens: capacity as f64, last_ms: None }
    }

    /// Takes `n` tokens if there are that many; a request larger than the bucket never passes.
    pub fn allow(&mut self, now_ms: u64, n: u64) -> bool {
        if let Some(last) = self.last_ms {
            let elapsed = now_ms.saturating_sub(last) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.last_ms = Some(self.last_ms.map_or(now_ms, |last| last.max(now_ms)));
        let n = n as f64;
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_caps_at_the_burst() {
        let mut bucket = TokenBucket::new(10, 20);
        assert!(bucket.allow(0, 20));
        assert!(!bucket.allow(0, 1));
        assert!(bucket.allow(500, 5));
        assert!(!bucket.allow(500, 1));
        // A long pause refills only up to the capacity.
        assert!(!bucket.allow(60_000, 21));
        assert!(bucket.allow(60_000, 20));
    }
}
