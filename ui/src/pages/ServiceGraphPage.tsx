// The service graph: services and databases laid out by dagre and drawn as SVG; edge thickness by call rate, edge
// colour by error ratio. Clicking a node shows its RED charts and its slowest and failing traces.
import { useEffect, useMemo, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import dagre from '@dagrejs/dagre';
import { api, type DependencyEdge, type RedPoint, type TraceSummary } from '../lib/api';
import { fmtDuration, fmtTime, shortId } from '../lib/format';
import { RED_RANGES, bucketSearchUrl, rangeOf } from '../lib/red';
import { RedCharts } from '../components/RedCharts';

const NODE_W = 150;
const NODE_H = 40;

interface LaidOut {
  width: number;
  height: number;
  nodes: { name: string; x: number; y: number; database: boolean }[];
  edges: { edge: DependencyEdge; points: { x: number; y: number }[] }[];
}

function layout(edges: DependencyEdge[]): LaidOut {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 120, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const databases = new Set(edges.filter((e) => e.connectionType === 'database').map((e) => e.server));
  for (const e of edges) {
    for (const n of [e.client, e.server]) if (!g.hasNode(n)) g.setNode(n, { width: NODE_W, height: NODE_H });
    g.setEdge(e.client, e.server, { width: 60, height: 16 }, `${e.client}>${e.server}>${e.connectionType}`);
  }
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: graph.width ?? 0,
    height: graph.height ?? 0,
    nodes: g.nodes().map((name) => {
      const n = g.node(name);
      return { name, x: n.x, y: n.y, database: databases.has(name) };
    }),
    edges: edges.map((edge) => ({
      edge,
      points: g.edge({ v: edge.client, w: edge.server, name: `${edge.client}>${edge.server}>${edge.connectionType}` })
        .points ?? [],
    })),
  };
}

/** Grey for no errors, full red for all calls failing. */
function errorColour(ratio: number): string {
  const mix = (a: number, b: number) => Math.round(a + (b - a) * Math.min(1, Math.max(0, ratio)));
  return `rgb(${mix(150, 214)}, ${mix(160, 39)}, ${mix(175, 40)})`;
}

function GraphSvg({ laid, seconds, selected, onSelect }: {
  laid: LaidOut;
  seconds: number;
  selected: string | null;
  onSelect: (n: string) => void;
}) {
  const maxRate = Math.max(...laid.edges.map((e) => e.edge.calls / seconds), 1e-9);
  return (
    <svg
      className="service-graph"
      data-testid="service-graph"
      width={laid.width}
      height={laid.height}
      viewBox={`0 0 ${laid.width} ${laid.height}`}
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="10"
          markerHeight="10"
          markerUnits="userSpaceOnUse"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" fill="#8a94a6" />
        </marker>
      </defs>
      {laid.edges.map(({ edge, points }) => {
        const rate = edge.calls / seconds;
        const ratio = edge.calls ? edge.errors / edge.calls : 0;
        const mid = points[Math.floor(points.length / 2)] ?? { x: 0, y: 0 };
        return (
          <g
            key={`${edge.client}>${edge.server}>${edge.connectionType}`}
            className="graph-edge"
            data-client={edge.client}
            data-server={edge.server}
            data-calls={edge.calls}
            data-errors={edge.errors}
          >
            <title>{`${edge.client} → ${edge.server}: ${edge.calls} calls (${rate.toPrecision(2)}/s), ${edge.errors} errors`}</title>
            <path
              d={points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ')}
              fill="none"
              stroke={errorColour(ratio)}
              strokeWidth={1.5 + 6.5 * (rate / maxRate)}
              markerEnd="url(#arrow)"
            />
            <text x={mid.x} y={mid.y - 6} textAnchor="middle" className="edge-label">
              {`${edge.calls} call${edge.calls === 1 ? '' : 's'}${ratio ? ` · ${Math.round(ratio * 100)}% err` : ''}`}
            </text>
          </g>
        );
      })}
      {laid.nodes.map((n) => (
        <g
          key={n.name}
          className={`graph-node${n.database ? ' database' : ''}${n.name === selected ? ' selected' : ''}`}
          data-node={n.name}
          transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
          onClick={() => onSelect(n.name)}
          role="button"
          aria-label={`service ${n.name}`}
        >
          <rect width={NODE_W} height={NODE_H} rx={n.database ? 14 : 6} />
          <text x={NODE_W / 2} y={NODE_H / 2 + 4} textAnchor="middle">
            {n.database ? `${n.name} (database)` : n.name}
          </text>
        </g>
      ))}
    </svg>
  );
}

function TraceList({ traces, testId }: { traces: TraceSummary[] | null; testId: string }) {
  if (!traces) return <p className="muted">Loading…</p>;
  if (!traces.length) return <p className="muted">None in this range.</p>;
  return (
    <ul className="node-traces" data-testid={testId}>
      {traces.map((t) => (
        <li key={t.traceId} data-trace-id={t.traceId}>
          <Link to={`/trace/${t.traceId}`}>
            {t.rootServiceName}: {t.rootSpanName ?? t.rootName ?? '?'}
          </Link>{' '}
          <span className="muted">
            {fmtDuration(Number(t.durationNanos))} · {fmtTime(t.startTimeUnixNano)} · {shortId(t.traceId)}
            {t.errorCount ? ` · ${t.errorCount} errors` : ''}
          </span>
        </li>
      ))}
    </ul>
  );
}

function NodePanel({ service, database, start, end, step }: {
  service: string;
  database: boolean;
  start: number;
  end: number;
  step: number;
}) {
  const navigate = useNavigate();
  const [points, setPoints] = useState<RedPoint[] | null>(null);
  const [slowest, setSlowest] = useState<TraceSummary[] | null>(null);
  const [failing, setFailing] = useState<TraceSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (database) return;
    let live = true;
    setPoints(null);
    setSlowest(null);
    setFailing(null);
    setError(null);
    const fail = (e: Error) => live && setError(e.message);
    const p = new URLSearchParams({ service, start: String(start), end: String(end), step: `${step}s` });
    api
      .red(p)
      .then((r) => live && setPoints(r.series[0]?.points ?? []))
      .catch(fail);
    const search = (extra: Record<string, string>) =>
      api.search(new URLSearchParams({ service, start: String(start), end: String(end), ...extra }));
    search({ limit: '200' })
      .then(
        (r) =>
          live &&
          setSlowest([...r.traces].sort((a, b) => Number(b.durationNanos) - Number(a.durationNanos)).slice(0, 5)),
      )
      .catch(fail);
    search({ status: 'error', limit: '5' })
      .then((r) => live && setFailing(r.traces))
      .catch(fail);
    return () => {
      live = false;
    };
  }, [service, database, start, end, step]);

  return (
    <section className="node-panel" data-testid="node-panel">
      <h2>{service}</h2>
      {database ? (
        <p className="muted">A database: its calls are the client spans of the services that use it (see the edges).</p>
      ) : (
        <>
          {error && (
            <div className="error-box" role="alert">
              {error}
            </div>
          )}
          {points ? (
            <RedCharts
              label={service}
              points={points}
              onPick={(s) => navigate(bucketSearchUrl(service, null, s, step))}
            />
          ) : (
            <p className="muted">Loading the RED charts…</p>
          )}
          <div className="node-trace-lists">
            <div>
              <h3>Slowest traces</h3>
              <TraceList traces={slowest} testId="slowest-traces" />
            </div>
            <div>
              <h3>Failing traces</h3>
              <TraceList traces={failing} testId="failing-traces" />
            </div>
          </div>
        </>
      )}
    </section>
  );
}

export function ServiceGraphPage() {
  const [params, setParams] = useSearchParams();
  const range = params.get('range') ?? '1h';
  const selected = params.get('service');
  // The range is fixed when the range changes, so the panel's queries agree with the graph's.
  const { start, end, step } = useMemo(() => rangeOf(range), [range]);
  const [edges, setEdges] = useState<DependencyEdge[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setEdges(null);
    api
      .dependencies(start, end)
      .then((e) => live && setEdges(e))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [start, end]);

  const laid = useMemo(() => (edges && edges.length ? layout(edges) : null), [edges]);
  const set = (k: string, v: string | null) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next);
  };

  return (
    <div className="service-graph-page">
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
        <span className="muted">edge thickness: calls per second · red: share of failed calls</span>
      </div>
      {error && (
        <div className="error-box" role="alert">
          Service graph: {error}
        </div>
      )}
      {!edges && !error && <p className="notice">Loading the service graph…</p>}
      {edges && !laid && <p className="notice">No calls between services in this range.</p>}
      {laid && (
        <div className="graph-scroll">
          <GraphSvg laid={laid} seconds={end - start} selected={selected} onSelect={(n) => set('service', n)} />
        </div>
      )}
      {selected && laid && (
        <NodePanel
          key={selected}
          service={selected}
          database={laid.nodes.some((n) => n.name === selected && n.database)}
          start={start}
          end={end}
          step={step}
        />
      )}
    </div>
  );
}
