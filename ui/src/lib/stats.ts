// Per service and operation: how many spans, their total time and their self time.
import type { Trace } from './model';
import { selfTime } from './selftime';

export interface OperationStats {
  service: string;
  name: string;
  count: number;
  errors: number;
  total: number;
  self: number;
  max: number;
}

export function operationStats(trace: Trace): OperationStats[] {
  const byKey = new Map<string, OperationStats>();
  for (const span of trace.spans) {
    const key = `${span.service}\u0000${span.name}`;
    let s = byKey.get(key);
    if (!s) {
      s = { service: span.service, name: span.name, count: 0, errors: 0, total: 0, self: 0, max: 0 };
      byKey.set(key, s);
    }
    s.count++;
    if (span.status === 'error') s.errors++;
    s.total += span.duration;
    s.self += selfTime(span);
    s.max = Math.max(s.max, span.duration);
  }
  return [...byKey.values()].sort((a, b) => b.self - a.self);
}
