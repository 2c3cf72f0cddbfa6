// Per service and operation: span count, errors, total and self time (where the time went), most self time first.
import { useMemo } from 'react';
import { serviceColor } from '../lib/colors';
import { fmtDuration } from '../lib/format';
import type { Trace } from '../lib/model';
import { operationStats } from '../lib/stats';

export function StatsTable({ trace }: { trace: Trace }) {
  const stats = useMemo(() => operationStats(trace), [trace]);
  return (
    <table className="stats" data-testid="stats">
      <thead>
        <tr>
          <th>Service</th>
          <th>Operation</th>
          <th>Count</th>
          <th>Errors</th>
          <th>Total time</th>
          <th>Self time</th>
          <th>Self %</th>
          <th>Max</th>
        </tr>
      </thead>
      <tbody>
        {stats.map((s) => (
          <tr key={`${s.service}\u0000${s.name}`}>
            <td>
              <span className="swatch" style={{ background: serviceColor(s.service) }} />
              {s.service}
            </td>
            <td>{s.name}</td>
            <td className="num">{s.count}</td>
            <td className={`num ${s.errors ? 'error-text' : ''}`}>{s.errors}</td>
            <td className="num">{fmtDuration(s.total)}</td>
            <td className="num">{fmtDuration(s.self)}</td>
            <td className="num">{trace.duration ? ((100 * s.self) / trace.duration).toFixed(1) : '0'}%</td>
            <td className="num">{fmtDuration(s.max)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
