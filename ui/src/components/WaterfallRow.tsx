// One span on the timeline: tree handle and label on the left, its bar (and critical-path segments) on the right.
import { memo } from 'react';
import { serviceColor } from '../lib/colors';
import { fmtDuration } from '../lib/format';
import type { Span } from '../lib/model';

interface Props {
  span: Span;
  view: [number, number]; // the time window shown, ns since trace start
  collapsed: boolean;
  selected: boolean;
  matched: boolean;
  critical: [number, number][] | undefined;
  onToggle: (span: Span) => void;
  onSelect: (span: Span) => void;
}


export const WaterfallRow = memo(function WaterfallRow(props: Props) {
  const { span, view, collapsed, selected, matched, critical, onToggle, onSelect } = props;
  const width = view[1] - view[0];
  const at = (t: number) => (width > 0 ? (100 * (t - view[0])) / width : 0); // position, % of the track
  const len = (d: number) => (width > 0 ? (100 * d) / width : 0);
  // The duration goes right of the bar, else left of it, else (a bar across the whole track) inside it.
  const label =
    at(span.end) <= 85
      ? { inside: false, style: { left: `${Math.max(0, at(span.end)) + 0.5}%` } }
      : at(span.start) >= 15
        ? { inside: false, style: { right: `${100 - at(span.start) + 0.5}%` } }
        : { inside: true, style: { left: `${Math.max(0, at(span.start)) + 0.5}%` } };
  const color = serviceColor(span.service);
  const classes = ['row', selected && 'selected', matched && 'matched', critical && 'critical', span.status === 'error' && 'error']
    .filter(Boolean)
    .join(' ');
  return (
    <div
      className={classes}
      data-span-id={span.id}
      role="treeitem"
      aria-level={span.depth + 1}
      aria-expanded={span.children.length ? !collapsed : undefined}
      aria-selected={selected}
      onClick={() => onSelect(span)}
    >
      <div className="row-label" style={{ paddingLeft: 4 + Math.min(span.depth, 40) * 12 }}>
        {span.children.length > 0 ? (
          <button
            type="button"
            className="toggle"
            aria-label={collapsed ? 'expand' : 'collapse'}
            onClick={(e) => {
              e.stopPropagation();
              onToggle(span);
            }}
          >
            {collapsed ? '▸' : '▾'}
          </button>
        ) : (
          <span className="toggle-space" />
        )}
        <span className="swatch" style={{ background: color }} />
        <span className="row-service">{span.service}</span>
        <span className="row-name">{span.name}</span>
        {span.status === 'error' && (
          <span className="error-mark" title={span.statusMessage || 'error'}>
            !
          </span>
        )}
        {collapsed && <span className="hidden-count">+{span.children.length}</span>}
      </div>
      <div className="row-track">
        <div
          className="bar"
          style={{ left: `${at(span.start)}%`, width: `max(1px, ${len(span.duration)}%)`, background: color }}
        />
        {critical?.map(([s, e], i) => (
          <div
            key={i}
            className="critical-segment"
            style={{ left: `${at(s)}%`, width: `max(1px, ${len(e - s)}%)` }}
          />
        ))}
        {span.events.map((ev, i) => (
          <div key={i} className="event-tick" style={{ left: `${at(ev.time)}%` }} title={ev.name} />
        ))}
        <span className={`bar-label ${label.inside ? 'inside' : ''}`} style={label.style}>
          {fmtDuration(span.duration)}
        </span>
      </div>
    </div>
  );
});
