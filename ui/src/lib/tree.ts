// Which spans are on screen given the collapsed ones, and tree moves for keyboard navigation.
import type { Span, Trace } from './model';

/** Spans in depth-first order, leaving out the descendants of collapsed spans. */
export function visibleSpans(trace: Trace, collapsed: ReadonlySet<string>): Span[] {
  if (collapsed.size === 0) return trace.spans;
  const out: Span[] = [];
  let skipDepth = Infinity; // depth of the collapsed span whose subtree is being skipped
  for (const span of trace.spans) {
    if (span.depth > skipDepth) continue;
    skipDepth = Infinity;
    out.push(span);
    if (collapsed.has(span.id) && span.children.length > 0) skipDepth = span.depth;
  }
  return out;
}

/** The collapsed set with every ancestor of `span` expanded, so the span is visible. */
export function revealed(collapsed: ReadonlySet<string>, span: Span): Set<string> {
  const next = new Set(collapsed);
  for (let p = span.parent; p; p = p.parent) next.delete(p.id);
  return next;
}

/** Does the span's name, service, id or any attribute contain the text (case-insensitive)? */
export function spanMatches(span: Span, needle: string): boolean {
  const n = needle.toLowerCase();
  if (span.name.toLowerCase().includes(n) || span.service.toLowerCase().includes(n) || span.id.startsWith(n)) return true;
  return span.attributes.some((a) => a.key.toLowerCase().includes(n) || a.value.toLowerCase().includes(n));
}

export type CriticalPath = Map<string, [number, number][]>;
