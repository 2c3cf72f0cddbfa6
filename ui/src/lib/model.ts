// The trace model every view works on: spans with times relative to the trace start, linked into a tree.
import { cmpNanos, diffNanos } from './nanos';

export interface Attr {
  key: string;
  value: string;
}

export interface SpanEvent {
  time: number; // ns since trace start
  name: string;
  attributes: Attr[];
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  attributes: Attr[];
}

export type StatusCode = 'unset' | 'ok' | 'error';

export interface Span {
  id: string;
  parentId: string;
  traceId: string;
  name: string;
  service: string;
  kind: string;
  status: StatusCode;
  statusMessage: string;
  start: number; // ns since trace start
  end: number;
  duration: number;
  attributes: Attr[];
  resource: Attr[];
  scope: { name: string; version: string; attributes: Attr[] };
  events: SpanEvent[];
  links: SpanLink[];
  depth: number;
  parent: Span | null;
  children: Span[];
}

export interface Trace {
  traceId: string;
  startNs: bigint; // absolute start of the earliest span
  duration: number; // ns from the earliest start to the latest end
  spans: Span[]; // depth-first order, children by start time
  roots: Span[];
  byId: Map<string, Span>;
  services: string[];
}

/** Raw span as parsed from a file or the API, before times are made relative and the tree is linked. */
export interface RawSpan extends Omit<Span, 'start' | 'end' | 'duration' | 'depth' | 'parent' | 'children' | 'events'> {
  startNs: string; // unix nanoseconds, canonical decimal (see nanos.ts)
  endNs: string;
  events: { timeNs: string; name: string; attributes: Attr[] }[];
}

/** Links raw spans into a trace: relative times, parent/children, depth-first order. */
export function buildTrace(raw: RawSpan[]): Trace {
  if (raw.length === 0) throw new Error('the trace has no spans');
  let startNs = raw[0].startNs;
  let endNs = raw[0].endNs;
  for (const r of raw) {
    if (cmpNanos(r.startNs, startNs) < 0) startNs = r.startNs;
    if (cmpNanos(r.endNs, endNs) > 0) endNs = r.endNs;
  }
  const byId = new Map<string, Span>();
  // Plain object literals (no spread): one hidden class for every span keeps 50,000 of them cheap.
  const spans: Span[] = raw.map((r) => {
    const start = diffNanos(r.startNs, startNs);
    const end = Math.max(start, diffNanos(r.endNs, startNs));
    const span: Span = {
      id: r.id,
      parentId: r.parentId,
      traceId: r.traceId,
      name: r.name,
      service: r.service,
      kind: r.kind,
      status: r.status,
      statusMessage: r.statusMessage,
      start,
      end,
      duration: end - start,
      attributes: r.attributes,
      resource: r.resource,
      scope: r.scope,
      events: r.events.map((e) => ({ time: diffNanos(e.timeNs, startNs), name: e.name, attributes: e.attributes })),
      links: r.links,
      depth: 0,
      parent: null,
      children: [],
    };
    byId.set(span.id, span);
    return span;
  });
  const roots: Span[] = [];
  for (const span of spans) {
    const parent = span.parentId ? byId.get(span.parentId) : undefined;
    if (parent && parent !== span) {
      span.parent = parent;
      parent.children.push(span);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a: Span, b: Span) => a.start - b.start || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  roots.sort(byStart);
  const ordered: Span[] = [];
  // Iterative depth-first walk: deep traces would overflow the call stack with recursion.
  const stack: Span[] = [...roots].reverse();
  for (const r of roots) r.depth = 0;
  while (stack.length) {
    const span = stack.pop()!;
    ordered.push(span);
    span.children.sort(byStart);
    for (let i = span.children.length - 1; i >= 0; i--) {
      span.children[i].depth = span.depth + 1;
      stack.push(span.children[i]);
    }
  }
  const services = [...new Set(spans.map((s) => s.service))].sort();
  return { traceId: raw[0].traceId, startNs: BigInt(startNs), duration: diffNanos(endNs, startNs), spans: ordered, roots, byId, services };
}
