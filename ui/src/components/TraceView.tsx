// A whole trace: header, view tabs (timeline, statistics, flame graph, JSON), find, critical path, details.
import { useCallback, useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import type { Span, Trace } from '../lib/model';
import { revealed, spanMatches, visibleSpans, type CriticalPath } from '../lib/tree';
import { FlameGraph } from './FlameGraph';
import { downloadJson, RawJson } from './RawJson';
import { SpanDetail } from './SpanDetail';
import { SamplingNote } from './SamplingNote';
import { StatsTable } from './StatsTable';
import { TraceHeader } from './TraceHeader';
import { TraceSearch } from './TraceSearch';
import { Waterfall } from './Waterfall';

/** Is the span inside a collapsed subtree? */
function hiddenBy(collapsed: ReadonlySet<string>, span: Span): boolean {
  if (collapsed.size === 0) return false;
  for (let p = span.parent; p; p = p.parent) if (collapsed.has(p.id)) return true;
  return false;
}

type Tab = 'timeline' | 'stats' | 'flame' | 'json';
const TABS: [Tab, string][] = [
  ['timeline', 'Timeline'],
  ['stats', 'Statistics'],
  ['flame', 'Flame graph'],
  ['json', 'JSON'],
];

interface Props {
  trace: Trace;
  raw: unknown;
  critical: CriticalPath | null;
  criticalNote: string | null; // why there is no critical path, when there is none
  initialSpanId?: string | null;
  onServer?: boolean; // stored traces can be compared; files opened in the browser cannot
}

export function TraceView({ trace, raw, critical, criticalNote, initialSpanId, onServer = false }: Props) {
  const [tab, setTab] = useState<Tab>('timeline');
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(() => new Set());
  const [selectedId, setSelectedId] = useState<string | null>(
    initialSpanId && trace.byId.has(initialSpanId) ? initialSpanId : null,
  );
  const [showCritical, setShowCritical] = useState(true);
  const [needle, setNeedle] = useState('');
  const [matchPos, setMatchPos] = useState(0);
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const view: [number, number] = zoom ?? [0, trace.duration];

  const rows = useMemo(() => visibleSpans(trace, collapsed), [trace, collapsed]);
  const matchList = useMemo(
    () => (needle.trim() ? trace.spans.filter((s) => spanMatches(s, needle.trim())) : []),
    [trace, needle],
  );
  const matches = useMemo(() => new Set(matchList.map((s) => s.id)), [matchList]);

  const select = useCallback(
    (span: Span | null) => {
      if (span) setCollapsed((c) => (hiddenBy(c, span) ? revealed(c, span) : c));
      setSelectedId(span ? span.id : null);
    },
    [],
  );
  const toggle = useCallback((span: Span) => {
    setCollapsed((c) => {
      const next = new Set(c);
      if (next.has(span.id)) next.delete(span.id);
      else next.add(span.id);
      return next;
    });
  }, []);
  const next = (step: number) => {
    if (!matchList.length) return;
    const pos = (matchPos + step + matchList.length) % matchList.length;
    setMatchPos(pos);
    select(matchList[pos]);
  };
  const selected = selectedId ? trace.byId.get(selectedId) ?? null : null;

  return (
    <div className="trace-view">
      <TraceHeader trace={trace} />
      {onServer && <SamplingNote traceId={trace.traceId} />}
      <div className="toolbar">
        <div className="tabs" role="tablist">
          {TABS.map(([t, label]) => (
            <button key={t} type="button" role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
              {label}
            </button>
          ))}
        </div>
        <TraceSearch
          value={needle}
          count={matchList.length}
          position={matchPos}
          onChange={(v) => {
            setNeedle(v);
            setMatchPos(-1);
          }}
          onNext={next}
        />
        <label className="check" title={criticalNote ?? 'The spans that determined the trace duration'}>
          <input
            type="checkbox"
            aria-label="critical path"
            checked={showCritical && !!critical}
            disabled={!critical}
            onChange={(e) => setShowCritical(e.target.checked)}
          />
          Critical path
        </label>
        {zoom && (
          <button type="button" onClick={() => setZoom(null)}>
            Reset zoom
          </button>
        )}
        <button type="button" onClick={() => setCollapsed(new Set(trace.spans.filter((s) => s.children.length).map((s) => s.id)))}>
          Collapse all
        </button>
        <button type="button" onClick={() => setCollapsed(new Set())}>
          Expand all
        </button>
        <button type="button" onClick={() => downloadJson(raw, `trace-${trace.traceId}.json`)}>
          Download JSON
        </button>
        {onServer && (
          <Link to={`/compare?a=${trace.traceId}`} className="button-link">
            Compare with…
          </Link>
        )}
      </div>
      {tab === 'timeline' && (
        <div className={`timeline-split ${selected ? 'with-detail' : ''}`}>
          <Waterfall
            trace={trace}
            rows={rows}
            collapsed={collapsed}
            selectedId={selectedId}
            matches={matches}
            critical={showCritical ? critical : null}
            view={view}
            onZoom={(from, to) => setZoom(to > from ? [from, to] : null)}
            onToggle={toggle}
            onSelect={select}
          />
          {selected && <SpanDetail trace={trace} span={selected} onClose={() => select(null)} onSelectSpan={select} />}
        </div>
      )}
      {tab === 'stats' && <StatsTable trace={trace} />}
      {tab === 'flame' && <FlameGraph trace={trace} />}
      {tab === 'json' && <RawJson raw={raw} />}
    </div>
  );
}
