// Runs the search the URL describes (native or TraceQL) and pages through it with "load more".
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type TraceSummary } from '../lib/api';
import { nativeParams, traceqlParams, type SearchState } from '../lib/searchState';

export interface SearchResults {
  traces: TraceSummary[];
  loading: boolean;
  error: string | null;
  traceqlError: string | null;
  hasMore: boolean;
  loadMore: () => void;
}

export function useSearchResults(state: SearchState, key: string): SearchResults {
  const [traces, setTraces] = useState<TraceSummary[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [traceqlError, setTraceqlError] = useState<string | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const abort = useRef<AbortController | null>(null);

  const run = useCallback(
    async (append: boolean, pageCursor: string | null, current: TraceSummary[]) => {
      abort.current?.abort();
      const ctl = new AbortController();
      abort.current = ctl;
      setLoading(true);
      setError(null);
      setTraceqlError(null);
      try {
        if (state.mode === 'traceql') {
          if (!state.q.trim()) {
            setTraces([]);
            setHasMore(false);
            return;
          }
          // The TraceQL endpoint has no cursor: "load more" asks for a longer list.
          const limit = append ? current.length + state.limit : state.limit;
          const res = await api.traceql(traceqlParams(state, limit), ctl.signal);
          setTraces(res.traces ?? []);
          setHasMore((res.traces ?? []).length >= limit);
        } else {
          const res = await api.search(nativeParams(state, pageCursor ?? undefined), ctl.signal);
          const seen = new Set(current.map((t) => t.traceId));
          const next = append ? [...current, ...res.traces.filter((t) => !seen.has(t.traceId))] : res.traces;
          setTraces(next);
          setCursor(res.nextCursor ?? null);
          setHasMore(!!res.nextCursor);
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        const message = (e as Error).message;
        if (state.mode === 'traceql' && e instanceof ApiError && e.status === 400) setTraceqlError(message);
        else if (state.mode === 'traceql' && e instanceof ApiError && e.status === 404)
          setError('This server has no TraceQL endpoint (/api/v1/traceql).');
        else setError(message);
        if (!append) setTraces([]);
        setHasMore(false);
      } finally {
        if (!ctl.signal.aborted) setLoading(false);
      }
    },
    // `key` is the URL: a new search exactly when it changes.
    [key],
  );

  useEffect(() => {
    run(false, null, []);
    return () => abort.current?.abort();
  }, [run]);

  return {
    traces,
    loading,
    error,
    traceqlError,
    hasMore,
    loadMore: () => run(true, cursor, traces),
  };
}
