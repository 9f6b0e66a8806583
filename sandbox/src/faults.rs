//! Fault injection: rules matched per request by verb, resource, namespace
//! and name, firing with a probability (drawn from a seeded `StdRng`, so a
//! run can be replayed with the same seed) and optionally a limited number of
//! times. Faults never apply to the controllers' system identity.
//!
//! ```
//! use std::time::Duration;
//! use dbops_sandbox::faults::{FaultAction, FaultRule};
//! # let faults = dbops_sandbox::faults::Faults::new(7);
//! // The next 2 updates of StatefulSets fail with 409 Conflict.
//! faults.add(FaultRule::new(FaultAction::Conflict).verb("update").resource("statefulsets").times(2));
//! // Half of all GETs are slowed down by 50 ms.
//! faults.add(FaultRule::new(FaultAction::Latency(Duration::from_millis(50))).verb("get").probability(0.5));
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::status::{ApiError, Res};

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Delay the response.
    Latency(Duration),
    /// 429 TooManyRequests with `Retry-After`.
    TooManyRequests {
        /// Seconds in `Retry-After` and `details.retryAfterSeconds`.
        retry_after_secs: u64,
    },
    /// 500 InternalError.
    ServerError,
    /// 409 Conflict (only for update and patch).
    Conflict,
    /// Close watch streams (only for watch): after this many events and/or
    /// after this long, whichever comes first.
    CloseWatch {
        /// Close after sending this many events.
        after_events: Option<usize>,
        /// Close after this long.
        after: Option<Duration>,
    },
}

/// One fault rule. Unset filters match everything.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: Option<String>,
    /// Plural resource name, e.g. `pods`.
    pub resource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// What happens.
    pub action: FaultAction,
    /// Chance of firing on a matching request, 0..=1.
    pub probability: f64,
    /// Fire at most this many times.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule that fires on every request.
    pub fn new(action: FaultAction) -> Self {
        Self {
            verb: None,
            resource: None,
            namespace: None,
            name: None,
            action,
            probability: 1.0,
            times: None,
        }
    }

    /// Only for this verb.
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.into());
        self
    }

    /// Only for this resource (plural).
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Only in this namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only for this object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Fire with this probability.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, req: &FaultRequest<'_>) -> bool {
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        let applicable = match self.action {
            FaultAction::Conflict => matches!(req.verb, "update" | "patch"),
            FaultAction::CloseWatch { .. } => req.verb == "watch",
            _ => true,
        };
        applicable
            && eq(&self.verb, Some(req.verb))
            && eq(&self.resource, Some(req.resource))
            && eq(&self.namespace, req.namespace)
            && eq(&self.name, req.name)
    }
}

/// Identifies an added rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

/// The request a fault decision is made for.
#[derive(Debug, Clone, Copy)]
pub struct FaultRequest<'a> {
    /// Verb.
    pub verb: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// API group (for error details).
    pub group: &'a str,
    /// Namespace.
    pub namespace: Option<&'a str>,
    /// Name.
    pub name: Option<&'a str>,
}

/// What the server must do for a request.
#[derive(Debug, Default)]
pub struct Decision {
    /// Sleep this long first.
    pub latency: Duration,
    /// Fail with this error instead of serving.
    pub error: Option<ApiError>,
    /// For watches: close after (events, duration).
    pub close_watch: Option<(Option<usize>, Option<Duration>)>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<(FaultId, FaultRule, u32)>,
    rng: StdRng,
    next_id: u64,
}

/// The fault rules of a sandbox; cheap to clone, shared with the server.
#[derive(Debug, Clone)]
pub struct Faults(Arc<Mutex<Inner>>);

impl Faults {
    /// No rules; random draws seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a rule; it applies from the next request on.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let mut inner = self.lock();
        let id = FaultId(inner.next_id);
        inner.next_id += 1;
        inner.rules.push((id, rule, 0));
        id
    }

    /// Removes one rule.
    pub fn remove(&self, id: FaultId) {
        self.lock().rules.retain(|(i, _, _)| *i != id);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many times a rule has fired.
    pub fn fired(&self, id: FaultId) -> u32 {
        self.lock()
            .rules
            .iter()
            .find(|(i, _, _)| *i == id)
            .map_or(0, |(_, _, n)| *n)
    }

    /// Re-seeds the random generator (to replay a run).
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = StdRng::seed_from_u64(seed);
    }

    /// Decides the faults for one request; every matching rule that fires
    /// contributes (latencies add up, the first error wins).
    pub fn decide(&self, req: &FaultRequest<'_>) -> Decision {
        let mut decision = Decision::default();
        let mut inner = self.lock();
        if inner.rules.is_empty() {
            return decision;
        }
        let Inner { rules, rng, .. } = &mut *inner;
        for (_, rule, fired) in rules.iter_mut() {
            if !rule.matches(req) || rule.times.is_some_and(|t| *fired >= t) {
                continue;
            }
            if rule.probability < 1.0 && rng.random::<f64>() >= rule.probability {
                continue;
            }
            let res = Res {
                plural: req.resource,
                group: req.group,
            };
            let error = match &rule.action {
                FaultAction::Latency(d) => {
                    decision.latency += *d;
                    None
                }
                FaultAction::TooManyRequests { retry_after_secs } => {
                    Some(ApiError::too_many_requests(*retry_after_secs))
                }
                FaultAction::ServerError => Some(ApiError::internal("injected fault")),
                FaultAction::Conflict => Some(ApiError::stale(res, req.name.unwrap_or_default())),
                FaultAction::CloseWatch {
                    after_events,
                    after,
                } => {
                    decision.close_watch = Some((*after_events, *after));
                    None
                }
            };
            if let Some(e) = error {
                if decision.error.is_some() {
                    continue;
                }
                decision.error = Some(e);
            }
            *fired += 1;
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(verb: &'a str) -> FaultRequest<'a> {
        FaultRequest {
            verb,
            resource: "pods",
            group: "",
            namespace: Some("ns"),
            name: Some("p"),
        }
    }

    #[test]
    fn count_limited_rules_fire_that_often() {
        let f = Faults::new(1);
        let id = f.add(
            FaultRule::new(FaultAction::ServerError)
                .verb("get")
                .times(2),
        );
        let codes: Vec<Option<u16>> = (0..3)
            .map(|_| f.decide(&req("get")).error.map(|e| e.code))
            .collect();
        assert_eq!(codes, vec![Some(500), Some(500), None]);
        assert_eq!(f.fired(id), 2);
        assert!(f.decide(&req("list")).error.is_none());
    }

    #[test]
    fn same_seed_same_sequence() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.add(
                FaultRule::new(FaultAction::TooManyRequests {
                    retry_after_secs: 1,
                })
                .probability(0.5),
            );
            (0..32)
                .map(|_| f.decide(&req("get")).error.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert!(run(42).iter().any(|x| *x) && run(42).iter().any(|x| !*x));
    }

    #[test]
    fn conflicts_only_on_writes() {
        let f = Faults::new(1);
        f.add(FaultRule::new(FaultAction::Conflict));
        assert!(f.decide(&req("get")).error.is_none());
        assert_eq!(f.decide(&req("update")).error.map(|e| e.code), Some(409));
    }
}
