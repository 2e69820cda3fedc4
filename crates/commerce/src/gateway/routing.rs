//! Payment routing over several PGs, with failover only when nothing was created.
//!
//! A [`PgRouter`] holds the configured PGs in priority order, each with its own adapter
//! (its own pg-client, breakers and bulkheads, call-logged) and its own callback verifier.
//! [`PaymentService::charge`](crate::payments::PaymentService::charge) tries them in order and
//! moves to the next **only** after [`ChargeError::NotReached`] (refused connection, throttled,
//! or rejected by an open breaker or a full bulkhead: provably nothing was created). An
//! uncertain outcome (a timeout after sending) or a business rejection stops the walk: the
//! payment stays at that PG and recovery settles it there, so a customer is never charged
//! twice. The payment row records the PG it was sent to (`payments.pg`, `NULL` for the
//! primary PG), and queries, cancels and callbacks go to that PG.

use std::fmt;
use std::sync::Arc;

use pg_client::callback::CallbackVerifier;

use super::{ChargeError, PaymentGateway};

/// What the walk over the PGs does after one PG's answer. Pure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing was created at that PG: try the next one.
    TryNext,
    /// The answer stands (accepted, uncertain or rejected): stop here.
    Stop,
}

/// The routing decision after a charge's result at one PG.
pub fn after<T>(result: &Result<T, ChargeError>) -> Next {
    match result {
        Err(ChargeError::NotReached(_)) => Next::TryNext,
        Ok(_) | Err(ChargeError::Uncertain(_) | ChargeError::Rejected(_)) => Next::Stop,
    }
}

/// One PG the service can charge through.
#[derive(Clone)]
pub struct PgRoute {
    /// Its name (the call log's and the payment row's `pg`).
    pub name: Arc<str>,
    /// Its adapter.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Its callbacks' verifier (`None`: unsigned callbacks, re-query only).
    pub callback_verifier: Option<Arc<CallbackVerifier>>,
}

impl fmt::Debug for PgRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgRoute")
            .field("name", &self.name)
            .field("gateway", &self.gateway)
            .field("signed_callbacks", &self.callback_verifier.is_some())
            .finish()
    }
}

/// The configured PGs, in the order charges try them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgRouter {
    routes: Arc<[PgRoute]>,
    primary: usize,
}

impl PgRouter {
    /// One PG only.
    pub fn single(name: impl Into<Arc<str>>, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self {
            routes: Arc::from(vec![PgRoute {
                name: name.into(),
                gateway,
                callback_verifier: None,
            }]),
            primary: 0,
        }
    }

    /// PGs in the order charges try them; `primary` names the one that holds payments
    /// recorded without a PG (and receives callbacks on the unnamed path).
    ///
    /// # Errors
    ///
    /// No route, two routes of one name, or no route named `primary`.
    pub fn new(routes: Vec<PgRoute>, primary: &str) -> Result<Self, seawall::ConfigError> {
        for (i, route) in routes.iter().enumerate() {
            if routes[..i].iter().any(|r| r.name == route.name) {
                return Err(seawall::ConfigError::new(
                    "gateway.others",
                    format!("the PG name {} is used twice", route.name),
                ));
            }
        }
        let primary = routes
            .iter()
            .position(|r| &*r.name == primary)
            .ok_or_else(|| seawall::ConfigError::new("gateway.name", "names no configured PG"))?;
        Ok(Self {
            routes: Arc::from(routes),
            primary,
        })
    }

    /// Every PG, in the order charges try them.
    pub fn routes(&self) -> &[PgRoute] {
        &self.routes
    }

    /// The primary PG.
    pub fn primary(&self) -> &PgRoute {
        &self.routes[self.primary]
    }

    /// The PG named `name`; `None` names the primary. `None` when no such PG is configured.
    pub fn route(&self, name: Option<&str>) -> Option<&PgRoute> {
        match name {
            None => Some(self.primary()),
            Some(name) => self.routes.iter().find(|r| &*r.name == name),
        }
    }

    /// Whether `name` is the primary PG's.
    pub fn is_primary(&self, name: &str) -> bool {
        &*self.primary().name == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_charge_that_created_nothing_moves_on_to_the_next_pg() {
        assert_eq!(
            after::<()>(&Err(ChargeError::NotReached("refused".into()))),
            Next::TryNext
        );
        assert_eq!(
            after::<()>(&Err(ChargeError::Uncertain("timeout".into()))),
            Next::Stop
        );
        assert_eq!(
            after::<()>(&Err(ChargeError::Rejected("limit".into()))),
            Next::Stop
        );
        assert_eq!(after(&Ok(())), Next::Stop);
    }

    #[derive(Debug)]
    struct Nowhere;

    impl PaymentGateway for Nowhere {
        fn charge(
            &self,
            _: super::super::ChargeRequest,
        ) -> super::super::BoxFuture<'_, Result<String, ChargeError>> {
            Box::pin(async { Err(ChargeError::NotReached("nowhere".into())) })
        }
        fn transaction<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> super::super::BoxFuture<
            'a,
            Result<Option<super::super::PgTransaction>, super::super::QueryError>,
        > {
            Box::pin(async { Ok(None) })
        }
        fn transactions_for_order<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> super::super::BoxFuture<'a, Result<Vec<String>, super::super::QueryError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn cancel<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> super::super::BoxFuture<'a, Result<(), super::super::QueryError>> {
            Box::pin(async { Ok(()) })
        }
        fn queries_permitted(&self) -> bool {
            true
        }
    }

    fn route(name: &str) -> PgRoute {
        PgRoute {
            name: Arc::from(name),
            gateway: Arc::new(Nowhere),
            callback_verifier: None,
        }
    }

    #[test]
    fn a_payment_without_a_recorded_pg_belongs_to_the_primary_and_an_unknown_pg_to_none() {
        let router = PgRouter::new(vec![route("B"), route("A")], "A").unwrap();
        assert_eq!(&*router.route(None).unwrap().name, "A");
        assert_eq!(&*router.route(Some("B")).unwrap().name, "B");
        assert!(router.route(Some("Z")).is_none());
        assert_eq!(&*router.routes()[0].name, "B", "the charge order is kept");
    }

    #[test]
    fn two_pgs_of_one_name_or_a_missing_primary_are_refused() {
        assert!(PgRouter::new(vec![route("A"), route("A")], "A").is_err());
        assert!(PgRouter::new(vec![route("B")], "A").is_err());
    }
}
