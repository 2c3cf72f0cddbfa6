// The critical path as the server computes it, turned into offsets from the trace start per span.
import { api, ApiError } from './api';
import type { Trace } from './model';
import { diffNanos, nanosString } from './nanos';
import type { CriticalPath } from './tree';

export async function loadCriticalPath(trace: Trace): Promise<{ path: CriticalPath | null; note: string | null }> {
  try {
    const res = await api.criticalPath(trace.traceId);
    const path: CriticalPath = new Map();
    const base = trace.startNs.toString();
    const offset = (ns: string) => diffNanos(nanosString(ns), base);
    for (const s of res.spans ?? []) {
      path.set(
        s.spanId.toLowerCase(),
        s.segments.map((g) => [offset(g.startUnixNano), offset(g.endUnixNano)]),
      );
    }
    return { path, note: null };
  } catch (e) {
    const note = e instanceof ApiError && e.status === 404 ? 'This server does not compute critical paths' : (e as Error).message;
    return { path: null, note };
  }
}
