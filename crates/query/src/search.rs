//! Trace search: parameters as the APIs receive them (strings), checked and turned into a store request.

pub use clew_store::{
    AttrCondition, AttrOp, AttrScope, AttributeKey, AttributeValue, Literal, Operation, SearchCursor, SearchPage,
    SearchRequest, SpanFilter, TraceSummary,
};

/// Default and largest page size.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

/// Search parameters as text, as in `GET /api/v1/search`.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub service: Option<String>,
    pub name: Option<String>,
    /// `KEY<op>VALUE`, op one of `= != > >= < <= =~ !~`.
    pub attrs: Vec<String>,
    /// `server`, `client`, `producer`, `consumer`, `internal`.
    pub kind: Option<String>,
    /// `error`, `ok`, `unset`.
    pub status: Option<String>,
    /// Durations like `5ms`, `1.5s`, `2m`.
    pub min_duration: Option<String>,
    pub max_duration: Option<String>,
    /// Unix seconds (may have a fraction) or RFC 3339.
    pub start: Option<String>,
    pub end: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A parameter that cannot be used: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameter {param}: {message}")]
pub struct ParamError {
    pub param: &'static str,
    pub message: String,
}

fn bad(param: &'static str, message: impl Into<String>) -> ParamError {
    ParamError { param, message: message.into() }
}

impl SearchParams {
    /// Checks every parameter; the first bad one is the error.
    pub fn to_request(&self) -> Result<SearchRequest, ParamError> {
        let attrs = self
            .attrs
            .iter()
            .map(|a| AttrCondition::parse(a).map_err(|m| bad("attr", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let kind = self.kind.as_deref().map(parse_kind).transpose()?;
        let status = self.status.as_deref().map(parse_status).transpose()?;
        let duration = |param: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    parse_duration(v)
                        .and_then(|d| i64::try_from(d).map_err(|_| "too long".to_owned()))
                        .map_err(|m| bad(param, m))
                })
                .transpose()
        };
        let filter = SpanFilter {
            service: self.service.clone().filter(|s| !s.is_empty()),
            name: self.name.clone().filter(|s| !s.is_empty()),
            attrs,
            kind,
            status,
            min_duration_nanos: duration("minDuration", &self.min_duration)?,
            max_duration_nanos: duration("maxDuration", &self.max_duration)?,
            ..SpanFilter::default()
        };
        let time = |param: &'static str, value: &Option<String>| {
            value.as_deref().map(|v| parse_time(v).map_err(|m| bad(param, m))).transpose()
        };
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(bad("limit", format!("{l:?} is not a number from 1 to {MAX_LIMIT}"))),
            },
        };
        let after = self
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                SearchCursor::decode(c).ok_or_else(|| bad("cursor", format!("{c:?} is not a cursor Clew gave out")))
            })
            .transpose()?;
        Ok(SearchRequest {
            filter,
            start_min_unix_nano: time("start", &self.start)?,
            start_max_unix_nano: time("end", &self.end)?,
            limit,
            after,
        })
    }
}

/// OTLP `SpanKind` number of a kind name.
pub fn parse_kind(s: &str) -> Result<i32, ParamError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => return Err(bad("kind", format!("{s:?} is not one of server, client, producer, consumer, internal"))),
    })
}

/// The lowercase name of an OTLP `SpanKind` number.
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

fn parse_status(s: &str) -> Result<i32, ParamError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "unset" => 0,
        "ok" => 1,
        "error" => 2,
        _ => return Err(bad("status", format!("{s:?} is not one of error, ok, unset"))),
    })
}

/// A duration in nanoseconds: a number (may have a fraction) and a unit `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale: f64 = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(format!("{s:?} is not a duration like 5ms, 1.5s or 2m (units ns, us, ms, s, m, h)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 5ms, 1.5s or 2m"))?;
    let nanos = value * scale;
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(format!("{s:?} is too long"));
    }
    Ok(nanos.round() as u64)
}

/// Unix seconds (`1700000000`, `1700000000.5`) or RFC 3339 (`2023-11-14T22:13:20Z`, `…+01:00`), in unix
/// nanoseconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let invalid = || format!("{s:?} is neither unix seconds nor an RFC 3339 time");
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000_000).ok_or_else(invalid);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !(0.0..1.8e10).contains(&secs) {
            return Err(invalid());
        }
        return Ok((secs * 1e9).round() as u64);
    }
    parse_rfc3339(s).ok_or_else(invalid)
}

fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[16] != b':' || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &frac[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(nanos as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("5ms"), Ok(5_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("10us"), Ok(10_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20.25+01:00"), Ok(1_700_000_000_250_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert!(parse_time("2023-13-14T22:13:20Z").is_err());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        let p = |f: fn(&mut SearchParams)| {
            let mut params = SearchParams::default();
            f(&mut params);
            params.to_request().map(|_| ()).map_err(|e| e.param)
        };
        assert_eq!(p(|_| {}), Ok(()));
        assert_eq!(p(|p| p.limit = Some("0".into())), Err("limit"));
        assert_eq!(p(|p| p.limit = Some("1001".into())), Err("limit"));
        assert_eq!(p(|p| p.min_duration = Some("fast".into())), Err("minDuration"));
        assert_eq!(p(|p| p.max_duration = Some("1x".into())), Err("maxDuration"));
        assert_eq!(p(|p| p.attrs = vec!["a~b".into()]), Err("attr"));
        assert_eq!(p(|p| p.attrs = vec!["a=~(".into()]), Err("attr"));
        assert_eq!(p(|p| p.kind = Some("serverish".into())), Err("kind"));
        assert_eq!(p(|p| p.status = Some("bad".into())), Err("status"));
        assert_eq!(p(|p| p.start = Some("soon".into())), Err("start"));
        assert_eq!(p(|p| p.end = Some("later".into())), Err("end"));
        assert_eq!(p(|p| p.cursor = Some("!!".into())), Err("cursor"));
    }
}
