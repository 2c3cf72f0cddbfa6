// Known traces for the browser tests, as OTLP JSON, with times relative to "now" so default searches find them.
import { createHash } from 'node:crypto';

export const IDS = {
  fast: 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
  slow: 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',
  linked: 'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3',
};
export const PAYMENT_SPAN_OF_FAST = 'f100000000000005';

const MS = 1_000_000n;
const str = (key, value) => ({ key, value: { stringValue: value } });
const int = (key, value) => ({ key, value: { intValue: String(value) } });
const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

/** s: {service, id, parent, name, kind, start, end (ms from trace start), attrs, error, events, links} */
function exportRequest(traceId, t0, spans) {
  const byService = new Map();
  for (const s of spans) {
    const list = byService.get(s.service) ?? [];
    list.push({
      traceId,
      spanId: s.id,
      parentSpanId: s.parent ?? '',
      name: s.name,
      kind: KIND[s.kind ?? 'internal'],
      startTimeUnixNano: String(t0 + BigInt(Math.round(s.start * 1000)) * 1000n),
      endTimeUnixNano: String(t0 + BigInt(Math.round(s.end * 1000)) * 1000n),
      attributes: s.attrs ?? [],
      events: (s.events ?? []).map((e) => ({
        timeUnixNano: String(t0 + BigInt(Math.round(e.at * 1000)) * 1000n),
        name: e.name,
        attributes: e.attrs ?? [],
      })),
      links: s.links ?? [],
      status: s.error ? { code: 2, message: s.error } : { code: 1 },
    });
    byService.set(s.service, list);
  }
  return {
    resourceSpans: [...byService].map(([service, list]) => ({
      resource: { attributes: [str('service.name', service), str('service.version', '1.4.2'), str('host.name', `${service}-0`)] },
      scopeSpans: [{ scope: { name: 'clew-ui-test', version: '1.0' }, spans: list }],
    })),
  };
}

function checkout(slow, prefix) {
  const id = (n) => `${prefix}${String(n).padStart(15 - prefix.length + 1, '0')}`.slice(0, 16);
  const pay = slow ? { start: 45, end: 460 } : { start: 45, end: 100 };
  const spans = [
    {
      service: 'checkout', id: id(1), name: 'POST /checkout', kind: 'server', start: 0, end: pay.end + 20,
      attrs: [str('http.method', 'POST'), int('http.status_code', slow ? 502 : 200), str('customer.tier', slow ? 'silver' : 'gold')],
      error: slow ? 'payment failed' : undefined,
    },
    { service: 'checkout', id: id(3), parent: id(1), name: 'GET /cart', kind: 'client', start: 15, end: 40 },
    { service: 'cart', id: id(4), parent: id(3), name: 'GET /cart', kind: 'server', start: 17, end: 38, attrs: [int('cart.items', 3)] },
    { service: 'cart', id: id(6), parent: id(4), name: 'redis GET', kind: 'client', start: 20, end: 30, attrs: [str('db.system', 'redis')] },
    { service: 'checkout', id: id(7), parent: id(1), name: 'charge', kind: 'client', start: pay.start, end: pay.end },
    {
      service: 'payment', id: id(5), parent: id(7), name: 'charge', kind: 'server', start: pay.start + 2, end: pay.end - 2,
      attrs: [str('payment.provider', 'stripe'), int('amount.cents', 4599)],
      events: [
        { at: pay.start + 5, name: 'card.validated', attrs: [str('card.brand', 'visa')] },
        { at: pay.end - 5, name: slow ? 'charge.declined' : 'charged' },
      ],
      error: slow ? 'upstream 502' : undefined,
    },
  ];
  if (slow) {
    spans.push({ service: 'payment', id: id(8), parent: id(5), name: 'retry', kind: 'internal', start: 200, end: 420 });
  } else {
    spans.push({ service: 'checkout', id: id(2), parent: id(1), name: 'auth.verify', kind: 'internal', start: 2, end: 12 });
  }
  return spans;
}

function linked() {
  return [
    { service: 'inventory', id: 'c300000000000001', name: 'reserve stock', kind: 'consumer', start: 0, end: 80,
      links: [{ traceId: IDS.fast, spanId: PAYMENT_SPAN_OF_FAST, attributes: [str('link.reason', 'caused by')] }] },
    { service: 'inventory', id: 'c300000000000002', parent: 'c300000000000001', name: 'UPDATE stock', kind: 'client', start: 10, end: 60,
      attrs: [str('db.system', 'postgresql')] },
  ];
}

/** The three export requests: a fast checkout, a slow failing one, and an inventory trace linking to the first. */
export function knownTraces(nowNs = BigInt(Date.now()) * MS) {
  const base = nowNs - 10n * 60_000n * MS;
  return [
    exportRequest(IDS.fast, base, checkout(false, 'f1')),
    exportRequest(IDS.slow, base + 60_000n * MS, checkout(true, 'f2')),
    exportRequest(IDS.linked, base + 120_000n * MS, linked()),
  ];
}

/** The fast checkout as Jaeger JSON (the format Jaeger UI downloads), for the offline view. */
export function jaegerDocument(nowUs = Date.now() * 1000) {
  const t0 = nowUs - 60_000_000;
  const spans = checkout(false, 'f1');
  return {
    data: [
      {
        traceID: IDS.fast,
        spans: spans.map((s) => ({
          traceID: IDS.fast,
          spanID: s.id,
          operationName: s.name,
          references: s.parent ? [{ refType: 'CHILD_OF', traceID: IDS.fast, spanID: s.parent }] : [],
          startTime: t0 + s.start * 1000,
          duration: (s.end - s.start) * 1000,
          tags: [{ key: 'span.kind', type: 'string', value: s.kind }, ...(s.attrs ?? []).map((a) => ({ key: a.key, type: 'string', value: a.value.stringValue ?? a.value.intValue }))],
          logs: [],
          processID: `p-${s.service}`,
        })),
        processes: Object.fromEntries(
          [...new Set(spans.map((s) => s.service))].map((svc) => [`p-${svc}`, { serviceName: svc, tags: [] }]),
        ),
      },
    ],
  };
}

/** Background traffic for the search page: `count` frontend traces spread over the last 50 minutes. */
export function backgroundTraces(count, nowNs = BigInt(Date.now()) * MS) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const traceId = createHash('md5').update(`background-${i}`).digest('hex');
    const t0 = nowNs - BigInt(50 - i * 2) * 60_000n * MS;
    const total = 40 + ((i * 37) % 23) * 12 + (i % 7 === 3 ? 600 : 0);
    const failed = i % 5 === 2;
    out.push(
      exportRequest(traceId, t0, [
        { service: 'frontend', id: 'd400000000000001', name: 'GET /home', kind: 'server', start: 0, end: total,
          attrs: [int('http.status_code', failed ? 500 : 200)], error: failed ? 'internal error' : undefined },
        { service: 'frontend', id: 'd400000000000002', parent: 'd400000000000001', name: 'GET /products', kind: 'client', start: 5, end: total - 5 },
        { service: 'catalog', id: 'd400000000000003', parent: 'd400000000000002', name: 'GET /products', kind: 'server', start: 7, end: total - 7,
          error: failed ? 'db timeout' : undefined },
        { service: 'catalog', id: 'd400000000000004', parent: 'd400000000000003', name: 'SELECT products', kind: 'client', start: 10, end: total - 20,
          attrs: [str('db.system', 'postgresql')] },
      ]),
    );
  }
  return out;
}
