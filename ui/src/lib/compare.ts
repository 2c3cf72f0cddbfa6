// Structural diff of two traces: spans aligned by service+operation path, biggest differences first.
import type { Trace } from './model';
import { flattenPaths, pathTree } from './paths';

export interface DiffRow {
  key: string;
  service: string;
  name: string;
  depth: number;
  presence: 'both' | 'only-a' | 'only-b';
  countA: number;
  countB: number;
  totalA: number;
  totalB: number;
  delta: number; // totalB - totalA
}

export function diffTraces(a: Trace, b: Trace): DiffRow[] {
  const left = new Map(flattenPaths(pathTree(a)).map((n) => [n.key, n]));
  const right = new Map(flattenPaths(pathTree(b)).map((n) => [n.key, n]));
  const keys = new Set([...left.keys(), ...right.keys()]);
  const rows: DiffRow[] = [];
  for (const key of keys) {
    const l = left.get(key);
    const r = right.get(key);
    const n = (l ?? r)!;
    rows.push({
      key,
      service: n.service,
      name: n.name,
      depth: n.depth,
      presence: l && r ? 'both' : l ? 'only-a' : 'only-b',
      countA: l?.count ?? 0,
      countB: r?.count ?? 0,
      totalA: l?.total ?? 0,
      totalB: r?.total ?? 0,
      delta: (r?.total ?? 0) - (l?.total ?? 0),
    });
  }
  // Biggest change in time first; a path on one side only changes by its whole time. Ties: structural first.
  const rank = (d: DiffRow) => (d.presence === 'both' ? 1 : 0);
  return rows.sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || rank(x) - rank(y) || x.key.localeCompare(y.key));
}
