// Helpers of the RED pages: time ranges and the search that shows example traces of one time bucket.

export const RED_RANGES: [string, number][] = [
  ['15m', 15 * 60],
  ['1h', 3600],
  ['6h', 6 * 3600],
  ['24h', 24 * 3600],
];
/** Buckets per chart: enough to see a shape, few enough to click one. */
export const BUCKETS = 30;

/** Range in unix seconds ending now, and the step (seconds) giving BUCKETS buckets. */
export function rangeOf(label: string, nowMs = Date.now()): { start: number; end: number; step: number } {
  const seconds = RED_RANGES.find(([l]) => l === label)?.[1] ?? 3600;
  const end = Math.ceil(nowMs / 1000);
  return { start: end - seconds, end, step: Math.max(1, Math.round(seconds / BUCKETS)) };
}

/** A `datetime-local` value (local time, seconds precision) for the search form. */
export function localInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** The search page's URL for traces of a service (and operation) in one bucket; errors only when asked. */
export function bucketSearchUrl(
  service: string,
  operation: string | null | undefined,
  startSec: number,
  stepSec: number,
  errorsOnly = false,
): string {
  const p = new URLSearchParams({ service });
  if (operation) p.set('name', operation);
  if (errorsOnly) p.set('status', 'error');
  p.set('range', 'custom');
  // Whole seconds around the bucket, so spans at its edges are not lost to rounding.
  p.set('start', localInput(Math.floor(startSec) * 1000));
  p.set('end', localInput(Math.ceil(startSec + stepSec) * 1000));
  return `/?${p}`;
}
