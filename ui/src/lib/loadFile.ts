// Turns a dropped file (OTLP JSON or Jaeger JSON) into traces, without the server.
import { isJaeger, parseJaeger } from './jaeger';
import { buildTrace, type RawSpan, type Trace } from './model';
import { isOtlp, parseOtlp } from './otlp';

export function tracesFromJson(text: string): Trace[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  let groups: RawSpan[][];
  if (isOtlp(doc)) {
    // One OTLP document may hold several traces: split by trace id.
    const byTrace = new Map<string, RawSpan[]>();
    for (const s of parseOtlp(doc)) {
      const list = byTrace.get(s.traceId) ?? [];
      list.push(s);
      byTrace.set(s.traceId, list);
    }
    groups = [...byTrace.values()];
  } else if (isJaeger(doc)) {
    groups = parseJaeger(doc);
  } else {
    throw new Error('neither OTLP JSON (resourceSpans) nor Jaeger JSON (data[].spans)');
  }
  const traces = groups.filter((g) => g.length > 0).map(buildTrace);
  if (traces.length === 0) throw new Error('the file holds no spans');
  return traces;
}
