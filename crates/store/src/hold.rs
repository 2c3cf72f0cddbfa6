//! Traces a cut leaves in the head: those still waiting for a tail sampling decision.
//!
//! Without this, a cut during a trace's decision window would write it to a block, where a later "drop" cannot
//! reach it, and would delete the WAL segments a restart needs to decide it again. So a cut seals only decided
//! traces, and the WAL segments it rolled are kept while they may hold a trace that was held back: the
//! segments up to cut k's roll are removed once no trace held back at cut k is still held back (each such trace
//! was decided since, and then dropped or sealed into a block by a later cut).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use clew_model::{Tenant, TraceId};
use parking_lot::{Mutex, RwLock};

/// Traces not decided yet, per tenant.
pub type Undecided = HashMap<Tenant, HashSet<TraceId>>;

/// Answers the traces a cut must leave in the head (called under the ingest gate, once per cut).
pub type CutHold = Arc<dyn Fn() -> Undecided + Send + Sync>;

#[derive(Default)]
pub(crate) struct Holds {
    source: RwLock<Option<CutHold>>,
    /// Cuts whose WAL segments are not removed yet: the segment their roll reached and what they held back.
    pending: Mutex<VecDeque<(u64, Undecided)>>,
}

impl Holds {
    pub fn set(&self, hold: CutHold) {
        *self.source.write() = Some(hold);
    }

    /// What the cut being made must hold back (nothing without a source).
    pub fn undecided(&self) -> Undecided {
        self.source.read().as_ref().map(|hold| hold()).unwrap_or_default()
    }

    /// Records a cut: its roll reached segment `through`, and it held `held` back.
    pub fn record(&self, through: u64, held: Undecided) {
        self.pending.lock().push_back((through, held));
    }

    /// After the blocks of the cut that rolled through `through` are written: the WAL segments that may go now.
    pub fn removable_through(&self, through: u64) -> Option<u64> {
        let mut pending = self.pending.lock();
        let Some(this) = pending.iter().position(|(t, _)| *t == through) else { return Some(through) };
        let mut removable = 0;
        while removable <= this && disjoint(&pending[removable].1, &pending[this].1) {
            removable += 1;
        }
        let bound = removable.checked_sub(1).map(|last| pending[last].0);
        pending.drain(..removable);
        bound
    }
}

fn disjoint(a: &Undecided, b: &Undecided) -> bool {
    a.iter().all(|(tenant, ids)| b.get(tenant).is_none_or(|other| ids.is_disjoint(other)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ids: &[u8]) -> Undecided {
        let set: HashSet<TraceId> = ids.iter().map(|i| TraceId([*i; 16])).collect();
        if set.is_empty() { Undecided::new() } else { HashMap::from([(Tenant::default(), set)]) }
    }

    #[test]
    fn segments_go_once_nothing_they_held_back_is_still_held() {
        let holds = Holds::default();
        // Nothing held back: everything rolled may go, as without tail sampling.
        holds.record(3, held(&[]));
        assert_eq!(holds.removable_through(3), Some(3));
        // Trace 1 held back at the cut through 5: its segments stay while it is held.
        holds.record(5, held(&[1]));
        assert_eq!(holds.removable_through(5), None);
        holds.record(7, held(&[1, 2]));
        assert_eq!(holds.removable_through(7), None);
        // Trace 1 decided, 2 still waits: segments through 5 may go, not those through 7.
        holds.record(9, held(&[2, 3]));
        assert_eq!(holds.removable_through(9), Some(5));
        // Everything decided.
        holds.record(11, held(&[]));
        assert_eq!(holds.removable_through(11), Some(11));
        // A cut not recorded (no hold configured) removes what it rolled.
        assert_eq!(holds.removable_through(13), Some(13));
    }
}
