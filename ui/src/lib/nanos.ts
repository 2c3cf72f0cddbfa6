// Unix-nanosecond timestamps kept as decimal strings (they exceed 2^53), compared and subtracted without BigInt:
// BigInt per span made opening a 50,000-span trace allocation-bound.

/** A canonical decimal string (no sign, no leading zeros) from a JSON number or string; bad input gives "0". */
export function nanosString(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toString() : '0';
  if (!/^\d+$/.test(s)) return '0';
  return s.length > 1 && s[0] === '0' ? s.replace(/^0+(?=\d)/, '') : s;
}

export function cmpNanos(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** a − b in nanoseconds, exact while the difference is below 2^53 ns (104 days). */
export function diffNanos(a: string, b: string): number {
  const hi = (s: string) => (s.length > 9 ? Number(s.slice(0, s.length - 9)) : 0);
  const lo = (s: string) => Number(s.length > 9 ? s.slice(s.length - 9) : s);
  return (hi(a) - hi(b)) * 1e9 + (lo(a) - lo(b));
}
