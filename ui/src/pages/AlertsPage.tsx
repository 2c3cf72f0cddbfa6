// Alert rules (from the config file's `[alerts]` table): firing first, each with its value over the window and
// example traces of that window; refreshed every few seconds.
import { useEffect, useState } from 'react';
import { Link } from 'react-router-dom';
import { fetchAlerts, type AlertRule, type AlertsOverview } from '../lib/alerts';
import { fmtDuration, shortId } from '../lib/format';

const REFRESH_MS = 3000;
const ORDER = { firing: 0, pending: 1, inactive: 2 };

function when(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : '–';
}

function Examples({ rule }: { rule: AlertRule }) {
  const examples = rule.exampleTraces ?? [];
  if (!examples.length) return <span className="muted">none in the window</span>;
  return (
    <span className="alert-examples">
      {examples.map((e) => (
        <Link key={e.traceId} to={`/trace/${e.traceId}`} className="mono" title={`span ${e.spanId}`}>
          {shortId(e.traceId)} {fmtDuration(e.durationSeconds * 1e9)}
          {e.error && <span className="error-text"> error</span>}
        </Link>
      ))}
    </span>
  );
}

export function AlertsPage() {
  const [overview, setOverview] = useState<AlertsOverview | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      fetchAlerts()
        .then((o) => {
          if (!live) return;
          setOverview(o);
          setError(null);
        })
        .catch((e: Error) => live && setError(e.message));
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);

  if (error && !overview)
    return (
      <div className="error-box" role="alert">
        Alerts: {error}
      </div>
    );
  if (!overview) return <p className="notice">Loading the alert rules…</p>;
  const rules = [...overview.rules].sort((a, b) => ORDER[a.state] - ORDER[b.state] || a.name.localeCompare(b.name));
  const firing = rules.filter((r) => r.state === 'firing').length;
  const pending = rules.filter((r) => r.state === 'pending').length;

  return (
    <div className="sampling-page alerts-page">
      <section>
        <h2>Alerts</h2>
        {firing > 0 && (
          <div className="alert-banner" role="alert" data-testid="alerts-firing">
            {firing === 1 ? '1 rule is firing' : `${firing} rules are firing`}
          </div>
        )}
        <div className="facts-line">
          <span>{rules.length} rules</span>
          <span>{firing} firing</span>
          <span>{pending} pending</span>
          <span>evaluated every {overview.evaluationInterval}</span>
          {error && <span className="error-text">refresh failed: {error}</span>}
        </div>
        {rules.length === 0 ? (
          <p className="muted">
            No alert rules are configured: add <span className="mono">[[alerts.rules]]</span> to the config file.
          </p>
        ) : (
          <table className="stats" data-testid="alert-rules">
            <thead>
              <tr>
                <th>State</th>
                <th>Rule</th>
                <th>Condition</th>
                <th>Value</th>
                <th>Since</th>
                <th>Example traces</th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr key={r.name} data-rule={r.name} data-state={r.state}>
                  <td>
                    <span className={`alert-state alert-${r.state}`}>{r.state}</span>
                  </td>
                  <td>
                    <div>{r.name}</div>
                    <div className="muted">{r.summary}</div>
                    {r.description && <div className="muted">{r.description}</div>}
                  </td>
                  <td className="mono">
                    {r.condition} for {r.for} over {r.window}
                  </td>
                  <td className="num" data-testid="alert-value">
                    {r.valueText ?? <span className="muted">no data</span>}
                  </td>
                  <td title={r.resolvedAt ? `last resolved ${when(r.resolvedAt)}` : undefined}>{when(r.since)}</td>
                  <td>
                    <Examples rule={r} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {overview.webhooks.length > 0 && (
        <section>
          <h2>Webhooks</h2>
          <table className="stats" data-testid="alert-webhooks">
            <thead>
              <tr>
                <th>Webhook</th>
                <th>Format</th>
                <th>Sent</th>
                <th>Failed</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {overview.webhooks.map((w) => (
                <tr key={w.name}>
                  <td>{w.name}</td>
                  <td>{w.format}</td>
                  <td className="num">{w.sent}</td>
                  <td className="num">{w.failed}</td>
                  <td className="muted">{w.lastError ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
