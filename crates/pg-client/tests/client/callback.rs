//! Callback signatures, checked against an HMAC computed here, independently of the client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};
use pg_client::callback::{CallbackVerifier, SignatureError};
use pg_client::{PaymentGateway, TransactionStatus};
use sha2::Sha256;

use crate::helpers::{MASKED, eventually, fast_config, request_with_card, sim, spawn, user};

const NOW: i64 = 1_760_000_000;
const BODY: &[u8] = br#"{"transactionKey":"20250816:TR:9577c5","orderId":"000123","cardType":"SAMSUNG","cardNo":"4111-2222-3333-4444","amount":5000,"status":"SUCCESS","reason":"ok"}"#;

/// `v1` for `body` at `t`, computed with the hmac crate directly.
fn v1(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn verifier() -> CallbackVerifier {
    CallbackVerifier::new(["current-secret"]).unwrap()
}

#[test]
fn a_valid_signature_is_accepted_and_the_body_parsed_with_the_card_masked() {
    let header = format!("t={NOW},v1={}", v1("current-secret", NOW, BODY));

    let callback = verifier()
        .verify_and_parse_at(Some(&header), BODY, NOW + 10)
        .unwrap();

    assert_eq!(callback.card_number.as_str(), MASKED);
    assert_eq!(callback.status, TransactionStatus::Success);
    assert_eq!(callback.order_id.as_str(), "000123");
}

#[test]
fn a_tampered_body_is_rejected() {
    let header = format!("t={NOW},v1={}", v1("current-secret", NOW, BODY));
    let tampered = String::from_utf8_lossy(BODY).replace("5000", "50");

    let error = verifier()
        .verify_at(Some(&header), tampered.as_bytes(), NOW)
        .unwrap_err();

    assert_eq!(error, SignatureError::Mismatch);
}

#[test]
fn an_expired_or_future_signature_is_rejected() {
    let old = NOW - 301;
    let header = format!("t={old},v1={}", v1("current-secret", old, BODY));
    assert_eq!(
        verifier().verify_at(Some(&header), BODY, NOW),
        Err(SignatureError::Expired { skew_secs: 301 })
    );
    let future = NOW + 400;
    let header = format!("t={future},v1={}", v1("current-secret", future, BODY));
    assert_eq!(
        verifier().verify_at(Some(&header), BODY, NOW),
        Err(SignatureError::Expired { skew_secs: -400 })
    );
    // At the edge of the tolerance it still passes.
    let edge = NOW - 300;
    let header = format!("t={edge},v1={}", v1("current-secret", edge, BODY));
    assert_eq!(verifier().verify_at(Some(&header), BODY, NOW), Ok(()));
}

#[test]
fn a_signature_by_an_unknown_secret_is_rejected() {
    let header = format!("t={NOW},v1={}", v1("someone-elses-secret", NOW, BODY));

    let error = verifier().verify_at(Some(&header), BODY, NOW).unwrap_err();

    assert_eq!(error, SignatureError::Mismatch);
}

#[test]
fn missing_or_malformed_headers_are_rejected() {
    assert_eq!(
        verifier().verify_at(None, BODY, NOW),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verifier().verify_at(Some("v1=abcd"), BODY, NOW),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn during_a_rotation_any_v1_by_any_configured_secret_is_accepted() {
    let header = format!(
        "t={NOW},v1={},v1={}",
        v1("retired-secret", NOW, BODY),
        v1("next-secret", NOW, BODY)
    );
    let rotating = CallbackVerifier::new(["next-secret", "current-secret"]).unwrap();
    assert_eq!(rotating.verify_at(Some(&header), BODY, NOW), Ok(()));
    assert_eq!(
        verifier().verify_at(Some(&header), BODY, NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_verifier_reads_now_from_its_injected_clock() {
    let header = format!("t={NOW},v1={}", v1("current-secret", NOW, BODY));
    let late = verifier().now_fn(|| NOW + 3600);
    assert!(matches!(
        late.verify(Some(&header), BODY),
        Err(SignatureError::Expired { .. })
    ));
    let on_time = verifier().now_fn(|| NOW).tolerance(Duration::from_secs(1));
    assert_eq!(on_time.verify(Some(&header), BODY), Ok(()));
}

type Received = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let signature = headers
        .get("x-pg-signature")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    received.lock().unwrap().push((signature, body));
    "ok"
}

#[tokio::test]
async fn a_real_signed_callback_from_the_simulator_verifies_and_parses() {
    // A receiver on a loopback port, and a simulator signing with two secrets (a rotation).
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/callback", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pg = spawn(
        sim()
            .callback_secret("old-secret")
            .callback_secret("new-secret"),
    )
    .await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "signed-callback"));
    let mut request = request_with_card("order-callback", crate::helpers::CARD);
    request.callback_url = callback_url;

    client.request_payment(&user(), &request).await.unwrap();
    assert!(
        eventually(|| !received.lock().unwrap().is_empty()).await,
        "a callback arrives"
    );

    let (header, body) = received.lock().unwrap()[0].clone();
    let verifier = CallbackVerifier::new(["new-secret"]).unwrap();
    let callback = verifier.verify_and_parse(header.as_deref(), &body).unwrap();
    assert_eq!(callback.order_id.as_str(), "order-callback");
    assert_eq!(callback.card_number.as_str(), MASKED);
    assert!(callback.status.is_terminal());
}
