// Reads Jaeger's JSON (the UI's "download JSON" / query API format: {data:[{traceID, spans, processes}]}).
import type { Attr, RawSpan, StatusCode } from './model';

type Json = any;

export function isJaeger(doc: Json): boolean {
  const first = Array.isArray(doc?.data) ? doc.data[0] : doc;
  return first != null && Array.isArray(first.spans) && first.processes != null;
}

const tags = (list: Json): Attr[] => (list ?? []).map((t: Json) => ({ key: String(t.key), value: String(t.value) }));
const micros = (v: Json): bigint => BigInt(Math.round(Number(v ?? 0))) * 1000n;
const str = (ns: bigint) => ns.toString();

/** All traces of the document, each as its raw spans. */
export function parseJaeger(doc: Json): RawSpan[][] {
  const traces = Array.isArray(doc.data) ? doc.data : [doc];
  return traces.map((t: Json) =>
    (t.spans ?? []).map((s: Json): RawSpan => {
      const process = t.processes?.[s.processID] ?? {};
      const spanTags = tags(s.tags);
      const tag = (k: string) => spanTags.find((a) => a.key === k)?.value;
      const parentRef = (s.references ?? []).find((r: Json) => r.refType === 'CHILD_OF') ?? (s.references ?? [])[0];
      const error = tag('error') === 'true' || tag('otel.status_code') === 'ERROR';
      const status: StatusCode = error ? 'error' : tag('otel.status_code') === 'OK' ? 'ok' : 'unset';
      const startNs = micros(s.startTime);
      const hidden = new Set(['span.kind', 'otel.status_code', 'otel.status_description', 'error']);
      return {
        id: String(s.spanID).toLowerCase(),
        parentId: parentRef && parentRef.refType === 'CHILD_OF' ? String(parentRef.spanID).toLowerCase() : '',
        traceId: String(s.traceID).toLowerCase(),
        name: s.operationName ?? '',
        service: process.serviceName ?? 'unknown',
        kind: tag('span.kind') ?? 'unspecified',
        status,
        statusMessage: tag('otel.status_description') ?? '',
        startNs: str(startNs),
        endNs: str(startNs + micros(s.duration)),
        attributes: spanTags.filter((a) => !hidden.has(a.key)),
        resource: [{ key: 'service.name', value: process.serviceName ?? 'unknown' }, ...tags(process.tags)],
        scope: { name: tag('otel.scope.name') ?? '', version: tag('otel.scope.version') ?? '', attributes: [] },
        events: (s.logs ?? []).map((l: Json) => {
          const fields = tags(l.fields);
          return {
            timeNs: str(micros(l.timestamp)),
            name: fields.find((f) => f.key === 'event')?.value ?? 'log',
            attributes: fields.filter((f) => f.key !== 'event'),
          };
        }),
        links: (s.references ?? [])
          .filter((r: Json) => r.refType === 'FOLLOWS_FROM' || String(r.traceID).toLowerCase() !== String(s.traceID).toLowerCase())
          .map((r: Json) => ({ traceId: String(r.traceID).toLowerCase(), spanId: String(r.spanID).toLowerCase(), attributes: [] })),
      };
    }),
  );
}
