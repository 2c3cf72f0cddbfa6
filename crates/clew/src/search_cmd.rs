//! `clew search`: asks a Clew server for traces matching span conditions and prints them as a table.

use crate::api_client::ServerArgs;
use serde::Deserialize;

use crate::trace_cmd::format_duration;

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Service (resource `service.name`) of the matching span.
    #[arg(long)]
    pub service: Option<String>,
    /// Name of the matching span.
    #[arg(long)]
    pub name: Option<String>,
    /// Attribute condition KEY<op>VALUE, op one of = != > >= < <= =~ !~ (repeatable; all on one span).
    #[arg(long = "attr", value_name = "KEY<op>VALUE")]
    pub attrs: Vec<String>,
    /// Span kind: server, client, producer, consumer, internal.
    #[arg(long)]
    pub kind: Option<String>,
    /// Span status: error, ok, unset.
    #[arg(long)]
    pub status: Option<String>,
    /// Smallest span duration, e.g. 5ms, 1.5s.
    #[arg(long)]
    pub min_duration: Option<String>,
    /// Largest span duration.
    #[arg(long)]
    pub max_duration: Option<String>,
    /// Earliest trace start: unix seconds or RFC 3339.
    #[arg(long)]
    pub start: Option<String>,
    /// Latest trace start: unix seconds or RFC 3339.
    #[arg(long)]
    pub end: Option<String>,
    /// Traces to show (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(flatten)]
    pub target: ServerArgs,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub traces: Vec<Summary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub trace_id: String,
    pub root_service_name: String,
    pub root_span_name: String,
    pub start_time_unix_nano: String,
    pub duration_nanos: String,
    pub span_count: u64,
    pub error_count: u64,
}

fn query_string(args: &SearchArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let optional = [
        ("service", &args.service),
        ("name", &args.name),
        ("kind", &args.kind),
        ("status", &args.status),
        ("minDuration", &args.min_duration),
        ("maxDuration", &args.max_duration),
        ("start", &args.start),
        ("end", &args.end),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            q.append_pair(key, value);
        }
    }
    for attr in &args.attrs {
        q.append_pair("attr", attr);
    }
    q.append_pair("limit", &args.limit.to_string());
    q.finish()
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let path = format!("/api/v1/search?{}", query_string(&args));
    let result: SearchResult = args.target.get_json(&path).await?;
    print!("{}", render(&result));
    Ok(())
}

/// The table: a header, then one line per trace.
pub fn render(result: &SearchResult) -> String {
    let mut rows =
        vec![["START", "TRACE ID", "ROOT SERVICE", "ROOT NAME", "DURATION", "SPANS", "ERRORS"].map(String::from)];
    for t in &result.traces {
        let start = t.start_time_unix_nano.parse().map(format_time).unwrap_or_else(|_| t.start_time_unix_nano.clone());
        let duration = t.duration_nanos.parse().map(format_duration).unwrap_or_else(|_| t.duration_nanos.clone());
        rows.push([
            start,
            t.trace_id.clone(),
            t.root_service_name.clone(),
            t.root_span_name.clone(),
            duration,
            t.span_count.to_string(),
            t.error_count.to_string(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if result.traces.is_empty() {
        out.push_str("no traces found\n");
    }
    out
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
fn format_time(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let millis = (ns / 1_000_000) % 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table() {
        let result = SearchResult {
            traces: vec![Summary {
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                root_service_name: "checkout".into(),
                root_span_name: "GET /cart".into(),
                start_time_unix_nano: "1700000000123000000".into(),
                duration_nanos: "1500000".into(),
                span_count: 3,
                error_count: 1,
            }],
        };
        let table = render(&result);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("START"), "{table}");
        assert_eq!(
            lines[1].split("  ").filter(|c| !c.is_empty()).map(str::trim).collect::<Vec<_>>(),
            vec![
                "2023-11-14T22:13:20.123Z",
                "0af7651916cd43dd8448eb211c80319c",
                "checkout",
                "GET /cart",
                "1.5ms",
                "3",
                "1"
            ]
        );
        assert!(render(&SearchResult { traces: vec![] }).contains("no traces found"));
    }

    #[test]
    fn sends_repeated_attrs() {
        let args = SearchArgs {
            service: Some("a b".into()),
            name: None,
            attrs: vec!["k=v".into(), "n>=2".into()],
            kind: None,
            status: None,
            min_duration: Some("5ms".into()),
            max_duration: None,
            start: None,
            end: None,
            limit: 5,
            target: ServerArgs { server: String::new(), tenant: None },
        };
        assert_eq!(query_string(&args), "service=a+b&minDuration=5ms&attr=k%3Dv&attr=n%3E%3D2&limit=5");
    }
}
