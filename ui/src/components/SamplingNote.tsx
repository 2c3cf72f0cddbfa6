// A stored trace's tail sampling decision (which policy kept it, its weight and threshold), as stored with the
// trace. Nothing is shown when there is none (the trace was stored without tail sampling).
import { useEffect, useState } from 'react';
import { api, type SamplingDecision } from '../lib/api';

export function SamplingNote({ traceId }: { traceId: string }) {
  const [decision, setDecision] = useState<SamplingDecision | null>(null);

  useEffect(() => {
    let live = true;
    setDecision(null);
    api
      .samplingDecision(traceId)
      .then((d) => live && setDecision(d))
      .catch(() => {
        /* no decision recorded: nothing to show */
      });
    return () => {
      live = false;
    };
  }, [traceId]);

  if (!decision) return null;
  return (
    <div className="facts-line sampling-note" data-testid="sampling-decision">
      <span>
        Sampling:{' '}
        {decision.policy ? (
          <>
            kept by <strong>{decision.policy}</strong>
          </>
        ) : decision.sampled ? (
          'kept'
        ) : (
          'not sampled by any policy'
        )}
      </span>
      <span>weight {decision.weight}</span>
      {decision.threshold && <span className="mono">threshold th:{decision.threshold}</span>}
    </div>
  );
}
