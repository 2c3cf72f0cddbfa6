// The sampling configuration in effect (tail and remote) and the tail sampler's decisions per policy.
import { useEffect, useState } from 'react';
import { api, type SamplingOverview } from '../lib/api';

/** A config object as `key = value` settings; nested objects become dotted keys, absent values are left out. */
function settings(value: unknown, prefix = ''): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value !== 'object' || Array.isArray(value)) return [`${prefix} = ${JSON.stringify(value)}`];
  return Object.entries(value).flatMap(([k, v]) => settings(v, prefix ? `${prefix}.${k}` : k));
}

function Settings({ of }: { of: unknown }) {
  const lines = settings(of);
  if (lines.length === 0) return <span className="muted">defaults</span>;
  return (
    <span className="mono sampling-settings">
      {lines.map((l) => (
        <span key={l}>{l}</span>
      ))}
    </span>
  );
}

const without = (obj: Record<string, unknown>, ...keys: string[]) =>
  Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));

export function SamplingPage() {
  const [overview, setOverview] = useState<SamplingOverview | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    api
      .sampling()
      .then((o) => live && setOverview(o))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, []);

  if (error)
    return (
      <div className="error-box" role="alert">
        Sampling: {error}
      </div>
    );
  if (!overview) return <p className="notice">Loading the sampling configuration…</p>;
  const { tailSampling: tail, remoteSampling: remote } = overview;
  const counts = new Map((tail.policies ?? []).map((p) => [p.name, p]));
  const strategies = [
    ...(remote.config.default_strategy ? [{ service: '(default)', ...remote.config.default_strategy }] : []),
    ...(remote.config.service_strategies ?? []),
  ];

  return (
    <div className="sampling-page">
      <section>
        <h2>Tail sampling</h2>
        <div className="facts-line">
          <span data-testid="tail-enabled">{tail.enabled ? 'on' : 'off: every trace is kept'}</span>
          {tail.enabled && <span>decision wait {tail.config.decision_wait}</span>}
          {tail.waitingTraces !== undefined && <span>{tail.waitingTraces} traces waiting</span>}
          {tail.evictions !== undefined && <span>{tail.evictions} evicted</span>}
        </div>
        {(tail.config.policies ?? []).length > 0 && (
          <table className="stats" data-testid="sampling-policies">
            <thead>
              <tr>
                <th>Policy</th>
                <th>Type</th>
                <th>Settings</th>
                <th>Kept</th>
                <th>Not kept</th>
              </tr>
            </thead>
            <tbody>
              {(tail.config.policies ?? []).map((p) => (
                <tr key={p.name}>
                  <td>{p.name}</td>
                  <td>{p.type}</td>
                  <td>
                    <Settings of={without(p, 'name', 'type')} />
                  </td>
                  <td className="num">{counts.get(p.name)?.sampled ?? '–'}</td>
                  <td className="num">{counts.get(p.name)?.notSampled ?? '–'}</td>
                </tr>
              ))}
              {tail.noPolicy && (
                <tr className="muted">
                  <td colSpan={3}>no policy sampled the trace</td>
                  <td className="num">{tail.noPolicy.sampled}</td>
                  <td className="num">{tail.noPolicy.notSampled}</td>
                </tr>
              )}
            </tbody>
          </table>
        )}
        <p className="muted">
          Kept and not kept count the traces each policy decided since the server started (the policy recorded as
          the trace's reason).
        </p>
      </section>
      <section>
        <h2>Remote sampling</h2>
        <div className="facts-line">
          <span data-testid="adaptive">adaptive {remote.adaptive ? 'on' : 'off'}</span>
        </div>
        {strategies.length ? (
          <table className="stats" data-testid="sampling-strategies">
            <thead>
              <tr>
                <th>Service</th>
                <th>Type</th>
                <th>Settings</th>
              </tr>
            </thead>
            <tbody>
              {strategies.map((s) => (
                <tr key={String(s.service)}>
                  <td>{String(s.service)}</td>
                  <td>{String(s.type)}</td>
                  <td>
                    <Settings of={without(s, 'service', 'type')} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">No strategies configured: SDKs get the built-in default.</p>
        )}
      </section>
    </div>
  );
}
