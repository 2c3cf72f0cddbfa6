//! A rule's state, as in Prometheus: `inactive` → `pending` while the condition holds, `firing` once it has held
//! for the rule's `for`, and back to `inactive` (resolved) when it stops holding — at once, or after
//! `keep_firing_for` without it holding again (which dampens a flapping condition).

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Inactive,
    Pending,
    Firing,
}

/// What a step changed that people are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Fired,
    Resolved,
}

#[derive(Debug, Clone)]
pub struct StateMachine {
    for_: Duration,
    keep_firing_for: Duration,
    pub state: State,
    /// When the current state began.
    pub since: SystemTime,
    /// When the condition began to hold (pending and firing).
    active_at: Option<Instant>,
    /// The latest evaluation at which the condition held.
    last_held: Option<Instant>,
    /// When the current or latest firing began, and when it was resolved.
    pub fired_at: Option<SystemTime>,
    pub resolved_at: Option<SystemTime>,
}

impl StateMachine {
    pub fn new(for_: Duration, keep_firing_for: Duration, now: SystemTime) -> Self {
        Self {
            for_,
            keep_firing_for,
            state: State::Inactive,
            since: now,
            active_at: None,
            last_held: None,
            fired_at: None,
            resolved_at: None,
        }
    }

    /// One evaluation: whether the condition held at `now` (`wall` is the same moment on the wall clock).
    pub fn step(&mut self, holds: bool, now: Instant, wall: SystemTime) -> Option<Transition> {
        if holds {
            self.last_held = Some(now);
        }
        match (self.state, holds) {
            (State::Inactive, true) => {
                self.active_at = Some(now);
                self.enter(State::Pending, wall);
                self.fire_if_due(now, wall)
            }
            (State::Pending, true) => self.fire_if_due(now, wall),
            (State::Pending, false) => {
                self.active_at = None;
                self.enter(State::Inactive, wall);
                None
            }
            (State::Firing, false) => {
                let held_lately = self.last_held.is_some_and(|t| now.duration_since(t) < self.keep_firing_for);
                if held_lately {
                    return None;
                }
                self.active_at = None;
                self.resolved_at = Some(wall);
                self.enter(State::Inactive, wall);
                Some(Transition::Resolved)
            }
            (State::Inactive, false) | (State::Firing, true) => None,
        }
    }

    fn fire_if_due(&mut self, now: Instant, wall: SystemTime) -> Option<Transition> {
        let active_at = self.active_at?;
        if now.duration_since(active_at) < self.for_ {
            return None;
        }
        self.fired_at = Some(wall);
        self.enter(State::Firing, wall);
        Some(Transition::Fired)
    }

    fn enter(&mut self, state: State, wall: SystemTime) {
        self.state = state;
        self.since = wall;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps at one-second evaluations: `pattern` is the condition at each, the answer the transitions.
    fn run(machine: &mut StateMachine, pattern: &str) -> Vec<(usize, State, Option<Transition>)> {
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let at = Duration::from_secs(i as u64);
                let transition = machine.step(c == '1', t0 + at, w0 + at);
                (i, machine.state, transition)
            })
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut machine = StateMachine::new(secs(3), Duration::ZERO, SystemTime::now());
        let steps = run(&mut machine, "011110");
        let states: Vec<State> = steps.iter().map(|s| s.1).collect();
        use State::*;
        assert_eq!(states, [Inactive, Pending, Pending, Pending, Firing, Inactive]);
        let transitions: Vec<(usize, Transition)> = steps.iter().filter_map(|s| s.2.map(|t| (s.0, t))).collect();
        // Held from t=1; fires at t=4, when it has held for 3s; resolves at the first evaluation it does not hold.
        assert_eq!(transitions, [(4, Transition::Fired), (5, Transition::Resolved)]);
        assert!(machine.fired_at.is_some() && machine.resolved_at > machine.fired_at);
    }

    #[test]
    fn zero_for_fires_at_the_first_evaluation() {
        let mut machine = StateMachine::new(Duration::ZERO, Duration::ZERO, SystemTime::now());
        let steps = run(&mut machine, "10");
        assert_eq!(steps[0].2, Some(Transition::Fired));
        assert_eq!(steps[0].1, State::Firing);
        assert_eq!(steps[1].2, Some(Transition::Resolved));
    }

    #[test]
    fn a_break_while_pending_restarts_the_clock_without_notifying() {
        let mut machine = StateMachine::new(secs(3), Duration::ZERO, SystemTime::now());
        // Holds at t=0 and 1, breaks at 2, holds again from t=3: `for` counts from there, so it fires at t=6.
        let steps = run(&mut machine, "11011111");
        let transitions: Vec<(usize, Transition)> = steps.iter().filter_map(|s| s.2.map(|t| (s.0, t))).collect();
        assert_eq!(transitions, [(6, Transition::Fired)]);
        assert_eq!(steps[2].1, State::Inactive);
    }

    #[test]
    fn flapping_notifies_each_firing_and_resolving() {
        let mut machine = StateMachine::new(Duration::ZERO, Duration::ZERO, SystemTime::now());
        let steps = run(&mut machine, "101010");
        let transitions: Vec<Transition> = steps.iter().filter_map(|s| s.2).collect();
        use Transition::*;
        assert_eq!(transitions, [Fired, Resolved, Fired, Resolved, Fired, Resolved]);
    }

    #[test]
    fn keep_firing_for_dampens_flapping() {
        let mut machine = StateMachine::new(Duration::ZERO, secs(2), SystemTime::now());
        // Short gaps (1s) keep it firing; it resolves once the condition has not held for 2s.
        let steps = run(&mut machine, "1010100");
        let transitions: Vec<(usize, Transition)> = steps.iter().filter_map(|s| s.2.map(|t| (s.0, t))).collect();
        assert_eq!(transitions, [(0, Transition::Fired), (6, Transition::Resolved)]);
        assert!(steps[1..6].iter().all(|s| s.1 == State::Firing));
    }
}
