// The timeline: a virtualised list of span rows (only those on screen are in the DOM), ruler and minimap.
import { useEffect, useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { Span, Trace } from '../lib/model';
import type { CriticalPath } from '../lib/tree';
import { Minimap } from './Minimap';
import { TimeRuler } from './TimeRuler';
import { WaterfallRow } from './WaterfallRow';

interface Props {
  trace: Trace;
  rows: Span[];
  collapsed: ReadonlySet<string>;
  selectedId: string | null;
  matches: ReadonlySet<string>;
  critical: CriticalPath | null;
  view: [number, number];
  onZoom: (from: number, to: number) => void;
  onToggle: (span: Span) => void;
  onSelect: (span: Span | null) => void;
}

const ROW_HEIGHT = 24;

export function Waterfall(props: Props) {
  const { trace, rows, collapsed, selectedId, matches, critical, view, onZoom, onToggle, onSelect } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 15,
  });

  // Keep the selected span on screen (selection can come from the keyboard, search or a link).
  useEffect(() => {
    if (!selectedId) return;
    const index = rows.findIndex((s) => s.id === selectedId);
    if (index >= 0) virtualizer.scrollToIndex(index, { align: 'auto' });
  }, [selectedId, rows, virtualizer]);

  const onKeyDown = (e: React.KeyboardEvent) => {
    const index = rows.findIndex((s) => s.id === selectedId);
    const current = index >= 0 ? rows[index] : null;
    const move = (to: number) => {
      e.preventDefault();
      const clamped = Math.max(0, Math.min(rows.length - 1, to));
      if (rows[clamped]) onSelect(rows[clamped]);
    };
    switch (e.key) {
      case 'ArrowDown':
      case 'j':
        return move(index + 1);
      case 'ArrowUp':
      case 'k':
        return move(index < 0 ? 0 : index - 1);
      case 'Home':
        return move(0);
      case 'End':
        return move(rows.length - 1);
      case 'PageDown':
        return move(index + 20);
      case 'PageUp':
        return move(index - 20);
      case 'ArrowRight':
        if (!current) return;
        e.preventDefault();
        if (collapsed.has(current.id)) onToggle(current);
        else if (current.children.length) onSelect(current.children[0]);
        return;
      case 'ArrowLeft':
        if (!current) return;
        e.preventDefault();
        if (current.children.length && !collapsed.has(current.id)) onToggle(current);
        else if (current.parent) onSelect(current.parent);
        return;
      case 'Enter':
      case ' ':
        if (current && current.children.length) {
          e.preventDefault();
          onToggle(current);
        }
        return;
      case 'Escape':
        return onSelect(null);
    }
  };

  const items = virtualizer.getVirtualItems();
  const first = items.length ? items[0].index : 0;
  const last = items.length ? items[items.length - 1].index : 0;
  return (
    <div className="waterfall">
      <Minimap
        rows={rows}
        duration={trace.duration}
        first={first}
        last={last}
        view={view}
        onZoom={onZoom}
        onJump={(row) => virtualizer.scrollToIndex(Math.max(0, Math.min(rows.length - 1, row)), { align: 'center' })}
      />
      <div className="waterfall-head">
        <div className="row-label">
          Service and span&nbsp;<span className="muted">({rows.length} of {trace.spans.length} shown)</span>
        </div>
        <div className="row-track">
          <TimeRuler start={view[0]} end={view[1]} />
        </div>
      </div>
      <div
        className="waterfall-body"
        ref={scroller}
        tabIndex={0}
        role="tree"
        aria-label="spans"
        data-testid="waterfall"
        onKeyDown={onKeyDown}
      >
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((item) => {
            const span = rows[item.index];
            return (
              <div
                key={item.key}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
              >
                <WaterfallRow
                  span={span}
                  view={view}
                  collapsed={collapsed.has(span.id)}
                  selected={span.id === selectedId}
                  matched={matches.has(span.id)}
                  critical={critical?.get(span.id)}
                  onToggle={onToggle}
                  onSelect={onSelect}
                />
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
