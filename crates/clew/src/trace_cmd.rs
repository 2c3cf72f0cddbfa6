//! `clew trace <id>`: fetches a trace from a Clew server and prints it as an indented tree with a timeline bar;
//! with `--critical-path`, the spans on the trace's critical path (as the server computes it) are marked.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::Context;

use crate::api_client::{self, ServerArgs};
use clew_model::otlp::{Span, TracesData, status};
use clew_model::{SpanId, TraceId, service_name};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Trace id: 32 hex characters (16 are left-padded with zeros).
    pub id: String,
    #[command(flatten)]
    pub target: ServerArgs,
    /// Never colour the output (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Mark the spans on the critical path (the chain of work that decided when the trace finished).
    #[arg(long)]
    pub critical_path: bool,
}

const BAR_WIDTH: usize = 40;
/// Marks a span on the critical path.
const CRITICAL_MARK: char = '◆';

pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let id = TraceId::parse_hex(&args.id).with_context(|| format!("invalid trace id {:?}", args.id))?;
    let tenant = args.target.tenant.as_deref();
    let trace: TracesData = args.target.get_json(&format!("/api/v1/traces/{id}")).await?;
    let critical = match args.critical_path {
        true => Some(CriticalSpans::fetch(&args.target.server, &id, tenant).await?),
        false => None,
    };
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    print!("{}", render(&id, &trace, critical.as_ref(), color));
    Ok(())
}

/// The spans on the critical path, each with its time on the path.
#[derive(Debug, Default)]
pub struct CriticalSpans(HashMap<SpanId, u64>);

/// `GET /api/v1/traces/{id}/critical-path`, as far as the terminal needs it.
#[derive(serde::Deserialize)]
struct CriticalPathBody {
    spans: Vec<CriticalSpanBody>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CriticalSpanBody {
    span_id: String,
    segments: Vec<SegmentBody>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentBody {
    start_unix_nano: String,
    end_unix_nano: String,
}

impl CriticalSpans {
    async fn fetch(server: &str, id: &TraceId, tenant: Option<&str>) -> anyhow::Result<Self> {
        let body: CriticalPathBody =
            api_client::get_json(server, &format!("/api/v1/traces/{id}/critical-path"), tenant).await?;
        let mut spans = HashMap::new();
        for span in body.spans {
            let mut raw = [0u8; 8];
            hex::decode_to_slice(&span.span_id, &mut raw)
                .with_context(|| format!("the server sent an invalid span id {:?}", span.span_id))?;
            let mut nanos = 0u64;
            for segment in span.segments {
                let parse = |text: &str| {
                    text.parse::<u64>().with_context(|| format!("the server sent an invalid time {text:?}"))
                };
                nanos += parse(&segment.end_unix_nano)?.saturating_sub(parse(&segment.start_unix_nano)?);
            }
            spans.insert(SpanId(raw), nanos);
        }
        Ok(Self(spans))
    }

    /// Time on the path of the span with this raw id, if it is on the path.
    fn time_of(&self, span_id: &[u8]) -> Option<u64> {
        SpanId::from_slice(span_id).and_then(|id| self.0.get(&id).copied())
    }
}

/// One span with what the tree needs from its resource.
struct Row<'a> {
    span: &'a Span,
    service: &'a str,
}

/// Renders the trace as text: a header line, then one line per span in depth-first order, children by start.
/// With `critical`, a legend follows the header and spans on the path carry a mark and their time on it.
pub fn render(id: &TraceId, trace: &TracesData, critical: Option<&CriticalSpans>, color: bool) -> String {
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
    if let Some(critical) = critical {
        let on_path = rows.iter().filter_map(|r| critical.time_of(&r.span.span_id));
        let (count, nanos) = on_path.fold((0, 0u64), |(n, sum), t| (n + 1, sum + t));
        let _ = writeln!(
            out,
            "{CRITICAL_MARK} = on the critical path: {count} spans, {} of {}",
            format_duration(nanos),
            format_duration(total)
        );
    }
    let mark_column = if critical.is_some() { "  " } else { "" };
    let _ = writeln!(
        out,
        "{:>10} {:>10}  {:<w$}  {mark_column}service  span",
        "offset",
        "duration",
        "timeline",
        w = BAR_WIDTH
    );
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
            out.push_str(&line(&rows[i], depth, start, total, critical, color));
            if let Some(kids) = children.get(&i) {
                stack.extend(kids.iter().rev().map(|&c| (c, depth + 1)));
            }
        }
    }
    out
}

fn line(
    row: &Row,
    depth: usize,
    trace_start: u64,
    total: u64,
    critical: Option<&CriticalSpans>,
    color: bool,
) -> String {
    let span = row.span;
    let offset = span.start_time_unix_nano.saturating_sub(trace_start);
    let duration = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
    let on_path = critical.and_then(|c| c.time_of(&span.span_id));
    let mark = match (critical, on_path) {
        (None, _) => String::new(),
        (Some(_), Some(_)) => format!("{CRITICAL_MARK} "),
        (Some(_), None) => "  ".into(),
    };
    let mut line = format!(
        "{:>10} {:>10}  {}  {mark}{}{} {}",
        format!("+{}", format_duration(offset)),
        format_duration(duration),
        bar(offset, duration, total),
        "  ".repeat(depth),
        row.service,
        span.name
    );
    if let Some(nanos) = on_path {
        let _ = write!(line, "  · {} on path", format_duration(nanos));
    }
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
    if color && on_path.is_some() {
        // Bold on top of the error colour; yellow when there is none.
        let style = if is_error(span) { "\x1b[1m" } else { "\x1b[1;33m" };
        line = format!("{style}{line}\x1b[0m");
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
        let text = render(&TraceId([1; 16]), &trace, None, false);
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
        let text = render(&TraceId([1; 16]), &trace, None, false);
        assert!(text.contains("svc orphan"));
        assert!(text.contains("svc a") && text.contains("svc b"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn marks_the_critical_path_with_a_legend() {
        let trace = TracesData {
            resource_spans: vec![resource_spans(
                "svc",
                vec![
                    span(1, None, "root", 0, 1_000_000),
                    span(2, Some(1), "slow", 0, 800_000),
                    span(3, Some(1), "fast", 0, 100_000),
                ],
            )],
        };
        let critical = CriticalSpans(HashMap::from([(SpanId([1; 8]), 200_000), (SpanId([2; 8]), 800_000)]));
        let text = render(&TraceId([1; 16]), &trace, Some(&critical), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "◆ = on the critical path: 2 spans, 1.0ms of 1.0ms");
        assert!(lines[3].contains("  ◆ svc root  · 200.0µs on path"), "{text}");
        assert!(lines[4].contains("  ◆   svc slow  · 800.0µs on path"), "{text}");
        assert!(lines[5].ends_with("      svc fast") && !lines[5].contains('◆'), "{text}");
        let colored = render(&TraceId([1; 16]), &trace, Some(&critical), true);
        assert!(colored.lines().nth(4).unwrap().starts_with("\x1b[1;33m"), "{colored}");
        assert!(!colored.lines().nth(5).unwrap().contains('\x1b'), "{colored}");
    }

    #[test]
    fn bar_stays_within_its_width() {
        assert_eq!(bar(0, 100, 100).chars().count(), BAR_WIDTH);
        assert_eq!(bar(99, 1, 100).chars().count(), BAR_WIDTH);
        assert_eq!(bar(100, 0, 100).chars().count(), BAR_WIDTH);
    }
}
