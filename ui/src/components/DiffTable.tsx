// The structural diff: one row per service+operation path, biggest change first.
import { serviceColor } from '../lib/colors';
import type { DiffRow } from '../lib/compare';
import { fmtDuration } from '../lib/format';

const PRESENCE = { both: 'in both', 'only-a': 'only in A', 'only-b': 'only in B' };

export function DiffTable({ rows }: { rows: DiffRow[] }) {
  return (
    <table className="diff" data-testid="diff">
      <thead>
        <tr>
          <th>Path (service: operation)</th>
          <th>Where</th>
          <th>Spans A</th>
          <th>Spans B</th>
          <th>Time A</th>
          <th>Time B</th>
          <th>Change</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.key} className={r.presence} data-presence={r.presence}>
            <td title={r.key}>
              <span className="muted">{'› '.repeat(r.depth)}</span>
              <span className="swatch" style={{ background: serviceColor(r.service) }} />
              {r.service}: {r.name}
            </td>
            <td>{PRESENCE[r.presence]}</td>
            <td className="num">{r.countA}</td>
            <td className="num">{r.countB}</td>
            <td className="num">{r.countA ? fmtDuration(r.totalA) : '—'}</td>
            <td className="num">{r.countB ? fmtDuration(r.totalB) : '—'}</td>
            <td className={`num ${r.delta > 0 ? 'slower' : r.delta < 0 ? 'faster' : ''}`}>
              {r.delta > 0 ? '+' : ''}
              {fmtDuration(r.delta)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
