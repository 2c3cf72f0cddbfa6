//! Turns query text into tokens with byte positions.
//!
//! Attributes are lexed whole, as Tempo does: after `span.`, `.` and the other scope prefixes, everything up to
//! whitespace or one of `{ } ( ) = ~ ! < > & | ^ ,` belongs to the name (so `span.http.method` and
//! `span.foo-bar` are single names), and double-quoted parts (`span."a b"`) may hold any character.

use crate::ast::{Intrinsic, Kind, Scope, Status};
use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    Eq,
    Neq,
    Regex,
    /// `!~`: a negated regex inside filters, not-sibling between spansets.
    NotRegex,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `>>`
    Desc,
    /// `<<`
    Ance,
    Tilde,
    And,
    Or,
    Not,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    UnionChild,
    UnionParent,
    UnionDesc,
    UnionAnce,
    UnionSibling,
    NotChild,
    NotParent,
    NotDesc,
    NotAnce,
    String(String),
    /// Unsigned as written; the parser applies a leading minus (so the smallest integer can be written).
    Integer(u64),
    /// `minInt`, the one integer that cannot be written as a minus and a positive integer literal.
    MinInt,
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    True,
    False,
    Nil,
    Status(Status),
    Kind(Kind),
    Attribute(Scope, String),
    Intrinsic(Intrinsic),
    Ident(String),
    Eof,
}

impl Token {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Self::String(s) => format!("string {s:?}"),
            Self::Integer(i) => format!("integer {i}"),
            Self::MinInt => "'minInt'".to_string(),
            Self::Float(f) => format!("number {f}"),
            Self::Duration(_) => "duration".to_string(),
            Self::Status(s) => format!("'{}'", s.name()),
            Self::Kind(k) => format!("'{}'", k.name()),
            Self::Attribute(scope, name) => format!("attribute '{}{}'", scope.prefix(), name),
            Self::Intrinsic(i) => format!("'{}'", i.name()),
            Self::Ident(s) => format!("'{s}'"),
            Self::Eof => "end of query".to_string(),
            other => format!("'{}'", other.symbol()),
        }
    }

    /// The text of punctuation and keyword tokens.
    pub fn symbol(&self) -> &'static str {
        match self {
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::Comma => ",",
            Self::Pipe => "|",
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Desc => ">>",
            Self::Ance => "<<",
            Self::Tilde => "~",
            Self::And => "&&",
            Self::Or => "||",
            Self::Not => "!",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::UnionChild => "&>",
            Self::UnionParent => "&<",
            Self::UnionDesc => "&>>",
            Self::UnionAnce => "&<<",
            Self::UnionSibling => "&~",
            Self::NotChild => "!>",
            Self::NotParent => "!<",
            Self::NotDesc => "!>>",
            Self::NotAnce => "!<<",
            Self::True => "true",
            Self::False => "false",
            Self::Nil => "nil",
            _ => "",
        }
    }
}

/// A token and the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

/// Operators, longest first so `&>>` wins over `&>` and `!=` over `!`.
const OPERATORS: &[(&str, Token)] = &[
    ("&>>", Token::UnionDesc),
    ("&<<", Token::UnionAnce),
    ("!>>", Token::NotDesc),
    ("!<<", Token::NotAnce),
    ("&&", Token::And),
    ("||", Token::Or),
    ("!=", Token::Neq),
    ("=~", Token::Regex),
    ("!~", Token::NotRegex),
    (">=", Token::Gte),
    ("<=", Token::Lte),
    (">>", Token::Desc),
    ("<<", Token::Ance),
    ("&>", Token::UnionChild),
    ("&<", Token::UnionParent),
    ("&~", Token::UnionSibling),
    ("!>", Token::NotChild),
    ("!<", Token::NotParent),
    ("{", Token::LBrace),
    ("}", Token::RBrace),
    ("(", Token::LParen),
    (")", Token::RParen),
    (",", Token::Comma),
    ("|", Token::Pipe),
    ("=", Token::Eq),
    (">", Token::Gt),
    ("<", Token::Lt),
    ("~", Token::Tilde),
    ("!", Token::Not),
    ("+", Token::Add),
    ("-", Token::Sub),
    ("*", Token::Mul),
    ("/", Token::Div),
    ("%", Token::Mod),
    ("^", Token::Pow),
];

/// Splits `source` into tokens, ending with [`Token::Eof`].
pub fn tokenize(source: &str) -> Result<Vec<Spanned>, ParseError> {
    let mut lexer = Lexer { src: source, pos: 0 };
    let mut out = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        let token = lexer.next_token()?;
        let done = token == Token::Eof;
        out.push(Spanned { token, start, end: lexer.pos });
        if done {
            return Ok(out);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn ends_attribute(c: char) -> bool {
    c.is_whitespace() || "{}()=~!<>&|^,".contains(c)
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, at, message)
    }

    fn skip_whitespace(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        let Some(c) = self.peek() else { return Ok(Token::Eof) };
        let start = self.pos;
        if c == '"' || c == '`' {
            return self.string().map(Token::String);
        }
        // As in Tempo, `.3` and `.5s` are numbers, not attributes.
        let dot_digit = c == '.' && self.rest()[1..].starts_with(|n: char| n.is_ascii_digit());
        if c.is_ascii_digit() || dot_digit {
            return self.number();
        }
        if c == '.' {
            let next = self.rest()[1..].chars().next();
            return match next {
                Some(n) if !ends_attribute(n) && n != '.' => {
                    self.pos += 1;
                    self.attribute(Scope::Unscoped, start)
                }
                _ => Err(self.error(start, "expected an attribute name after '.'")),
            };
        }
        if is_ident_start(c) {
            return self.word();
        }
        for (text, token) in OPERATORS {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(token.clone());
            }
        }
        Err(self.error(start, format!("unexpected character '{c}'")))
    }

    /// A keyword, identifier, scoped attribute (`span.x`) or scoped intrinsic (`span:id`).
    fn word(&mut self) -> Result<Token, ParseError> {
        let start = self.pos;
        let len = self.rest().find(|c: char| !is_ident_char(c)).unwrap_or(self.rest().len());
        let word = &self.src[start..start + len];
        self.pos += len;
        match self.peek() {
            Some('.') => {
                let scope = match word {
                    "span" => Some(Scope::Span),
                    "resource" => Some(Scope::Resource),
                    "event" => Some(Scope::Event),
                    "link" => Some(Scope::Link),
                    "instrumentation" => Some(Scope::Instrumentation),
                    "parent" => return Err(self.error(start, "the 'parent.' scope is not supported")),
                    _ => None,
                };
                if let Some(scope) = scope {
                    self.pos += 1;
                    return self.attribute(scope, start);
                }
            }
            Some(':') if matches!(word, "span" | "trace" | "event" | "link" | "instrumentation") => {
                self.pos += 1;
                let name_len = self.rest().find(|c: char| !is_ident_char(c)).unwrap_or(self.rest().len());
                let name = &self.src[self.pos..self.pos + name_len];
                self.pos += name_len;
                return Intrinsic::from_scoped(word, name)
                    .map(Token::Intrinsic)
                    .ok_or_else(|| self.error(start, format!("unknown intrinsic '{word}:{name}'")));
            }
            Some(':') if self.rest()[1..].starts_with(is_ident_start) => {
                let name_len = self.rest()[1..].find(|c: char| !is_ident_char(c)).unwrap_or(self.rest().len() - 1);
                let name = &self.rest()[1..1 + name_len];
                return Err(self.error(start, format!("unknown intrinsic '{word}:{name}'")));
            }
            _ => {}
        }
        Ok(match word {
            "true" => Token::True,
            "false" => Token::False,
            "nil" => Token::Nil,
            "ok" => Token::Status(Status::Ok),
            "error" => Token::Status(Status::Error),
            "unset" => Token::Status(Status::Unset),
            "unspecified" => Token::Kind(Kind::Unspecified),
            "internal" => Token::Kind(Kind::Internal),
            "server" => Token::Kind(Kind::Server),
            "client" => Token::Kind(Kind::Client),
            "producer" => Token::Kind(Kind::Producer),
            "consumer" => Token::Kind(Kind::Consumer),
            "maxInt" => Token::Integer(i64::MAX as u64),
            "minInt" => Token::MinInt,
            _ => match Intrinsic::from_keyword(word) {
                Some(i) => Token::Intrinsic(i),
                None => Token::Ident(word.to_string()),
            },
        })
    }

    /// The name after a scope prefix: unquoted runs and quoted parts, up to a character that ends attributes.
    fn attribute(&mut self, scope: Scope, start: usize) -> Result<Token, ParseError> {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '"' {
                self.pos += 1;
                loop {
                    match self.peek() {
                        None => return Err(self.error(start, "unterminated quoted attribute name")),
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(e @ ('"' | '\\')) => {
                                    name.push(e);
                                    self.pos += 1;
                                }
                                _ => {
                                    return Err(self.error(
                                        self.pos - 1,
                                        "only \\\" and \\\\ escapes are allowed in attribute names",
                                    ));
                                }
                            }
                        }
                        Some(c) => {
                            name.push(c);
                            self.pos += c.len_utf8();
                        }
                    }
                }
            } else if ends_attribute(c) {
                break;
            } else {
                name.push(c);
                self.pos += c.len_utf8();
            }
        }
        if name.is_empty() {
            return Err(self.error(self.pos, format!("expected an attribute name after '{}'", scope.prefix())));
        }
        Ok(Token::Attribute(scope, name))
    }

    /// A double-quoted string with Go escapes, or a raw backtick string.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let quote = self.peek().unwrap_or('"');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "unterminated string"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                return Ok(out);
            }
            if c == '\\' && quote == '"' {
                let escape_at = self.pos - 1;
                let e = self.peek().ok_or_else(|| self.error(start, "unterminated string"))?;
                self.pos += e.len_utf8();
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return Err(self.error(escape_at, format!("invalid escape '\\{e}' in string"))),
                };
                let hex = self.rest().get(..digits).unwrap_or("");
                let code = u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.len() == digits)
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.error(escape_at, "invalid escape in string"))?;
                self.pos += digits;
                out.push(code);
            } else if c == '\n' && quote == '"' {
                return Err(self.error(start, "unterminated string"));
            } else {
                out.push(c);
            }
        }
    }

    /// An integer, float or duration (`1h30m`, `1.5s`, `100ms`).
    fn number(&mut self) -> Result<Token, ParseError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let mut is_float = false;
        if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
            is_float = true;
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
            let mut e = end + 1;
            if e < bytes.len() && (bytes[e] == b'+' || bytes[e] == b'-') {
                e += 1;
            }
            if e < bytes.len() && bytes[e].is_ascii_digit() {
                while e < bytes.len() && bytes[e].is_ascii_digit() {
                    e += 1;
                }
                is_float = true;
                end = e;
            }
        }
        // A unit right after the number makes it a duration, taking the following number-and-unit pairs too.
        let unit_run = self.src[end..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || "nsuµμmhdwy".contains(c)))
            .unwrap_or(self.src.len() - end);
        if unit_run > 0 && !self.src[end..].starts_with('.') {
            let text = &self.src[start..end + unit_run];
            if let Some(ns) = parse_duration(text) {
                self.pos = end + unit_run;
                return Ok(Token::Duration(ns));
            }
        }
        let text = &self.src[start..end];
        self.pos = end;
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Token::Float(f)),
                _ => Err(self.error(start, format!("number '{text}' is out of range"))),
            }
        } else {
            text.parse::<u64>()
                .ok()
                .filter(|&i| i <= 1 << 63)
                .map(Token::Integer)
                .ok_or_else(|| self.error(start, format!("integer '{text}' is out of range")))
        }
    }
}

/// Go and Prometheus style durations: one or more `<decimal><unit>` pairs. `None` if not one, or too long.
pub fn parse_duration(text: &str) -> Option<i64> {
    const UNITS: &[(&str, i128)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("w", 604_800_000_000_000),
        ("y", 31_536_000_000_000_000),
    ];
    let mut rest = text;
    let mut total: i128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_dot.len());
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let (unit, scale) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        let whole: i128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        let mut value = whole.checked_mul(*scale)?;
        let mut divisor: i128 = 1;
        for d in frac_part.bytes().take(18) {
            divisor *= 10;
            value = value.checked_add(i128::from(d - b'0') * scale / divisor)?;
        }
        total = total.checked_add(value)?;
    }
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(q: &str) -> Vec<Token> {
        tokenize(q).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn attributes_are_single_tokens() {
        assert_eq!(
            kinds("{ span.http.request.method = \"GET\" }"),
            vec![
                Token::LBrace,
                Token::Attribute(Scope::Span, "http.request.method".into()),
                Token::Eq,
                Token::String("GET".into()),
                Token::RBrace,
                Token::Eof
            ]
        );
        assert_eq!(kinds("span.\"a b\"")[0], Token::Attribute(Scope::Span, "a b".into()));
        assert_eq!(kinds("span.x.\"a \\\" b\"")[0], Token::Attribute(Scope::Span, "x.a \" b".into()));
        assert_eq!(kinds(".foo-bar")[0], Token::Attribute(Scope::Unscoped, "foo-bar".into()));
        assert_eq!(kinds("resource.service.name")[0], Token::Attribute(Scope::Resource, "service.name".into()));
        assert_eq!(kinds("event.x")[0], Token::Attribute(Scope::Event, "x".into()));
        assert_eq!(kinds("link.x")[0], Token::Attribute(Scope::Link, "x".into()));
        assert_eq!(kinds("instrumentation.x")[0], Token::Attribute(Scope::Instrumentation, "x".into()));
        assert_eq!(kinds(".a}")[..2], [Token::Attribute(Scope::Unscoped, "a".into()), Token::RBrace]);
    }

    #[test]
    fn intrinsics_and_keywords() {
        assert_eq!(kinds("span:id")[0], Token::Intrinsic(Intrinsic::SpanId));
        assert_eq!(kinds("trace:rootService")[0], Token::Intrinsic(Intrinsic::TraceRootService));
        assert_eq!(kinds("rootServiceName")[0], Token::Intrinsic(Intrinsic::TraceRootService));
        assert_eq!(kinds("duration")[0], Token::Intrinsic(Intrinsic::Duration));
        assert_eq!(kinds("error")[0], Token::Status(Status::Error));
        assert_eq!(kinds("consumer")[0], Token::Kind(Kind::Consumer));
        assert_eq!(kinds("count")[0], Token::Ident("count".into()));
        assert!(tokenize("span:nope").unwrap_err().message.contains("unknown intrinsic"));
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(kinds("42")[0], Token::Integer(42));
        assert_eq!(kinds("4.5")[0], Token::Float(4.5));
        assert_eq!(kinds("1e3")[0], Token::Float(1000.0));
        assert_eq!(kinds("1h30m")[0], Token::Duration(5_400_000_000_000));
        assert_eq!(kinds("1.5s")[0], Token::Duration(1_500_000_000));
        assert_eq!(kinds("10µs")[0], Token::Duration(10_000));
        assert_eq!(kinds("3ns")[0], Token::Duration(3));
        assert_eq!(kinds("2ms)")[..2], [Token::Duration(2_000_000), Token::RParen]);
        assert!(tokenize("99999999999999999999").is_err());
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(kinds(".3")[0], Token::Float(0.3));
        assert_eq!(kinds(".24h")[0], Token::Duration(864_000_000_000));
        assert_eq!(kinds("1h15m30.918273645s")[0], Token::Duration(4_530_918_273_645));
        assert_eq!(kinds("1t")[..2], [Token::Integer(1), Token::Ident("t".into())]);
    }

    #[test]
    fn operators_take_the_longest_match() {
        assert_eq!(
            kinds("&>> &> !>> !> !~ != >= >> <<")[..9],
            [
                Token::UnionDesc,
                Token::UnionChild,
                Token::NotDesc,
                Token::NotChild,
                Token::NotRegex,
                Token::Neq,
                Token::Gte,
                Token::Desc,
                Token::Ance
            ]
        );
    }

    #[test]
    fn strings_and_errors() {
        assert_eq!(kinds(r#""a\"b\n\u00e9""#)[0], Token::String("a\"b\né".into()));
        assert_eq!(kinds(r"`a\b`")[0], Token::String(r"a\b".into()));
        let e = tokenize("{ .a = \"x }").unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (8, "unterminated string"));
        let e = tokenize("{ .a = # }").unwrap_err();
        assert_eq!(e.column, 8);
        let t = tokenize("{ .a }").unwrap();
        assert_eq!((t[1].start, t[1].end), (2, 4));
    }
}
