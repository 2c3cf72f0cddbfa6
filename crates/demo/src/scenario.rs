//! The failure scenarios: named switches shared by every service, flipped at start or at run time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One classic failure that tracing exists to explain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    SlowPaymentProvider,
    DbTimeout,
    NPlusOne,
    RetryLoop,
    SequentialCalls,
    BrokenContext,
    RareServiceEverywhere,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::SlowPaymentProvider,
        Scenario::DbTimeout,
        Scenario::NPlusOne,
        Scenario::RetryLoop,
        Scenario::SequentialCalls,
        Scenario::BrokenContext,
        Scenario::RareServiceEverywhere,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::SlowPaymentProvider => "slow-payment-provider",
            Scenario::DbTimeout => "db-timeout",
            Scenario::NPlusOne => "n-plus-one",
            Scenario::RetryLoop => "retry-loop",
            Scenario::SequentialCalls => "sequential-calls",
            Scenario::BrokenContext => "broken-context",
            Scenario::RareServiceEverywhere => "rare-service-everywhere",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::SlowPaymentProvider => "the external payment provider takes over a second to answer",
            Scenario::DbTimeout => {
                "a background job locks the inventory database; the UPDATE times out three calls deep and the \
                 shopper sees a vague 500"
            }
            Scenario::NPlusOne => "inventory loads every item with its own SELECT instead of one query",
            Scenario::RetryLoop => "the payment provider fails with 503 and payment retries until it gives in",
            Scenario::SequentialCalls => "frontend calls auth and cart one after the other instead of in parallel",
            Scenario::BrokenContext => {
                "checkout calls payment through a legacy client that drops the trace context: two fragments, \
                 joined only by x-request-id"
            }
            Scenario::RareServiceEverywhere => "fraud-check, meant for large orders only, is called on every order",
        }
    }

    /// A TraceQL query that finds a trace showing this scenario.
    pub fn traceql(self) -> &'static str {
        match self {
            Scenario::SlowPaymentProvider => {
                r#"{ resource.service.name = "payment-provider" && kind = server && duration > 1s }"#
            }
            Scenario::DbTimeout => {
                r#"{ resource.service.name = "inventory" && span.db.system.name = "sqlite" && status = error }"#
            }
            Scenario::NPlusOne => {
                r#"{ resource.service.name = "inventory" && span.db.operation.name = "SELECT" } | count() > 3"#
            }
            Scenario::RetryLoop => r#"{ resource.service.name = "payment" && span.http.request.resend_count > 0 }"#,
            Scenario::SequentialCalls => r#"{ resource.service.name = "frontend" && span.app.fanout = "sequential" }"#,
            Scenario::BrokenContext => r#"{ trace:rootService = "payment" }"#,
            Scenario::RareServiceEverywhere => r#"{ resource.service.name = "fraud-check" }"#,
        }
    }
}

/// The switches, shared by every service of the shop.
#[derive(Clone, Default)]
pub struct Scenarios {
    flags: Arc<[AtomicBool; 7]>,
}

impl Scenarios {
    pub fn new(active: &[Scenario]) -> Self {
        let scenarios = Scenarios::default();
        for &s in active {
            scenarios.set(s, true);
        }
        scenarios
    }

    fn index(scenario: Scenario) -> usize {
        Scenario::ALL.iter().position(|&s| s == scenario).expect("every scenario is listed in ALL")
    }

    pub fn is_on(&self, scenario: Scenario) -> bool {
        self.flags[Self::index(scenario)].load(Ordering::Relaxed)
    }

    pub fn set(&self, scenario: Scenario, on: bool) {
        self.flags[Self::index(scenario)].store(on, Ordering::Relaxed);
    }

    pub fn active(&self) -> Vec<Scenario> {
        Scenario::ALL.into_iter().filter(|&s| self.is_on(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_switches_are_independent() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::parse(scenario.name()), Some(scenario));
            assert!(scenario.traceql().starts_with('{') && !scenario.description().is_empty());
        }
        assert_eq!(Scenario::parse("nope"), None);
        let scenarios = Scenarios::new(&[Scenario::RetryLoop]);
        scenarios.set(Scenario::DbTimeout, true);
        scenarios.set(Scenario::RetryLoop, false);
        assert_eq!(scenarios.active(), vec![Scenario::DbTimeout]);
    }
}
