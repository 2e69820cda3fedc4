//! Where the outbox relay hands events beyond the process: the [`EventSink`] trait and its
//! NATS JetStream implementation ([`NatsSink`]).
//!
//! In-process subscribers ([`crate::outbox::Subscriber`]) are the default and always run;
//! `outbox.sink = "nats"` adds a [`NatsSink`]. An event is marked published only once every
//! subscriber took it and the sink's publish was acknowledged; a failure makes the relay try
//! the event again later (at least once). A republish after a crash is harmless: each message
//! carries `Nats-Msg-Id` = the event id, and JetStream drops a second message with the same id
//! within the stream's duplicate window.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use seawall::ConfigError;

use crate::configuration::NatsSettings;
use crate::outbox::Event;

/// The future a sink's publish returns.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A broker (or anything beyond the process) the relay publishes events to.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Publishes one event and resolves once the sink has durably taken it.
    ///
    /// # Errors
    ///
    /// The event was not taken (the relay tries again later).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a publish dropped midway may or may not have been taken; the relay's
    /// redelivery (deduplicated by event id) covers both.
    fn publish<'a>(&'a self, event: &'a Event) -> PublishFuture<'a>;
}

/// The subject of an event: `commerce.events.<EventType>`.
pub fn subject(event_type: &str) -> String {
    format!("commerce.events.{event_type}")
}

/// Publishes to a NATS JetStream stream, one subject per event type, awaiting each ack.
pub struct NatsSink {
    jetstream: async_nats::jetstream::Context,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink").finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Connects to `settings.url` and makes sure the stream `settings.stream` exists and takes
    /// `commerce.events.>`.
    ///
    /// # Errors
    ///
    /// The server cannot be reached (names `outbox.nats.url`) or the stream cannot be made
    /// (names `outbox.nats.stream`).
    pub async fn connect(settings: &NatsSettings) -> Result<Self, ConfigError> {
        let client = async_nats::connect(settings.url.as_str())
            .await
            .map_err(|e| ConfigError::new("outbox.nats.url", format!("cannot connect: {e}")))?;
        let jetstream = async_nats::jetstream::new(client);
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: settings.stream.clone(),
                subjects: vec![subject(">")],
                ..Default::default()
            })
            .await
            .map_err(|e| ConfigError::new("outbox.nats.stream", format!("cannot be made: {e}")))?;
        Ok(Self { jetstream })
    }
}

impl EventSink for NatsSink {
    fn publish<'a>(&'a self, event: &'a Event) -> PublishFuture<'a> {
        Box::pin(async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
            let body = serde_json::json!({
                "id": event.id,
                "orderId": event.order_id,
                "type": event.event_type,
                "payload": event.payload,
            });
            let ack = self
                .jetstream
                .publish_with_headers(subject(&event.event_type), headers, body.to_string().into())
                .await
                .map_err(|e| format!("nats publish: {e}"))?;
            ack.await.map_err(|e| format!("nats ack: {e}"))?;
            Ok(())
        })
    }
}

/// Checks a stream name as JetStream takes it: not empty, no whitespace, `.`, `*`, `>`,
/// `/` or `\`. Pure.
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_to_a_subject_named_after_its_type() {
        assert_eq!(subject("OrderPaid"), "commerce.events.OrderPaid");
    }

    #[test]
    fn a_bad_nats_setting_is_refused_naming_its_key() {
        let mut settings = crate::configuration::Settings::default();
        settings.outbox.nats.url = "http://broker".to_owned();
        settings.outbox.nats.stream = "a.b".to_owned();
        let url = settings.outbox.nats.validate().unwrap_err();
        assert_eq!(url.key(), "outbox.nats.url");
        settings.outbox.nats.url = "nats://broker:4222".to_owned();
        let stream = settings.outbox.nats.validate().unwrap_err();
        assert_eq!(stream.key(), "outbox.nats.stream");
    }

    #[test]
    fn the_sink_is_chosen_by_outbox_sink_and_in_process_is_the_default() {
        let settings: crate::configuration::OutboxSettings =
            toml::from_str("sink = \"nats\"\n[nats]\nurl = \"nats://n:4222\"\nstream = \"S\"")
                .unwrap();
        assert_eq!(settings.sink, crate::configuration::SinkKind::Nats);
        assert_eq!(settings.nats.url, "nats://n:4222");
        assert_eq!(
            crate::configuration::OutboxSettings::default().sink,
            crate::configuration::SinkKind::InProcess
        );
        assert!(
            toml::from_str::<crate::configuration::OutboxSettings>("sink = \"kafka\"").is_err()
        );
    }

    #[test]
    fn stream_names_with_subject_tokens_are_refused() {
        assert!(valid_stream_name("COMMERCE_EVENTS"));
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(!valid_stream_name(bad), "{bad}");
        }
    }
}
