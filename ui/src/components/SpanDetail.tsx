// Everything about one span: identity, times, attributes by origin, events as a log, links to other traces.
import { Link } from 'react-router-dom';
import { fmtDuration, fmtTime } from '../lib/format';
import type { Span, Trace } from '../lib/model';
import { selfTime } from '../lib/selftime';
import { AttributeTable } from './AttributeTable';

interface Props {
  trace: Trace;
  span: Span;
  onClose: () => void;
  onSelectSpan: (span: Span) => void;
}

export function SpanDetail({ trace, span, onClose, onSelectSpan }: Props) {
  const scope = [
    ...(span.scope.name ? [{ key: 'name', value: span.scope.name }] : []),
    ...(span.scope.version ? [{ key: 'version', value: span.scope.version }] : []),
    ...span.scope.attributes,
  ];
  return (
    <aside className="span-detail" data-testid="span-detail" aria-label="span details">
      <header>
        <h3>{span.name}</h3>
        <button type="button" className="icon" title="Close (Esc)" onClick={onClose}>
          ×
        </button>
      </header>
      <table className="facts">
        <tbody>
          <tr><th>Service</th><td>{span.service}</td></tr>
          <tr><th>Kind</th><td>{span.kind}</td></tr>
          <tr>
            <th>Status</th>
            <td className={span.status === 'error' ? 'error-text' : ''}>
              {span.status}
              {span.statusMessage && `: ${span.statusMessage}`}
            </td>
          </tr>
          <tr>
            <th>Start</th>
            <td>
              {fmtTime(trace.startNs + BigInt(Math.round(span.start)))} ({fmtDuration(span.start)} after trace start)
            </td>
          </tr>
          <tr><th>Duration</th><td>{fmtDuration(span.duration)} (self {fmtDuration(selfTime(span))})</td></tr>
          <tr><th>Span ID</th><td className="mono">{span.id}</td></tr>
          <tr>
            <th>Parent</th>
            <td className="mono">
              {span.parent ? (
                <button type="button" className="link" onClick={() => onSelectSpan(span.parent!)}>
                  {span.parent.name} ({span.parentId})
                </button>
              ) : (
                span.parentId || '—'
              )}
            </td>
          </tr>
        </tbody>
      </table>
      <AttributeTable title="Span attributes" attrs={span.attributes} />
      <AttributeTable title="Resource attributes" attrs={span.resource} />
      <AttributeTable title="Instrumentation scope" attrs={scope} />
      {span.events.length > 0 && (
        <section className="events">
          <h4>Events ({span.events.length})</h4>
          <ol>
            {span.events.map((e, i) => (
              <li key={i}>
                <span className="mono">{fmtDuration(e.time - span.start)}</span> <b>{e.name}</b>
                {e.attributes.map((a) => (
                  <div key={a.key} className="event-attr">
                    {a.key} = {a.value}
                  </div>
                ))}
              </li>
            ))}
          </ol>
        </section>
      )}
      {span.links.length > 0 && (
        <section className="links">
          <h4>Links ({span.links.length})</h4>
          <ul>
            {span.links.map((l, i) => (
              <li key={i}>
                {l.traceId === trace.traceId && trace.byId.has(l.spanId) ? (
                  <button type="button" className="link" onClick={() => onSelectSpan(trace.byId.get(l.spanId)!)}>
                    span {l.spanId} in this trace
                  </button>
                ) : (
                  <Link to={`/trace/${l.traceId}?span=${l.spanId}`} className="trace-link">
                    trace {l.traceId} / span {l.spanId}
                  </Link>
                )}
                {l.attributes.map((a) => (
                  <div key={a.key} className="event-attr">
                    {a.key} = {a.value}
                  </div>
                ))}
              </li>
            ))}
          </ul>
        </section>
      )}
    </aside>
  );
}
