//! An HTTP GET made through seawall's native [`Policy`]: a total timeout, a retry with backoff
//! (connect errors, timeouts and 5xx only), a circuit breaker, a bulkhead and a per-attempt
//! timeout, with a fallback that answers "temporarily unavailable" while the breaker is open.
//!
//! An in-process server on a loopback port is flaky first (some 503s), then hangs, then
//! recovers. The run shows the retries absorbing the 503s, the hung attempts timing out until
//! the breaker opens, the fallback answering at once while it is open, and the recovery through
//! half-open. It takes about two seconds.
//!
//! Run with `cargo run -p examples --bin http_call`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use seawall::circuit_breaker::{CircuitBreaker, CircuitBreakerEvent, SlidingWindow};
use seawall::policy::BoxPolicy;
use seawall::{Backoff, Bulkhead, Clock, Error, ErrorKind, Fallback, Policy, Retry, Timeout};

/// How long one attempt may take: far above a loopback answer, so only a hang reaches it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// How long the breaker stays open before it lets probes through.
const OPEN_WAIT: Duration = Duration::from_millis(500);

/// What the in-process server does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every third request is answered 503.
    Flaky,
    /// Requests are accepted and never answered.
    Hanging,
    /// Every request is answered 200.
    Healthy,
}

/// The server's shared state: its mode, switched by `main`, and a request counter.
#[derive(Clone)]
struct Server {
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn new(mode: Mode) -> Self {
        Self {
            mode: Arc::new(AtomicU8::new(mode as u8)),
            requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            0 => Mode::Flaky,
            1 => Mode::Hanging,
            _ => Mode::Healthy,
        }
    }
}

async fn items(State(server): State<Server>) -> (StatusCode, &'static str) {
    let number = server.requests.fetch_add(1, Ordering::Relaxed);
    match server.mode() {
        Mode::Flaky if number % 3 == 0 => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        Mode::Hanging => std::future::pending().await,
        Mode::Flaky | Mode::Healthy => (StatusCode::OK, "3 items in stock"),
    }
}

/// Starts the server on a free loopback port and returns the URL of its one resource.
async fn start_server(server: Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound socket has an address");
    let app = Router::new().route("/items", get(items)).with_state(server);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("server stopped: {err}");
        }
    });
    format!("http://{address}/items")
}

/// What a call gives its caller: the server's answer, or the fallback's.
#[derive(Debug)]
enum Reply {
    Served { body: String, attempt: u32 },
    Unavailable { retry_after: Option<Duration> },
}

/// Worth another attempt: the server was not reached, took too long, or failed on its side.
/// Anything else (a 4xx, an open breaker, a full bulkhead) would fail the same way again.
fn is_transient(error: &Error<reqwest::Error>) -> bool {
    match error.inner() {
        Some(http) => {
            http.is_connect()
                || http.is_timeout()
                || http.status().is_some_and(|status| status.is_server_error())
        }
        None => error.is_timeout(),
    }
}

fn policy(breaker: CircuitBreaker) -> BoxPolicy<Reply, reqwest::Error> {
    let retry = Retry::builder()
        .name("catalog")
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(50)).full_jitter())
        .build()
        .expect("a valid retry")
        .retry_error_if(is_transient);
    Policy::builder()
        .fallback(
            Fallback::new(|error: Error<reqwest::Error>| {
                Ok(Reply::Unavailable {
                    retry_after: error.retry_after(),
                })
            })
            .when_kind([ErrorKind::CircuitOpen]),
        )
        .timeout(Timeout::new(Duration::from_secs(2)))
        .retry(retry)
        .circuit_breaker(breaker)
        .bulkhead(Bulkhead::new(8))
        .timeout(Timeout::new(ATTEMPT_TIMEOUT))
        .build()
        .boxed()
}

/// Makes call number `call` and prints one line saying how it went.
async fn get_items(
    call: u32,
    policy: &BoxPolicy<Reply, reqwest::Error>,
    http: &reqwest::Client,
    url: &str,
) {
    let clock = Clock::tokio();
    let start = clock.now();
    let outcome = policy
        .call_with_attempt(|attempt| {
            let request = http.get(url);
            async move {
                let response = request.send().await?.error_for_status()?;
                Ok(Reply::Served {
                    body: response.text().await?,
                    attempt: attempt.number(),
                })
            }
        })
        .await;
    let took = (clock.now() - start).as_millis();
    let line = match outcome {
        Ok(Reply::Served { body, attempt }) => {
            format!("200 {body:?} on attempt {attempt}, {took} ms")
        }
        Ok(Reply::Unavailable { retry_after }) => format!(
            "fallback: \"catalog temporarily unavailable, try again in {} ms\", {took} ms",
            retry_after.unwrap_or_default().as_millis()
        ),
        Err(error) => {
            let last = std::error::Error::source(&error)
                .map(|cause| format!(" (last: {cause})"))
                .unwrap_or_default();
            format!("error: {error}{last}, {took} ms")
        }
    };
    println!("  call {call}: {line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Server::new(Mode::Flaky);
    let url = start_server(server.clone()).await;
    // Loopback only: never route these requests through a proxy from the environment.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let breaker = CircuitBreaker::builder()
        .name("catalog")
        .sliding_window(SlidingWindow::count(8))
        .minimum_number_of_calls(8)
        .failure_rate_threshold(50.0)
        .wait_in_open(OPEN_WAIT)
        .permitted_calls_in_half_open(2)
        .build()
        .expect("a valid breaker");
    breaker.on_event(|event| {
        if let CircuitBreakerEvent::StateTransition {
            name,
            from,
            to,
            reason,
        } = event
        {
            println!("  breaker '{name}': {from} -> {to} ({reason:?})");
        }
    });
    let policy = policy(breaker.clone());
    println!("GET {url}");
    println!(
        "policy: fallback > timeout 2 s > retry 3x (backoff from 50 ms) > breaker > bulkhead 8 > timeout {} ms",
        ATTEMPT_TIMEOUT.as_millis()
    );

    println!("server flaky (every third request answers 503):");
    for call in 1..=3 {
        get_items(call, &policy, &http, &url).await;
    }

    println!("server hangs:");
    server.set(Mode::Hanging);
    for call in 4..=6 {
        get_items(call, &policy, &http, &url).await;
    }

    server.set(Mode::Healthy);
    let wait = breaker.retry_after().unwrap_or_default() + Duration::from_millis(20);
    println!(
        "server recovered; waiting {} ms for the open wait to end:",
        wait.as_millis()
    );
    Clock::tokio().sleep(wait).await;
    for call in 7..=8 {
        get_items(call, &policy, &http, &url).await;
    }
    println!("breaker state at the end: {}", breaker.state());
}
