// Search: the form (or TraceQL) on the left, the scatter plot and the list of traces on the right.
import { useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { ResultsList } from '../components/ResultsList';
import { ScatterPlot } from '../components/ScatterPlot';
import { SearchForm } from '../components/SearchForm';
import { useSearchResults } from '../hooks/useSearchResults';
import { fromUrl, toUrl } from '../lib/searchState';

export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const key = params.toString();
  const state = useMemo(() => fromUrl(new URLSearchParams(key)), [key]);
  const results = useSearchResults(state, key);
  const [selected, setSelected] = useState<string[]>([]);
  const toggle = (id: string) =>
    setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id].slice(-2)));

  return (
    <div className="search-page">
      <aside>
        <SearchForm initial={state} traceqlError={results.traceqlError} onSubmit={(s) => setParams(toUrl(s))} />
      </aside>
      <section className="search-results">
        <ScatterPlot traces={results.traces} onOpen={(id) => navigate(`/trace/${id}`)} />
        <div className="results-head">
          <span data-testid="result-count">
            {results.loading ? 'Searching…' : `${results.traces.length} traces`}
          </span>
          <button
            type="button"
            disabled={selected.length !== 2}
            onClick={() => navigate(`/compare?a=${selected[0]}&b=${selected[1]}`)}
          >
            Compare selected ({selected.length}/2)
          </button>
        </div>
        {results.error && (
          <div className="error-box" role="alert">
            {results.error}
          </div>
        )}
        {!results.loading && !results.error && !results.traceqlError && results.traces.length === 0 && (
          <p className="notice">No traces match.</p>
        )}
        <ResultsList traces={results.traces} selected={selected} onToggle={toggle} />
        {results.hasMore && (
          <button type="button" className="load-more" onClick={results.loadMore} disabled={results.loading}>
            Load more
          </button>
        )}
      </section>
    </div>
  );
}
