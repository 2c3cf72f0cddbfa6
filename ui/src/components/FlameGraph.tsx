// A flame graph (icicle, root on top) of the trace: spans merged by service+operation path, width by total time.
import { useMemo, useState } from 'react';
import { serviceColor } from '../lib/colors';
import { fmtDuration } from '../lib/format';
import type { Trace } from '../lib/model';
import { pathTree, type PathNode } from '../lib/paths';

interface Box {
  node: PathNode;
  x: number; // fraction of the width
  w: number;
}

/** Lays the path tree out in levels; children share their parent's width in proportion to their time. */
function layout(root: PathNode): Box[][] {
  const levels: Box[][] = [];
  const place = (children: PathNode[], parentTotal: number, x: number, w: number, depth: number) => {
    const sum = children.reduce((t, c) => t + c.total, 0);
    // Parallel children can add up to more than their parent: then they share the parent's width.
    const unit = w / Math.max(sum, parentTotal, 1);
    let cx = x;
    for (const c of children) {
      const cw = c.total * unit;
      if (cw >= 0.0005) {
        (levels[depth] ??= []).push({ node: c, x: cx, w: cw });
        place(c.children, c.total, cx, cw, depth + 1);
      } // thinner boxes cannot be seen: leave them and their subtrees out
      cx += cw;
    }
  };
  place(root.children, root.total, 0, 1, 0);
  return levels;
}

export function FlameGraph({ trace }: { trace: Trace }) {
  const root = useMemo(() => pathTree(trace), [trace]);
  const levels = useMemo(() => layout(root), [root]);
  const [hover, setHover] = useState<PathNode | null>(null);
  return (
    <div className="flame" data-testid="flame-graph">
      <div className="flame-info">
        {hover
          ? `${hover.service}: ${hover.name} — ${hover.count} spans, total ${fmtDuration(hover.total)}, self ${fmtDuration(hover.self)}${hover.errors ? `, ${hover.errors} errors` : ''}`
          : 'Hover a box for its time. Boxes merge spans with the same service and operation path.'}
      </div>
      <div className="flame-levels" style={{ height: levels.length * 22 }}>
        {levels.map((boxes, depth) =>
          boxes.map((b) => (
            <div
              key={b.node.key}
              className={`flame-box ${b.node.errors ? 'error' : ''}`}
              style={{ left: `${b.x * 100}%`, width: `${b.w * 100}%`, top: depth * 22, background: serviceColor(b.node.service) }}
              title={`${b.node.service}: ${b.node.name}`}
              onMouseEnter={() => setHover(b.node)}
            >
              {b.node.name}
            </div>
          )),
        )}
      </div>
    </div>
  );
}
