//! The circuit breaker's permission API around a streamed HTTP response.
//!
//! A streamed body is not one future: the call "succeeds" when the headers arrive, but it has
//! only worked once the last chunk is in. So the client takes a
//! [`CallPermit`](seawall::circuit_breaker::CallPermit) before it connects, reads the whole
//! stream, and reports the outcome with
//! [`record_result`](seawall::circuit_breaker::CallPermit::record_result): a stream that breaks
//! halfway counts as a failure, and two of them open the breaker. A reader that gives up (its
//! future is dropped, permit and all) records nothing and gives its half-open probe slot back.
//!
//! An in-process server on a loopback port streams a five-line feed, one line every 20 ms, and
//! can be told to break its streams after two lines. The run takes under a second.
//!
//! Run with `cargo run -p examples --bin streaming`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use seawall::Clock;
use seawall::circuit_breaker::{CircuitBreaker, CircuitBreakerEvent, SlidingWindow};

/// Lines in a whole feed.
const LINES: u32 = 5;
/// Lines a broken feed sends before it fails.
const LINES_BEFORE_BREAK: u32 = 2;
/// The pause between two lines of the feed.
const LINE_INTERVAL: Duration = Duration::from_millis(20);
/// How long the breaker stays open.
const OPEN_WAIT: Duration = Duration::from_millis(300);

/// Whether the server breaks its streams; switched by `main`.
#[derive(Clone, Default)]
struct Server {
    breaking: Arc<AtomicBool>,
}

/// The feed, one line per chunk. A broken feed ends with an error after a few lines: the
/// server then aborts the connection without finishing the chunked body.
async fn feed(State(server): State<Server>) -> Body {
    let broken = server.breaking.load(Ordering::Relaxed);
    let clock = Clock::tokio();
    let lines = futures_util::stream::unfold(0, move |sent| {
        let clock = clock.clone();
        async move {
            if sent == LINES {
                return None;
            }
            clock.sleep(LINE_INTERVAL).await;
            if broken && sent == LINES_BEFORE_BREAK {
                // The stream ends after this error, however it is polled afterwards.
                return Some((Err(std::io::Error::other("upstream feed lost")), LINES));
            }
            Some((Ok(format!("price update {}\n", sent + 1)), sent + 1))
        }
    });
    Body::from_stream(lines)
}

/// Starts the server on a free loopback port and returns the URL of the feed.
async fn start_server(server: Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound socket has an address");
    let app = Router::new().route("/feed", get(feed)).with_state(server);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("server stopped: {err}");
        }
    });
    format!("http://{address}/feed")
}

/// What a reader got before the stream ended or broke.
#[derive(Debug, Default)]
struct Received {
    lines: usize,
    bytes: usize,
}

/// Connects and reads the feed to its end, counting what arrives.
async fn read_to_end(
    http: &reqwest::Client,
    url: &str,
    received: &mut Received,
) -> Result<(), reqwest::Error> {
    let mut response = http.get(url).send().await?.error_for_status()?;
    while let Some(chunk) = response.chunk().await? {
        received.lines += 1;
        received.bytes += chunk.len();
    }
    Ok(())
}

/// An error and its causes on one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// One whole read under the breaker, described in a line.
async fn read_feed(breaker: &CircuitBreaker, http: &reqwest::Client, url: &str) -> String {
    // Asked before connecting: an open breaker costs no connection at all.
    let permit = match breaker.try_acquire() {
        Ok(permit) => permit,
        Err(rejected) => {
            let retry_in = breaker.retry_after().unwrap_or_default().as_millis();
            return format!("not even connecting: {rejected}; retry in {retry_in} ms");
        }
    };
    let mut received = Received::default();
    let outcome = read_to_end(http, url, &mut received).await;
    // The breaker learns the outcome only now, with the whole body in (or the stream broken).
    match permit.record_result(outcome) {
        Ok(()) => format!(
            "complete: {} lines, {} bytes -> recorded as a success",
            received.lines, received.bytes
        ),
        Err(error) => format!(
            "broke after {} lines ({} bytes): {} -> recorded as a failure",
            received.lines,
            received.bytes,
            with_causes(&error)
        ),
    }
}

/// A reader that gives up after `patience`: its read is dropped mid-stream, with the permit.
async fn read_feed_impatiently(
    breaker: &CircuitBreaker,
    http: &reqwest::Client,
    url: &str,
    patience: Duration,
) -> String {
    let Ok(permit) = breaker.try_acquire() else {
        return "not permitted".to_owned();
    };
    let mut received = Received::default();
    let read = async {
        let outcome = read_to_end(http, url, &mut received).await;
        permit.record_result(outcome)
    };
    tokio::select! {
        // Biased towards the deadline: a slow machine must not let the whole feed win.
        biased;
        () = Clock::tokio().sleep(patience) => {}
        _ = read => return "finished before the reader gave up".to_owned(),
    }
    format!(
        "gave up after {} ms (lines read: {}): the permit was dropped unfinished",
        patience.as_millis(),
        received.lines
    )
}

/// The breaker's window, in a few words.
fn window(breaker: &CircuitBreaker) -> String {
    let metrics = breaker.metrics();
    format!(
        "{}, {} calls recorded ({} failed)",
        metrics.state, metrics.buffered_calls, metrics.failed_calls
    )
}

fn breaker() -> CircuitBreaker {
    let breaker = CircuitBreaker::builder()
        .name("feed")
        .sliding_window(SlidingWindow::count(5))
        .minimum_number_of_calls(3)
        .failure_rate_threshold(50.0)
        .wait_in_open(OPEN_WAIT)
        .permitted_calls_in_half_open(1)
        .build()
        .expect("a valid breaker");
    breaker.on_event(|event| {
        if let CircuitBreakerEvent::StateTransition { from, to, .. } = event {
            println!("  breaker: {from} -> {to}");
        }
    });
    breaker
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Server::default();
    let url = start_server(server.clone()).await;
    // Loopback only: never route these requests through a proxy from the environment.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let breaker = breaker();
    println!("streaming GET {url} ({LINES} lines, one every {LINE_INTERVAL:?})");

    println!("read 1: {}", read_feed(&breaker, &http, &url).await);

    server.breaking.store(true, Ordering::Relaxed);
    println!("the server now breaks its streams after {LINES_BEFORE_BREAK} lines:");
    for read in 2..=3 {
        println!("read {read}: {}", read_feed(&breaker, &http, &url).await);
    }
    println!("read 4: {}", read_feed(&breaker, &http, &url).await);

    server.breaking.store(false, Ordering::Relaxed);
    let wait = breaker.retry_after().unwrap_or_default() + Duration::from_millis(20);
    println!(
        "the server recovers; after the open wait ({} ms):",
        wait.as_millis()
    );
    Clock::tokio().sleep(wait).await;
    let impatient = read_feed_impatiently(&breaker, &http, &url, Duration::from_millis(30)).await;
    println!("read 5: {impatient}");
    println!(
        "  nothing recorded: {}; probe slot given back: a new read is permitted: {}",
        window(&breaker),
        breaker.is_call_permitted()
    );
    println!("read 6: {}", read_feed(&breaker, &http, &url).await);
    println!("at the end: breaker {}", breaker.state());
}
