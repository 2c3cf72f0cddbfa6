// Find spans in the trace by name, service, id or attribute; Enter jumps to the next match.
interface Props {
  value: string;
  count: number;
  position: number;
  onChange: (v: string) => void;
  onNext: (step: number) => void;
}

export function TraceSearch({ value, count, position, onChange, onNext }: Props) {
  return (
    <div className="trace-search">
      <input
        type="search"
        aria-label="find in trace"
        placeholder="Find in trace"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            onNext(e.shiftKey ? -1 : 1);
          }
        }}
      />
      {value && (
        <span className="muted" data-testid="match-count">
          {!count ? 'no match' : position < 0 ? `${count} ${count === 1 ? 'match' : 'matches'}` : `${position + 1} of ${count}`}
        </span>
      )}
      <button type="button" className="icon" title="Previous (Shift+Enter)" disabled={!count} onClick={() => onNext(-1)}>
        ↑
      </button>
      <button type="button" className="icon" title="Next (Enter)" disabled={!count} onClick={() => onNext(1)}>
        ↓
      </button>
    </div>
  );
}
