// Calls to Clew's native API (same origin). Errors carry the server's message.

export interface TraceSummary {
  traceId: string;
  rootServiceName: string;
  rootSpanName?: string;
  rootName?: string;
  startTimeUnixNano: string;
  durationNanos: string;
  spanCount: number;
  errorCount: number;
  services: string[];
  matchedSpans?: number;
  spanSets?: { matched?: number }[]; // TraceQL results
}

/** How many spans of the trace met the search's conditions, when the server says. */
export function matchedCount(t: TraceSummary): number | undefined {
  if (t.spanSets?.length) return t.spanSets.reduce((n, s) => n + (s.matched ?? 0), 0);
  return t.matchedSpans;
}

export interface SearchPage {
  traces: TraceSummary[];
  nextCursor?: string | null;
}

/** `GET /api/v1/sampling`: the configuration in effect (TOML sections as JSON) and the tail sampler's counts. */
export interface SamplingOverview {
  tailSampling: {
    enabled: boolean;
    config: { decision_wait?: string; policies?: ({ name: string; type: string } & Record<string, unknown>)[] } & Record<
      string,
      unknown
    >;
    policies?: { name: string; type: string; sampled: number; notSampled: number; votes: Record<string, number> }[];
    noPolicy?: { sampled: number; notSampled: number };
    waitingTraces?: number;
    evictions?: number;
  };
  remoteSampling: {
    config: {
      default_strategy?: Record<string, unknown> | null;
      service_strategies?: Record<string, unknown>[];
    } & Record<string, unknown>;
    adaptive: boolean;
  };
}

/** `GET /api/v1/sampling/traces/{id}`: how the tail sampler decided a trace. */
export interface SamplingDecision {
  traceId: string;
  sampled: boolean;
  policy: string | null;
  weight: number;
  threshold: string | null;
  /** `sampler`: from its decision caches; `stored`: the decision stored with the kept trace. */
  source: 'sampler' | 'stored';
}

/** Latency summary of one side of an edge, in seconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/** `GET /api/v1/dependencies`: calls from client to server services over a range. */
export interface DependencyEdge {
  client: string;
  server: string;
  connectionType: string; // "", "database", "messaging_system", "virtual_node"
  calls: number;
  errors: number;
  clientSeconds: LatencySummary | null;
  serverSeconds: LatencySummary | null;
}

/** One time bucket of `GET /api/v1/metrics/red` (latency quantiles in seconds, null when no calls). */
export interface RedPoint {
  start: string; // unix nanoseconds
  calls: number;
  errors: number;
  rate: number;
  errorRatio: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface RedSeries {
  service: string;
  operation?: string | null;
  points: RedPoint[];
  total: RedPoint;
}

export interface RedAnswer {
  start: string;
  end: string;
  step: string;
  series: RedSeries[];
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

const TENANT_KEY = 'clew.tenant';

export function getTenant(): string {
  return localStorage.getItem(TENANT_KEY) ?? '';
}

export function setTenant(tenant: string) {
  if (tenant) localStorage.setItem(TENANT_KEY, tenant);
  else localStorage.removeItem(TENANT_KEY);
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const tenant = getTenant();
  if (tenant) headers['X-Scope-OrgID'] = tenant;
  const res = await fetch(url, { signal, headers });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const err = (body as { error?: { message?: string } | string } | null)?.error;
    const message = typeof err === 'string' ? err : err?.message ?? (text || res.statusText);
    throw new ApiError(res.status, message);
  }
  if (body === null) throw new ApiError(res.status, 'the server sent no JSON');
  return body as T;
}

export const api = {
  services: () => getJson<{ services: string[] }>('/api/v1/services').then((r) => r.services),
  operations: (service: string) =>
    getJson<{ operations: (string | { name: string })[] }>(`/api/v1/services/${encodeURIComponent(service)}/operations`).then(
      (r) => [...new Set((r.operations ?? []).map((o) => (typeof o === "string" ? o : o.name)))],
    ),
  attributes: () => getJson<{ attributes: { key: string; scope: string }[] }>('/api/v1/attributes').then((r) => r.attributes),
  attributeValues: (key: string) =>
    getJson<{ values: unknown[] }>(`/api/v1/attributes/${encodeURIComponent(key)}/values?limit=100`).then((r) =>
      (r.values ?? []).map((v) => (typeof v === 'object' && v !== null && 'value' in v ? String((v as { value: unknown }).value) : String(v))),
    ),
  search: (params: URLSearchParams, signal?: AbortSignal) => getJson<SearchPage>(`/api/v1/search?${params}`, signal),
  traceql: (params: URLSearchParams, signal?: AbortSignal) =>
    getJson<{ traces: TraceSummary[] }>(`/api/v1/traceql?${params}`, signal),
  trace: (id: string) => getJson<unknown>(`/api/v1/traces/${encodeURIComponent(id)}`),
  sampling: () => getJson<SamplingOverview>('/api/v1/sampling'),
  samplingDecision: (id: string) => getJson<SamplingDecision>(`/api/v1/sampling/traces/${encodeURIComponent(id)}`),
  dependencies: (start: number, end: number) =>
    getJson<{ edges: DependencyEdge[] }>(`/api/v1/dependencies?start=${start}&end=${end}`).then((r) => r.edges),
  red: (params: URLSearchParams) => getJson<RedAnswer>(`/api/v1/metrics/red?${params}`),
  criticalPath: (id: string) =>
    getJson<{ spans: { spanId: string; segments: { startUnixNano: string; endUnixNano: string }[] }[] }>(
      `/api/v1/traces/${encodeURIComponent(id)}/critical-path`,
    ),
};
