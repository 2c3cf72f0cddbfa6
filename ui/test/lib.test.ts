// Unit tests of the UI's trace logic: times, the tree, self time, the structural diff, file formats, URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffTraces } from '../src/lib/compare';
import { parseJaeger } from '../src/lib/jaeger';
import { tracesFromJson } from '../src/lib/loadFile';
import { buildTrace, type RawSpan } from '../src/lib/model';
import { cmpNanos, diffNanos, nanosString } from '../src/lib/nanos';
import { normaliseId } from '../src/lib/otlp';
import { fromUrl, parseAttr, toUrl, timeBounds, EMPTY } from '../src/lib/searchState';
import { selfTime } from '../src/lib/selftime';
import { operationStats } from '../src/lib/stats';
import { visibleSpans } from '../src/lib/tree';
import { errorOffset } from '../src/traceql/errors';
import { niceStep } from '../src/components/TimeRuler';

const BASE = 1_700_000_000_000_000_000n;

/** [id, parent, service, name, startMs, endMs] → raw spans of one trace. */
function raw(rows: [string, string, string, string, number, number][]): RawSpan[] {
  return rows.map(([id, parentId, service, name, s, e]) => ({
    id,
    parentId,
    traceId: 't1',
    name,
    service,
    kind: 'internal',
    status: 'unset',
    statusMessage: '',
    startNs: (BASE + BigInt(s * 1e6)).toString(),
    endNs: (BASE + BigInt(e * 1e6)).toString(),
    attributes: [],
    resource: [],
    scope: { name: '', version: '', attributes: [] },
    events: [],
    links: [],
  }));
}

test('nanosecond strings compare and subtract exactly beyond 2^53', () => {
  assert.equal(diffNanos('1700000000000000123', '1700000000000000000'), 123);
  assert.equal(diffNanos('1700000001000000000', '1699999999999999999'), 1_000_000_001);
  assert.ok(cmpNanos('999', '1000') < 0);
  assert.ok(cmpNanos('1700000000000000001', '1700000000000000000') > 0);
  assert.equal(nanosString('0042'), '42');
  assert.equal(nanosString(1.5e9), '1500000000');
  assert.equal(nanosString('12x'), '0');
});

test('ids: hex kept, base64 (protobuf JSON mapping) turned into hex', () => {
  assert.equal(normaliseId('A1B2C3D4E5F60718'), 'a1b2c3d4e5f60718');
  assert.equal(normaliseId('AAAAAAAAAAE='), '0000000000000001');
});

test('the tree: depth-first by start time, orphans become roots, times relative to the earliest span', () => {
  const trace = buildTrace(
    raw([
      ['b', 'a', 's', 'late child', 50, 60],
      ['a', '', 's', 'root', 10, 100],
      ['c', 'a', 's', 'early child', 20, 30],
      ['d', 'c', 's', 'grandchild', 21, 22],
      ['o', 'missing', 's', 'orphan', 0, 5],
    ]),
  );
  assert.deepEqual(
    trace.spans.map((s) => `${s.depth}:${s.name}`),
    ['0:orphan', '0:root', '1:early child', '2:grandchild', '1:late child'],
  );
  assert.equal(trace.duration, 100e6);
  assert.equal(trace.byId.get('a')!.start, 10e6);
  assert.equal(trace.startNs, BASE);
  assert.deepEqual(
    visibleSpans(trace, new Set(['c'])).map((s) => s.name),
    ['orphan', 'root', 'early child', 'late child'],
  );
  assert.deepEqual(visibleSpans(trace, new Set(['a'])).map((s) => s.name), ['orphan', 'root']);
});

test('self time: overlapping children count once, children outliving the parent are clipped', () => {
  const trace = buildTrace(
    raw([
      ['p', '', 's', 'parent', 0, 100],
      ['x', 'p', 's', 'x', 10, 40],
      ['y', 'p', 's', 'y', 30, 50], // overlaps x: together 10–50
      ['z', 'p', 's', 'z', 90, 150], // outlives the parent: counts 90–100
    ]),
  );
  assert.equal(selfTime(trace.byId.get('p')!), 50e6);
  assert.equal(selfTime(trace.byId.get('z')!), 60e6);
  const stats = operationStats(trace);
  assert.equal(stats[0].name, 'z'); // most self time first
  assert.equal(stats.find((s) => s.name === 'parent')!.self, 50e6);
});

test('diff: aligned by service+operation path, biggest change first, one-sided paths marked', () => {
  const a = buildTrace(
    raw([
      ['1', '', 'api', 'GET /', 0, 100],
      ['2', '1', 'db', 'query', 10, 30],
      ['3', '1', 'auth', 'check', 30, 35],
    ]),
  );
  const b = buildTrace(
    raw([
      ['1', '', 'api', 'GET /', 0, 300],
      ['2', '1', 'db', 'query', 10, 250],
      ['4', '1', 'cache', 'get', 250, 260],
    ]),
  );
  const rows = diffTraces(a, b);
  assert.deepEqual(
    rows.map((r) => [r.key, r.presence, r.delta / 1e6]),
    [
      ['api: GET / › db: query', 'both', 220],
      ['api: GET /', 'both', 200],
      ['api: GET / › cache: get', 'only-b', 10],
      ['api: GET / › auth: check', 'only-a', -5],
    ],
  );
});

test('Jaeger JSON: references become parents, process tags the resource, logs events', () => {
  const doc = {
    data: [
      {
        traceID: 'abc',
        processes: { p1: { serviceName: 'web', tags: [{ key: 'host', type: 'string', value: 'h1' }] } },
        spans: [
          { traceID: 'abc', spanID: 'r', operationName: 'root', references: [], startTime: 1000, duration: 50, processID: 'p1',
            tags: [{ key: 'error', type: 'bool', value: true }, { key: 'span.kind', type: 'string', value: 'server' }] },
          { traceID: 'abc', spanID: 'c', operationName: 'child', references: [{ refType: 'CHILD_OF', traceID: 'abc', spanID: 'r' }],
            startTime: 1010, duration: 20, processID: 'p1', tags: [], logs: [{ timestamp: 1015, fields: [{ key: 'event', value: 'retry' }] }] },
        ],
      },
    ],
  };
  const [spans] = parseJaeger(doc);
  const trace = buildTrace(spans);
  const root = trace.roots[0];
  assert.equal(root.status, 'error');
  assert.equal(root.kind, 'server');
  assert.deepEqual(root.resource, [{ key: 'service.name', value: 'web' }, { key: 'host', value: 'h1' }]);
  assert.equal(root.children[0].name, 'child');
  assert.equal(root.children[0].start, 10_000);
  assert.deepEqual(root.children[0].events.map((e) => [e.name, e.time]), [['retry', 15_000]]);
  assert.throws(() => tracesFromJson('{"x": 1}'), /neither OTLP JSON/);
  assert.throws(() => tracesFromJson('nope'), /not JSON/);
});

test('the URL holds the whole search and gives it back', () => {
  const state = {
    ...EMPTY,
    service: 'checkout',
    name: 'POST /pay',
    attrs: [parseAttr('http.status_code>=500'), parseAttr('region=~eu-.*')],
    minDuration: '100ms',
    status: 'error',
    range: 'custom',
    start: '2026-01-01T10:00:00',
    end: '2026-01-01T11:00:00',
    limit: 50,
  };
  assert.deepEqual(state.attrs[0], { key: 'http.status_code', op: '>=', value: '500' });
  assert.deepEqual(fromUrl(toUrl(state)), state);
  const traceql = { ...EMPTY, mode: 'traceql' as const, q: '{ status = error }' };
  assert.deepEqual(fromUrl(toUrl(traceql)), traceql);
  const { start, end } = timeBounds({ ...EMPTY, range: '1h' }, 3_600_000_000);
  assert.deepEqual([start, end], [3_596_400, 3_600_000]);
  assert.deepEqual(timeBounds({ ...EMPTY, range: 'all' }), {});
});

test('TraceQL error positions and ruler steps', () => {
  assert.equal(errorOffset('{ a = = 1 }', 'parse error at line 1, col 7: unexpected'), 6);
  assert.equal(errorOffset('{ a = 1 }\n| count(', 'parse error at line 2, col 3: x'), 12);
  assert.equal(errorOffset('{}', 'no position here'), null);
  assert.equal(niceStep(120e6), 20e6);
  assert.equal(niceStep(1e9), 200e6);
  assert.equal(niceStep(7), 2);
});
