// A deterministic large trace (breadth-first tree with varied fan-out over 20 services), as OTLP JSON requests.

function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const hex = (n, width) => n.toString(16).padStart(width, '0');

/** Export requests (chunks of `perRequest` spans) holding one trace of `count` spans. */
export function largeTraceRequests(traceId, count, perRequest = 5000, nowMs = Date.now()) {
  const rand = prng(42);
  const t0 = BigInt(nowMs - 5 * 60_000) * 1_000_000n;
  const services = Array.from({ length: 20 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
  const spans = [{ id: 1, parent: 0, service: services[0], name: 'GET /batch', start: 0, end: 30_000_000_000, depth: 0 }];
  const queue = [spans[0]];
  while (spans.length < count && queue.length) {
    const parent = queue.shift();
    const fanout = 1 + Math.floor(rand() * 7);
    for (let i = 0; i < fanout && spans.length < count; i++) {
      const room = parent.end - parent.start;
      const start = parent.start + Math.floor(rand() * room * 0.6);
      const end = start + Math.max(1000, Math.floor(rand() * (parent.end - start)));
      const service = rand() < 0.7 ? parent.service : services[Math.floor(rand() * services.length)];
      const span = { id: spans.length + 1, parent: parent.id, service, name: `op-${Math.floor(rand() * 200)}`, start, end, depth: parent.depth + 1 };
      spans.push(span);
      queue.push(span);
    }
  }
  const requests = [];
  for (let i = 0; i < spans.length; i += perRequest) {
    const byService = new Map();
    for (const s of spans.slice(i, i + perRequest)) {
      const list = byService.get(s.service) ?? [];
      list.push({
        traceId,
        spanId: hex(s.id, 16),
        parentSpanId: s.parent ? hex(s.parent, 16) : '',
        name: s.name,
        kind: s.depth === 0 ? 2 : 1,
        startTimeUnixNano: String(t0 + BigInt(s.start)),
        endTimeUnixNano: String(t0 + BigInt(s.end)),
        attributes: [{ key: 'item.index', value: { intValue: String(s.id) } }],
        status: s.id % 997 === 0 ? { code: 2, message: 'boom' } : {},
      });
      byService.set(s.service, list);
    }
    requests.push({
      resourceSpans: [...byService].map(([service, list]) => ({
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ scope: { name: 'bench' }, spans: list }],
      })),
    });
  }
  return { requests, spanCount: spans.length, maxDepth: Math.max(...spans.map((s) => s.depth)) };
}
