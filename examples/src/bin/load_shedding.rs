//! An axum server that protects itself: seawall's `RateLimiterLayer` and `BulkheadLayer`
//! (reject mode) in front of a slow handler, their rejections turned into HTTP answers by
//! axum's `HandleErrorLayer`: 429 with a `Retry-After` header for the rate limiter, 503 for a
//! full bulkhead.
//!
//! A client then fires a burst of concurrent requests at it and counts the answers, and a
//! last request that waits as long as `Retry-After` says gets through. The run takes about two
//! seconds.
//!
//! Run with `cargo run -p examples --bin load_shedding`.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use seawall::bulkhead::{BulkheadLayer, BulkheadMode};
use seawall::error::{BulkheadFull, RateLimited};
use seawall::rate_limiter::RateLimiterLayer;
use seawall::{BoxError, Bulkhead, Clock, RateLimiter};
use tower::ServiceBuilder;

/// Requests fired at once by the client.
const BURST: usize = 40;
/// Requests the limiter lets through at once; after that, one per `RATE_PERIOD / RATE_LIMIT`.
const RATE_LIMIT: u32 = 20;
const RATE_PERIOD: Duration = Duration::from_secs(2);
/// Requests the handler may work on at the same time.
const CONCURRENCY: usize = 5;
/// How long the handler works on a request.
const WORK: Duration = Duration::from_millis(500);

/// The slow part of the service: a report that takes a while to compute.
async fn report() -> &'static str {
    Clock::tokio().sleep(WORK).await;
    "report ready\n"
}

/// Turns what a layer rejected with into an HTTP answer.
async fn shed(error: BoxError) -> Response {
    if let Some(limited) = error.downcast_ref::<RateLimited>() {
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down\n").into_response();
        if let Some(wait) = limited.retry_after() {
            // Retry-After counts whole seconds: round up, so a client that obeys it is on time.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return response;
    }
    if error.is::<BulkheadFull>() {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy, try again\n").into_response();
    }
    // The handler itself cannot fail; anything else is a bug worth a 500, not a panic.
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
}

/// The rate limiter: a burst of `RATE_LIMIT`, then one request per `RATE_PERIOD / RATE_LIMIT`.
fn limiter() -> RateLimiter {
    RateLimiter::builder()
        .name("report-rate")
        .limit_for_period(RATE_LIMIT)
        .limit_refresh_period(RATE_PERIOD)
        // Never park a request waiting for a slot: reject it at once with a hint.
        .timeout(Duration::ZERO)
        .build()
        .expect("a valid rate limiter")
}

/// Starts the server on a free loopback port and returns the URL of the report.
async fn start_server() -> String {
    let bulkhead = Bulkhead::builder()
        .name("report-workers")
        .max_concurrent_calls(CONCURRENCY)
        .build()
        .expect("a valid bulkhead");
    let app = Router::new().route("/report", get(report)).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(shed))
            // The cheap check first: a request over the rate never takes a worker permit.
            .layer(RateLimiterLayer::new(limiter()))
            .layer(BulkheadLayer::new(bulkhead).mode(BulkheadMode::Reject)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound socket has an address");
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("server stopped: {err}");
        }
    });
    format!("http://{address}/report")
}

/// How the burst was answered.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    too_many: usize,
    unavailable: usize,
    other: usize,
    retry_after: Option<String>,
}

impl Tally {
    fn add(&mut self, answer: Result<reqwest::Response, reqwest::Error>) {
        let Ok(response) = answer else {
            self.other += 1;
            return;
        };
        match response.status() {
            StatusCode::OK => self.ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                self.too_many += 1;
                let hint = response.headers().get(header::RETRY_AFTER);
                if let Some(seconds) = hint.and_then(|value| value.to_str().ok()) {
                    self.retry_after = Some(seconds.to_owned());
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => self.unavailable += 1,
            _ => self.other += 1,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = start_server().await;
    // Loopback only: never route these requests through a proxy from the environment.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    println!("GET {url}: {} ms of work per request", WORK.as_millis());
    println!(
        "server protection: rate limiter {RATE_LIMIT} per {} s (no waiting), then bulkhead of {CONCURRENCY} (reject mode)",
        RATE_PERIOD.as_secs()
    );

    let burst: Vec<_> = (0..BURST)
        .map(|_| tokio::spawn(http.get(&url).send()))
        .collect();
    let mut tally = Tally::default();
    for request in burst {
        match request.await {
            Ok(answer) => tally.add(answer),
            Err(_) => tally.other += 1,
        }
    }
    println!("burst of {BURST} concurrent requests:");
    println!("  200 OK:                  {}", tally.ok);
    println!(
        "  429 Too Many Requests:   {} (Retry-After: {} s)",
        tally.too_many,
        tally.retry_after.as_deref().unwrap_or("none")
    );
    println!("  503 Service Unavailable: {}", tally.unavailable);
    if tally.other > 0 {
        println!("  anything else:           {}", tally.other);
    }

    let seconds = tally
        .retry_after
        .as_deref()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1);
    Clock::tokio().sleep(Duration::from_secs(seconds)).await;
    let status = match http.get(&url).send().await {
        Ok(response) => response.status().to_string(),
        Err(err) => format!("failed: {err}"),
    };
    println!("after waiting the Retry-After ({seconds} s), one more request: {status}");
}
