use std::collections::BTreeMap;

use clew_model::otlp::{self, any_value::Value, span::SpanKind, status::StatusCode};
use prost::Message;

use super::proto::{ListOfSpans, ProtoAnnotation, ProtoEndpoint, Span, SpanKind as ZipkinKind};
use super::{ZipkinDecodeError, decode_json, decode_proto};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s).unwrap()
}

fn json(body: &str) -> Vec<otlp::ResourceSpans> {
    decode_json(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// The only span of a single-span result.
fn single(resource_spans: &[otlp::ResourceSpans]) -> &otlp::Span {
    let spans: Vec<&otlp::Span> =
        resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).collect();
    assert_eq!(spans.len(), 1, "{resource_spans:#?}");
    spans[0]
}

fn attr<'a>(attributes: &'a [otlp::KeyValue], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(attributes: &'a [otlp::KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        Value::StringValue(s) => Some(s),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn resource_attrs(rs: &otlp::ResourceSpans) -> &[otlp::KeyValue] {
    &rs.resource.as_ref().unwrap().attributes
}

/// One span with the given extra JSON fields.
fn one_span(extra: &str) -> String {
    format!(r#"[{{"traceId":"{TRACE}","id":"352bff9a74ca9ad2","name":"op","timestamp":1000,"duration":5{extra}}}]"#)
}

#[test]
fn client_and_server_pair_with_both_endpoints() {
    let body = format!(
        r#"[
        {{"traceId":"{TRACE}","id":"6b221d5bc9e6496c","parentId":"352bff9a74ca9ad2","kind":"CLIENT",
          "name":"get /api","timestamp":1502787600000000,"duration":150000,
          "localEndpoint":{{"serviceName":"frontend","ipv4":"192.168.99.1","port":8080}},
          "remoteEndpoint":{{"serviceName":"backend","ipv6":"2001:db8::c001","port":9000}},
          "tags":{{"http.method":"GET","http.status_code":"200"}}}},
        {{"traceId":"{TRACE}","id":"6b221d5bc9e6496c","parentId":"352bff9a74ca9ad2","kind":"SERVER","shared":true,
          "name":"get /api","timestamp":1502787600010000,"duration":100000,
          "localEndpoint":{{"serviceName":"backend","ipv4":"172.17.0.13","port":9000}},
          "remoteEndpoint":{{"ipv4":"192.168.99.1","port":51234}}}}
    ]"#
    );
    let out = json(&body);
    // One resource per service, ordered by service name as the collector does.
    assert_eq!(out.len(), 2);
    assert_eq!(str_attr(resource_attrs(&out[0]), "service.name"), Some("backend"));
    assert_eq!(str_attr(resource_attrs(&out[1]), "service.name"), Some("frontend"));

    let server = single(&out[..1]);
    let client = single(&out[1..]);
    assert_eq!(client.trace_id, hex(TRACE));
    assert_eq!(client.span_id, hex("6b221d5bc9e6496c"));
    assert_eq!(client.parent_span_id, hex("352bff9a74ca9ad2"));
    assert_eq!(client.kind, SpanKind::Client as i32);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(client.name, "get /api");
    assert_eq!(client.start_time_unix_nano, 1_502_787_600_000_000_000);
    assert_eq!(client.end_time_unix_nano, 1_502_787_600_150_000_000);

    let a = &client.attributes;
    assert_eq!(str_attr(a, "http.method"), Some("GET"));
    // Tags are never parsed into other types.
    assert_eq!(str_attr(a, "http.status_code"), Some("200"));
    assert_eq!(str_attr(a, "net.host.ip"), Some("192.168.99.1"));
    assert_eq!(attr(a, "net.host.port"), Some(&Value::IntValue(8080)));
    assert_eq!(str_attr(a, "peer.service"), Some("backend"));
    assert_eq!(str_attr(a, "net.peer.ip"), Some("2001:db8::c001"));
    assert_eq!(attr(a, "net.peer.port"), Some(&Value::IntValue(9000)));
    assert_eq!(a.len(), 7, "{a:#?}");

    let a = &server.attributes;
    assert_eq!(str_attr(a, "net.host.ip"), Some("172.17.0.13"));
    assert_eq!(str_attr(a, "net.peer.ip"), Some("192.168.99.1"));
    assert_eq!(attr(a, "net.peer.port"), Some(&Value::IntValue(51234)));
    assert_eq!(attr(a, "peer.service"), None);
    // `shared` has no OTLP counterpart and leaves no trace.
    assert_eq!(a.len(), 4, "{a:#?}");
}

#[test]
fn short_trace_id_is_left_padded() {
    let out = json(r#"[{"traceId":"D269B633813FC60C","id":"352bff9a74ca9ad2"}]"#);
    assert_eq!(single(&out).trace_id, hex("0000000000000000d269b633813fc60c"));
}

#[test]
fn parent_equal_to_id_or_empty_means_root() {
    for parent in [r#","parentId":"352bff9a74ca9ad2""#, r#","parentId":"""#, r#","parentId":null"#, ""] {
        let out = json(&one_span(parent));
        assert!(single(&out).parent_span_id.is_empty(), "{parent}");
    }
    let out = json(&one_span(r#","parentId":"0000000000000001""#));
    assert_eq!(single(&out).parent_span_id, hex("0000000000000001"));
}

#[test]
fn kinds_map_one_to_one_and_span_kind_internal_is_read_only_without_a_kind() {
    for (kind, want) in [
        ("CLIENT", SpanKind::Client),
        ("SERVER", SpanKind::Server),
        ("PRODUCER", SpanKind::Producer),
        ("CONSUMER", SpanKind::Consumer),
        ("client", SpanKind::Unspecified),
    ] {
        let out = json(&one_span(&format!(r#","kind":"{kind}""#)));
        assert_eq!(single(&out).kind, want as i32, "{kind}");
    }

    let out = json(&one_span(r#","tags":{"span.kind":"internal"}"#));
    let span = single(&out);
    assert_eq!(span.kind, SpanKind::Internal as i32);
    assert_eq!(attr(&span.attributes, "span.kind"), None);

    let out = json(&one_span(""));
    assert_eq!(single(&out).kind, SpanKind::Unspecified as i32);

    // With a Zipkin kind the tag is just an attribute.
    let out = json(&one_span(r#","kind":"SERVER","tags":{"span.kind":"internal"}"#));
    let span = single(&out);
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(str_attr(&span.attributes, "span.kind"), Some("internal"));
}

fn status_of(tags: &str) -> (otlp::Status, Vec<otlp::KeyValue>) {
    let out = json(&one_span(&format!(r#","tags":{tags}"#)));
    let span = single(&out);
    (span.status.clone().unwrap(), span.attributes.clone())
}

#[test]
fn status_from_otel_status_code() {
    for (value, want) in [
        ("STATUS_CODE_ERROR", StatusCode::Error),
        ("Error", StatusCode::Error),
        ("ERROR", StatusCode::Error),
        ("STATUS_CODE_OK", StatusCode::Ok),
        ("Ok", StatusCode::Ok),
        ("OK", StatusCode::Ok),
        ("STATUS_CODE_UNSET", StatusCode::Unset),
        ("bogus", StatusCode::Unset),
    ] {
        let (status, attrs) =
            status_of(&format!(r#"{{"otel.status_code":"{value}","otel.status_description":"boom"}}"#));
        assert_eq!(status.code, want as i32, "{value}");
        assert_eq!(status.message, "boom");
        assert!(attrs.is_empty(), "{attrs:#?}");
    }
    // A description without a code stays an attribute.
    let (status, attrs) = status_of(r#"{"otel.status_description":"boom"}"#);
    assert_eq!(status, otlp::Status::default());
    assert_eq!(str_attr(&attrs, "otel.status_description"), Some("boom"));
}

#[test]
fn status_from_error_tag() {
    let (status, attrs) = status_of(r#"{"error":"true"}"#);
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "");
    assert!(attrs.is_empty(), "{attrs:#?}");

    // Any other value is kept (it is usually the message) and still makes the span an error.
    let (status, attrs) = status_of(r#"{"error":"connection refused"}"#);
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "");
    assert_eq!(str_attr(&attrs, "error"), Some("connection refused"));

    // `error` wins over an OK code.
    let (status, _) = status_of(r#"{"otel.status_code":"OK","error":"true"}"#);
    assert_eq!(status.code, StatusCode::Error as i32);

    let (status, _) = status_of(r#"{"http.status_code":"500"}"#);
    assert_eq!(status.code, StatusCode::Unset as i32);
}

#[test]
fn annotations_become_events() {
    let out = json(&one_span(
        r#","annotations":[
            {"timestamp":1500,"value":"cache miss"},
            {"timestamp":1600,"value":"retry|{\"attempt\":2,\"backoff\":0.5,\"ok\":false,\"why\":\"a|b\",\"list\":[1]}|3"},
            {"timestamp":1700,"value":"odd|value"},
            {"timestamp":1800,"value":"not|json|x"}
        ]"#,
    ));
    let events = &single(&out).events;
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].time_unix_nano, 1_500_000);
    assert_eq!(events[0].name, "cache miss");
    assert!(events[0].attributes.is_empty());

    assert_eq!(events[1].time_unix_nano, 1_600_000);
    assert_eq!(events[1].name, "retry");
    assert_eq!(events[1].dropped_attributes_count, 3);
    let a = &events[1].attributes;
    assert_eq!(attr(a, "attempt"), Some(&Value::IntValue(2)));
    assert_eq!(attr(a, "backoff"), Some(&Value::DoubleValue(0.5)));
    assert_eq!(attr(a, "ok"), Some(&Value::BoolValue(false)));
    assert_eq!(str_attr(a, "why"), Some("a|b"));
    assert_eq!(attr(a, "list"), None, "arrays are dropped, as in the collector");

    // Values not in the encoded form are kept whole.
    assert_eq!(events[2].name, "odd|value");
    assert_eq!(events[3].name, "not|json|x");
    assert!(events[3].attributes.is_empty());
}

#[test]
fn link_tags_become_links() {
    let out = json(&one_span(
        r#","tags":{
            "otlp.link.0":"0102030405060708090a0b0c0d0e0f10|0102030405060708|k=v|{\"a\":\"x\",\"n\":1}|2",
            "otlp.link.1":"\"0102030405060708090a0b0c0d0e0f11\"|\"0102030405060709\"||{}|0",
            "otlp.link.2":"garbage",
            "otlp.link.4":"0102030405060708090a0b0c0d0e0f10|0102030405060708||{}|0"
        }"#,
    ));
    let span = single(&out);
    assert_eq!(span.links.len(), 2, "{:#?}", span.links);
    let link = &span.links[0];
    assert_eq!(link.trace_id, hex("0102030405060708090a0b0c0d0e0f10"));
    assert_eq!(link.span_id, hex("0102030405060708"));
    assert_eq!(link.trace_state, "k=v");
    assert_eq!(str_attr(&link.attributes, "a"), Some("x"));
    assert_eq!(attr(&link.attributes, "n"), Some(&Value::IntValue(1)));
    assert_eq!(link.dropped_attributes_count, 2);
    assert_eq!(span.links[1].trace_id, hex("0102030405060708090a0b0c0d0e0f11"));
    assert_eq!(span.links[1].span_id, hex("0102030405060709"));

    // An unparsable link is kept as an attribute; reading stops at the first gap (3), so link 4 stays a tag.
    assert_eq!(str_attr(&span.attributes, "otlp.link.2"), Some("garbage"));
    assert!(str_attr(&span.attributes, "otlp.link.4").is_some());
    assert_eq!(attr(&span.attributes, "otlp.link.0"), None);
}

#[test]
fn scope_tags_become_the_scope() {
    let body = format!(
        r#"[
        {{"traceId":"{TRACE}","id":"0000000000000001","localEndpoint":{{"serviceName":"svc"}},
          "tags":{{"otel.scope.name":"io.opentelemetry.http","otel.scope.version":"1.2.3",
                  "otel.library.name":"ignored","otel.library.version":"0.0.1"}}}},
        {{"traceId":"{TRACE}","id":"0000000000000002","localEndpoint":{{"serviceName":"svc"}},
          "tags":{{"otel.library.name":"legacy","otel.library.version":"9"}}}},
        {{"traceId":"{TRACE}","id":"0000000000000003","localEndpoint":{{"serviceName":"svc"}}}}
    ]"#
    );
    let out = json(&body);
    assert_eq!(out.len(), 1);
    let scopes: Vec<(&str, &str, usize)> = out[0]
        .scope_spans
        .iter()
        .map(|ss| {
            let scope = ss.scope.as_ref().unwrap();
            for span in &ss.spans {
                let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
                assert_eq!(keys, ["otel.zipkin.absentField.startTime"]);
            }
            (scope.name.as_str(), scope.version.as_str(), ss.spans.len())
        })
        .collect();
    assert_eq!(scopes, [("", "", 1), ("io.opentelemetry.http", "1.2.3", 1), ("legacy", "9", 1)]);
}

#[test]
fn resource_tags_move_to_the_resource() {
    let out = json(&one_span(
        r#","localEndpoint":{"serviceName":"checkout"},
           "tags":{"host.name":"node-1","telemetry.sdk.language":"go","service.version":"2.1","region":"eu"}"#,
    ));
    let r = resource_attrs(&out[0]);
    assert_eq!(str_attr(r, "service.name"), Some("checkout"));
    assert_eq!(str_attr(r, "host.name"), Some("node-1"));
    assert_eq!(str_attr(r, "telemetry.sdk.language"), Some("go"));
    assert_eq!(str_attr(r, "service.version"), Some("2.1"));
    assert_eq!(r.len(), 4);
    let a = &single(&out).attributes;
    assert_eq!(str_attr(a, "region"), Some("eu"));
    assert_eq!(a.len(), 1, "{a:#?}");

    // The source tag renames the attribute that holds the endpoint's service name.
    let out =
        json(&one_span(r#","localEndpoint":{"serviceName":"fn"},"tags":{"otlp.service.name.source":"faas.name"}"#));
    let r = resource_attrs(&out[0]);
    assert_eq!(str_attr(r, "faas.name"), Some("fn"));
    assert_eq!(str_attr(r, "service.name"), None);
    assert!(single(&out).attributes.is_empty());

    // No local service: no service.name, but the span is kept.
    let out = json(&one_span(""));
    assert!(resource_attrs(&out[0]).is_empty());
}

#[test]
fn spans_of_one_service_with_different_resource_tags_keep_their_own() {
    let body = format!(
        r#"[
        {{"traceId":"{TRACE}","id":"0000000000000001","localEndpoint":{{"serviceName":"svc"}},"tags":{{"host.name":"a"}}}},
        {{"traceId":"{TRACE}","id":"0000000000000002","localEndpoint":{{"serviceName":"svc"}},"tags":{{"host.name":"b"}}}},
        {{"traceId":"{TRACE}","id":"0000000000000003","localEndpoint":{{"serviceName":"svc"}},"tags":{{"host.name":"a"}}}}
    ]"#
    );
    let out = json(&body);
    assert_eq!(out.len(), 2);
    let hosts: Vec<(&str, usize)> = out
        .iter()
        .map(|rs| (str_attr(resource_attrs(rs), "host.name").unwrap(), rs.scope_spans[0].spans.len()))
        .collect();
    assert_eq!(hosts, [("a", 2), ("b", 1)]);
    // Request order is kept within a group.
    assert_eq!(out[0].scope_spans[0].spans[1].span_id, hex("0000000000000003"));
}

#[test]
fn missing_timestamp_starts_at_epoch_and_is_flagged() {
    for timestamp in ["", r#","timestamp":0"#, r#","timestamp":null"#] {
        let body = format!(r#"[{{"traceId":"{TRACE}","id":"352bff9a74ca9ad2","duration":7{timestamp}}}]"#);
        let out = json(&body);
        let span = single(&out);
        assert_eq!(span.start_time_unix_nano, 0);
        assert_eq!(span.end_time_unix_nano, 7_000);
        assert_eq!(attr(&span.attributes, "otel.zipkin.absentField.startTime"), Some(&Value::BoolValue(true)));
    }
    let out = json(&one_span(""));
    assert_eq!(attr(&single(&out).attributes, "otel.zipkin.absentField.startTime"), None);
}

#[test]
fn tracestate_tag_becomes_trace_state() {
    let out = json(&one_span(r#","tags":{"w3c.tracestate":"vendor=1"}"#));
    let span = single(&out);
    assert_eq!(span.trace_state, "vendor=1");
    assert!(span.attributes.is_empty());
}

#[test]
fn null_tag_value_is_empty_and_null_span_is_skipped() {
    let out = json(&format!(r#"[null,{{"traceId":"{TRACE}","id":"352bff9a74ca9ad2","tags":{{"k":null}}}}]"#));
    assert_eq!(str_attr(&single(&out).attributes, "k"), Some(""));
    assert!(json("[]").is_empty());
}

fn proto_span() -> Span {
    Span {
        trace_id: hex("d269b633813fc60c"),
        parent_id: hex("6b221d5bc9e6496c"),
        id: hex("352bff9a74ca9ad2"),
        kind: ZipkinKind::Producer as i32,
        name: "send".into(),
        timestamp: 1_502_787_600_000_000,
        duration: 1234,
        local_endpoint: Some(ProtoEndpoint {
            service_name: "queue-writer".into(),
            ipv4: vec![10, 0, 0, 1],
            ipv6: vec![],
            port: 8080,
        }),
        remote_endpoint: Some(ProtoEndpoint {
            service_name: "kafka".into(),
            ipv4: vec![],
            ipv6: hex("20010db8000000000000000000000001"),
            port: 9092,
        }),
        annotations: vec![ProtoAnnotation { timestamp: 1_502_787_600_000_100, value: "flushed".into() }],
        tags: BTreeMap::from([
            ("error".to_string(), "timeout".to_string()),
            ("otel.scope.name".to_string(), "kafka-client".to_string()),
            ("host.name".to_string(), "box".to_string()),
        ]),
        debug: true,
        shared: false,
    }
}

const PROTO_SPAN_AS_JSON: &str = r#"[{
    "traceId":"d269b633813fc60c","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"PRODUCER",
    "name":"send","timestamp":1502787600000000,"duration":1234,"debug":true,
    "localEndpoint":{"serviceName":"queue-writer","ipv4":"10.0.0.1","port":8080},
    "remoteEndpoint":{"serviceName":"kafka","ipv6":"2001:db8::1","port":9092},
    "annotations":[{"timestamp":1502787600000100,"value":"flushed"}],
    "tags":{"error":"timeout","otel.scope.name":"kafka-client","host.name":"box"}
}]"#;

#[test]
fn proto_and_json_give_identical_output() {
    let body = ListOfSpans { spans: vec![proto_span()] }.encode_to_vec();
    let from_proto = decode_proto(&body).unwrap();
    let from_json = json(PROTO_SPAN_AS_JSON);
    assert_eq!(from_proto, from_json);

    let span = single(&from_proto);
    assert_eq!(span.trace_id, hex("0000000000000000d269b633813fc60c"));
    assert_eq!(span.kind, SpanKind::Producer as i32);
    assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(str_attr(&span.attributes, "net.peer.ip"), Some("2001:db8::1"));
    assert_eq!(from_proto[0].scope_spans[0].scope.as_ref().unwrap().name, "kafka-client");

    // And a missing timestamp is flagged for protobuf as for JSON.
    let body = ListOfSpans { spans: vec![Span { timestamp: 0, ..proto_span() }] }.encode_to_vec();
    let out = decode_proto(&body).unwrap();
    assert_eq!(attr(&single(&out).attributes, "otel.zipkin.absentField.startTime"), Some(&Value::BoolValue(true)));
}

fn json_error(body: &str) -> String {
    match decode_json(body.as_bytes()) {
        Ok(out) => panic!("accepted {body}: {out:#?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_json_is_refused_with_a_clear_message() {
    let e = json_error(&format!(r#"{{"traceId":"{TRACE}","id":"352bff9a74ca9ad2"}}"#));
    assert!(e.starts_with("invalid Zipkin JSON:") && e.contains("expected a JSON array of Zipkin v2 spans"), "{e}");
    assert!(json_error("").starts_with("invalid Zipkin JSON:"));
    assert!(json_error("[1]").starts_with("span 0: invalid type: integer"), "{}", json_error("[1]"));
    assert!(json_error(&format!("{} x", one_span(""))).starts_with("invalid Zipkin JSON: trailing characters"));

    let ok_ids = r#""traceId":"5b8efff798038103d269b633813fc60c","id":"352bff9a74ca9ad2""#;
    for (fields, want) in [
        (r#""id":"352bff9a74ca9ad2""#.to_string(), "span 1: traceId is missing"),
        (r#""traceId":"5b8efff798038103d269b633813fc60c""#.into(), "span 1: id is missing"),
        (r#""traceId":"5b8efff7980","id":"352bff9a74ca9ad2""#.into(), "span 1: traceId must be 16 or 32 hex"),
        (r#""traceId":"zb8efff798038103d269b633813fc60c","id":"352bff9a74ca9ad2""#.into(), "span 1: traceId must be"),
        (r#""traceId":"5b8efff798038103d269b633813fc60c","id":"352bff9a""#.into(), "span 1: id must be 16 hex"),
        (r#""traceId":"5b8efff798038103d269b633813fc60c","id":"352bff9a74ca9adx""#.into(), "span 1: id must be"),
        (format!(r#"{ok_ids},"parentId":"123""#), "span 1: parentId must be 16 hex"),
        (format!(r#"{ok_ids},"localEndpoint":{{"ipv4":"300.1.1.1"}}"#), "span 1: localEndpoint.ipv4 is not"),
        (format!(r#"{ok_ids},"remoteEndpoint":{{"port":70000}}"#), "span 1: invalid value: integer `70000`"),
        (format!(r#"{ok_ids},"tags":{{"n":1}}"#), "span 1: invalid type: integer `1`, expected a string"),
        (format!(r#"{ok_ids},"timestamp":-1"#), "span 1: invalid value: integer `-1`"),
    ] {
        // A good span first, so the index in the message is checked too.
        let body = format!("[{{{ok_ids}}}, {{{fields}}}]");
        let e = json_error(&body);
        assert!(e.starts_with(want), "{fields}: {e}");
    }
}

#[test]
fn malformed_proto_is_refused() {
    for body in [&b"\x0a\x05abc"[..], b"\xff\xff\xff\xff", b"{\"traceId\":1}", b"\x0a"] {
        match decode_proto(body) {
            Err(ZipkinDecodeError::Proto(_)) => {}
            other => panic!("{body:?}: {other:?}"),
        }
    }
    let check = |span: Span, want: &str| {
        let body = ListOfSpans { spans: vec![proto_span(), span] }.encode_to_vec();
        let e = decode_proto(&body).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    };
    check(Span { trace_id: vec![], ..proto_span() }, "span 1: trace_id is missing");
    check(Span { trace_id: vec![1; 12], ..proto_span() }, "span 1: trace_id must be 8 or 16 bytes, got 12");
    check(Span { id: vec![], ..proto_span() }, "span 1: id is missing");
    check(Span { id: vec![1; 4], ..proto_span() }, "span 1: id must be 8 bytes, got 4");
    check(Span { parent_id: vec![1; 9], ..proto_span() }, "span 1: parent_id must be 8 bytes");
    let endpoint =
        |ipv4: Vec<u8>, port: i32| Some(ProtoEndpoint { service_name: "x".into(), ipv4, ipv6: vec![], port });
    check(Span { local_endpoint: endpoint(vec![1; 5], 0), ..proto_span() }, "span 1: local_endpoint.ipv4 must be 4");
    check(Span { remote_endpoint: endpoint(vec![], -1), ..proto_span() }, "span 1: remote_endpoint.port must be");

    assert!(decode_proto(b"").unwrap().is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let valid_json = PROTO_SPAN_AS_JSON.as_bytes().to_vec();
    let valid_proto = ListOfSpans { spans: vec![proto_span()] }.encode_to_vec();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let base = if round % 2 == 0 { &valid_json } else { &valid_proto };
        let mut body = base.clone();
        // Flip a few bytes, or cut the body short.
        for _ in 0..(next() % 4) {
            let i = (next() as usize) % body.len();
            body[i] = next() as u8;
        }
        if next() % 3 == 0 {
            body.truncate((next() as usize) % body.len());
        }
        let _ = decode_json(&body);
        let _ = decode_proto(&body);
    }
}
