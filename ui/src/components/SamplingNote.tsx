// A stored trace's tail sampling decision (which policy kept it, its weight and threshold), when the server knows
// one. Nothing is shown when it does not (tail sampling off, or the decision no longer remembered).
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
