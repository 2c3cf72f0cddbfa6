// Drives a Tempo HTTP API (Clew's, in the tests) with the client code of Perses' Tempo plugin
// (@perses-dev/tempo-plugin): its Tempo client (search, trace by id, tag names and values) and its
// TraceQL editor autocompletion, which asks the API for tag names and values. Prints what that code made
// of the responses as JSON; tests/e2e/test_tempo_client.py decides whether it is right.
//
//   node drive-tempo.mjs <tempo base url> <calls.json>
//
// calls.json is a list of {"id", "fn", ...}:
//   {"fn": "search" | "searchWithFallback" | "query" | "searchTags" | "searchTagValues", "params": {...}}
//       the plugin's client function, called as Perses' TempoDatasource client calls it
//   {"fn": "complete", "doc": "{ span.", "pos": <offset, default: end>, "limit": <n, optional>}
//       the plugin's TraceQL completion at pos, in a CodeMirror state with the plugin's TraceQL language
//   {"fn": "isValidTraceId", "traceId": "..."}
//       @perses-dev/core's check that decides whether a query string is looked up as a trace id
// Output: {"<id>": {"ok": <result>} | {"error": {"name", "message", "status"}}}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The plugin's package root also loads its React UI; these modules need only @perses-dev/core.
const tempoClient = require('@perses-dev/tempo-plugin/lib/cjs/model/tempo-client.js');
const { complete } = require('@perses-dev/tempo-plugin/lib/cjs/components/complete.js');
const { TraceQLExtension } = require('@perses-dev/tempo-plugin/lib/cjs/components/TraceQLExtension.js');
const { isValidTraceId } = require('@perses-dev/core');
const { EditorState } = require('@codemirror/state');
const { ensureSyntaxTree, syntaxTree } = require('@codemirror/language');

const [baseUrl, callsPath] = process.argv.slice(2);
if (!baseUrl || !callsPath) {
  console.error('usage: node drive-tempo.mjs <tempo base url> <calls.json>');
  process.exit(2);
}

/** The client Perses' TempoDatasource.createClient builds for a datasource with `directUrl`. */
function createClient(datasourceUrl) {
  const options = { datasourceUrl };
  return {
    options,
    query: (params) => tempoClient.query(params, options),
    search: (params) => tempoClient.search(params, options),
    searchWithFallback: (params) => tempoClient.searchWithFallback(params, options),
    searchTags: (params) => tempoClient.searchTags(params, options),
    searchTagValues: (params) => tempoClient.searchTagValues(params, options),
  };
}

async function runCompletion(client, call) {
  const cfg = { client, limit: call.limit };
  let state = EditorState.create({ doc: call.doc, extensions: TraceQLExtension(cfg) });
  // A new state parses for a few milliseconds only; in an editor, the view finishes the parse in the background.
  // Finish it here, then take a state whose syntax tree is the finished one (an empty transaction picks it up).
  ensureSyntaxTree(state, state.doc.length, 5000);
  state = state.update({}).state;
  if (syntaxTree(state).length < state.doc.length) throw new Error(`could not parse ${JSON.stringify(call.doc)}`);
  const result = await complete(cfg, { state, pos: call.pos ?? state.doc.length });
  if (result === null) return null;
  return {
    from: result.from,
    to: result.to ?? null,
    options: result.options.map((o) => ({
      label: o.label,
      displayLabel: o.displayLabel ?? null,
      quoted: typeof o.apply === 'function',
    })),
  };
}

async function run(client, call) {
  switch (call.fn) {
    case 'search':
    case 'searchWithFallback':
    case 'query':
    case 'searchTags':
    case 'searchTagValues':
      return client[call.fn](call.params ?? {});
    case 'complete':
      return runCompletion(client, call);
    case 'isValidTraceId':
      return isValidTraceId(call.traceId);
    default:
      throw new Error(`unknown fn ${call.fn}`);
  }
}

const client = createClient(baseUrl.replace(/\/$/, ''));
const calls = JSON.parse(readFileSync(callsPath, 'utf8'));
const results = {};
for (const call of calls) {
  try {
    results[call.id] = { ok: await run(client, call) };
  } catch (e) {
    const name = e?.constructor?.name ?? 'Error';
    results[call.id] = { error: { name, message: String(e?.message ?? e), status: e?.status ?? null } };
  }
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
