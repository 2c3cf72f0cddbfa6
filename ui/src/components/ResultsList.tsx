// The found traces, newest first; pick two to compare.
import { Link } from 'react-router-dom';
import { matchedCount, type TraceSummary } from '../lib/api';
import { serviceColor } from '../lib/colors';
import { fmtDuration, fmtTime } from '../lib/format';

interface Props {
  traces: TraceSummary[];
  selected: string[];
  onToggle: (traceId: string) => void;
}

export function ResultsList({ traces, selected, onToggle }: Props) {
  const maxDuration = Math.max(1, ...traces.map((t) => Number(t.durationNanos)));
  return (
    <ul className="results" data-testid="results">
      {traces.map((t) => (
        <li key={t.traceId} className="result" data-trace-id={t.traceId}>
          <input
            type="checkbox"
            aria-label={`select ${t.traceId} for comparison`}
            checked={selected.includes(t.traceId)}
            onChange={() => onToggle(t.traceId)}
          />
          <Link to={`/trace/${t.traceId}`} className="result-main">
            <span className="result-title">
              <b>{t.rootServiceName}</b>: {t.rootSpanName ?? t.rootName ?? ''}
            </span>
            <span className="result-id">{t.traceId.slice(0, 16)}</span>
            <span className="result-duration">{fmtDuration(Number(t.durationNanos))}</span>
            <span className="result-bar" style={{ width: `${(100 * Number(t.durationNanos)) / maxDuration}%` }} />
            <span className="result-meta">
              {fmtTime(t.startTimeUnixNano)} · {t.spanCount} spans
              {matchedCount(t) !== undefined && ` (${matchedCount(t)} matching)`}
              {t.errorCount > 0 && <span className="error-count"> · {t.errorCount} errors</span>}
            </span>
            <span className="result-services">
              {t.services.map((s) => (
                <span key={s} className="chip" style={{ borderColor: serviceColor(s) }}>
                  {s}
                </span>
              ))}
            </span>
          </Link>
        </li>
      ))}
    </ul>
  );
}
