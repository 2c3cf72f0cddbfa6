// Relative ranges, or an absolute start and end.
import { RANGES, type SearchState } from '../lib/searchState';

type Range = Pick<SearchState, 'range' | 'start' | 'end'>;

export function TimeRange({ value, onChange }: { value: Range; onChange: (r: Range) => void }) {
  return (
    <div className="time-range">
      <label>
        Time range
        <select
          aria-label="time range"
          value={value.range}
          onChange={(e) => onChange({ ...value, range: e.target.value })}
        >
          {RANGES.map(([v, label]) => (
            <option key={v} value={v}>
              {label}
            </option>
          ))}
        </select>
      </label>
      {value.range === 'custom' && (
        <>
          <label>
            From
            <input
              type="datetime-local"
              step="1"
              aria-label="start"
              value={value.start}
              onChange={(e) => onChange({ ...value, start: e.target.value })}
            />
          </label>
          <label>
            To
            <input
              type="datetime-local"
              step="1"
              aria-label="end"
              value={value.end}
              onChange={(e) => onChange({ ...value, end: e.target.value })}
            />
          </label>
        </>
      )}
    </div>
  );
}
