// Spans merged by their service+operation path from the root: the shape shared by the flame graph and the diff.
import type { Span, Trace } from './model';
import { selfTime } from './selftime';

export interface PathNode {
  key: string; // the full path, one "service: name" per level
  service: string;
  name: string;
  depth: number;
  count: number;
  total: number; // summed duration
  self: number;
  errors: number;
  spanIds: string[];
  children: PathNode[];
}

const label = (s: Span) => `${s.service}: ${s.name}`;

export function pathTree(trace: Trace): PathNode {
  const root: PathNode = {
    key: '',
    service: '',
    name: 'all',
    depth: -1,
    count: 0,
    total: 0,
    self: 0,
    errors: 0,
    spanIds: [],
    children: [],
  };
  const nodeOf = new Map<Span, PathNode>();
  const childIndex = new Map<PathNode, Map<string, PathNode>>();
  // trace.spans is depth-first, so a parent's node exists before its children are visited.
  for (const span of trace.spans) {
    const parentNode = span.parent ? nodeOf.get(span.parent)! : root;
    let index = childIndex.get(parentNode);
    if (!index) childIndex.set(parentNode, (index = new Map()));
    const l = label(span);
    let node = index.get(l);
    if (!node) {
      node = {
        key: parentNode.key ? `${parentNode.key} › ${l}` : l,
        service: span.service,
        name: span.name,
        depth: parentNode.depth + 1,
        count: 0,
        total: 0,
        self: 0,
        errors: 0,
        spanIds: [],
        children: [],
      };
      index.set(l, node);
      parentNode.children.push(node);
    }
    node.count++;
    node.total += span.duration;
    node.self += selfTime(span);
    if (span.status === 'error') node.errors++;
    node.spanIds.push(span.id);
    nodeOf.set(span, node);
  }
  root.total = root.children.reduce((t, c) => t + c.total, 0);
  root.count = trace.spans.length;
  return root;
}

export function flattenPaths(root: PathNode): PathNode[] {
  const out: PathNode[] = [];
  const stack = [...root.children].reverse();
  while (stack.length) {
    const n = stack.pop()!;
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out;
}
