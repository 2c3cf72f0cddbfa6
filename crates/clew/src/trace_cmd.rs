//! `clew trace <id>`: fetches a trace from a Clew server and prints it as an indented tree with a timeline bar.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::Context;

use crate::api_client;
use clew_model::otlp::{Span, TracesData, status};
use clew_model::{TraceId, service_name};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Trace id: 32 hex characters (16 are left-padded with zeros).
    pub id: String,
    /// Base URL of the Clew query API.
    #[arg(long, env = "CLEW_SERVER", default_value = "http://127.0.0.1:16686")]
    pub server: String,
    /// Tenant to read from (sent as X-Scope-OrgID).
    #[arg(long, env = "CLEW_TENANT")]
    pub tenant: Option<String>,
    /// Never colour the output (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

const BAR_WIDTH: usize = 40;

pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let id = TraceId::parse_hex(&args.id).with_context(|| format!("invalid trace id {:?}", args.id))?;
    let trace: TracesData =
        api_client::get_json(&args.server, &format!("/api/v1/traces/{id}"), args.tenant.as_deref()).await?;
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    print!("{}", render(&id, &trace, color));
    Ok(())
}

/// One span with what the tree needs from its resource.
struct Row<'a> {
    span: &'a Span,
    service: &'a str,
}

/// Renders the trace as text: a header line, then one line per span in depth-first order, children by start.
pub fn render(id: &TraceId, trace: &TracesData, color: bool) -> String {
    let rows: Vec<Row> = trace
        .resource_spans
        .iter()
        .flat_map(|rs| {
            let service = service_name(rs.resource.as_ref()).unwrap_or("unknown");
            rs.scope_spans.iter().flat_map(|ss| &ss.spans).map(move |span| Row { span, service })
        })
        .collect();
    if rows.is_empty() {
        return format!("trace {id}: no spans\n");
    }
    let start = rows.iter().map(|r| r.span.start_time_unix_nano).min().unwrap_or(0);
    let end = rows.iter().map(|r| r.span.end_time_unix_nano).max().unwrap_or(start);
    let total = end.saturating_sub(start).max(1);

    // Children by parent id; spans whose parent is absent from the trace are shown as roots.
    let ids: HashMap<&[u8], usize> = rows.iter().enumerate().map(|(i, r)| (&r.span.span_id[..], i)).collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match ids.get(&row.span.parent_span_id[..]) {
            Some(&parent) if !row.span.parent_span_id.is_empty() && parent != i => {
                children.entry(parent).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let by_start = |a: &usize, b: &usize| {
        (rows[*a].span.start_time_unix_nano, &rows[*a].span.span_id)
            .cmp(&(rows[*b].span.start_time_unix_nano, &rows[*b].span.span_id))
    };
    roots.sort_by(by_start);
    children.values_mut().for_each(|c| c.sort_by(by_start));

    let services: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.service).collect();
    let errors = rows.iter().filter(|r| is_error(r.span)).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {id} · {} spans · {} services · {} errors · {}",
        rows.len(),
        services.len(),
        errors,
        format_duration(total)
    );
    let _ = writeln!(out, "{:>10} {:>10}  {:<w$}  service  span", "offset", "duration", "timeline", w = BAR_WIDTH);
    // Depth-first with an explicit stack: traces can be deeper than the call stack allows. Spans caught in a
    // parent-id cycle are reached by no root; they start trees of their own after the roots.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(by_start);
    let mut visited = vec![false; rows.len()];
    for &tree in roots.iter().chain(order.iter()) {
        let mut stack = vec![(tree, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            out.push_str(&line(&rows[i], depth, start, total, color));
            if let Some(kids) = children.get(&i) {
                stack.extend(kids.iter().rev().map(|&c| (c, depth + 1)));
            }
        }
    }
    out
}

fn line(row: &Row, depth: usize, trace_start: u64, total: u64, color: bool) -> String {
    let span = row.span;
    let offset = span.start_time_unix_nano.saturating_sub(trace_start);
    let duration = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
    let mut line = format!(
        "{:>10} {:>10}  {}  {}{} {}",
        format!("+{}", format_duration(offset)),
        format_duration(duration),
        bar(offset, duration, total),
        "  ".repeat(depth),
        row.service,
        span.name
    );
    if is_error(span) {
        match span.status.as_ref().map(|s| s.message.as_str()).unwrap_or("") {
            "" => line.push_str("  ✗ error"),
            message => {
                line.push_str("  ✗ ");
                line.push_str(message);
            }
        }
        if color {
            line = format!("\x1b[31m{line}\x1b[0m");
        }
    }
    line.push('\n');
    line
}

fn is_error(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == status::StatusCode::Error as i32)
}

/// A fixed-width bar: where the span sits within the trace.
fn bar(offset: u64, duration: u64, total: u64) -> String {
    let scale = |ns: u64| ((ns as u128 * BAR_WIDTH as u128) / total as u128) as usize;
    let from = scale(offset).min(BAR_WIDTH - 1);
    let len = scale(duration).clamp(1, BAR_WIDTH - from);
    format!("{}{}{}", "·".repeat(from), "█".repeat(len), " ".repeat(BAR_WIDTH - from - len))
}

pub(crate) fn format_duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Status, any_value};

    fn span(id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn renders_children_indented_in_start_order() {
        let mut failed = span(3, Some(1), "charge", 600_000, 900_000);
        failed.status = Some(Status { code: 2, message: "card declined".into() });
        let trace = TracesData {
            resource_spans: vec![
                resource_spans("frontend", vec![span(1, None, "GET /checkout", 0, 1_000_000)]),
                resource_spans("payment", vec![failed, span(2, Some(1), "auth", 100_000, 200_000)]),
            ],
        };
        let text = render(&TraceId([1; 16]), &trace, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("3 spans") && lines[0].contains("2 services") && lines[0].contains("1 errors"));
        assert!(lines[2].ends_with("frontend GET /checkout"), "{}", lines[2]);
        assert!(lines[3].ends_with("  payment auth"), "{}", lines[3]);
        assert!(lines[4].contains("  payment charge  ✗ card declined"), "{}", lines[4]);
        assert!(lines[3].contains("+100.0µs"), "{}", lines[3]);
    }

    #[test]
    fn orphans_become_roots_and_cycles_terminate() {
        let trace = TracesData {
            resource_spans: vec![resource_spans(
                "svc",
                vec![span(1, Some(2), "a", 0, 10), span(2, Some(1), "b", 0, 10), span(3, Some(9), "orphan", 0, 10)],
            )],
        };
        let text = render(&TraceId([1; 16]), &trace, false);
        assert!(text.contains("svc orphan"));
        assert!(text.contains("svc a") && text.contains("svc b"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn bar_stays_within_its_width() {
        assert_eq!(bar(0, 100, 100).chars().count(), BAR_WIDTH);
        assert_eq!(bar(99, 1, 100).chars().count(), BAR_WIDTH);
        assert_eq!(bar(100, 0, 100).chars().count(), BAR_WIDTH);
    }
}
