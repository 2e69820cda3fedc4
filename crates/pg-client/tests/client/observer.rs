//! The attempt hook: called around each HTTP attempt, below the retry; a veto sends nothing.

use std::sync::{Arc, Mutex};

use pg_client::observer::{
    AttemptId, AttemptInfo, AttemptObserver, AttemptOutcome, BoxFuture, Veto,
};
use pg_client::{FailureClass, PaymentGateway, PgClient};

use crate::helpers::{Scripted, created, fast_config, pre_create_500, request, sim, spawn, user};

/// What the observer saw, one line per call.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    veto: bool,
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl AttemptObserver for Recorder {
    fn before<'a>(&'a self, info: &'a AttemptInfo<'a>) -> BoxFuture<'a, Result<AttemptId, Veto>> {
        Box::pin(async move {
            let mut seen = self.seen.lock().unwrap();
            seen.push(format!(
                "before {} #{} order={} key={} card={}",
                info.path.as_str(),
                info.attempt,
                info.order_id.unwrap_or("-"),
                info.idempotency_key.is_some(),
                info.card.map_or("-", |c| c.as_str()),
            ));
            if self.veto {
                return Err(Veto::new("the log is full"));
            }
            Ok(AttemptId(u64::from(info.attempt)))
        })
    }

    fn after<'a>(&'a self, id: AttemptId, outcome: &'a AttemptOutcome<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(format!(
                "after #{} {:?} {} key={}",
                id.0,
                outcome.status,
                outcome.class(),
                outcome.transaction_key.unwrap_or("-"),
            ));
        })
    }
}

#[tokio::test]
async fn each_http_attempt_of_a_retried_charge_is_observed_with_its_status() {
    let gateway = Scripted::start(vec![pre_create_500(), pre_create_500(), created("k-1")]).await;
    let recorder = Arc::new(Recorder::default());
    let client = PgClient::builder(fast_config(&gateway.base_url, "observed"))
        .attempt_observer(recorder.clone())
        .build()
        .unwrap();

    let outcome = client
        .request_payment(&user(), &request("order-observed"))
        .await
        .unwrap();

    assert_eq!(outcome.transaction_key().unwrap().as_str(), "k-1");
    assert_eq!(gateway.seen().len(), 3);
    let card = "4111-22**-****-4444";
    assert_eq!(
        recorder.seen(),
        [
            format!("before charge #1 order=order-observed key=true card={card}"),
            "after #1 Some(500) NOT_REACHED key=-".to_owned(),
            format!("before charge #2 order=order-observed key=true card={card}"),
            "after #2 Some(500) NOT_REACHED key=-".to_owned(),
            format!("before charge #3 order=order-observed key=true card={card}"),
            "after #3 Some(200) OK key=k-1".to_owned(),
        ]
    );
}

#[tokio::test]
async fn a_vetoed_attempt_sends_nothing_and_fails_as_refused_by_the_client() {
    let pg = spawn(sim()).await;
    let recorder = Arc::new(Recorder {
        veto: true,
        ..Recorder::default()
    });
    let client = PgClient::builder(fast_config(&pg.base_url(), "vetoed"))
        .attempt_observer(recorder.clone())
        .build()
        .unwrap();

    let error = client
        .request_payment(&user(), &request("order-vetoed"))
        .await
        .unwrap_err();

    assert_eq!(error.class(), FailureClass::Rejected, "{error}");
    assert!(error.to_string().contains("the log is full"), "{error}");
    assert_eq!(
        pg.stats().payment_requests,
        0,
        "nothing reached the gateway"
    );
    assert_eq!(recorder.seen().len(), 1, "one veto, no retry, no after");
}
