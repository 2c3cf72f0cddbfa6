//! Turns the spans a metrics query matched into time series, with Tempo's semantics:
//!
//! - spans fall in the step their start time falls in; `rate()` is the count divided by the step in seconds;
//! - durations are read in seconds; `min|max|avg|sum_over_time` skip spans without a numeric value;
//! - `histogram_over_time(f)` counts spans per power-of-two bucket of `f` (the smallest `2^k >= f`, in seconds
//!   for durations), labelled `__bucket`; `quantile_over_time(f, q…)` interpolates over the same buckets, one
//!   series per quantile labelled `p`;
//! - `by(…)` labels drop missing values (a series with all of them missing keeps the first, as `nil`); a query
//!   without groups names its series `__name__ = <function>`;
//! - `topk(n)` / `bottomk(n)` keep, at every step, the `n` highest / lowest values (ties go to the series whose
//!   label values sort first); a series keeps only the steps where it was picked, and goes when it never was.
//!
//! The caller evaluates the spanset part of the query and feeds each matched span as a [`SpanSample`].

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::ast::{Metrics, MetricsFunction, SecondStageOp};
use crate::eval::Value;

/// Exemplars kept per series and step, as in Tempo.
const EXEMPLARS_PER_STEP: usize = 2;

/// The steps of a range query: `[first, first + step)`, `[first + step, …)`, … up to `end`; spans count when
/// their start is in `[start, end)`. Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRange {
    pub start: u64,
    pub end: u64,
    pub step: u64,
    /// Start of the first step: `start` aligned down to a multiple of `step` for range queries, as Tempo does.
    pub first: u64,
}

impl StepRange {
    /// A range query's steps, aligned to multiples of `step`.
    pub fn aligned(start: u64, end: u64, step: u64) -> Self {
        Self { start, end, step, first: start - start % step }
    }

    /// One step covering the whole range, for instant queries.
    pub fn instant(start: u64, end: u64) -> Self {
        Self { start, end, step: end - start, first: start }
    }

    pub fn steps(&self) -> usize {
        (self.end - self.first).div_ceil(self.step) as usize
    }

    fn step_of(&self, t: u64) -> Option<usize> {
        (self.start..self.end).contains(&t).then(|| ((t - self.first) / self.step) as usize)
    }

    fn timestamp_ms(&self, step: usize) -> u64 {
        (self.first + step as u64 * self.step) / 1_000_000
    }
}

/// One matched span, as the metrics stage needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSample {
    pub start_unix_nano: u64,
    /// The values of the `by()` fields, in order (`Nil` when missing).
    pub by: Vec<Value>,
    /// The value of the function's field (`Nil` for `rate()` and `count_over_time()`).
    pub value: Value,
    pub trace_id: String,
    pub span_id: String,
}

/// A result series: labels, one sample per step that has a value, and exemplars.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, Value)>,
    /// `(timestamp in Unix milliseconds, value)`.
    pub samples: Vec<(u64, f64)>,
    pub exemplars: Vec<Exemplar>,
}

/// A span that contributed to a series: its trace and span ids (hex), its value and start (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub trace_id: String,
    pub span_id: String,
    pub value: f64,
    pub timestamp_ms: u64,
}

/// The state of one step of one series.
#[derive(Debug, Clone, Default)]
struct Cell {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Quantiles: spans per power-of-two bucket, keyed by the bucket's upper bound (as f64 bits, which order
    /// like the positive numbers they are).
    buckets: BTreeMap<u64, u64>,
    exemplars: Vec<Exemplar>,
}

#[derive(Debug, Clone)]
struct SeriesState {
    labels: Vec<(String, Value)>,
    cells: Vec<Cell>,
}

/// Aggregates matched spans into the series of one metrics query.
#[derive(Debug, Clone)]
pub struct MetricsAggregator {
    metrics: Metrics,
    range: StepRange,
    max_exemplars: usize,
    /// By a printed form of the labels, so the output is in a stable order.
    series: BTreeMap<String, SeriesState>,
}

impl MetricsAggregator {
    /// `max_exemplars` caps the exemplars of the whole answer (0: none).
    pub fn new(metrics: Metrics, range: StepRange, max_exemplars: usize) -> Self {
        Self { metrics, range, max_exemplars, series: BTreeMap::new() }
    }

    pub fn observe(&mut self, span: SpanSample) {
        let Some(step) = self.range.step_of(span.start_unix_nano) else { return };
        let function = &self.metrics.function;
        let number = numeric(&span.value);
        let bucket = bucketize(&span.value);
        let needs_number = !matches!(function, MetricsFunction::Rate | MetricsFunction::CountOverTime);
        let (value, bucket) = match function {
            MetricsFunction::Rate | MetricsFunction::CountOverTime => (None, None),
            MetricsFunction::HistogramOverTime(_) | MetricsFunction::QuantileOverTime(..) => match bucket {
                Some(b) => (Some(number.unwrap_or(b)), Some(b)),
                None => return,
            },
            _ => (number, None),
        };
        if needs_number && value.is_none() {
            return;
        }
        let mut labels = self.group_labels(&span.by);
        if let (MetricsFunction::HistogramOverTime(_), Some(b)) = (function, bucket) {
            labels.push(("__bucket".to_string(), Value::Float(b)));
        }
        let key = format!("{labels:?}");
        let steps = self.range.steps();
        let series =
            self.series.entry(key).or_insert_with(|| SeriesState { labels, cells: vec![Cell::default(); steps] });
        let cell = &mut series.cells[step];
        if let Some(v) = value {
            cell.min = if cell.count == 0 { v } else { cell.min.min(v) };
            cell.max = if cell.count == 0 { v } else { cell.max.max(v) };
            cell.sum += v;
        }
        cell.count += 1;
        if let (MetricsFunction::QuantileOverTime(..), Some(b)) = (function, bucket) {
            *cell.buckets.entry(b.to_bits()).or_default() += 1;
        }
        if self.max_exemplars > 0 && cell.exemplars.len() < EXEMPLARS_PER_STEP {
            cell.exemplars.push(Exemplar {
                trace_id: span.trace_id,
                span_id: span.span_id,
                // Counting functions take the step's value once it is known (Tempo leaves NaN, then fills it).
                value: value.unwrap_or(f64::NAN),
                timestamp_ms: span.start_unix_nano / 1_000_000,
            });
        }
    }

    /// The `by()` labels of a span: missing values dropped, unless all are (then the first, as nil); no groups
    /// at all names the series after the function.
    fn group_labels(&self, values: &[Value]) -> Vec<(String, Value)> {
        let by = &self.metrics.by;
        let mut labels: Vec<(String, Value)> = by
            .iter()
            .zip(values.iter().chain(std::iter::repeat(&Value::Nil)))
            .filter(|(_, v)| !v.is_nil())
            .map(|(f, v)| (f.to_string(), v.clone()))
            .collect();
        let histogram = matches!(self.metrics.function, MetricsFunction::HistogramOverTime(_));
        let quantile = matches!(self.metrics.function, MetricsFunction::QuantileOverTime(..));
        if labels.is_empty() {
            if let Some(first) = by.first() {
                labels.push((first.to_string(), Value::Nil));
            } else if !histogram && !quantile {
                labels.push(("__name__".to_string(), Value::String(self.metrics.function.name().to_string())));
            }
        }
        labels
    }

    /// The series, after `topk`/`bottomk`, with at most `max_exemplars` exemplars in all.
    pub fn finish(self) -> Vec<TimeSeries> {
        let step_secs = self.range.step as f64 / 1e9;
        let mut rows: Vec<Row> = Vec::new();
        for state in self.series.into_values() {
            let exemplars = |values: &[Option<f64>]| -> Vec<Vec<Exemplar>> {
                state
                    .cells
                    .iter()
                    .zip(values)
                    .map(|(c, v)| {
                        c.exemplars
                            .iter()
                            .map(|e| Exemplar {
                                value: if e.value.is_nan() { v.unwrap_or(0.0) } else { e.value },
                                ..e.clone()
                            })
                            .collect()
                    })
                    .collect()
            };
            if let MetricsFunction::QuantileOverTime(_, qs) = &self.metrics.function {
                for &q in qs {
                    let values: Vec<Option<f64>> = state
                        .cells
                        .iter()
                        .map(|c| {
                            let buckets: Vec<(f64, u64)> =
                                c.buckets.iter().map(|(&bits, &n)| (f64::from_bits(bits), n)).collect();
                            log2_quantile(q, &buckets)
                        })
                        .collect();
                    let mut labels = state.labels.clone();
                    labels.push(("p".to_string(), Value::Float(q)));
                    let exemplars = exemplars(&values);
                    rows.push(Row { labels, values, exemplars });
                }
                continue;
            }
            let values: Vec<Option<f64>> = state
                .cells
                .iter()
                .map(|c| match &self.metrics.function {
                    MetricsFunction::Rate => Some(c.count as f64 / step_secs),
                    MetricsFunction::CountOverTime | MetricsFunction::HistogramOverTime(_) => Some(c.count as f64),
                    _ if c.count == 0 => None,
                    MetricsFunction::MinOverTime(_) => Some(c.min),
                    MetricsFunction::MaxOverTime(_) => Some(c.max),
                    MetricsFunction::SumOverTime(_) => Some(c.sum),
                    _ => Some(c.sum / c.count as f64),
                })
                .collect();
            let exemplars = exemplars(&values);
            rows.push(Row { labels: state.labels, values, exemplars });
        }
        rows.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
        if let Some(second) = self.metrics.second_stage {
            rows = select_series(rows, second.op, second.limit as usize);
        }
        let kept = pick_exemplars(rows.iter().map(|r| &r.exemplars).collect(), self.max_exemplars);
        rows.into_iter()
            .zip(kept)
            .map(|(row, exemplars)| TimeSeries {
                labels: row.labels,
                samples: row
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (self.range.timestamp_ms(i), v)))
                    .collect(),
                exemplars,
            })
            .collect()
    }
}

/// A series before output: labels, the value of each step (`None`: no value) and its exemplars per step.
#[derive(Debug, Clone)]
struct Row {
    labels: Vec<(String, Value)>,
    values: Vec<Option<f64>>,
    exemplars: Vec<Vec<Exemplar>>,
}

/// `topk`/`bottomk`: at each step the `limit` best values; a series keeps only the steps it was picked at.
fn select_series(rows: Vec<Row>, op: SecondStageOp, limit: usize) -> Vec<Row> {
    let steps = rows.first().map_or(0, |r| r.values.len());
    // The series picked at each step.
    let picks: Vec<Vec<usize>> = (0..steps)
        .map(|step| {
            let mut candidates: Vec<(usize, f64)> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.values[step].filter(|v| !v.is_nan()).map(|v| (i, v)))
                .collect();
            candidates.sort_by(|a, b| {
                let by_value = a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal);
                let by_value = if op == SecondStageOp::TopK { by_value.reverse() } else { by_value };
                by_value.then_with(|| compare_labels(&rows[a.0].labels, &rows[b.0].labels))
            });
            candidates.into_iter().take(limit).map(|(i, _)| i).collect()
        })
        .collect();
    rows.into_iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let keep: Vec<bool> = picks.iter().map(|p| p.contains(&i)).collect();
            keep.contains(&true).then(|| Row {
                values: row.values.into_iter().zip(&keep).map(|(v, &k)| v.filter(|_| k)).collect(),
                ..row
            })
        })
        .collect()
}

/// Orders series by their label values, then names, as printed.
fn compare_labels(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    let key = |l: &[(String, Value)]| l.iter().map(|(k, v)| (v.to_string(), k.clone())).collect::<Vec<_>>();
    key(a).cmp(&key(b))
}

/// At most `limit` exemplars over all series, spread over steps and series: first one per series and step, then
/// the second ones.
fn pick_exemplars(per_series: Vec<&Vec<Vec<Exemplar>>>, limit: usize) -> Vec<Vec<Exemplar>> {
    let mut out = vec![Vec::new(); per_series.len()];
    let mut left = limit;
    let steps = per_series.first().map_or(0, |s| s.len());
    'rounds: for round in 0..EXEMPLARS_PER_STEP {
        for step in 0..steps {
            for (i, series) in per_series.iter().enumerate() {
                if left == 0 {
                    break 'rounds;
                }
                if let Some(e) = series[step].get(round) {
                    out[i].push(e.clone());
                    left -= 1;
                }
            }
        }
    }
    for series in &mut out {
        series.sort_by_key(|e| e.timestamp_ms);
    }
    out
}

/// A number from a field value: durations in seconds.
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Duration(ns) => Some(*ns as f64 / 1e9),
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if !f.is_nan() => Some(*f),
        _ => None,
    }
}

/// The power-of-two bucket of a value: durations by nanoseconds, given in seconds; integers as they are.
/// Values below 2 and non-integers have none, as in Tempo.
fn bucketize(v: &Value) -> Option<f64> {
    match v {
        Value::Duration(ns) => Some(log2_bucket(u64::try_from(*ns).ok()?)? as f64 / 1e9),
        Value::Int(i) => Some(log2_bucket(u64::try_from(*i).ok()?)? as f64),
        _ => None,
    }
}

/// The smallest power of two at or above `v`; `None` below 2 or when it would not fit in 64 bits.
pub fn log2_bucket(v: u64) -> Option<u64> {
    if v < 2 {
        return None;
    }
    let shift = 64 - (v - 1).leading_zeros();
    (shift < 64).then(|| 1u64 << shift)
}

/// Tempo's quantile over power-of-two buckets `(upper bound, count)` sorted by bound: the bound of the bucket
/// where the `ceil(p * total)`-th value falls, interpolated exponentially from the previous bucket's bound.
pub fn log2_quantile(p: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let wanted = ((p * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    let mut at = 0;
    for (i, &(max, count)) in buckets.iter().enumerate() {
        at = i;
        if seen + count > wanted {
            break;
        }
        seen += count;
        if seen == wanted {
            return Some(max);
        }
    }
    let fraction = (wanted - seen) as f64 / buckets[at].1 as f64;
    let hi = buckets[at].0.log2();
    let lo = if at > 0 { buckets[at - 1].0.log2() } else { hi - 1.0 };
    Some((lo + (hi - lo) * fraction).exp2())
}

impl Metrics {
    /// The fields the metrics stage reads from each span: the function's, then the groups.
    pub fn fields(&self) -> Vec<crate::ast::Field> {
        self.function.field().into_iter().chain(&self.by).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Field, Intrinsic, SecondStage};
    use crate::parse;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn metrics(q: &str) -> Metrics {
        parse(q).unwrap().metrics.unwrap()
    }

    fn span(t: u64, by: &[&str], value: Value) -> SpanSample {
        SpanSample {
            start_unix_nano: t,
            by: by.iter().map(|s| if s.is_empty() { Value::Nil } else { Value::String(s.to_string()) }).collect(),
            value,
            trace_id: format!("{t:032x}"),
            span_id: format!("{t:016x}"),
        }
    }

    fn run(q: &str, range: StepRange, spans: Vec<SpanSample>) -> Vec<TimeSeries> {
        let mut agg = MetricsAggregator::new(metrics(q), range, 0);
        spans.into_iter().for_each(|s| agg.observe(s));
        agg.finish()
    }

    fn labels(series: &TimeSeries) -> Vec<String> {
        series.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn buckets_are_the_next_power_of_two() {
        assert_eq!(log2_bucket(0), None);
        assert_eq!(log2_bucket(1), None);
        assert_eq!(log2_bucket(2), Some(2));
        assert_eq!(log2_bucket(3), Some(4));
        assert_eq!(log2_bucket(4), Some(4));
        assert_eq!(log2_bucket(5), Some(8));
        assert_eq!(log2_bucket(1 << 40), Some(1 << 40));
        assert_eq!(log2_bucket((1 << 40) + 1), Some(1 << 41));
        assert_eq!(log2_bucket(u64::MAX), None);
        // 10 ms = 10_000_000 ns lies in (2^23, 2^24] ns = (0.008388608, 0.016777216] s.
        assert_eq!(bucketize(&Value::Duration(10_000_000)), Some(0.016777216));
        assert_eq!(bucketize(&Value::Duration(16_777_216)), Some(0.016777216));
        assert_eq!(bucketize(&Value::Duration(16_777_217)), Some(0.033554432));
        assert_eq!(bucketize(&Value::Int(100)), Some(128.0));
        assert_eq!(bucketize(&Value::Float(100.0)), None);
        assert_eq!(bucketize(&Value::Duration(1)), None);
    }

    #[test]
    fn histogram_places_spans_in_power_of_two_buckets_per_step() {
        let range = StepRange::aligned(60 * S, 180 * S, 60 * S);
        let d = |ms: i64| Value::Duration(ms * MS as i64);
        let out = run(
            "{ } | histogram_over_time(duration) by (resource.service.name)",
            range,
            vec![
                span(61 * S, &["a"], d(10)),
                span(62 * S, &["a"], d(12)),
                span(63 * S, &["a"], d(20)),
                span(125 * S, &["a"], d(10)),
                span(126 * S, &["b"], d(1000)),
                span(127 * S, &[""], d(1000)),
                span(190 * S, &["a"], d(10)), // after the range
                span(59 * S, &["a"], d(10)),  // before it
            ],
        );
        type Labelled = (Vec<String>, Vec<(u64, f64)>);
        let got: Vec<Labelled> = out.iter().map(|s| (labels(s), s.samples.clone())).collect();
        let a = "resource.service.name=a".to_string();
        assert_eq!(
            got,
            vec![
                (vec![a.clone(), "__bucket=0.016777216".into()], vec![(60_000, 2.0), (120_000, 1.0)]),
                (vec![a, "__bucket=0.033554432".into()], vec![(60_000, 1.0), (120_000, 0.0)]),
                (
                    vec!["resource.service.name=b".into(), "__bucket=1.073741824".into()],
                    vec![(60_000, 0.0), (120_000, 1.0)]
                ),
                (
                    vec!["resource.service.name=nil".into(), "__bucket=1.073741824".into()],
                    vec![(60_000, 0.0), (120_000, 1.0)]
                ),
            ]
        );
    }

    #[test]
    fn counting_functions_and_labels() {
        let range = StepRange::aligned(30 * S, 150 * S, 60 * S);
        assert_eq!(range.steps(), 3);
        let spans = vec![span(30 * S, &[], Value::Nil), span(89 * S, &[], Value::Nil), span(90 * S, &[], Value::Nil)];
        let out = run("{ } | rate()", range, spans.clone());
        assert_eq!(labels(&out[0]), ["__name__=rate"]);
        assert_eq!(out[0].samples, [(0, 1.0 / 60.0), (60_000, 2.0 / 60.0), (120_000, 0.0)]);
        let out = run("{ } | count_over_time()", range, spans);
        assert_eq!(out[0].samples, [(0, 1.0), (60_000, 2.0), (120_000, 0.0)]);
        let out =
            run("{ } | count_over_time()", StepRange::instant(30 * S, 150 * S), vec![span(149 * S, &[], Value::Nil)]);
        assert_eq!(out[0].samples, [(30_000, 1.0)]);
    }

    #[test]
    fn value_functions_read_durations_in_seconds_and_skip_missing_values() {
        let range = StepRange::aligned(0, 60 * S, 60 * S);
        let spans = || {
            vec![
                span(S, &["x", "1"], Value::Duration(500 * MS as i64)),
                span(2 * S, &["x", ""], Value::Duration(1500 * MS as i64)),
                span(3 * S, &["x", ""], Value::Nil),
                span(4 * S, &["", ""], Value::Int(7)),
            ]
        };
        let values = |q: &str| -> Vec<(Vec<String>, f64)> {
            run(q, range, spans()).iter().map(|s| (labels(s), s.samples[0].1)).collect()
        };
        assert_eq!(
            values("{ } | max_over_time(duration) by (.a, .b)"),
            [(vec![".a=nil".to_string()], 7.0), (vec![".a=x".into()], 1.5), (vec![".a=x".into(), ".b=1".into()], 0.5)]
        );
        assert_eq!(values("{ } | sum_over_time(duration)"), [(vec!["__name__=sum_over_time".to_string()], 9.0)]);
        assert_eq!(values("{ } | avg_over_time(duration)")[0].1, 3.0);
        assert_eq!(values("{ } | min_over_time(duration)")[0].1, 0.5);
    }

    #[test]
    fn quantiles_interpolate_over_power_of_two_buckets() {
        // Tempo's examples: all in one bucket (1, 2]: p50 of 10 values is 2^(0 + 1 * 5/10).
        assert_eq!(log2_quantile(0.5, &[(2.0, 10)]), Some(2f64.powf(0.5)));
        assert_eq!(log2_quantile(1.0, &[(2.0, 10), (8.0, 10)]), Some(8.0));
        assert_eq!(log2_quantile(0.5, &[(2.0, 10), (8.0, 10)]), Some(2.0));
        // 0.75 of 20 is the 15th: 5 into the 10 of (2, 8], exponentially halfway from 2 to 8 is 4.
        assert_eq!(log2_quantile(0.75, &[(2.0, 10), (8.0, 10)]), Some(4.0));
        assert_eq!(log2_quantile(0.0, &[(2.0, 10)]), Some(2f64.powf(0.1)));
        assert_eq!(log2_quantile(0.5, &[]), None);
        let range = StepRange::aligned(0, 60 * S, 60 * S);
        let d = |ms: u64| span(S, &[], Value::Duration((ms * MS) as i64));
        let out = run("{ } | quantile_over_time(duration, 0.5, 1)", range, vec![d(10), d(10), d(20), d(20)]);
        assert_eq!(out.iter().map(labels).collect::<Vec<_>>(), [["p=0.5"], ["p=1"]]);
        assert_eq!(out[0].samples, [(0, 0.016777216)]);
        assert_eq!(out[1].samples, [(0, 0.033554432)]);
    }

    fn ranked(op: SecondStageOp, limit: u64, series: &[(&str, &[Option<f64>])]) -> Vec<(String, Vec<Option<f64>>)> {
        let rows = series
            .iter()
            .map(|(name, values)| Row {
                labels: vec![("s".to_string(), Value::String(name.to_string()))],
                values: values.to_vec(),
                exemplars: vec![vec![]; values.len()],
            })
            .collect();
        select_series(rows, op, limit as usize).into_iter().map(|r| (r.labels[0].1.to_string(), r.values)).collect()
    }

    #[test]
    fn topk_and_bottomk_pick_per_step_with_ties_to_the_first_labels() {
        let input: &[(&str, &[Option<f64>])] = &[
            ("a", &[Some(1.0), Some(5.0), None]),
            ("b", &[Some(3.0), Some(5.0), Some(1.0)]),
            ("c", &[Some(2.0), Some(4.0), Some(2.0)]),
            ("d", &[Some(0.0), Some(0.0), Some(0.0)]),
        ];
        assert_eq!(
            ranked(SecondStageOp::TopK, 1, input),
            [
                ("a".to_string(), vec![None, Some(5.0), None]),
                ("b".into(), vec![Some(3.0), None, None]),
                ("c".into(), vec![None, None, Some(2.0)])
            ]
        );
        assert_eq!(
            ranked(SecondStageOp::TopK, 2, input),
            [
                ("a".to_string(), vec![None, Some(5.0), None]),
                ("b".into(), vec![Some(3.0), Some(5.0), Some(1.0)]),
                ("c".into(), vec![Some(2.0), None, Some(2.0)]),
            ]
        );
        assert_eq!(
            ranked(SecondStageOp::BottomK, 1, input),
            [("d".to_string(), vec![Some(0.0), Some(0.0), Some(0.0)])]
        );
        assert_eq!(
            ranked(SecondStageOp::BottomK, 2, input),
            [
                ("a".to_string(), vec![Some(1.0), None, None]),
                ("b".into(), vec![None, None, Some(1.0)]),
                ("c".into(), vec![None, Some(4.0), None]),
                ("d".into(), vec![Some(0.0), Some(0.0), Some(0.0)])
            ]
        );
        // Ties at every step go to the labels that sort first.
        let tied: &[(&str, &[Option<f64>])] = &[("z", &[Some(1.0)]), ("m", &[Some(1.0)]), ("a", &[Some(1.0)])];
        assert_eq!(
            ranked(SecondStageOp::TopK, 2, tied),
            [("m".to_string(), vec![Some(1.0)]), ("a".into(), vec![Some(1.0)])]
        );
        assert_eq!(ranked(SecondStageOp::BottomK, 1, tied), [("a".to_string(), vec![Some(1.0)])]);
    }

    #[test]
    fn second_stage_runs_in_finish() {
        let m = metrics("{ } | count_over_time() by (name) | topk(1)");
        assert_eq!(m.second_stage, Some(SecondStage { op: SecondStageOp::TopK, limit: 1 }));
        assert_eq!(m.fields(), [Field::Intrinsic(Intrinsic::Name)]);
        let out = run(
            "{ } | count_over_time() by (name) | topk(1)",
            StepRange::aligned(0, 60 * S, 60 * S),
            vec![span(S, &["x"], Value::Nil), span(S, &["y"], Value::Nil), span(2 * S, &["y"], Value::Nil)],
        );
        assert_eq!(out.len(), 1);
        assert_eq!((labels(&out[0]), out[0].samples.clone()), (vec!["name=y".to_string()], vec![(0, 2.0)]));
    }

    #[test]
    fn exemplars_are_capped_and_carry_values() {
        let q = "{ } | count_over_time()";
        let mut agg = MetricsAggregator::new(metrics(q), StepRange::aligned(0, 120 * S, 60 * S), 3);
        for t in [1, 2, 3, 61] {
            agg.observe(span(t * S, &[], Value::Nil));
        }
        let out = agg.finish();
        let got: Vec<(u64, f64)> = out[0].exemplars.iter().map(|e| (e.timestamp_ms, e.value)).collect();
        // One per step first, then the second of the first step; the value is the step's count.
        assert_eq!(got, [(1_000, 3.0), (2_000, 3.0), (61_000, 1.0)]);
        assert_eq!(out[0].exemplars[0].trace_id, format!("{:032x}", S));
        let mut agg =
            MetricsAggregator::new(metrics("{ } | max_over_time(duration)"), StepRange::instant(0, 60 * S), 5);
        agg.observe(span(S, &[], Value::Duration(250 * MS as i64)));
        assert_eq!(agg.finish()[0].exemplars[0].value, 0.25);
    }
}
