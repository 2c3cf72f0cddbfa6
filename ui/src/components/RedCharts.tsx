// Rate, error ratio and latency quantiles of one RED series (uPlot); clicking a point picks that time bucket.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import type { RedPoint } from '../lib/api';
import { fmtDuration } from '../lib/format';

interface Props {
  points: RedPoint[];
  onPick?: (bucketStartSec: number) => void;
  label: string;
}

type Chart = { title: string; series: uPlot.Series[]; values: (p: RedPoint) => (number | null)[]; axis: uPlot.Axis };

const CHARTS: Chart[] = [
  {
    title: 'rate',
    series: [{ label: 'calls/s', stroke: '#4e79a7', fill: '#4e79a722' }],
    values: (p) => [p.rate],
    axis: { values: (_u, vs) => vs.map((v) => `${+v.toFixed(2)}/s`), size: 60 },
  },
  {
    title: 'errors',
    series: [{ label: 'error %', stroke: '#d62728', fill: '#d6272822' }],
    values: (p) => [p.errorRatio === null ? null : p.errorRatio * 100],
    axis: { values: (_u, vs) => vs.map((v) => `${+v.toFixed(1)}%`), size: 60 },
  },
  {
    title: 'duration',
    series: [
      { label: 'p50', stroke: '#59a14f' },
      { label: 'p90', stroke: '#f28e2b' },
      { label: 'p99', stroke: '#b07aa1' },
    ],
    values: (p) => [p.p50, p.p90, p.p99].map((v) => (v === null ? null : v * 1e3)),
    axis: { values: (_u, vs) => vs.map((v) => fmtDuration(v * 1e6)), size: 70 },
  },
];

function RedChart({ chart, points, onPick }: { chart: Chart; points: RedPoint[]; onPick?: (s: number) => void }) {
  const host = useRef<HTMLDivElement>(null);
  const pickRef = useRef(onPick);
  pickRef.current = onPick;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const xs = points.map((p) => Number(BigInt(p.start) / 1_000_000n) / 1000);
    const columns = chart.series.map((_, i) => points.map((p) => chart.values(p)[i]));
    const plot = new uPlot(
      {
        width: el.clientWidth || 300,
        height: 140,
        legend: { show: chart.series.length > 1, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, (max || 1) * 1.15] } },
        axes: [{}, chart.axis],
        series: [{}, ...chart.series.map((s) => ({ ...s, spanGaps: false, points: { show: true, size: 5 } }))],
      },
      [xs, ...columns] as uPlot.AlignedData,
      el,
    );
    // uPlot swallows 'click' on its overlay, so a press and release in place is the click (as in the scatter plot).
    let down = -1;
    plot.over.addEventListener('mousedown', (e) => (down = e.clientX));
    plot.over.addEventListener('mouseup', (e) => {
      if (Math.abs(e.clientX - down) > 3 || !pickRef.current) return;
      const idx = plot.posToIdx(e.clientX - plot.over.getBoundingClientRect().left);
      if (idx != null && xs[idx] !== undefined) pickRef.current(xs[idx]);
    });
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 140 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [chart, points]);

  return (
    <figure className="red-chart" data-testid={`red-${chart.title}`}>
      <figcaption>{chart.title}</figcaption>
      <div ref={host} />
    </figure>
  );
}

export function RedCharts({ points, onPick, label }: Props) {
  return (
    <div className="red-charts" aria-label={`RED of ${label}`}>
      {CHARTS.map((c) => (
        <RedChart key={c.title} chart={c} points={points} onPick={onPick} />
      ))}
    </div>
  );
}
