// Reads OTLP JSON (as served by /api/v1/traces/{id} and written by OTLP/HTTP JSON exporters) into raw spans.
import type { Attr, RawSpan, StatusCode } from './model';
import { nanosString as nanos } from './nanos';

type Json = any;

export function anyValueToString(v: Json): string {
  if (v == null) return '';
  if ('stringValue' in v) return String(v.stringValue);
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return String(v.bytesValue);
  if ('arrayValue' in v) return '[' + (v.arrayValue?.values ?? []).map(anyValueToString).join(', ') + ']';
  if ('kvlistValue' in v)
    return '{' + (v.kvlistValue?.values ?? []).map((kv: Json) => `${kv.key}: ${anyValueToString(kv.value)}`).join(', ') + '}';
  return '';
}

export function attrs(list: Json): Attr[] {
  return (list ?? []).map((kv: Json) => ({ key: String(kv.key), value: anyValueToString(kv.value) }));
}

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

export function kindName(kind: Json): string {
  if (typeof kind === 'number') return KINDS[kind] ?? 'unspecified';
  if (typeof kind === 'string') return kind.replace(/^SPAN_KIND_/, '').toLowerCase() || 'unspecified';
  return 'unspecified';
}

export function statusName(code: Json): StatusCode {
  if (code === 2 || code === 'STATUS_CODE_ERROR') return 'error';
  if (code === 1 || code === 'STATUS_CODE_OK') return 'ok';
  return 'unset';
}

/** OTLP JSON ids are hex; some producers send base64 (the protobuf JSON mapping). Normalise to lower hex. */
export function normaliseId(id: Json): string {
  if (typeof id !== 'string' || id === '') return '';
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase();
  try {
    return Array.from(atob(id), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return id.toLowerCase();
  }
}


export function isOtlp(doc: Json): boolean {
  return doc != null && (Array.isArray(doc.resourceSpans) || Array.isArray(doc.batches));
}

export function parseOtlp(doc: Json): RawSpan[] {
  const out: RawSpan[] = [];
  for (const rs of doc.resourceSpans ?? doc.batches ?? []) {
    const resource = attrs(rs.resource?.attributes);
    const service = resource.find((a) => a.key === 'service.name')?.value ?? 'unknown';
    for (const ss of rs.scopeSpans ?? rs.instrumentationLibrarySpans ?? []) {
      const sc = ss.scope ?? ss.instrumentationLibrary ?? {};
      const scope = { name: sc.name ?? '', version: sc.version ?? '', attributes: attrs(sc.attributes) };
      for (const s of ss.spans ?? []) {
        out.push({
          id: normaliseId(s.spanId),
          parentId: normaliseId(s.parentSpanId),
          traceId: normaliseId(s.traceId),
          name: s.name ?? '',
          service,
          kind: kindName(s.kind),
          status: statusName(s.status?.code),
          statusMessage: s.status?.message ?? '',
          startNs: nanos(s.startTimeUnixNano),
          endNs: nanos(s.endTimeUnixNano),
          attributes: attrs(s.attributes),
          resource,
          scope,
          events: (s.events ?? []).map((e: Json) => ({
            timeNs: nanos(e.timeUnixNano),
            name: e.name ?? '',
            attributes: attrs(e.attributes),
          })),
          links: (s.links ?? []).map((l: Json) => ({
            traceId: normaliseId(l.traceId),
            spanId: normaliseId(l.spanId),
            attributes: attrs(l.attributes),
          })),
        });
      }
    }
  }
  return out;
}
