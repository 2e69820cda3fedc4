//! What a hostile or careless merchant can send: callback URLs that point somewhere else,
//! oversized fields, and magic card numbers on a gateway that did not ask for them.

use pg_simulator::model::messages;
use pg_simulator::{SimConfig, Simulator};

use crate::helpers::{CANON_CALLBACK, CARD, Receiver, USER, body, fail_envelope, instant, spawn};

/// The canonical allow-list only (`http://localhost:8080`), no loopback wildcard.
fn canonical_allow_list() -> SimConfig {
    let mut config = SimConfig::instant();
    config.callback.allow_any_loopback = false;
    config
}

#[tokio::test]
async fn a_callback_url_with_userinfo_cannot_send_the_card_number_to_another_host() {
    // Arrange: a receiver on 127.0.0.2, which the allow-list does not name; the URL starts
    // with the allowed text but `localhost:8080@` is userinfo, so its host is 127.0.0.2.
    let receiver = Receiver::start_on("127.0.0.2").await;
    let pg = spawn(Simulator::builder().config(canonical_allow_list()).seed(7)).await;
    let smuggled = format!("http://localhost:8080@{}/callback", receiver.authority());
    // Act
    let a = pg.pay(&body("000123", CARD, &smuggled), &[]).await;
    // Assert: refused before anything is created, so no callback can ever be sent.
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.json(),
        fail_envelope("Bad Request", messages::CALLBACK_URL_USERINFO)
    );
    assert_eq!(pg.handle.stats().payments_created, 0);
    assert!(pg.handle.ledger().is_empty());
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn callback_urls_are_compared_by_scheme_host_and_port_not_by_prefix() {
    let pg = spawn(Simulator::builder().config(canonical_allow_list()).seed(7)).await;
    let refused = messages::invalid_callback_url("http://localhost:8080");
    for url in [
        // Each of these starts with `http://localhost:8080`.
        "http://localhost:8080.evil.example/callback",
        "http://localhost:80801/callback",
        "http://localhost:8080@evil.example/callback",
        "http://user:secret@localhost:8080/callback",
        // Same host and port, other scheme; and the right host on another port.
        "https://localhost:8080/callback",
        "http://localhost:8081/callback",
        "http://localhost/callback",
    ] {
        let a = pg.pay(&body("000123", CARD, url), &[]).await;
        assert_eq!(a.status, 400, "{url} was accepted");
        let message = a.json()["meta"]["message"].as_str().unwrap().to_owned();
        assert!(
            message == refused || message == messages::CALLBACK_URL_USERINFO,
            "{url}: {message}"
        );
    }
    assert!(pg.handle.ledger().is_empty());
    for url in [
        CANON_CALLBACK,
        "http://localhost:8080",
        "http://LOCALHOST:8080/callback?from=pg#x",
    ] {
        pg.pay_ok(&body("000123", CARD, url), &[]).await;
    }
}

#[tokio::test]
async fn userinfo_is_refused_even_when_any_loopback_callback_is_allowed() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let with_userinfo = format!("http://merchant:secret@{}/callback", receiver.authority());
    let a = pg.pay(&body("000123", CARD, &with_userinfo), &[]).await;
    assert_eq!(
        a.json(),
        fail_envelope("Bad Request", messages::CALLBACK_URL_USERINFO)
    );
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
}

#[tokio::test]
async fn oversized_fields_are_refused_with_a_400_and_nothing_is_kept() {
    // Arrange: 255 characters is what the canonical PG's VARCHAR(255) columns hold.
    let pg = spawn(instant()).await;
    let huge = "7".repeat(1_900_000);
    let at_limit = "가".repeat(255);
    let long_url = format!("{CANON_CALLBACK}?{}", "p".repeat(255));
    let cases = [
        (
            body(&huge, CARD, CANON_CALLBACK),
            None,
            messages::ORDER_ID_TOO_LONG,
        ),
        (
            body(&format!("{at_limit}x"), CARD, CANON_CALLBACK),
            None,
            messages::ORDER_ID_TOO_LONG,
        ),
        (
            body("000123", CARD, &format!("{CANON_CALLBACK}?{huge}")),
            None,
            messages::CALLBACK_URL_TOO_LONG,
        ),
        (
            body("000123", CARD, &long_url),
            None,
            messages::CALLBACK_URL_TOO_LONG,
        ),
        (
            body("000123", &format!("{CARD}{huge}"), CANON_CALLBACK),
            None,
            messages::INVALID_CARD_NO,
        ),
        (
            body("000123", CARD, CANON_CALLBACK),
            Some("1".repeat(256)),
            messages::USER_ID_TOO_LONG,
        ),
    ];
    // Act / Assert
    for (request, user, message) in cases {
        let a = pg
            .post_raw(
                Some(user.as_deref().unwrap_or(USER)),
                request.to_string(),
                &[],
            )
            .await
            .expect("answered");
        assert_eq!(a.status, 400, "{message}");
        assert_eq!(a.json(), fail_envelope("Bad Request", message));
    }
    assert!(pg.handle.ledger().is_empty());
    // 255 characters (of any width) are still fine.
    let url_at_limit = &long_url[..255];
    let key = pg.pay_ok(&body(&at_limit, CARD, url_at_limit), &[]).await;
    let tx = pg.handle.transaction(&key).unwrap();
    assert_eq!(tx.order_id, at_limit);
    assert_eq!(tx.callback_url, url_at_limit);
    let a = pg
        .post_raw(
            Some(&"1".repeat(255)),
            body("000124", CARD, CANON_CALLBACK).to_string(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_magic_card_number_is_an_ordinary_card_on_a_default_gateway() {
    // Arrange: the canonical gateway; `X-Sim-Fault: none` only takes the random 40 % away.
    let pg = spawn(Simulator::builder().config(SimConfig::instant()).seed(7)).await;
    let always_500 = "4000-0000-0000-0500";
    // Act
    let a = pg
        .pay(
            &body("000123", always_500, CANON_CALLBACK),
            &[("X-Sim-Fault", "none")],
        )
        .await;
    // Assert: created like any card, and no fault was injected.
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(pg.handle.fault_log().is_empty());
    assert!(!SimConfig::canonical().triggers.magic_cards);
}

#[tokio::test]
async fn magic_cards_work_once_turned_on() {
    let pg = spawn(instant().magic_cards(true)).await;
    let a = pg
        .pay(&body("000123", "4000-0000-0000-0500", CANON_CALLBACK), &[])
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(a.json()["meta"]["message"], messages::UNSTABLE);
}
