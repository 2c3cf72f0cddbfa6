//! Property test: random well-typed query trees print to text that parses back to the same tree, in both the
//! minimal (`{}`) and the fully parenthesised (`{:#}`) form.
//!
//! The generator is small and seeded so a failure names its seed and can be replayed.

use clew_traceql::ast::*;
use clew_traceql::parse;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const NAMES: &[&str] = &[
    "a",
    "http.method",
    "service.name",
    "a b",
    "quote\"d",
    "back\\slash",
    ".dot",
    "µ-unicode",
    "x:y",
    "5",
    "t\tab",
    "a,b",
    "{x}",
    "-",
];
const STRINGS: &[&str] = &["", "GET", "a \"quoted\" \\ string", "line\nbreak", "\u{1}ctl", "ünï", "`tick`"];
const REGEXES: &[&str] = &["foo.*", "a|b", "[0-9]+", ".*perf.*", "x\\.y"];

fn attribute(r: &mut Rng) -> FieldExpr {
    let scope =
        r.pick(&[Scope::Unscoped, Scope::Span, Scope::Resource, Scope::Event, Scope::Link, Scope::Instrumentation]);
    FieldExpr::Field(Field::Attribute(Attribute { scope, name: r.pick(NAMES).to_string() }))
}

fn field(r: &mut Rng) -> Field {
    if r.chance(50) {
        let FieldExpr::Field(f) = attribute(r) else { unreachable!() };
        f
    } else {
        Field::Intrinsic(r.pick(&Intrinsic::ALL))
    }
}

fn number(r: &mut Rng) -> Static {
    match r.below(5) {
        0 => Static::Int(r.next() as i64),
        1 => Static::Int(r.below(1000) as i64 - 500),
        2 => Static::Float((r.below(20000) as f64 - 10000.0) / 8.0),
        3 => Static::Float(f64::from_bits(r.next() >> 2) * if r.chance(50) { 1.0 } else { -1.0 }),
        _ => Static::Duration((r.next() >> 2) as i64 * if r.chance(50) { 1 } else { -1 }),
    }
}

/// A numeric field expression; `-x` is only generated over non-literals (the parser folds it into the literal).
fn num_expr(r: &mut Rng, depth: u32) -> FieldExpr {
    if depth == 0 || r.chance(35) {
        return match r.below(3) {
            0 => attribute(r),
            1 => FieldExpr::Static(number(r)),
            _ => FieldExpr::Field(Field::Intrinsic(r.pick(&[Intrinsic::Duration, Intrinsic::ChildCount]))),
        };
    }
    if r.chance(15) {
        let inner = num_expr(r, depth - 1);
        if !matches!(inner, FieldExpr::Static(_)) {
            return FieldExpr::Unary { op: UnaryOp::Neg, expr: Box::new(inner) };
        }
    }
    let op = r.pick(&[BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Mod, BinaryOp::Pow]);
    FieldExpr::binary(op, num_expr(r, depth - 1), num_expr(r, depth - 1))
}

fn bool_expr(r: &mut Rng, depth: u32) -> FieldExpr {
    let leaf = depth == 0 || r.chance(30);
    if leaf {
        return match r.below(9) {
            0 => attribute(r),
            1 => FieldExpr::Static(Static::Bool(r.chance(50))),
            2 => FieldExpr::binary(
                r.pick(&[BinaryOp::Eq, BinaryOp::Neq]),
                FieldExpr::Field(Field::Intrinsic(Intrinsic::Status)),
                FieldExpr::Static(Static::Status(r.pick(&[Status::Ok, Status::Error, Status::Unset]))),
            ),
            3 => FieldExpr::binary(
                BinaryOp::Eq,
                FieldExpr::Field(Field::Intrinsic(Intrinsic::Kind)),
                FieldExpr::Static(Static::Kind(r.pick(&[Kind::Server, Kind::Client, Kind::Consumer]))),
            ),
            4 => FieldExpr::binary(
                r.pick(&[BinaryOp::Regex, BinaryOp::NotRegex]),
                attribute(r),
                FieldExpr::Static(Static::String(r.pick(REGEXES).to_string())),
            ),
            5 => FieldExpr::binary(
                r.pick(&[BinaryOp::Eq, BinaryOp::Neq, BinaryOp::Lt, BinaryOp::Gte]),
                FieldExpr::Field(Field::Intrinsic(Intrinsic::Name)),
                FieldExpr::Static(Static::String(r.pick(STRINGS).to_string())),
            ),
            6 => {
                FieldExpr::binary(r.pick(&[BinaryOp::Eq, BinaryOp::Neq]), attribute(r), FieldExpr::Static(Static::Nil))
            }
            _ => FieldExpr::binary(
                r.pick(&[BinaryOp::Eq, BinaryOp::Neq, BinaryOp::Lt, BinaryOp::Lte, BinaryOp::Gt, BinaryOp::Gte]),
                num_expr(r, depth.saturating_sub(1)),
                num_expr(r, depth.saturating_sub(1)),
            ),
        };
    }
    match r.below(4) {
        0 => FieldExpr::Unary { op: UnaryOp::Not, expr: Box::new(bool_expr(r, depth - 1)) },
        _ => {
            FieldExpr::binary(r.pick(&[BinaryOp::And, BinaryOp::Or]), bool_expr(r, depth - 1), bool_expr(r, depth - 1))
        }
    }
}

fn spanset(r: &mut Rng, depth: u32) -> SpansetExpr {
    if depth == 0 || r.chance(40) {
        return SpansetExpr::Filter(bool_expr(r, 3));
    }
    if r.chance(15) {
        let mut p = pipeline(r, depth - 1);
        if let [Stage::Spanset(_)] = p.stages.as_slice() {
            p.stages.push(Stage::Coalesce);
        }
        return SpansetExpr::Pipeline(Box::new(p));
    }
    SpansetExpr::Op {
        op: r.pick(&SpansetOp::ALL),
        lhs: Box::new(spanset(r, depth - 1)),
        rhs: Box::new(spanset(r, depth - 1)),
    }
}

fn aggregate(r: &mut Rng) -> Aggregate {
    let op = r.pick(&[AggregateOp::Count, AggregateOp::Avg, AggregateOp::Min, AggregateOp::Max, AggregateOp::Sum]);
    if op == AggregateOp::Count {
        return Aggregate { op, field: None };
    }
    let mut e = num_expr(r, 2);
    if !e.references_span() {
        e = FieldExpr::binary(BinaryOp::Add, e, attribute(r));
    }
    Aggregate { op, field: Some(e) }
}

fn scalar(r: &mut Rng, depth: u32) -> ScalarExpr {
    if depth == 0 || r.chance(40) {
        return if r.chance(60) { ScalarExpr::Aggregate(aggregate(r)) } else { ScalarExpr::Static(number(r)) };
    }
    if r.chance(20) {
        return ScalarExpr::Pipeline { pipeline: Box::new(pipeline(r, depth - 1)), aggregate: aggregate(r) };
    }
    ScalarExpr::Binary {
        op: r.pick(&[BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Mod, BinaryOp::Pow]),
        lhs: Box::new(scalar(r, depth - 1)),
        rhs: Box::new(scalar(r, depth - 1)),
    }
}

fn stage(r: &mut Rng, depth: u32, first: bool) -> Stage {
    match r.below(if first { 5 } else { 6 }) {
        0 | 1 => Stage::Spanset(spanset(r, depth)),
        2 => Stage::ScalarFilter(ScalarFilter {
            op: r.pick(&[BinaryOp::Eq, BinaryOp::Neq, BinaryOp::Lt, BinaryOp::Lte, BinaryOp::Gt, BinaryOp::Gte]),
            lhs: scalar(r, depth),
            rhs: scalar(r, depth),
        }),
        3 => {
            let e = if r.chance(50) { num_expr(r, 2) } else { bool_expr(r, 2) };
            if e.references_span() { Stage::GroupBy(e) } else { Stage::GroupBy(attribute(r)) }
        }
        4 => Stage::Select((0..1 + r.below(3)).map(|_| field(r)).collect()),
        _ => Stage::Coalesce,
    }
}

fn pipeline(r: &mut Rng, depth: u32) -> Pipeline {
    let n = 1 + r.below(3);
    Pipeline { stages: (0..n).map(|i| stage(r, depth, i == 0)).collect() }
}

fn query(r: &mut Rng) -> Query {
    let mut hints = Vec::new();
    if r.chance(20) {
        for key in ["most_recent", "sample", "span_sample"].iter().take(1 + r.below(3)) {
            let value = match r.below(3) {
                0 => Static::Bool(r.chance(50)),
                1 => number(r),
                _ => Static::String(r.pick(STRINGS).to_string()),
            };
            hints.push(Hint { key: key.to_string(), value });
        }
    }
    let metrics = r.chance(30).then(|| metrics(r));
    Query { pipeline: pipeline(r, 3), metrics, hints }
}

/// A metrics stage: a function over a numeric field, groups and maybe `topk`/`bottomk`.
fn metrics(r: &mut Rng) -> Metrics {
    let numeric = |r: &mut Rng| {
        let f = field(r);
        match f {
            Field::Intrinsic(i) if !i.value_type().is_numeric() => Field::Intrinsic(Intrinsic::Duration),
            f => f,
        }
    };
    let function = match r.below(8) {
        0 => MetricsFunction::Rate,
        1 => MetricsFunction::CountOverTime,
        2 => MetricsFunction::MinOverTime(numeric(r)),
        3 => MetricsFunction::MaxOverTime(numeric(r)),
        4 => MetricsFunction::AvgOverTime(numeric(r)),
        5 => MetricsFunction::SumOverTime(numeric(r)),
        6 => MetricsFunction::QuantileOverTime(
            numeric(r),
            (0..1 + r.below(3)).map(|_| r.pick(&[0.0, 0.5, 0.9, 0.99, 0.999, 1.0, 0.25])).collect(),
        ),
        _ => MetricsFunction::HistogramOverTime(numeric(r)),
    };
    let by = (0..r.below(3)).map(|_| field(r)).collect();
    let second_stage = r.chance(30).then(|| SecondStage {
        op: r.pick(&[SecondStageOp::TopK, SecondStageOp::BottomK]),
        limit: 1 + r.below(20) as u64,
    });
    Metrics { function, by, second_stage }
}

#[test]
fn printed_queries_parse_back_to_the_same_tree() {
    for seed in 1..=3000u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let q = query(&mut r);
        for text in [q.to_string(), format!("{q:#}")] {
            match parse(&text) {
                Ok(back) => assert_eq!(back, q, "seed {seed}: {text}"),
                Err(e) => panic!("seed {seed}: {text}\n{e}"),
            }
        }
    }
}

#[test]
fn printing_is_stable() {
    for seed in 1..=500u64 {
        let mut r = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let text = query(&mut r).to_string();
        let again = parse(&text).map(|q| q.to_string());
        assert_eq!(again.as_deref(), Ok(text.as_str()), "seed {seed}");
    }
}
