//! How trace context travels between the shop's services. Most hops speak W3C `traceparent`/`tracestate` with
//! `baggage`; the cart hop speaks Zipkin's B3 (multi-header, as Brave-instrumented services do) and the inventory
//! hop Jaeger's `uber-trace-id` with `uberctx-*` baggage. B3 and Jaeger are implemented here on the SDK's
//! `TextMapPropagator` trait: the published Jaeger propagator lags one OpenTelemetry version behind, and the Zipkin
//! crate that carries B3 also brings its exporter.

use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// The header format one hop speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// W3C Trace Context and W3C Baggage.
    W3c,
    /// B3 multi-header, with W3C Baggage next to it.
    B3,
    /// Jaeger `uber-trace-id` and `uberctx-*` baggage.
    Jaeger,
    /// A legacy client that sends no trace context at all.
    Dropped,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::W3c => "w3c",
            Format::B3 => "b3",
            Format::Jaeger => "jaeger",
            Format::Dropped => "none",
        }
    }

    fn propagator(self) -> Box<dyn TextMapPropagator + Send + Sync> {
        match self {
            Format::W3c => Box::new(TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ])),
            Format::B3 => Box::new(TextMapCompositePropagator::new(vec![
                Box::new(B3Propagator::new()),
                Box::new(BaggagePropagator::new()),
            ])),
            Format::Jaeger => Box::new(JaegerPropagator::new()),
            Format::Dropped => Box::new(TextMapCompositePropagator::new(vec![])),
        }
    }

    pub fn inject(self, cx: &Context, injector: &mut dyn Injector) {
        self.propagator().inject_context(cx, injector);
    }

    pub fn extract(self, extractor: &dyn Extractor) -> Context {
        self.propagator().extract_with_context(&Context::new(), extractor)
    }
}

fn remote_context(cx: &Context, trace_id: TraceId, span_id: SpanId, sampled: bool) -> Context {
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    cx.with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, TraceState::default()))
}

/// Parses a hex id of up to `width` digits, left-padded with zeros; all-zero ids are invalid.
fn parse_hex_id(value: &str, width: usize) -> Option<u128> {
    let value = value.trim();
    if value.is_empty() || value.len() > width || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(value, 16).ok().filter(|&id| id != 0)
}

/// Zipkin's B3: reads the single `b3` header first, then the multi headers; writes the multi headers.
#[derive(Debug)]
pub struct B3Propagator {
    fields: Vec<String>,
}

impl B3Propagator {
    pub fn new() -> Self {
        let fields = ["b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"];
        B3Propagator { fields: fields.map(String::from).to_vec() }
    }

    fn extract_single(value: &str) -> Option<(TraceId, SpanId, bool)> {
        let mut parts = value.trim().split('-');
        let trace = parse_hex_id(parts.next()?, 32)?;
        let span = parse_hex_id(parts.next()?, 16)?;
        let sampled = match parts.next() {
            None | Some("1") | Some("d") => true,
            Some("0") => false,
            Some(_) => return None,
        };
        Some((TraceId::from(trace), SpanId::from(span as u64), sampled))
    }

    fn extract_multi(extractor: &dyn Extractor) -> Option<(TraceId, SpanId, bool)> {
        let trace = parse_hex_id(extractor.get("x-b3-traceid")?, 32)?;
        let span = parse_hex_id(extractor.get("x-b3-spanid")?, 16)?;
        let debug = extractor.get("x-b3-flags").is_some_and(|f| f.trim() == "1");
        let sampled = debug || !matches!(extractor.get("x-b3-sampled").map(str::trim), Some("0") | Some("false"));
        Some((TraceId::from(trace), SpanId::from(span as u64), sampled))
    }
}

impl Default for B3Propagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        injector.set("x-b3-traceid", sc.trace_id().to_string());
        injector.set("x-b3-spanid", sc.span_id().to_string());
        injector.set("x-b3-sampled", if sc.is_sampled() { "1" } else { "0" }.to_string());
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get("b3") {
            Some(single) => Self::extract_single(single),
            None => Self::extract_multi(extractor),
        };
        match found {
            Some((trace, span, sampled)) => remote_context(cx, trace, span, sampled),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

const UBER_TRACE_ID: &str = "uber-trace-id";
const UBER_BAGGAGE_PREFIX: &str = "uberctx-";

/// Jaeger's native format: `uber-trace-id: {trace}:{span}:{parent}:{flags}` and one `uberctx-{key}` header per
/// baggage item (URL-encoded).
#[derive(Debug)]
pub struct JaegerPropagator {
    fields: Vec<String>,
}

impl JaegerPropagator {
    pub fn new() -> Self {
        JaegerPropagator { fields: vec![UBER_TRACE_ID.to_string()] }
    }

    fn extract_span(value: &str) -> Option<(TraceId, SpanId, bool)> {
        let decoded: String = form_urlencoded::parse(format!("v={value}").as_bytes()).map(|(_, v)| v).collect();
        let parts: Vec<&str> = decoded.trim().split(':').collect();
        let [trace, span, _parent, flags] = parts.as_slice() else {
            return None;
        };
        let trace = parse_hex_id(trace, 32)?;
        let span = parse_hex_id(span, 16)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        // Bit 1 is sampled, bit 2 debug (which implies sampled).
        Some((TraceId::from(trace), SpanId::from(span as u64), flags & 0x03 != 0))
    }
}

impl Default for JaegerPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flags = if sc.is_sampled() { 1 } else { 0 };
            injector.set(UBER_TRACE_ID, format!("{}:{}:0:{flags}", sc.trace_id(), sc.span_id()));
        }
        for (key, (value, _)) in cx.baggage() {
            let encoded: String = form_urlencoded::byte_serialize(value.as_str().as_bytes()).collect();
            injector.set(&format!("{UBER_BAGGAGE_PREFIX}{}", key.as_str()), encoded);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut cx = match extractor.get(UBER_TRACE_ID).and_then(Self::extract_span) {
            Some((trace, span, sampled)) => remote_context(cx, trace, span, sampled),
            None => cx.clone(),
        };
        let baggage: Vec<KeyValue> = extractor
            .keys()
            .into_iter()
            .filter_map(|key| {
                let name = key.to_ascii_lowercase().strip_prefix(UBER_BAGGAGE_PREFIX)?.to_string();
                let raw = extractor.get(key)?;
                let value: String = form_urlencoded::parse(format!("v={raw}").as_bytes()).map(|(_, v)| v).collect();
                Some(KeyValue::new(name, value))
            })
            .collect();
        if !baggage.is_empty() {
            cx = cx.with_baggage(baggage.into_iter().collect::<Baggage>());
        }
        cx
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Reads and writes HTTP headers for the propagators.
pub struct HeaderCarrier<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// Read-only view of HTTP headers for extraction.
pub struct HeaderReader<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context(trace: u128, span: u64) -> Context {
        remote_context(&Context::new(), TraceId::from(trace), SpanId::from(span), true)
            .with_baggage([KeyValue::new("request.id", "r 1/x")].into_iter().collect::<Baggage>())
    }

    fn round_trip(format: Format) -> (HashMap<String, String>, Context) {
        let mut headers = HashMap::new();
        format.inject(&context(0xabc, 0x12), &mut headers);
        let back = format.extract(&headers);
        (headers, back)
    }

    #[test]
    fn every_format_keeps_ids_and_baggage() {
        for format in [Format::W3c, Format::B3, Format::Jaeger] {
            let (headers, back) = round_trip(format);
            let span = back.span();
            let sc = span.span_context();
            assert_eq!(sc.trace_id(), TraceId::from(0xabc), "{format:?} {headers:?}");
            assert_eq!(sc.span_id(), SpanId::from(0x12));
            assert!(sc.is_remote() && sc.is_sampled());
            assert_eq!(back.baggage().get("request.id").map(|v| v.as_str()), Some("r 1/x"), "{format:?} {headers:?}");
        }
    }

    #[test]
    fn headers_look_like_the_real_formats() {
        let (b3, _) = round_trip(Format::B3);
        assert_eq!(b3["x-b3-traceid"], format!("{:032x}", 0xabc));
        assert_eq!(b3["x-b3-spanid"], format!("{:016x}", 0x12));
        let (jaeger, _) = round_trip(Format::Jaeger);
        assert_eq!(jaeger["uber-trace-id"], format!("{:032x}:{:016x}:0:1", 0xabc, 0x12));
        assert_eq!(jaeger["uberctx-request.id"], "r+1%2Fx");
        assert!(!jaeger.contains_key("traceparent"));
        let (dropped, back) = round_trip(Format::Dropped);
        assert!(dropped.is_empty() && !back.span().span_context().is_valid());
    }

    #[test]
    fn short_and_single_header_ids_are_padded_and_zero_ids_rejected() {
        let headers = HashMap::from([("uber-trace-id".to_string(), "abc:12:0:1".to_string())]);
        let cx = Format::Jaeger.extract(&headers);
        assert_eq!(cx.span().span_context().trace_id(), TraceId::from(0xabc));
        let headers = HashMap::from([("uber-trace-id".to_string(), "0:12:0:1".to_string())]);
        assert!(!Format::Jaeger.extract(&headers).span().span_context().is_valid());
        let headers = HashMap::from([("b3".to_string(), format!("{:016x}-{:016x}-d", 7, 9))]);
        let cx = Format::B3.extract(&headers);
        assert_eq!(cx.span().span_context().trace_id(), TraceId::from(7));
        assert!(cx.span().span_context().is_sampled());
    }
}
