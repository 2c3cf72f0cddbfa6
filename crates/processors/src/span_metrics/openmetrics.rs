//! Counters and histograms with exemplars, and their OpenMetrics text. prometheus-client cannot build an
//! exemplar from outside its own metric types, and its families hash an owned label set per observation; these
//! are updated under one lock per batch with no allocation, and written out at scrape time.

use std::fmt::Write;

/// A sample's link to one span: OpenMetrics `# {trace_id="…",span_id="…"} value timestamp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub value: f64,
    /// Unix seconds (the span's end).
    pub timestamp: f64,
}

/// A cumulative counter with its latest exemplar.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    pub value: u64,
    pub exemplar: Option<Exemplar>,
}

impl Counter {
    pub fn inc(&mut self, exemplar: Option<Exemplar>) {
        self.value += 1;
        if exemplar.is_some() {
            self.exemplar = exemplar;
        }
    }
}

/// A histogram over fixed bucket bounds, with the latest exemplar per bucket.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last is `+Inf`.
    pub counts: Vec<u64>,
    pub exemplars: Vec<Option<Exemplar>>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Self { counts: vec![0; bounds.len() + 1], exemplars: vec![None; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    /// Counts `value` in the first bucket whose upper bound is at least it (`le` is inclusive).
    pub fn observe(&mut self, bounds: &[f64], value: f64, exemplar: Option<Exemplar>) {
        let bucket = bounds.partition_point(|&b| b < value);
        self.counts[bucket] += 1;
        if exemplar.is_some() {
            self.exemplars[bucket] = exemplar;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// Label pairs of one series, already sanitised names and unescaped values.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// Writes `# TYPE`, `# HELP` and (for a unit) `# UNIT` lines of a family.
pub fn family_header(out: &mut String, name: &str, kind: &str, help: &str, unit: Option<&str>) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "# HELP {name} {help}");
    if let Some(unit) = unit {
        let _ = writeln!(out, "# UNIT {name} {unit}");
    }
}

/// `{name}_total{labels} value [exemplar]`.
pub fn counter(out: &mut String, name: &str, labels: Labels, counter: &Counter) {
    let _ = write!(out, "{name}_total");
    write_labels(out, labels, None);
    let _ = write!(out, " {}", counter.value);
    write_exemplar(out, counter.exemplar.as_ref());
    out.push('\n');
}

/// A plain counter sample without exemplar.
pub fn counter_value(out: &mut String, name: &str, labels: Labels, value: u64) {
    let _ = write!(out, "{name}_total");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {value}");
}

/// `_bucket` lines (cumulative, exemplars on the bucket they fell in), `_sum` and `_count`.
pub fn histogram(out: &mut String, name: &str, labels: Labels, bounds: &[f64], histogram: &Histogram) {
    let mut cumulative = 0;
    for (i, count) in histogram.counts.iter().enumerate() {
        cumulative += count;
        let le = bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| float(*b));
        let _ = write!(out, "{name}_bucket");
        write_labels(out, labels, Some(&le));
        let _ = write!(out, " {cumulative}");
        write_exemplar(out, histogram.exemplars[i].as_ref());
        out.push('\n');
    }
    let _ = write!(out, "{name}_sum");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", float(histogram.sum));
    let _ = write!(out, "{name}_count");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", histogram.count);
}

fn write_labels(out: &mut String, labels: Labels, le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value);
        out.push('"');
    }
    out.push('}');
}

fn write_exemplar(out: &mut String, exemplar: Option<&Exemplar>) {
    let Some(e) = exemplar else { return };
    out.push_str(" # {trace_id=\"");
    push_hex(out, &e.trace_id);
    out.push_str("\",span_id=\"");
    push_hex(out, &e.span_id);
    let _ = write!(out, "\"}} {} {:.3}", float(e.value), e.timestamp);
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// A float as OpenMetrics wants it: always with a decimal point or exponent, so `1` is `1.0`.
fn float(v: f64) -> String {
    let text = format!("{v}");
    if text.contains(['.', 'e', 'E', 'N', 'n']) { text } else { format!("{text}.0") }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// An attribute name as a Prometheus label name: characters other than `[a-zA-Z0-9_]` become `_`, and a
/// leading digit gets a `_` in front.
pub fn label_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_places_values_on_inclusive_bounds_and_writes_exemplars() {
        let bounds = [0.1, 1.0];
        let mut h = Histogram::new(&bounds);
        let ex = Exemplar { trace_id: [0xab; 16], span_id: [1; 8], value: 0.1, timestamp: 1.5 };
        h.observe(&bounds, 0.1, Some(ex));
        h.observe(&bounds, 0.5, None);
        h.observe(&bounds, 7.0, None);
        assert_eq!(h.counts, vec![1, 1, 1]);
        let mut out = String::new();
        histogram(&mut out, "d_seconds", &[("a", "x\"y")], &bounds, &h);
        let expected = format!(
            "d_seconds_bucket{{a=\"x\\\"y\",le=\"0.1\"}} 1 # {{trace_id=\"{}\",span_id=\"0101010101010101\"}} 0.1 1.500\n\
             d_seconds_bucket{{a=\"x\\\"y\",le=\"1.0\"}} 2\n\
             d_seconds_bucket{{a=\"x\\\"y\",le=\"+Inf\"}} 3\n\
             d_seconds_sum{{a=\"x\\\"y\"}} 7.6\n\
             d_seconds_count{{a=\"x\\\"y\"}} 3\n",
            "ab".repeat(16)
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("http.request.method"), "http_request_method");
        assert_eq!(label_name("9lives"), "_9lives");
    }
}
