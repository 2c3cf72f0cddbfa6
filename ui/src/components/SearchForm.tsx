// The search form: a draft of the search that becomes the URL when submitted.
import { useEffect, useState } from 'react';
import { api } from '../lib/api';
import type { SearchState } from '../lib/searchState';
import { AttrFilters } from './AttrFilters';
import { TimeRange } from './TimeRange';
import { TraceQLEditor } from './TraceQLEditor';

interface Props {
  initial: SearchState;
  traceqlError: string | null;
  onSubmit: (s: SearchState) => void;
}

export function SearchForm({ initial, traceqlError, onSubmit }: Props) {
  const [draft, setDraft] = useState(initial);
  useEffect(() => setDraft(initial), [initial]);
  const set = (patch: Partial<SearchState>) => setDraft((d) => ({ ...d, ...patch }));
  const services = useLoad(() => api.services(), []);
  const operations = useLoad(() => (draft.service ? api.operations(draft.service) : Promise.resolve([])), [draft.service]);
  const attributeKeys = useLoad(() => api.attributes().then((a) => [...new Set(a.map((x) => x.key))]), []);

  return (
    <form
      className="search-form"
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit(draft);
      }}
    >
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={draft.mode === 'form'} onClick={() => set({ mode: 'form' })}>
          Filters
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={draft.mode === 'traceql'}
          onClick={() => set({ mode: 'traceql' })}
        >
          TraceQL
        </button>
      </div>
      {draft.mode === 'form' ? (
        <>
          <label>
            Service
            <select aria-label="service" value={draft.service} onChange={(e) => set({ service: e.target.value, name: '' })}>
              <option value="">any service</option>
              {services.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Span name
            <input
              aria-label="span name"
              list="operations"
              placeholder="any"
              value={draft.name}
              onChange={(e) => set({ name: e.target.value })}
            />
            <datalist id="operations">
              {operations.map((o) => (
                <option key={o} value={o} />
              ))}
            </datalist>
          </label>
          <label>Attributes</label>
          <AttrFilters filters={draft.attrs} keys={attributeKeys} onChange={(attrs) => set({ attrs })} />
          <div className="form-row">
            <label>
              Min duration
              <input aria-label="min duration" placeholder="e.g. 100ms" value={draft.minDuration} onChange={(e) => set({ minDuration: e.target.value })} />
            </label>
            <label>
              Max duration
              <input aria-label="max duration" placeholder="e.g. 2s" value={draft.maxDuration} onChange={(e) => set({ maxDuration: e.target.value })} />
            </label>
          </div>
          <div className="form-row">
            <label>
              Status
              <select aria-label="status" value={draft.status} onChange={(e) => set({ status: e.target.value })}>
                <option value="">any</option>
                <option value="error">error</option>
                <option value="ok">ok</option>
                <option value="unset">unset</option>
              </select>
            </label>
            <label>
              Kind
              <select aria-label="kind" value={draft.kind} onChange={(e) => set({ kind: e.target.value })}>
                <option value="">any</option>
                {['server', 'client', 'producer', 'consumer', 'internal'].map((k) => (
                  <option key={k}>{k}</option>
                ))}
              </select>
            </label>
          </div>
        </>
      ) : (
        <TraceQLEditor
          value={draft.q}
          error={traceqlError}
          attributeKeys={attributeKeys}
          onChange={(q) => set({ q })}
          onRun={(q) => onSubmit({ ...draft, q })}
        />
      )}
      <TimeRange value={draft} onChange={(r) => set(r)} />
      <label>
        Limit
        <input
          aria-label="limit"
          type="number"
          min={1}
          max={1000}
          value={draft.limit}
          onChange={(e) => set({ limit: Math.max(1, Math.min(1000, Number(e.target.value) || 20)) })}
        />
      </label>
      <button type="submit" className="primary">
        Find traces
      </button>
    </form>
  );
}

function useLoad<T>(load: () => Promise<T[]>, deps: unknown[]): T[] {
  const [value, setValue] = useState<T[]>([]);
  useEffect(() => {
    let live = true;
    load().then((v) => live && setValue(v), () => live && setValue([]));
    return () => {
      live = false;
    };
    // The caller lists what `load` depends on.
  }, deps);
  return value;
}
