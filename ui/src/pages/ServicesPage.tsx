// RED charts (rate, errors, duration) per service, and per operation of a chosen service. Any point of a chart
// opens the search for that service (and operation) in that time bucket: example traces of that moment.
import { useEffect, useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { api, type RedSeries } from '../lib/api';
import { fmtDuration } from '../lib/format';
import { RED_RANGES, bucketSearchUrl, rangeOf } from '../lib/red';
import { RedCharts } from '../components/RedCharts';

function useRed(params: URLSearchParams | null) {
  const [series, setSeries] = useState<RedSeries[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = params?.toString();
  useEffect(() => {
    if (!params) return;
    let live = true;
    setSeries(null);
    setError(null);
    api
      .red(params)
      .then((r) => live && setSeries(r.series))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [key]);
  return { series, error };
}

function Totals({ s }: { s: RedSeries }) {
  const t = s.total;
  return (
    <span className="muted red-totals">
      {t.calls} calls · {t.errors} errors
      {t.p90 !== null && ` · p90 ${fmtDuration(t.p90 * 1e9)}`}
    </span>
  );
}

export function ServicesPage() {
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const range = params.get('range') ?? '1h';
  const selected = params.get('service');
  const { start, end, step } = useMemo(() => rangeOf(range), [range]);
  const base = useMemo(
    () => new URLSearchParams({ start: String(start), end: String(end), step: `${step}s` }),
    [start, end, step],
  );
  const services = useRed(base);
  const operationParams = useMemo(() => {
    if (!selected) return null;
    const p = new URLSearchParams(base);
    p.set('service', selected);
    p.set('groupByOperation', 'true');
    return p;
  }, [base, selected]);
  const operations = useRed(operationParams);
  const set = (k: string, v: string | null) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next);
  };
  const open = (service: string, operation: string | null | undefined) => (s: number) =>
    navigate(bucketSearchUrl(service, operation, s, step));

  return (
    <div className="services-page">
      <div className="facts-line">
        <label>
          range{' '}
          <select value={range} onChange={(e) => set('range', e.target.value)} aria-label="range">
            {RED_RANGES.map(([l]) => (
              <option key={l} value={l}>
                last {l}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">all spans of each service · click a point for example traces of that moment</span>
      </div>
      {services.error && (
        <div className="error-box" role="alert">
          Services: {services.error}
        </div>
      )}
      {!services.series && !services.error && <p className="notice">Loading the RED charts…</p>}
      {services.series?.length === 0 && <p className="notice">No spans in this range.</p>}
      {services.series?.map((s) => (
        <section key={s.service} className="red-service" data-service={s.service}>
          <h2>
            <button
              type="button"
              className="link-button"
              aria-expanded={selected === s.service}
              onClick={() => set('service', selected === s.service ? null : s.service)}
            >
              {selected === s.service ? '▾' : '▸'} {s.service}
            </button>{' '}
            <Totals s={s} />
          </h2>
          <RedCharts label={s.service} points={s.points} onPick={open(s.service, null)} />
          {selected === s.service && (
            <div className="red-operations" data-testid="operations">
              {operations.error && (
                <div className="error-box" role="alert">
                  {operations.error}
                </div>
              )}
              {!operations.series && !operations.error && <p className="muted">Loading the operations…</p>}
              {operations.series?.map((o) => (
                <section key={o.operation ?? ''} className="red-operation" data-operation={o.operation ?? ''}>
                  <h3>
                    {o.operation} <Totals s={o} />
                  </h3>
                  <RedCharts
                    label={`${s.service} ${o.operation}`}
                    points={o.points}
                    onPick={open(s.service, o.operation)}
                  />
                </section>
              ))}
            </div>
          )}
        </section>
      ))}
    </div>
  );
}
