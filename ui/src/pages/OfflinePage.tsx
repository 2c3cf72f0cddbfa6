// View a trace file (OTLP JSON or Jaeger JSON) without sending it to the server.
import { useState } from 'react';
import { TraceView } from '../components/TraceView';
import { tracesFromJson } from '../lib/loadFile';
import type { Trace } from '../lib/model';

export function OfflinePage() {
  const [traces, setTraces] = useState<{ name: string; raw: unknown; list: Trace[] } | null>(null);
  const [index, setIndex] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [over, setOver] = useState(false);

  const open = async (file: File) => {
    setError(null);
    try {
      const text = await file.text();
      const list = tracesFromJson(text);
      setTraces({ name: file.name, raw: JSON.parse(text), list });
      setIndex(0);
    } catch (e) {
      setTraces(null);
      setError(`${file.name}: ${(e as Error).message}`);
    }
  };

  return (
    <div className="offline">
      <div
        className={`dropzone ${over ? 'over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          const file = e.dataTransfer.files[0];
          if (file) open(file);
        }}
      >
        <p>Drop an OTLP JSON or Jaeger JSON file here, or</p>
        <input
          type="file"
          accept=".json,application/json"
          aria-label="trace file"
          onChange={(e) => e.target.files?.[0] && open(e.target.files[0])}
        />
        <p className="muted">The file is read in your browser; nothing is sent to the server.</p>
      </div>
      {error && (
        <div className="error-box" role="alert">
          {error}
        </div>
      )}
      {traces && traces.list.length > 1 && (
        <label>
          Trace in {traces.name}:{' '}
          <select aria-label="trace in file" value={index} onChange={(e) => setIndex(Number(e.target.value))}>
            {traces.list.map((t, i) => (
              <option key={t.traceId} value={i}>
                {t.roots[0].service}: {t.roots[0].name} ({t.traceId})
              </option>
            ))}
          </select>
        </label>
      )}
      {traces && (
        <TraceView
          key={`${traces.name}-${index}`}
          trace={traces.list[index]}
          raw={traces.raw}
          critical={null}
          criticalNote="Critical paths are computed by the server; files opened here stay in the browser"
        />
      )}
    </div>
  );
}
