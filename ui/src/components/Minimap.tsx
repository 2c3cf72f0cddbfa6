// An overview of every visible row, drawn on a canvas; the frame shows what is on screen, a click jumps there,
// and dragging across it zooms the timeline to that stretch of time.
import { useEffect, useRef, useState } from 'react';
import type { Span } from '../lib/model';
import { serviceColor } from '../lib/colors';

interface Props {
  rows: Span[];
  duration: number;
  first: number; // first row on screen
  last: number;
  view: [number, number]; // the time window the timeline shows
  onJump: (row: number) => void;
  onZoom: (from: number, to: number) => void;
}

const HEIGHT = 60;

export function Minimap({ rows, duration, first, last, view, onJump, onZoom }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [drag, setDrag] = useState<{ x0: number; x1: number } | null>(null);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const width = c.clientWidth || 800;
    c.width = width;
    c.height = HEIGHT;
    const ctx = c.getContext('2d')!;
    ctx.clearRect(0, 0, width, HEIGHT);
    const perPixel = Math.max(1, rows.length / HEIGHT);
    const rowH = Math.max(1, HEIGHT / rows.length);
    // Many rows share a pixel line in large traces: draw every row, the canvas merges them cheaply.
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i];
      ctx.fillStyle = s.status === 'error' ? '#d62728' : serviceColor(s.service);
      const y = perPixel > 1 ? Math.floor(i / perPixel) : i * rowH;
      const x = duration ? (s.start / duration) * width : 0;
      const w = duration ? Math.max(1, (s.duration / duration) * width) : width;
      ctx.fillRect(x, y, w, Math.max(1, rowH - (rowH > 2 ? 1 : 0)));
    }
  }, [rows, duration]);

  const top = rows.length ? (first / rows.length) * 100 : 0;
  const height = rows.length ? Math.max(2, ((last - first + 1) / rows.length) * 100) : 100;
  const fraction = (e: React.MouseEvent) => {
    const rect = e.currentTarget.getBoundingClientRect();
    return {
      x: Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width)),
      y: (e.clientY - rect.top) / rect.height,
    };
  };
  const zoomed = view[0] > 0 || view[1] < duration;
  const shade = drag ? [Math.min(drag.x0, drag.x1), Math.max(drag.x0, drag.x1)] : zoomed ? [view[0] / duration, view[1] / duration] : null;
  return (
    <div
      className="minimap"
      data-testid="minimap"
      onMouseDown={(e) => {
        const { x } = fraction(e);
        setDrag({ x0: x, x1: x });
      }}
      onMouseMove={(e) => drag && setDrag({ ...drag, x1: fraction(e).x })}
      onMouseLeave={() => setDrag(null)}
      onMouseUp={(e) => {
        const { x, y } = fraction(e);
        const start = drag;
        setDrag(null);
        if (start && Math.abs(x - start.x0) * e.currentTarget.clientWidth > 4) {
          onZoom(Math.min(start.x0, x) * duration, Math.max(start.x0, x) * duration);
        } else {
          onJump(Math.floor(y * rows.length));
        }
      }}
    >
      <canvas ref={canvas} />
      <div className="minimap-frame" style={{ top: `${top}%`, height: `${height}%` }} />
      {shade && (
        <div className="minimap-window" style={{ left: `${shade[0] * 100}%`, width: `${(shade[1] - shade[0]) * 100}%` }} />
      )}
    </div>
  );
}
