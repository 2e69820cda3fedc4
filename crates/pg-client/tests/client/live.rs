//! The charge path's live parts: the observer sees accepted attempts only (a hanging gateway
//! feeds it nothing), and the read timeout changes between attempts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pg_client::{PaymentGateway, PgClient};
use pg_simulator::Latency;

use crate::helpers::{fast_config, request, sim, spawn, user};

fn observed_client(base_url: &str, name: &str) -> (PgClient, Arc<Mutex<Vec<Duration>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let client = PgClient::builder(fast_config(base_url, name))
        .on_charge_accepted(move |took| sink.lock().unwrap().push(took))
        .build()
        .unwrap();
    (client, seen)
}

#[tokio::test]
async fn the_observer_sees_each_accepted_charge_with_its_latency() {
    let pg = spawn(sim().latency(Latency::fixed(Duration::from_millis(150)))).await;
    let (client, seen) = observed_client(&pg.base_url(), "observed");

    for i in 0..3 {
        let outcome = client
            .request_payment(&user(), &request(&format!("order-seen-{i}")))
            .await
            .unwrap();
        assert!(!outcome.is_uncertain(), "{outcome:?}");
    }

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|took| *took >= Duration::from_millis(150)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_hanging_gateway_feeds_the_observer_nothing() {
    let pg = spawn(sim()).await;
    let (client, seen) = observed_client(&pg.base_url(), "hanging");
    client
        .set_charge_read_timeout(Duration::from_millis(200))
        .unwrap();
    pg.set_black_hole(true);

    for i in 0..3 {
        let outcome = client
            .request_payment(&user(), &request(&format!("order-hang-{i}")))
            .await
            .unwrap();
        assert!(outcome.is_uncertain(), "a read timeout: {outcome:?}");
    }

    assert!(
        seen.lock().unwrap().is_empty(),
        "timeouts are not latencies"
    );
}

#[tokio::test]
async fn a_longer_live_read_timeout_lets_a_slow_gateway_answer() {
    let pg = spawn(sim().latency(Latency::fixed(Duration::from_millis(400)))).await;
    let (client, seen) = observed_client(&pg.base_url(), "slow");
    client
        .set_charge_read_timeout(Duration::from_millis(200))
        .unwrap();
    let cut = client
        .request_payment(&user(), &request("order-cut"))
        .await
        .unwrap();
    assert!(cut.is_uncertain(), "cut at 200 ms: {cut:?}");

    client
        .set_charge_read_timeout(Duration::from_secs(2))
        .unwrap();
    let answered = client
        .request_payment(&user(), &request("order-answered"))
        .await
        .unwrap();

    assert!(!answered.is_uncertain(), "{answered:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}
