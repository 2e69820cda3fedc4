//! PCI: no full card number in tracing output, `Debug` or `Display`, whatever the outcome.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pg_client::callback::CallbackVerifier;
use pg_client::{OrderId, PaymentGateway};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{
    CARD, MASKED, fast_config, magic_card, request, request_with_card, sim, spawn, user,
};

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

fn assert_no_full_card(what: &str, text: &str) {
    let digits: String = CARD.chars().filter(char::is_ascii_digit).collect();
    for leak in [CARD, digits.as_str(), "2222-3333", "22223333"] {
        assert!(!text.contains(leak), "{what} contains {leak:?}:\n{text}");
    }
}

#[tokio::test]
async fn no_full_card_number_reaches_tracing_output_or_debug_and_display_strings() {
    // Arrange: every event and span at every level, into a buffer.
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let pg = spawn(sim()).await;
    let mut config = fast_config(&pg.base_url(), "redaction");
    config.charge.read_timeout = Duration::from_millis(300);
    let client = crate::helpers::client(config);
    let mut strings = Vec::new();

    // Act: success, business error, uncertain ends, lookups echoing the full number, a
    // callback.
    async {
        let accepted = client.request_payment(&user(), &request("order-pan")).await.unwrap();
        strings.push(format!("{accepted:?}"));
        let key = accepted.transaction_key().unwrap().clone();
        pg.wait_for_terminal(key.as_str(), Duration::from_secs(5)).await;
        let detail = client.get_transaction(&user(), &key).await.unwrap().unwrap();
        strings.push(format!("{detail:?} {}", detail.card_number));
        strings.push(serde_json::to_string(&detail).unwrap());
        let order = OrderId::parse("order-pan").unwrap();
        strings.push(format!("{:?}", client.find_by_order(&user(), &order).await.unwrap()));

        let business = client.request_payment(&user(), &request("pan")).await.unwrap_err();
        strings.push(format!("{business:?} {business}"));
        for code in [408, 520, 502] {
            let uncertain = client
                .request_payment(&user(), &request_with_card(&format!("order-pan-{code}"), &magic_card(code)))
                .await
                .unwrap();
            strings.push(format!("{uncertain:?}"));
        }
        let body = format!(
            r#"{{"transactionKey":"k","orderId":"order-pan","cardType":"KB","cardNo":"{CARD}","amount":5000,"status":"SUCCESS"}}"#
        );
        let verifier = CallbackVerifier::new(["s"]).unwrap();
        let rejected = verifier.verify_and_parse(Some("t=1,v1=00"), body.as_bytes()).unwrap_err();
        strings.push(format!("{rejected:?} {rejected}"));
        let parsed = pg_client::callback::parse_callback(body.as_bytes(), pg_client::Currency::KRW).unwrap();
        strings.push(format!("{parsed:?}"));
        tracing::info!(callback = ?parsed, "callback received");
    }
    .with_subscriber(subscriber)
    .await;
    let request = request("order-pan");
    strings.push(format!("{request:?} {}", request.card_number));
    strings.push(serde_json::to_string(&request.card_number).unwrap());

    // Assert
    let output = buffer.text();
    assert!(
        output.contains("pg_client.charge"),
        "the client traced:\n{output}"
    );
    assert!(
        output.contains(MASKED),
        "the masked number is what shows:\n{output}"
    );
    assert!(output.contains("order-pan") && output.contains("attempt"));
    assert_no_full_card("tracing output", &output);
    for text in &strings {
        assert_no_full_card("a Debug/Display string", text);
    }
    assert!(strings.iter().any(|s| s.contains(MASKED)));
}
