// Where an API parse error points: "parse error at line 1, col 9: ..." → an offset into the query.
export function errorOffset(query: string, message: string): number | null {
  const m = /line (\d+),\s*col(?:umn)? (\d+)/i.exec(message);
  if (!m) return null;
  const lines = query.split('\n');
  const line = Math.min(Math.max(Number(m[1]), 1), lines.length);
  let offset = 0;
  for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
  return Math.min(offset + Math.max(Number(m[2]) - 1, 0), query.length);
}
