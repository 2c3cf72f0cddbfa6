//! The syntax tree of a TraceQL query.
//!
//! A query is a [`Pipeline`] of [`Stage`]s. Spanset expressions combine `{ … }` filters with spanset operators;
//! inside a filter, a [`FieldExpr`] is evaluated on one span. Scalar filters compare aggregates of a spanset.
//! The tree keeps no spelling or positions: two queries that mean the same parse to equal trees, and printing a
//! tree (see `stringer`) and parsing it again gives the same tree.

/// A whole query: a pipeline, for metrics queries the metrics stages after it, and the hints of `with(…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub pipeline: Pipeline,
    /// `| rate() by (…) | topk(5)`: turns the matched spans into time series.
    pub metrics: Option<Metrics>,
    pub hints: Vec<Hint>,
}

/// The metrics stages of a query: a function over the matched spans, its grouping, and an optional selection of
/// series (`topk`, `bottomk`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub function: MetricsFunction,
    pub by: Vec<Field>,
    pub second_stage: Option<SecondStage>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricsFunction {
    Rate,
    CountOverTime,
    MinOverTime(Field),
    MaxOverTime(Field),
    AvgOverTime(Field),
    SumOverTime(Field),
    /// The field and the quantiles (0 to 1).
    QuantileOverTime(Field, Vec<f64>),
    HistogramOverTime(Field),
}

impl MetricsFunction {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::CountOverTime => "count_over_time",
            Self::MinOverTime(_) => "min_over_time",
            Self::MaxOverTime(_) => "max_over_time",
            Self::AvgOverTime(_) => "avg_over_time",
            Self::SumOverTime(_) => "sum_over_time",
            Self::QuantileOverTime(..) => "quantile_over_time",
            Self::HistogramOverTime(_) => "histogram_over_time",
        }
    }

    /// The field the function reads from each span; `None` for the counting functions.
    pub fn field(&self) -> Option<&Field> {
        match self {
            Self::Rate | Self::CountOverTime => None,
            Self::MinOverTime(f)
            | Self::MaxOverTime(f)
            | Self::AvgOverTime(f)
            | Self::SumOverTime(f)
            | Self::QuantileOverTime(f, _)
            | Self::HistogramOverTime(f) => Some(f),
        }
    }
}

/// `topk(n)` or `bottomk(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondStage {
    pub op: SecondStageOp,
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStageOp {
    TopK,
    BottomK,
}

impl SecondStageOp {
    pub fn name(self) -> &'static str {
        match self {
            Self::TopK => "topk",
            Self::BottomK => "bottomk",
        }
    }
}

/// `stage | stage | …`, evaluated left to right on the spansets of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Keeps the spans each input spanset has that the expression selects.
    Spanset(SpansetExpr),
    /// `count() > 2`: keeps the spansets for which the comparison holds.
    ScalarFilter(ScalarFilter),
    /// `by(expr)`: splits each spanset into one spanset per value of `expr`.
    GroupBy(FieldExpr),
    /// `coalesce()`: merges all spansets into one.
    Coalesce,
    /// `select(a, b)`: returns these fields with every matched span.
    Select(Vec<Field>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`; `{ }` is `{ true }`.
    Filter(FieldExpr),
    Op {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline used as a spanset, as in `({ a } | count() > 1) && { b }`. Never a pipeline of a
    /// single spanset stage: parentheses around a spanset expression leave no trace in the tree.
    Pipeline(Box<Pipeline>),
}

/// Operators between spansets. Structural ones return the right side (`Union*` both sides); negated ones return
/// right-side spans that lack the relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpansetOp {
    And,
    Union,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

impl SpansetOp {
    pub const ALL: [SpansetOp; 17] = [
        Self::And,
        Self::Union,
        Self::Child,
        Self::Parent,
        Self::Descendant,
        Self::Ancestor,
        Self::Sibling,
        Self::NotChild,
        Self::NotParent,
        Self::NotDescendant,
        Self::NotAncestor,
        Self::NotSibling,
        Self::UnionChild,
        Self::UnionParent,
        Self::UnionDescendant,
        Self::UnionAncestor,
        Self::UnionSibling,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            Self::And => "&&",
            Self::Union => "||",
            Self::Child => ">",
            Self::Parent => "<",
            Self::Descendant => ">>",
            Self::Ancestor => "<<",
            Self::Sibling => "~",
            Self::NotChild => "!>",
            Self::NotParent => "!<",
            Self::NotDescendant => "!>>",
            Self::NotAncestor => "!<<",
            Self::NotSibling => "!~",
            Self::UnionChild => "&>",
            Self::UnionParent => "&<",
            Self::UnionDescendant => "&>>",
            Self::UnionAncestor => "&<<",
            Self::UnionSibling => "&~",
        }
    }

    /// Binding strength as in Tempo's grammar: `&&` and `||` bind loosest, all structural operators alike.
    pub fn precedence(self) -> u8 {
        match self {
            Self::And | Self::Union => 1,
            _ => 2,
        }
    }
}

/// `lhs op rhs` where both sides are scalar expressions over a spanset.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarFilter {
    pub op: BinaryOp,
    pub lhs: ScalarExpr,
    pub rhs: ScalarExpr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScalarExpr {
    Aggregate(Aggregate),
    /// A number or duration (other literals fail the type check).
    Static(Static),
    Binary {
        op: BinaryOp,
        lhs: Box<ScalarExpr>,
        rhs: Box<ScalarExpr>,
    },
    /// `({ a } | count())`: a pipeline run on the input spanset, then aggregated.
    Pipeline {
        pipeline: Box<Pipeline>,
        aggregate: Aggregate,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    /// `None` only for `count()`.
    pub field: Option<FieldExpr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

impl AggregateOp {
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
        }
    }
}

/// An expression evaluated on one span.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldExpr {
    Static(Static),
    Field(Field),
    Binary { op: BinaryOp, lhs: Box<FieldExpr>, rhs: Box<FieldExpr> },
    Unary { op: UnaryOp, expr: Box<FieldExpr> },
}

impl FieldExpr {
    pub fn binary(op: BinaryOp, lhs: FieldExpr, rhs: FieldExpr) -> Self {
        Self::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
    }

    /// Whether the expression reads anything from the span (an aggregate or `by()` of constants is an error).
    pub fn references_span(&self) -> bool {
        match self {
            Self::Static(_) => false,
            Self::Field(_) => true,
            Self::Binary { lhs, rhs, .. } => lhs.references_span() || rhs.references_span(),
            Self::Unary { expr, .. } => expr.references_span(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    NotRegex,
    And,
    Or,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
            Self::And => "&&",
            Self::Or => "||",
        }
    }

    /// Tempo's precedence levels (higher binds tighter); `&&` and `||` share one level.
    pub fn precedence(self) -> u8 {
        match self {
            Self::And | Self::Or => 1,
            Self::Eq | Self::Neq | Self::Lt | Self::Lte | Self::Gt | Self::Gte | Self::Regex | Self::NotRegex => 2,
            Self::Add | Self::Sub => 3,
            Self::Mul | Self::Div | Self::Mod => 5,
            Self::Pow => 6,
        }
    }

    pub fn right_associative(self) -> bool {
        self == Self::Pow
    }

    pub fn is_arithmetic(self) -> bool {
        matches!(self, Self::Add | Self::Sub | Self::Mul | Self::Div | Self::Mod | Self::Pow)
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Neq | Self::Lt | Self::Lte | Self::Gt | Self::Gte)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
}

impl UnaryOp {
    /// Operators binding at least this tightly are taken into the operand (`-a * b` is `-(a * b)`, as in Tempo).
    pub fn operand_precedence(self) -> u8 {
        match self {
            Self::Neg => 4,
            Self::Not => 5,
        }
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Static {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// Nanoseconds.
    Duration(i64),
    Status(Status),
    Kind(Kind),
}

impl Static {
    pub fn static_type(&self) -> Type {
        match self {
            Self::Nil => Type::Nil,
            Self::Bool(_) => Type::Bool,
            Self::Int(_) => Type::Int,
            Self::Float(_) => Type::Float,
            Self::String(_) => Type::String,
            Self::Duration(_) => Type::Duration,
            Self::Status(_) => Type::Status,
            Self::Kind(_) => Type::Kind,
        }
    }

    /// Negative numbers print as `-x` and need parentheses under tight operators.
    pub fn is_negative_number(&self) -> bool {
        match self {
            Self::Int(i) => *i < 0,
            Self::Float(f) => f.is_sign_negative(),
            Self::Duration(d) => *d < 0,
            _ => false,
        }
    }
}

/// Span status, as OTLP's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Unset,
    Ok,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// Span kind, as OTLP's span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// Something read from a span: an attribute or an intrinsic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Attribute(Attribute),
    Intrinsic(Intrinsic),
}

/// `span.http.method`, `resource."a b"`, `.x` …
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub scope: Scope,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `.x`: the span's attribute, else its resource's.
    Unscoped,
    Span,
    Resource,
    Event,
    Link,
    Instrumentation,
}

impl Scope {
    /// The prefix as written before the name (`span.`, or `.` when unscoped).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Unscoped => ".",
            Self::Span => "span.",
            Self::Resource => "resource.",
            Self::Event => "event.",
            Self::Link => "link.",
            Self::Instrumentation => "instrumentation.",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    Name,
    Status,
    StatusMessage,
    Duration,
    Kind,
    SpanId,
    ParentId,
    ChildCount,
    TraceDuration,
    TraceRootName,
    TraceRootService,
    TraceId,
    EventName,
    EventTimeSinceStart,
    LinkTraceId,
    LinkSpanId,
    InstrumentationName,
    InstrumentationVersion,
}

impl Intrinsic {
    pub const ALL: [Intrinsic; 18] = [
        Self::Name,
        Self::Status,
        Self::StatusMessage,
        Self::Duration,
        Self::Kind,
        Self::SpanId,
        Self::ParentId,
        Self::ChildCount,
        Self::TraceDuration,
        Self::TraceRootName,
        Self::TraceRootService,
        Self::TraceId,
        Self::EventName,
        Self::EventTimeSinceStart,
        Self::LinkTraceId,
        Self::LinkSpanId,
        Self::InstrumentationName,
        Self::InstrumentationVersion,
    ];

    /// The canonical spelling: the short form for the classic span intrinsics, the scoped form otherwise.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Status => "status",
            Self::StatusMessage => "statusMessage",
            Self::Duration => "duration",
            Self::Kind => "kind",
            Self::SpanId => "span:id",
            Self::ParentId => "span:parentID",
            Self::ChildCount => "span:childCount",
            Self::TraceDuration => "trace:duration",
            Self::TraceRootName => "trace:rootName",
            Self::TraceRootService => "trace:rootService",
            Self::TraceId => "trace:id",
            Self::EventName => "event:name",
            Self::EventTimeSinceStart => "event:timeSinceStart",
            Self::LinkTraceId => "link:traceID",
            Self::LinkSpanId => "link:spanID",
            Self::InstrumentationName => "instrumentation:name",
            Self::InstrumentationVersion => "instrumentation:version",
        }
    }

    /// Unscoped keywords (Tempo's older spellings included).
    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "name" => Self::Name,
            "status" => Self::Status,
            "statusMessage" => Self::StatusMessage,
            "duration" => Self::Duration,
            "kind" => Self::Kind,
            "childCount" => Self::ChildCount,
            "traceDuration" => Self::TraceDuration,
            "rootName" => Self::TraceRootName,
            "rootServiceName" => Self::TraceRootService,
            _ => return None,
        })
    }

    /// `scope:name` forms.
    pub fn from_scoped(scope: &str, name: &str) -> Option<Self> {
        Some(match (scope, name) {
            ("span", "name") => Self::Name,
            ("span", "status") => Self::Status,
            ("span", "statusMessage") => Self::StatusMessage,
            ("span", "duration") => Self::Duration,
            ("span", "kind") => Self::Kind,
            ("span", "id") => Self::SpanId,
            ("span", "parentID") => Self::ParentId,
            ("span", "childCount") => Self::ChildCount,
            ("trace", "duration") => Self::TraceDuration,
            ("trace", "rootName") => Self::TraceRootName,
            ("trace", "rootService") => Self::TraceRootService,
            ("trace", "id") => Self::TraceId,
            ("event", "name") => Self::EventName,
            ("event", "timeSinceStart") => Self::EventTimeSinceStart,
            ("link", "traceID") => Self::LinkTraceId,
            ("link", "spanID") => Self::LinkSpanId,
            ("instrumentation", "name") => Self::InstrumentationName,
            ("instrumentation", "version") => Self::InstrumentationVersion,
            _ => return None,
        })
    }

    pub fn value_type(self) -> Type {
        match self {
            Self::Status => Type::Status,
            Self::Kind => Type::Kind,
            Self::Duration | Self::TraceDuration | Self::EventTimeSinceStart => Type::Duration,
            Self::ChildCount => Type::Int,
            _ => Type::String,
        }
    }
}

/// `key = value` inside `with(…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub key: String,
    pub value: Static,
}

/// Static types of the type check. `Attribute` is unknown until run time and matches anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Attribute,
    Nil,
    Bool,
    Int,
    Float,
    String,
    Duration,
    Status,
    Kind,
}

impl Type {
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Float | Self::Duration)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Attribute => "attribute",
            Self::Nil => "nil",
            Self::Bool => "boolean",
            Self::Int => "integer",
            Self::Float => "float",
            Self::String => "string",
            Self::Duration => "duration",
            Self::Status => "status",
            Self::Kind => "kind",
        }
    }
}
