// Completion for TraceQL: attribute names after a scope, values after a comparison, intrinsics elsewhere.
import type { Completion, CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import { api } from '../lib/api';

const INTRINSICS = [
  'name', 'status', 'statusMessage', 'duration', 'kind', 'span:id', 'span:parentID', 'span:childCount',
  'span:duration', 'span:name', 'span:status', 'span:kind', 'trace:duration', 'trace:rootName',
  'trace:rootService', 'trace:id', 'event:name', 'event:timeSinceStart', 'link:traceID', 'link:spanID',
  'instrumentation:name', 'instrumentation:version',
];
const KEYWORDS = [
  'span.', 'resource.', 'event.', 'link.', 'instrumentation.', 'true', 'false', 'nil', 'error', 'ok', 'unset',
  'server', 'client', 'producer', 'consumer', 'internal', 'count()', 'avg(', 'min(', 'max(', 'sum(', 'by(',
  'select(', 'coalesce()',
];

const valueCache = new Map<string, Promise<string[]>>();
function valuesOf(key: string): Promise<string[]> {
  let p = valueCache.get(key);
  if (!p) {
    p = api.attributeValues(key).catch(() => []);
    valueCache.set(key, p);
  }
  return p;
}

export function traceqlCompletion(getKeys: () => string[]) {
  return async (ctx: CompletionContext): Promise<CompletionResult | null> => {
    // A value after `attr =`, `attr !=`, `attr =~`: suggest the attribute's known values, quoted.
    const value = ctx.matchBefore(/(?:^|[\s{(&|])(?:span|resource)?\.([\w.\-]+)\s*(?:=|!=|=~|!~)\s*"?[^"\s}]*$/);
    if (value) {
      const m = /\.([\w.\-]+)\s*(?:=|!=|=~|!~)\s*("?[^"\s}]*)$/.exec(value.text)!;
      const values = await valuesOf(m[1]);
      const from = value.to - m[2].length;
      return {
        from,
        options: values.map((v): Completion => ({ label: JSON.stringify(v), type: 'text' })),
        validFor: /^"?[^"]*"?$/,
      };
    }
    // An attribute name after a scope or a bare dot.
    const attr = ctx.matchBefore(/(?:span|resource|event|link|instrumentation)?\.[\w.\-]*$/);
    if (attr) {
      const dot = attr.text.indexOf('.');
      return {
        from: attr.from + dot + 1,
        options: getKeys().map((k): Completion => ({ label: k, type: 'property' })),
        validFor: /^[\w.\-]*$/,
      };
    }
    const word = ctx.matchBefore(/[\w:]+$/);
    if (!word && !ctx.explicit) return null;
    return {
      from: word ? word.from : ctx.pos,
      options: [
        ...INTRINSICS.map((i): Completion => ({ label: i, type: 'keyword' })),
        ...KEYWORDS.map((k): Completion => ({ label: k, type: 'constant' })),
      ],
      validFor: /^[\w:]*$/,
    };
  };
}
