// The trace as received (OTLP JSON), and a download of it.
import { useMemo } from 'react';

const PREVIEW_CHARS = 200_000;

export function downloadJson(raw: unknown, name: string) {
  const blob = new Blob([JSON.stringify(raw, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function RawJson({ raw }: { raw: unknown }) {
  const text = useMemo(() => JSON.stringify(raw, null, 2), [raw]);
  const cut = text.length > PREVIEW_CHARS;
  return (
    <div className="raw-json">
      {cut && <p className="notice">Showing the first {PREVIEW_CHARS.toLocaleString()} characters; download for all.</p>}
      <pre data-testid="raw-json">{cut ? text.slice(0, PREVIEW_CHARS) + '\n…' : text}</pre>
    </div>
  );
}
