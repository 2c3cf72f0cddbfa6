// Human-readable durations and times.

export function fmtDuration(ns: number): string {
  const abs = Math.abs(ns);
  const sign = ns < 0 ? '-' : '';
  if (abs < 1e3) return `${sign}${abs.toFixed(0)} ns`;
  if (abs < 1e6) return `${sign}${trim(abs / 1e3)} µs`;
  if (abs < 1e9) return `${sign}${trim(abs / 1e6)} ms`;
  if (abs < 60e9) return `${sign}${trim(abs / 1e9)} s`;
  return `${sign}${trim(abs / 60e9)} min`;
}

function trim(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function fmtTime(unixNs: bigint | string | number): string {
  const ms = Number(BigInt(unixNs) / 1_000_000n);
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}
