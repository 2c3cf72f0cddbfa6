// Compare two stored traces by id (from the search results or typed in).
import { useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { DiffTable } from '../components/DiffTable';
import { api } from '../lib/api';
import { diffTraces } from '../lib/compare';
import { fmtDuration } from '../lib/format';
import { buildTrace, type Trace } from '../lib/model';
import { parseOtlp } from '../lib/otlp';

async function loadTrace(id: string): Promise<Trace> {
  return buildTrace(parseOtlp(await api.trace(id)));
}

export function ComparePage() {
  const [params, setParams] = useSearchParams();
  const a = params.get('a') ?? '';
  const b = params.get('b') ?? '';
  const [draft, setDraft] = useState({ a, b });
  const [pair, setPair] = useState<[Trace, Trace] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => setDraft({ a, b }), [a, b]);
  useEffect(() => {
    setPair(null);
    setError(null);
    if (!a || !b) return;
    let live = true;
    Promise.all([
      loadTrace(a).catch((e: Error) => Promise.reject(new Error(`trace A (${a}): ${e.message}`))),
      loadTrace(b).catch((e: Error) => Promise.reject(new Error(`trace B (${b}): ${e.message}`))),
    ]).then(
      (p) => live && setPair(p),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [a, b]);
  const rows = useMemo(() => (pair ? diffTraces(pair[0], pair[1]) : []), [pair]);

  return (
    <div className="compare">
      <form
        className="compare-form"
        onSubmit={(e) => {
          e.preventDefault();
          setParams({ a: draft.a.trim(), b: draft.b.trim() });
        }}
      >
        <label>
          Trace A <input aria-label="trace A" value={draft.a} onChange={(e) => setDraft({ ...draft, a: e.target.value })} />
        </label>
        <label>
          Trace B <input aria-label="trace B" value={draft.b} onChange={(e) => setDraft({ ...draft, b: e.target.value })} />
        </label>
        <button type="submit" className="primary">
          Compare
        </button>
      </form>
      {error && (
        <div className="error-box" role="alert">
          {error}
        </div>
      )}
      {pair && (
        <>
          <div className="compare-summary">
            {pair.map((t, i) => (
              <div key={i}>
                <b>{i === 0 ? 'A' : 'B'}</b> <Link to={`/trace/${t.traceId}`}>{t.traceId}</Link>: {t.roots[0].service}:{' '}
                {t.roots[0].name}, {t.spans.length} spans, {fmtDuration(t.duration)}
              </div>
            ))}
            <div data-testid="compare-totals">
              B − A: {fmtDuration(pair[1].duration - pair[0].duration)};{' '}
              {rows.filter((r) => r.presence === 'only-a').length} paths only in A,{' '}
              {rows.filter((r) => r.presence === 'only-b').length} only in B
            </div>
          </div>
          <DiffTable rows={rows} />
        </>
      )}
    </div>
  );
}
