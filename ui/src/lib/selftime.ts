// Self time: the part of a span's duration not covered by any of its children (children clipped to the span).
import type { Span } from './model';

export function selfTime(span: Span): number {
  if (span.children.length === 0) return span.duration;
  const intervals = span.children
    .map((c) => [Math.max(c.start, span.start), Math.min(c.end, span.end)] as const)
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let curStart = -1;
  let curEnd = -1;
  for (const [s, e] of intervals) {
    if (s > curEnd) {
      covered += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else if (e > curEnd) {
      curEnd = e;
    }
  }
  covered += curEnd - curStart;
  return Math.max(0, span.duration - covered);
}
