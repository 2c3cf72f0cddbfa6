// Parses every query of Clew's TraceQL corpus with Grafana's lezer grammar for TraceQL and prints, as JSON,
// what each side makes of it. The comparison itself (and the list of known disagreements) lives in
// tests/e2e/test_traceql_lezer.py; this script only reports facts.
//
//   node compare-corpus.mjs [path/to/corpus.txt]
//
// Output: {"parser": "@grafana/lezer-traceql@<version>", "queries": [{line, query, clew, lezer, errorAt, tree}]}
//   clew   "valid" | "error"  (the corpus's expectation for Clew's parser)
//   lezer  "valid" | "error"  (whether lezer's tree holds an error node)
//   errorAt  0-based offset of the first error node, or null
//   tree   lezer's tree printed compactly, to explain a disagreement
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@grafana/lezer-traceql';

const here = dirname(fileURLToPath(import.meta.url));
const corpusPath = process.argv[2] ?? resolve(here, '../../crates/traceql/tests/corpus.txt');
// The package's exports hide package.json, so read it from node_modules directly.
const { version } = JSON.parse(
  readFileSync(resolve(here, 'node_modules/@grafana/lezer-traceql/package.json'), 'utf8'),
);

/** Offset of the first error node in the tree, or null when the parse is clean. */
function firstError(tree) {
  let at = null;
  tree.iterate({
    enter(node) {
      if (at !== null) return false;
      if (node.type.isError) {
        at = node.from;
        return false;
      }
      return true;
    },
  });
  return at;
}

const queries = [];
readFileSync(corpusPath, 'utf8')
  .split('\n')
  .forEach((raw, index) => {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) return;
    const sep = line.indexOf(' ==> ');
    if (sep < 0) throw new Error(`corpus line ${index + 1} has no ' ==> '`);
    const query = line.slice(0, sep);
    const expected = line.slice(sep + 5);
    const tree = parser.parse(query);
    const errorAt = firstError(tree);
    queries.push({
      line: index + 1,
      query,
      clew: expected.startsWith('error ') ? 'error' : 'valid',
      lezer: errorAt === null ? 'valid' : 'error',
      errorAt,
      tree: tree.toString(),
    });
  });

process.stdout.write(JSON.stringify({ parser: `@grafana/lezer-traceql@${version}`, queries }, null, 1) + '\n');
