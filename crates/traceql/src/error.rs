//! The one error type of the front end: where in the query, and what was wrong.

/// A query that does not lex, parse or type-check. `offset` is a byte offset into the query; `line` and `column`
/// are 1-based and count characters, so they can be shown to a person as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {column}: {message}")]
pub struct ParseError {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// An error at byte `offset` of `source`.
    pub fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { offset, line, column, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let e = ParseError::at("{ .a = 1 }", 7, "boom");
        assert_eq!((e.line, e.column), (1, 8));
        let e = ParseError::at("{\n  µ.a }", 6, "boom");
        assert_eq!((e.line, e.column, e.offset), (2, 4, 6));
        assert_eq!(e.to_string(), "parse error at line 2, col 4: boom");
        let e = ParseError::at("ab", 99, "end");
        assert_eq!((e.offset, e.column), (2, 3));
    }
}
