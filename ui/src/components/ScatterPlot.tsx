// Duration over time of the found traces (uPlot); clicking a dot opens that trace.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import type { TraceSummary } from '../lib/api';
import { fmtDuration } from '../lib/format';

interface Props {
  traces: TraceSummary[];
  onOpen: (traceId: string) => void;
}

export function ScatterPlot({ traces, onOpen }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const openRef = useRef(onOpen);
  openRef.current = onOpen;

  useEffect(() => {
    const el = host.current;
    if (!el || traces.length === 0) return;
    // uPlot wants x ascending; errors get their own series so they can be red.
    const sorted = [...traces].sort((a, b) => Number(BigInt(a.startTimeUnixNano) - BigInt(b.startTimeUnixNano)));
    const xs = sorted.map((t) => Number(BigInt(t.startTimeUnixNano) / 1_000_000n) / 1000);
    const ms = (t: TraceSummary) => Number(t.durationNanos) / 1e6;
    const ok = sorted.map((t) => (t.errorCount > 0 ? null : ms(t)));
    const err = sorted.map((t) => (t.errorCount > 0 ? ms(t) : null));
    const points = (stroke: string, fill: string) => ({ show: true, size: 8, stroke, fill });
    const plot = new uPlot(
      {
        width: el.clientWidth || 600,
        height: 180,
        legend: { show: false },
        cursor: { points: { size: 10 }, drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, (max || 1) * 1.15] } },
        axes: [{}, { values: (_u, vals) => vals.map((v) => fmtDuration(v * 1e6)), size: 70 }],
        series: [
          {},
          { label: 'ok', stroke: '#4e79a7', paths: () => null, points: points('#4e79a7', '#4e79a788') },
          { label: 'error', stroke: '#d62728', paths: () => null, points: points('#d62728', '#d6272888') },
        ],
      },
      [xs, ok, err],
      el,
    );
    // uPlot's own mouse handling swallows 'click' on its overlay, so a press and release in place is the click.
    let down = -1;
    plot.over.addEventListener('mousedown', (e) => (down = e.clientX));
    plot.over.addEventListener('mouseup', (e) => {
      if (Math.abs(e.clientX - down) > 3) return;
      // The trace nearest in time (offsetX would be relative to the cursor's dot when the click lands on it).
      const idx = plot.posToIdx(e.clientX - plot.over.getBoundingClientRect().left);
      if (idx != null && sorted[idx]) openRef.current(sorted[idx].traceId);
    });
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [traces]);

  if (traces.length === 0) return null;
  return <div className="scatter" ref={host} data-testid="scatter" aria-label="duration over time" />;
}
