// Title and key facts of a trace.
import { serviceColor } from '../lib/colors';
import { fmtDuration, fmtTime } from '../lib/format';
import type { Trace } from '../lib/model';

export function TraceHeader({ trace }: { trace: Trace }) {
  const root = trace.roots[0];
  const errors = trace.spans.filter((s) => s.status === 'error').length;
  return (
    <div className="trace-header">
      <h2>
        {root.service}: {root.name}
      </h2>
      <div className="facts-line">
        <span className="mono" data-testid="trace-id">{trace.traceId}</span>
        <span>{fmtTime(trace.startNs)}</span>
        <span>duration {fmtDuration(trace.duration)}</span>
        <span data-testid="span-count">{trace.spans.length} spans</span>
        {errors > 0 && <span className="error-text">{errors} errors</span>}
        <span>
          {trace.services.map((s) => (
            <span key={s} className="chip" style={{ borderColor: serviceColor(s) }}>
              {s}
            </span>
          ))}
        </span>
      </div>
    </div>
  );
}
