//! Per-policy decision counts for the sampling API: the same numbers as the `clew_sampling_*` metrics, kept
//! in plain arrays because a metric family cannot be listed back.

use serde::Serialize;

use super::policy::Vote;

const VOTES: [Vote; 5] = [Vote::Sampled, Vote::NotSampled, Vote::InvertSampled, Vote::InvertNotSampled, Vote::Dropped];

/// Counters of one policy (or, at index `policies.len()`, of decisions no policy claimed).
#[derive(Debug, Clone, Copy, Default)]
struct PolicyCounts {
    /// Final decisions this policy made: kept, not kept.
    decided: [u64; 2],
    /// This policy's votes, in [`VOTES`] order.
    votes: [u64; 5],
}

#[derive(Debug, Default)]
pub struct DecisionCounts {
    policies: Vec<PolicyCounts>,
}

impl DecisionCounts {
    pub fn new(policies: usize) -> Self {
        Self { policies: vec![PolicyCounts::default(); policies + 1] }
    }

    pub fn vote(&mut self, policy: usize, vote: Vote) {
        let slot = VOTES.iter().position(|v| *v == vote).expect("every vote is listed");
        self.policies[policy].votes[slot] += 1;
    }

    /// A final decision; `None` when no policy decided (nothing sampled it).
    pub fn decided(&mut self, policy: Option<usize>, sampled: bool) {
        let last = self.policies.len() - 1;
        self.policies[policy.unwrap_or(last)].decided[usize::from(!sampled)] += 1;
    }

    /// Counts of policy `i`, or of undecided traces for `i == number of policies`.
    pub fn snapshot(&self, i: usize) -> PolicySnapshot {
        let c = &self.policies[i];
        PolicySnapshot {
            sampled: c.decided[0],
            not_sampled: c.decided[1],
            votes: VoteSnapshot {
                sampled: c.votes[0],
                not_sampled: c.votes[1],
                inverted_sampled: c.votes[2],
                inverted_not_sampled: c.votes[3],
                dropped: c.votes[4],
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySnapshot {
    /// Traces this policy kept (it was the deciding policy).
    pub sampled: u64,
    /// Traces this policy dropped (a `drop` policy or an inverted match's veto).
    pub not_sampled: u64,
    pub votes: VoteSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteSnapshot {
    pub sampled: u64,
    pub not_sampled: u64,
    pub inverted_sampled: u64,
    pub inverted_not_sampled: u64,
    pub dropped: u64,
}

/// Everything the sampler has counted, for `GET /api/v1/sampling`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingCounts {
    /// Per top-level policy, in configuration order.
    pub policies: Vec<NamedCounts>,
    /// Decisions no policy made: traces nothing sampled.
    pub no_policy: PolicySnapshot,
    pub waiting_traces: usize,
    pub evictions: u64,
    /// Spans that arrived after their trace was decided, by that decision.
    pub late_spans: LateSpans,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedCounts {
    pub name: String,
    #[serde(flatten)]
    pub counts: PolicySnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LateSpans {
    pub sampled: u64,
    pub not_sampled: u64,
}
