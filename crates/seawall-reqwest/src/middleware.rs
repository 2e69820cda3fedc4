//! The middleware: runs the rest of the chain through a seawall policy, once per attempt.

use std::future::{Future, pending, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use http::Extensions;
use reqwest::{Method, Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};
use seawall::policy::BoxPolicy;

use crate::classify::is_failure_status;
use crate::error::{FirstAttempt, PolicyError, StatusFailure};

/// A policy the middleware can run: over reqwest's response and reqwest-middleware's error.
/// Any [`seawall::Policy`] whose decorators classify those types converts into one.
pub type HttpPolicy = BoxPolicy<Response, reqwest_middleware::Error>;

/// A request extension that lets the policy repeat a request whose method is not idempotent.
///
/// Add it only to requests the server deduplicates, such as a `POST` carrying an
/// `Idempotency-Key` that the server honours:
///
/// ```
/// # async fn example(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// let response = client
///     .post("https://pg.example/v1/payments")
///     .header("Idempotency-Key", "order-1234-attempt-1")
///     .body(r#"{"amount":5000}"#)
///     .with_extension(seawall_reqwest::Repeatable)
///     .send()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// For every request of a client, add it with
/// `ClientBuilder::with_init(reqwest_middleware::Extension(Repeatable))`. A streamed body is
/// still sent only once: there is nothing to send a second time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repeatable;

/// A [`reqwest_middleware`] middleware that runs every request through a seawall policy.
///
/// ```
/// # fn main() -> Result<(), seawall::ConfigError> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(seawall_reqwest::SeawallMiddleware::with_default_policy("catalog")?)
///     .build();
/// # Ok(())
/// # }
/// ```
///
/// Each attempt runs the rest of the middleware chain (and then the client) with a fresh copy
/// of the request ([`Request::try_clone`]).
///
/// # Requests sent at most once
///
/// **A request whose method is not idempotent (`POST`, `PATCH`, `CONNECT`, any non-standard
/// method) is sent at most once**, whatever the policy's retry says: repeating a payment
/// request that timed out can charge twice. Neither is a request with a streamed body, which
/// cannot be copied. For such a request:
///
/// - it runs through the [`single_attempt_policy`](Self::single_attempt_policy) when one is
///   set (the same breaker, bulkhead and timeouts without the retry);
/// - otherwise through the main policy, and if that policy's retry asks for a second
///   attempt, the middleware does not send it and ends the call with the first attempt's
///   outcome: its response, or a [`PolicyError`] with
///   [`is_not_resent`](PolicyError::is_not_resent) when it failed (the retry has consumed the
///   original error by then; its text is kept). The retry's backoff wait before that second
///   attempt is still spent, which the single-attempt policy avoids.
///
/// A request opts in to being repeated with the [`Repeatable`] extension.
///
/// # Failure statuses
///
/// For reqwest a `503` is a response, not an error. The middleware hands a response whose
/// status is a failure ([`is_failure_status`] by default: `5xx`, `408`, `429`; change it with
/// [`failure_statuses`](Self::failure_statuses)) to the policy as an error, a
/// [`StatusFailure`], so that a breaker counts it and a retry can retry it and honour its
/// `Retry-After`. When the policy ends on such a failure, the caller gets the response itself,
/// as without the middleware.
///
/// # Extensions
///
/// Each attempt gets its own clone of the request's extensions: the policy starts attempts as
/// separate futures, and they cannot all hold the one `&mut Extensions` the middleware is
/// given. What middlewares further down the chain add to their copy is not seen by the caller.
///
/// # Errors
///
/// When the request itself failed (connection refused, a reqwest timeout, another
/// middleware's error), the caller gets that error unchanged. When the policy stopped it (a
/// seawall timeout, an open breaker, a full bulkhead, a rate limiter, a request not resent),
/// the caller gets [`reqwest_middleware::Error::Middleware`] holding a [`PolicyError`]; find it
/// with [`PolicyError::of`].
///
/// # One policy for every host
///
/// The middleware runs every request through the same policy, so one breaker counts the
/// failures of every host the client calls. Give each dependency its own client (or
/// middleware), or wait for keyed instances (one breaker per host, created on demand), which
/// seawall does not have yet; the middleware chooses the policy in a single place that will
/// then pick it by the request's URL.
#[derive(Clone, Debug)]
pub struct SeawallMiddleware {
    policy: HttpPolicy,
    single_attempt: Option<HttpPolicy>,
    is_failure: fn(StatusCode) -> bool,
}

impl SeawallMiddleware {
    /// A middleware running every request through `policy` (a [`seawall::Policy`] or an
    /// [`HttpPolicy`]). Requests that may be sent only once run through it too, but are never
    /// sent a second time; see [`single_attempt_policy`](Self::single_attempt_policy).
    pub fn new(policy: impl Into<HttpPolicy>) -> Self {
        Self {
            policy: policy.into(),
            single_attempt: None,
            is_failure: is_failure_status,
        }
    }

    /// The policy for requests sent at most once (see [Requests sent at most
    /// once](Self#requests-sent-at-most-once)): usually the main policy's breaker, bulkhead and
    /// timeouts (clones, which share their state) without its retry.
    pub fn single_attempt_policy(mut self, policy: impl Into<HttpPolicy>) -> Self {
        self.single_attempt = Some(policy.into());
        self
    }

    /// Which response statuses the policy sees as failures (default [`is_failure_status`]).
    /// `|_| false` hands every response to the policy as a success; a breaker can then still
    /// count some with `failure_if_result`, but a retry cannot honour `Retry-After`.
    pub fn failure_statuses(mut self, is_failure: fn(StatusCode) -> bool) -> Self {
        self.is_failure = is_failure;
        self
    }

    /// The policy for a request. Keyed instances (a breaker per host) would be chosen here,
    /// from the request's URL.
    fn policy_for(&self, once: bool) -> &HttpPolicy {
        match &self.single_attempt {
            Some(single) if once => single,
            _ => &self.policy,
        }
    }

    async fn execute(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let method = request.method().clone();
        let repeatable = method.is_idempotent() || extensions.get::<Repeatable>().is_some();
        let copy = if repeatable {
            request.try_clone()
        } else {
            None
        };
        let once = copy.is_none();
        let mut requests = match copy {
            Some(copy) => Requests {
                first: Some(copy),
                template: Some(request),
            },
            None => Requests {
                first: Some(request),
                template: None,
            },
        };
        let state = CallState::new(once, self.is_failure);
        let call = &state;
        let extensions = &*extensions;
        let operation = move || {
            let request = requests.next();
            if request.is_none() {
                call.refused.store(true, Ordering::Release);
            }
            // Made here, not when the attempt is first polled, so that an attempt dropped
            // before that is recorded too.
            let record = (call.once && request.is_some()).then(|| Record::new(call));
            let mut extensions = extensions.clone();
            let next = next.clone();
            async move {
                match request {
                    Some(request) => call.attempt(request, &mut extensions, next, record).await,
                    // The call is dropped as soon as this is polled (see `run_until_refused`).
                    None => pending().await,
                }
            }
        };
        let outcome =
            run_until_refused(self.policy_for(once).call(operation), &state.refused).await;
        state.finish(outcome, method)
    }
}

#[async_trait::async_trait]
impl Middleware for SeawallMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.execute(request, extensions, next).await
    }
}

/// Where each attempt's request comes from.
struct Requests {
    /// The first attempt's request.
    first: Option<Request>,
    /// What later attempts copy; `None` for a request sent at most once.
    template: Option<Request>,
}

impl Requests {
    fn next(&mut self) -> Option<Request> {
        self.first
            .take()
            .or_else(|| self.template.as_ref()?.try_clone())
    }
}

/// What the attempts of one call share with the code that finishes it.
struct CallState {
    /// The request is sent at most once.
    once: bool,
    is_failure: fn(StatusCode) -> bool,
    /// The policy asked for an attempt that may not be sent.
    refused: AtomicBool,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The last attempt's response, when its status was a failure: the policy saw a
    /// [`StatusFailure`] in its place.
    response: Option<Response>,
    /// For a request sent at most once: what became of its attempt.
    first: Option<FirstAttempt>,
}

/// A call's outcome: `None` when it was stopped because the policy asked for an attempt that
/// may not be sent.
type Outcome = Option<Result<Response, seawall::Error<reqwest_middleware::Error>>>;

impl CallState {
    fn new(once: bool, is_failure: fn(StatusCode) -> bool) -> Self {
        Self {
            once,
            is_failure,
            refused: AtomicBool::new(false),
            slot: Mutex::default(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A panic while the slot was held cannot leave it inconsistent: take it as it is.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One attempt: the rest of the chain, with a failure status turned into a
    /// [`StatusFailure`] and the response kept aside. `record` is set for a request sent at
    /// most once.
    async fn attempt(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        mut record: Option<Record<'_>>,
    ) -> reqwest_middleware::Result<Response> {
        // Release an earlier attempt's response (and its connection) before the next one.
        self.slot().response = None;
        let outcome = match next.run(request, extensions).await {
            Ok(response) if (self.is_failure)(response.status()) => {
                let failure = StatusFailure::new(&response);
                self.slot().response = Some(response);
                Err(reqwest_middleware::Error::middleware(failure))
            }
            other => other,
        };
        if let Some(record) = &mut record {
            record.finished(&outcome);
        }
        outcome
    }

    /// The caller's result.
    fn finish(self, outcome: Outcome, method: Method) -> reqwest_middleware::Result<Response> {
        let once = self.once;
        let mut slot = self
            .slot
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let error = match outcome {
            Some(Ok(response)) => return Ok(response),
            Some(Err(error)) => error,
            None => return slot.first_outcome(method),
        };
        // The only attempt finished, so a timeout or rejection came after it, while the
        // policy tried to go on: the attempt's own outcome is the answer.
        if once && !error.is_inner() && slot.first_finished() {
            return slot.first_outcome(method);
        }
        match PolicyError::split(error) {
            Ok(stopped) => Err(reqwest_middleware::Error::middleware(stopped)),
            Err(inner) if StatusFailure::of(&inner).is_some() => slot.response.take().ok_or(inner),
            Err(inner) => Err(inner),
        }
    }
}

impl Slot {
    fn first_finished(&self) -> bool {
        self.response.is_some()
            || matches!(
                self.first,
                Some(FirstAttempt::Failed(_) | FirstAttempt::Rejected)
            )
    }

    /// The outcome of the only attempt of a request sent at most once.
    fn first_outcome(&mut self, method: Method) -> reqwest_middleware::Result<Response> {
        if let Some(response) = self.response.take() {
            return Ok(response);
        }
        let first = self.first.take().unwrap_or(FirstAttempt::Rejected);
        Err(reqwest_middleware::Error::middleware(
            PolicyError::not_resent(method, first),
        ))
    }
}

/// Records what became of the attempt of a request sent at most once; an attempt dropped
/// before it finished was timed out.
struct Record<'a> {
    call: &'a CallState,
    done: bool,
}

impl<'a> Record<'a> {
    fn new(call: &'a CallState) -> Self {
        Self { call, done: false }
    }

    fn finished(&mut self, outcome: &reqwest_middleware::Result<Response>) {
        self.done = true;
        let first = match outcome {
            Ok(_) => FirstAttempt::Rejected,
            Err(error) if StatusFailure::of(error).is_some() => return,
            Err(error) => FirstAttempt::Failed(error_chain(error)),
        };
        self.call.slot().first = Some(first);
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.call.slot().first = Some(FirstAttempt::TimedOut);
        }
    }
}

/// `error` and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `call` until it finishes, or until the policy asks for an attempt that may not be
/// sent (`refused`); the call is then dropped, which releases whatever it held.
async fn run_until_refused<F: Future + Unpin>(
    mut call: F,
    refused: &AtomicBool,
) -> Option<F::Output> {
    poll_fn(|cx| match Pin::new(&mut call).poll(cx) {
        Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
        // Set while this very poll started the refused attempt.
        Poll::Pending if refused.load(Ordering::Acquire) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}
