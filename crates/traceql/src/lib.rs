//! TraceQL, the trace query language of Grafana Tempo, for Clew.
//!
//! The front end is a pipeline of small steps, each in its own module so each can be tested alone:
//!
//! - [`lexer`] turns text into tokens with byte positions (attributes such as `span.http.method` are one token);
//! - [`parser`] reads tokens by recursive descent and precedence climbing, with Tempo's precedence table, and
//!   type-checks field expressions as it goes; `shape` types pipeline stages, where `>` may mean "child of" or
//!   "greater than" depending on the operands;
//! - [`ast`] is the resulting tree; `stringer` prints it back, so a parsed query can be shown, logged or
//!   sent on, and parsing the printed text gives the same tree;
//! - [`plan`] extracts the span-level conditions every match must satisfy, so storage can skip traces that
//!   cannot match before anything is decoded;
//! - [`eval`] runs a query on one whole trace in memory, decoded as OTLP, with Tempo's semantics;
//! - [`metrics`] turns the spans a metrics query (`{ } | rate() by (…)`) matched into time series.
//!
//! Errors carry the position and what was expected: `parse error at line 1, col 9: expected a field expression
//! after '=', found '}'`.

pub mod ast;
mod error;
pub mod eval;
pub mod lexer;
pub mod metrics;
pub mod parser;
pub mod plan;
mod shape;
mod stringer;
mod typecheck;

pub use ast::Query;
pub use error::ParseError;
pub use eval::{Evaluator, MatchedSpan, MatchedSpanset, TraceMatch, Value, evaluate};
pub use parser::{parse, parse_search};
pub use plan::{Condition, Plan, SpanConditions, plan};
pub use stringer::format_duration;

impl std::str::FromStr for Query {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
