// One stored trace, loaded from the API by id.
import { useEffect, useState } from 'react';
import { useParams, useSearchParams } from 'react-router-dom';
import { TraceView } from '../components/TraceView';
import { api } from '../lib/api';
import { loadCriticalPath } from '../lib/criticalPath';
import { buildTrace, type Trace } from '../lib/model';
import { parseOtlp } from '../lib/otlp';
import type { CriticalPath } from '../lib/tree';

interface Loaded {
  trace: Trace;
  raw: unknown;
  critical: CriticalPath | null;
  note: string | null;
}

export function TracePage() {
  const { traceId = '' } = useParams();
  const [params] = useSearchParams();
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setLoaded(null);
    setError(null);
    (async () => {
      performance.mark('clew:trace-requested');
      const raw = await api.trace(traceId);
      performance.mark('clew:trace-received');
      const trace = buildTrace(parseOtlp(raw));
      performance.mark('clew:trace-built');
      if (!live) return;
      // Show the trace at once; the critical path follows when the server has computed it.
      setLoaded({ trace, raw, critical: null, note: 'Computing the critical path…' });
      const { path, note } = await loadCriticalPath(trace);
      if (live) setLoaded({ trace, raw, critical: path, note });
    })().catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [traceId]);

  if (error)
    return (
      <div className="error-box" role="alert">
        Trace {traceId}: {error}
      </div>
    );
  if (!loaded) return <p className="notice">Loading trace {traceId}…</p>;
  return (
    <TraceView
      key={traceId}
      trace={loaded.trace}
      raw={loaded.raw}
      critical={loaded.critical}
      criticalNote={loaded.note}
      initialSpanId={params.get('span')}
      onServer
    />
  );
}
