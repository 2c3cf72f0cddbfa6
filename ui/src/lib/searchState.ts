// The whole search lives in the URL, so a search can be shared and the back button works.

export interface AttrFilter {
  key: string;
  op: string;
  value: string;
}

export interface SearchState {
  mode: 'form' | 'traceql';
  service: string;
  name: string;
  attrs: AttrFilter[];
  minDuration: string;
  maxDuration: string;
  status: string;
  kind: string;
  range: string; // relative ("1h") or "custom"
  start: string; // datetime-local value when range is custom
  end: string;
  limit: number;
  q: string;
}

export const ATTR_OPS = ['=', '!=', '>', '>=', '<', '<=', '=~', '!~'];
export const RANGES: [string, string][] = [
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['all', 'All time'],
  ['custom', 'Custom range'],
];

export const EMPTY: SearchState = {
  mode: 'form',
  service: '',
  name: '',
  attrs: [],
  minDuration: '',
  maxDuration: '',
  status: '',
  kind: '',
  range: '1h',
  start: '',
  end: '',
  limit: 20,
  q: '',
};

/** "http.status_code>=500" → {key, op, value}; the longest operator that matches wins. */
export function parseAttr(text: string): AttrFilter {
  const m = /^(.*?)(>=|<=|!=|=~|!~|=|>|<)(.*)$/.exec(text);
  return m ? { key: m[1], op: m[2], value: m[3] } : { key: text, op: '=', value: '' };
}

export function fromUrl(params: URLSearchParams): SearchState {
  const num = Number(params.get('limit'));
  return {
    mode: params.get('mode') === 'traceql' ? 'traceql' : 'form',
    service: params.get('service') ?? '',
    name: params.get('name') ?? '',
    attrs: params.getAll('attr').map(parseAttr),
    minDuration: params.get('minDuration') ?? '',
    maxDuration: params.get('maxDuration') ?? '',
    status: params.get('status') ?? '',
    kind: params.get('kind') ?? '',
    range: params.get('range') ?? (params.get('start') ? 'custom' : EMPTY.range),
    start: params.get('start') ?? '',
    end: params.get('end') ?? '',
    limit: Number.isFinite(num) && num > 0 ? Math.min(num, 1000) : EMPTY.limit,
    q: params.get('q') ?? '',
  };
}

export function toUrl(s: SearchState): URLSearchParams {
  const p = new URLSearchParams();
  if (s.mode === 'traceql') p.set('mode', 'traceql');
  const set = (k: string, v: string) => v && p.set(k, v);
  if (s.mode === 'traceql') {
    set('q', s.q);
  } else {
    set('service', s.service);
    set('name', s.name);
    for (const a of s.attrs) if (a.key) p.append('attr', `${a.key}${a.op}${a.value}`);
    set('minDuration', s.minDuration);
    set('maxDuration', s.maxDuration);
    set('status', s.status);
    set('kind', s.kind);
  }
  set('range', s.range);
  if (s.range === 'custom') {
    set('start', s.start);
    set('end', s.end);
  }
  p.set('limit', String(s.limit));
  return p;
}

const UNIT_SECONDS: Record<string, number> = { m: 60, h: 3600, d: 86400 };

/** The time bounds of a search in unix seconds (undefined: unbounded). */
export function timeBounds(s: SearchState, nowMs = Date.now()): { start?: number; end?: number } {
  if (s.range === 'all') return {};
  if (s.range === 'custom') {
    const toSec = (v: string) => (v ? Math.floor(new Date(v).getTime() / 1000) : undefined);
    return { start: toSec(s.start), end: toSec(s.end) };
  }
  const m = /^(\d+)([mhd])$/.exec(s.range);
  if (!m) return {};
  const end = Math.ceil(nowMs / 1000);
  return { start: end - Number(m[1]) * UNIT_SECONDS[m[2]], end };
}

/** Query parameters of the native search API for this state. */
export function nativeParams(s: SearchState, cursor?: string): URLSearchParams {
  const p = new URLSearchParams();
  const set = (k: string, v: string) => v && p.set(k, v);
  set('service', s.service);
  set('name', s.name);
  for (const a of s.attrs) if (a.key) p.append('attr', `${a.key}${a.op}${a.value}`);
  set('minDuration', s.minDuration);
  set('maxDuration', s.maxDuration);
  set('status', s.status);
  set('kind', s.kind);
  const { start, end } = timeBounds(s);
  if (start !== undefined) p.set('start', String(start));
  if (end !== undefined) p.set('end', String(end));
  p.set('limit', String(s.limit));
  if (cursor) p.set('cursor', cursor);
  return p;
}

export function traceqlParams(s: SearchState, limit: number): URLSearchParams {
  const p = new URLSearchParams({ q: s.q, limit: String(limit) });
  const { start, end } = timeBounds(s);
  if (start !== undefined) p.set('start', String(start));
  if (end !== undefined) p.set('end', String(end));
  return p;
}
