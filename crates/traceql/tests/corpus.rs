//! Runs every query of `corpus.txt` through the parser.
//!
//! Each line is `<query> ==> <expected>`, where the expectation is the fully parenthesised print of the tree
//! (`=` when it is the query itself) or `error <line>:<col>` optionally followed by a fragment of the message.
//! The file is plain so other TraceQL parsers (Grafana's lezer grammar) can run the same queries.

use clew_traceql::parse;

const CORPUS: &str = include_str!("corpus.txt");

#[test]
fn every_corpus_query_parses_as_expected() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in CORPUS.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        count += 1;
        let (query, expected) = line.split_once(" ==> ").unwrap_or_else(|| panic!("line {}: no ' ==> '", n + 1));
        let got = parse(query);
        if let Some(err) = expected.strip_prefix("error ") {
            let (pos, fragment) = err.split_once(' ').unwrap_or((err, ""));
            match got {
                Ok(q) => failures.push(format!("line {}: {query:?} parsed as {q:#}, expected error", n + 1)),
                Err(e) => {
                    let at = format!("{}:{}", e.line, e.column);
                    if at != pos || !e.message.contains(fragment) {
                        failures.push(format!("line {}: {query:?}: got {at} {:?}, expected {err}", n + 1, e.message));
                    }
                }
            }
            continue;
        }
        let expected = if expected == "=" { query } else { expected };
        match got {
            Err(e) => failures.push(format!("line {}: {query:?}: {e}", n + 1)),
            Ok(q) => {
                let full = format!("{q:#}");
                if full != expected {
                    failures.push(format!("line {}: {query:?}\n   got {full}\n  want {expected}", n + 1));
                }
                for printed in [q.to_string(), full] {
                    match parse(&printed) {
                        Ok(again) if again == q => {}
                        other => failures.push(format!("line {}: reparse of {printed:?} gave {other:?}", n + 1)),
                    }
                }
            }
        }
    }
    assert!(count >= 300, "the corpus has {count} queries, want at least 300");
    assert!(failures.is_empty(), "{} of {count} failed:\n{}", failures.len(), failures.join("\n"));
}
