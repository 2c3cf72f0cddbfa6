// Tick marks over the shown stretch of the timeline at round steps (1, 2, 5 × 10^n ns), plus both ends.
import { fmtDuration } from '../lib/format';

export function niceStep(duration: number, target = 6): number {
  const raw = Math.max(duration / target, 1);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10;
  return unit * magnitude;
}

export function TimeRuler({ start, end }: { start: number; end: number }) {
  const span = end - start;
  const step = niceStep(span);
  const ticks: number[] = [start];
  for (let t = Math.ceil((start + step / 2) / step) * step; t < end - step / 2; t += step) ticks.push(t);
  ticks.push(end);
  return (
    <div className="ruler" data-testid="time-ruler">
      {ticks.map((t) => (
        <span key={t} className="tick" style={{ left: `${span ? (100 * (t - start)) / span : 0}%` }}>
          {fmtDuration(t)}
        </span>
      ))}
    </div>
  );
}
