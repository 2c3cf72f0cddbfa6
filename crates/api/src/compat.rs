//! Formats the ecosystem-compatible APIs (Jaeger, Zipkin) share: lenient trace ids, Go-style durations, RFC 3339
//! times, attribute values as text.

use base64::Engine;
use clew_model::TraceId;
use clew_model::otlp::{AnyValue, any_value::Value};

/// A trace id of 1 to 32 hex digits, left-padded with zeros (as Jaeger and Zipkin accept them).
pub(crate) fn parse_trace_id(s: &str) -> Result<TraceId, String> {
    if s.is_empty() || s.len() > 32 {
        return Err(format!("trace id {s:?} must have 1 to 32 hex characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("trace id {s:?} is not hexadecimal"));
    }
    TraceId::parse_hex(&format!("{s:0>32}")).map_err(|e| e.to_string())
}

/// The hex form Jaeger and Zipkin print: 16 digits for a 64-bit id (high half zero), else 32.
pub(crate) fn short_trace_id(bytes: &[u8]) -> String {
    match bytes.split_at_checked(8) {
        Some((high, low)) if bytes.len() == 16 && high.iter().all(|&b| b == 0) => hex::encode(low),
        _ => hex::encode(bytes),
    }
}

/// A Go-style duration (`1.5s`, `100ms`, `1h30m`, `250us`/`µs`, `10ns`; also `d` and `w`) in nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<u64, String> {
    let invalid = || format!("{s:?} is not a duration like 100ms, 1.5s or 1h30m");
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 604_800e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if !total.is_finite() || total >= u64::MAX as f64 {
        return Err(format!("{s:?} is too long"));
    }
    Ok(total.round() as u64)
}

/// An RFC 3339 time (`2024-01-02T03:04:05.123456789Z`, `...+01:00`) in Unix nanoseconds.
pub(crate) fn parse_rfc3339(value: &str) -> Option<u64> {
    // `parse_time` also takes Unix seconds, which the RFC 3339 parameters do not.
    value.contains(['T', 't']).then(|| clew_query::search::parse_time(value).ok()).flatten()
}

/// The text form of an attribute value, as the OpenTelemetry collector's `AsString`: strings as they are,
/// numbers in decimal, bytes in base64, arrays and maps as JSON.
pub(crate) fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        // A string-table index only means something in profiles, never in traces.
        None | Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => raw_json(Some(other)).to_string(),
    }
}

/// An attribute value as plain JSON (arrays as arrays, maps as objects), for the JSON text of nested values.
fn raw_json(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None | Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::StringValue(s)) => J::from(s.as_str()),
        Some(Value::BoolValue(b)) => J::from(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => J::from(*d),
        Some(Value::BytesValue(b)) => J::from(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(|v| raw_json(v.value.as_ref())).collect()),
        Some(Value::KvlistValue(m)) => J::Object(
            m.values
                .iter()
                .map(|kv| (kv.key.clone(), raw_json(kv.value.as_ref().and_then(|v| v.value.as_ref()))))
                .collect(),
        ),
    }
}

/// The attributes of an OTLP key/value list as JSON (`{"k": v}`), as Zipkin's event annotations carry them.
pub(crate) fn attributes_json(attributes: &[clew_model::otlp::KeyValue]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|kv| (kv.key.clone(), raw_json(kv.value.as_ref().and_then(|v| v.value.as_ref()))))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("1.2s"), Ok(1_200_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("250us"), Ok(250_000));
        assert_eq!(parse_go_duration("250µs"), Ok(250_000));
        assert_eq!(parse_go_duration("2d"), Ok(172_800_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        for bad in ["", "5", "ms", "1x", "fast", "-1s", "1.2.3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn trace_ids_pad_and_print_short() {
        let id = parse_trace_id("abc").unwrap();
        assert_eq!(id.to_string(), format!("{:0>32}", "abc"));
        assert_eq!(short_trace_id(&id.0), "0000000000000abc");
        let long = parse_trace_id("4e441824ec2b6a44ffdc9bb9a6453df3").unwrap();
        assert_eq!(short_trace_id(&long.0), "4e441824ec2b6a44ffdc9bb9a6453df3");
        assert!(parse_trace_id("").is_err());
        assert!(parse_trace_id("xyz").is_err());
        assert!(parse_trace_id(&"a".repeat(33)).is_err());
    }

    #[test]
    fn values_as_text() {
        let v = |value: Value| Some(AnyValue { value: Some(value) });
        assert_eq!(value_text(v(Value::IntValue(42)).as_ref()), "42");
        assert_eq!(value_text(v(Value::DoubleValue(0.5)).as_ref()), "0.5");
        assert_eq!(value_text(v(Value::BoolValue(true)).as_ref()), "true");
        assert_eq!(value_text(v(Value::BytesValue(vec![1, 2, 3])).as_ref()), "AQID");
        let array = clew_model::otlp::ArrayValue {
            values: vec![
                AnyValue { value: Some(Value::StringValue("a".into())) },
                AnyValue { value: Some(Value::IntValue(1)) },
            ],
        };
        assert_eq!(value_text(v(Value::ArrayValue(array)).as_ref()), r#"["a",1]"#);
        assert_eq!(value_text(None), "");
    }
}
