//! A rule's condition: `<metric> <operator> <threshold>`, e.g. `p99 > 500ms`, `error_ratio > 5%`, `rate < 1/s`.
//!
//! Metrics, each computed over the rule's window:
//! - `p50`, `p90`, `p99`, `p99.9`, … (any `p<percent>`): a duration quantile, interpolated within the span-metrics
//!   bucket it falls in (as Prometheus' `histogram_quantile`); the threshold is a duration with a unit
//!   (`us`, `ms`, `s`, `m`);
//! - `avg`: the mean duration; a duration threshold;
//! - `error_ratio`: failing spans (status ERROR) / all spans; a threshold between 0 and 1, or a percentage (`5%`);
//! - `rate` and `error_rate`: spans (or failing spans) per second; the threshold may carry `/s`, `/m` or `/h`.
//!
//! Operators: `>`, `>=`, `<`, `<=`.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A quantile between 0 and 1 (`p99` is 0.99).
    Quantile(f64),
    Avg,
    ErrorRatio,
    Rate,
    ErrorRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Condition {
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: seconds, a ratio, or per second.
    pub threshold: f64,
    /// As written, for display.
    text: String,
}

impl Metric {
    /// Whether the value is a duration (seconds).
    pub fn is_duration(self) -> bool {
        matches!(self, Metric::Quantile(_) | Metric::Avg)
    }

    /// Whether the rule is about failures (example traces are then failing spans first).
    pub fn is_about_errors(self) -> bool {
        matches!(self, Metric::ErrorRatio | Metric::ErrorRate)
    }

    /// A value in this metric's unit for people: `930ms`, `12.5%`, `3.2/s`.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Quantile(_) | Metric::Avg => format_seconds(value),
            Metric::ErrorRatio => format!("{}%", round(value * 100.0)),
            Metric::Rate | Metric::ErrorRate => format!("{}/s", round(value)),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "avg" => Ok(Metric::Avg),
            "error_ratio" => Ok(Metric::ErrorRatio),
            "rate" => Ok(Metric::Rate),
            "error_rate" => Ok(Metric::ErrorRate),
            _ => {
                let percent = text.strip_prefix('p').and_then(|p| p.parse::<f64>().ok());
                match percent {
                    Some(p) if p > 0.0 && p < 100.0 => Ok(Metric::Quantile(p / 100.0)),
                    _ => Err(format!(
                        "unknown metric {text:?}: use p<percent> (e.g. p99), avg, error_ratio, rate or error_rate"
                    )),
                }
            }
        }
    }
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fail = |why: String| format!("condition {text:?}: {why}");
        let mut words = text.split_whitespace();
        let (Some(metric), Some(op), Some(threshold), None) = (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(fail("expected `<metric> <operator> <threshold>`, e.g. `p99 > 500ms`".into()));
        };
        let metric = Metric::parse(metric).map_err(fail)?;
        let op = match op {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            other => return Err(fail(format!("unknown operator {other:?}: use >, >=, < or <="))),
        };
        let threshold = match metric {
            Metric::Quantile(_) | Metric::Avg => parse_duration(threshold),
            Metric::ErrorRatio => parse_ratio(threshold),
            Metric::Rate | Metric::ErrorRate => parse_rate(threshold),
        }
        .map_err(fail)?;
        Ok(Self { metric, op, threshold, text: text.split_whitespace().collect::<Vec<_>>().join(" ") })
    }

    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for Condition {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Condition::parse(&text)
    }
}

impl From<Condition> for String {
    fn from(condition: Condition) -> String {
        condition.text
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

/// A duration with its unit, in seconds.
fn parse_duration(text: &str) -> Result<f64, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (value, unit) = text.split_at(split);
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "" => return Err(format!("the duration {text:?} needs a unit (us, ms, s or m), e.g. 500ms")),
        other => return Err(format!("unknown duration unit {other:?}: use us, ms, s or m")),
    };
    Ok(number(value)? * scale)
}

/// A ratio between 0 and 1, or a percentage.
fn parse_ratio(text: &str) -> Result<f64, String> {
    let ratio = match text.strip_suffix('%') {
        Some(percent) => number(percent)? / 100.0,
        None => number(text)?,
    };
    if ratio > 1.0 {
        return Err(format!("the ratio {text:?} is above 1 (write a percentage as e.g. 5%)"));
    }
    Ok(ratio)
}

/// Events per second, per minute or per hour, in per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let (value, per) = match text.split_once('/') {
        Some((value, unit)) => (value, unit),
        None => (text, "s"),
    };
    let seconds = match per {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown rate unit /{other}: use /s, /m or /h")),
    };
    Ok(number(value)? / seconds)
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Seconds as `930ms`, `1.25s`, `350us`.
pub fn format_seconds(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{}s", round(seconds))
    } else if seconds >= 1e-3 {
        format!("{}ms", round(seconds * 1e3))
    } else {
        format!("{}us", round(seconds * 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Metric, Op, f64) {
        let c = Condition::parse(text).unwrap();
        (c.metric, c.op, c.threshold)
    }

    #[test]
    fn parses_every_metric_and_threshold_form() {
        assert_eq!(parsed("p99 > 500ms"), (Metric::Quantile(0.99), Op::Gt, 0.5));
        assert_eq!(parsed("p50 >= 2s"), (Metric::Quantile(0.5), Op::Ge, 2.0));
        let (metric, _, threshold) = parsed("p99.9 > 250us");
        assert!(matches!(metric, Metric::Quantile(q) if (q - 0.999).abs() < 1e-12));
        assert!((threshold - 250e-6).abs() < 1e-12);
        assert_eq!(parsed("avg > 1m"), (Metric::Avg, Op::Gt, 60.0));
        assert_eq!(parsed("error_ratio > 0.05"), (Metric::ErrorRatio, Op::Gt, 0.05));
        assert_eq!(parsed("error_ratio > 5%"), (Metric::ErrorRatio, Op::Gt, 0.05));
        assert_eq!(parsed("rate < 2"), (Metric::Rate, Op::Lt, 2.0));
        assert_eq!(parsed("rate <= 120/m"), (Metric::Rate, Op::Le, 2.0));
        assert_eq!(parsed("error_rate > 36/h"), (Metric::ErrorRate, Op::Gt, 0.01));
        assert_eq!(Condition::parse("  p99   >  1s ").unwrap().text(), "p99 > 1s");
    }

    #[test]
    fn mistakes_get_a_clear_error() {
        let err = |text: &str| Condition::parse(text).unwrap_err();
        assert!(err("p99 > 500").contains("needs a unit"));
        assert!(err("p99 > 5 hours").contains("expected `<metric> <operator> <threshold>`"));
        assert!(err("p99>500ms").contains("expected"));
        assert!(err("p100 > 1s").contains("unknown metric"));
        assert!(err("latency > 1s").contains("unknown metric"));
        assert!(err("p99 => 1s").contains("unknown operator"));
        assert!(err("error_ratio > 5").contains("above 1"));
        assert!(err("rate < -1").contains("non-negative"));
        assert!(err("rate < 1/d").contains("/s, /m or /h"));
        assert!(err("p99 > 1d").contains("unknown duration unit"));
    }

    #[test]
    fn comparisons_and_formatting() {
        let c = Condition::parse("p99 > 500ms").unwrap();
        assert!(c.holds(0.501) && !c.holds(0.5));
        assert!(Condition::parse("rate <= 1").unwrap().holds(1.0));
        assert_eq!(Metric::Quantile(0.99).format(0.93), "930ms");
        assert_eq!(Metric::Avg.format(1.25), "1.25s");
        assert_eq!(Metric::ErrorRatio.format(0.125), "12.5%");
        assert_eq!(Metric::Rate.format(3.0), "3/s");
    }
}
