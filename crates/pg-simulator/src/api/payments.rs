//! The canonical payment API: create, detail, list by order, and the opt-in cancel.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Serialize;

use super::request::{self, PaymentRequest};
use super::{
    abort, bad_request, fail, html_502, internal_error, json_bytes, malformed, not_found,
    retry_after, success, success_bytes, unknown_path, unstable, wrong_method,
};
use crate::callback;
use crate::clock;
use crate::config::SimConfig;
use crate::decider::{PaymentPlan, forced_faults};
use crate::fault::{
    ActiveFaults, FAULT_HEADER, Fault, FaultContext, HeaderFaults, Trigger, lock,
    parse_fault_header,
};
use crate::idempotency::{Begin, IdempotencyGuard};
use crate::key::local_date;
use crate::ledger::{EntryView, NewTransaction};
use crate::model::{CardNumber, TransactionStatus, messages};
use crate::processing;
use crate::state::Shared;
use crate::stats::Stats;

const USER_HEADER: &str = "x-user-id";
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 300;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/payments", post(create).get(list_by_order))
        .route("/api/v1/payments/{transaction_key}", get(detail))
        .route("/api/v1/payments/{transaction_key}/cancel", post(cancel))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .with_state(shared)
}

// ===== response bodies =====

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransactionResponse<'a> {
    transaction_key: &'a str,
    status: TransactionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderResponse<'a> {
    order_id: &'a str,
    transactions: Vec<TransactionResponse<'a>>,
}

fn card_no_for_response(card: &CardNumber, config: &SimConfig) -> String {
    if config.mask_pan_in_responses {
        card.masked()
    } else {
        card.expose().to_owned()
    }
}

/// The body of the 200 that creates a transaction (also what an idempotent retry gets back).
pub(crate) fn created_body(transaction_key: &str) -> Bytes {
    success_bytes(&TransactionResponse {
        transaction_key,
        status: TransactionStatus::Pending,
        reason: None,
    })
}

// ===== common request parts =====

fn user_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(USER_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The HTTP answer to give instead of proceeding (boxed: responses are large).
type Early = Box<Response>;

fn header_faults(headers: &HeaderMap, config: &SimConfig) -> Result<HeaderFaults, Early> {
    let mut parsed = HeaderFaults::default();
    if config.triggers.header {
        for value in headers.get_all(FAULT_HEADER) {
            let text = String::from_utf8_lossy(value.as_bytes());
            parse_fault_header(&text, &mut parsed)
                .map_err(|item| Box::new(bad_request(&messages::unknown_fault(&item))))?;
        }
    }
    Ok(parsed)
}

/// What the detached payment task answers.
enum Reply {
    Respond(Response),
    /// Never answer (black hole).
    Hang,
}

/// Waits, unless the simulator shuts down first (`false`).
async fn wait(shared: &Shared, duration: Duration) -> bool {
    tokio::select! {
        () = clock::sleep(duration) => true,
        () = shared.shutdown.cancelled() => false,
    }
}

/// The pre-create faults shared by payments and queries, in precedence order. `Some` is the
/// answer to give instead of proceeding.
async fn connection_and_latency_faults(
    shared: &Shared,
    faults: &ActiveFaults,
    latency: Duration,
    ctx: &FaultContext,
) -> Option<Reply> {
    if let Some(a) = faults.get(Fault::Reset) {
        shared.record(Fault::Reset, a.trigger, ctx);
        return Some(Reply::Respond(abort()));
    }
    if let Some(a) = faults.get(Fault::BlackHole) {
        shared.record(Fault::BlackHole, a.trigger, ctx);
        return Some(Reply::Hang);
    }
    if let Some(a) = faults.get(Fault::Slow) {
        shared.record(Fault::Slow, a.trigger, ctx);
    }
    if !wait(shared, latency).await {
        return Some(Reply::Respond(abort()));
    }
    None
}

fn throttling_faults(
    shared: &Shared,
    config: &SimConfig,
    faults: &ActiveFaults,
    ctx: &FaultContext,
) -> Option<Response> {
    let after = |a: &crate::fault::ActiveFault| {
        a.param
            .map_or(config.faults.retry_after, Duration::from_secs)
    };
    if let Some(a) = faults.get(Fault::Throttle) {
        shared.record(Fault::Throttle, a.trigger, ctx);
        return Some(retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            messages::TOO_MANY_REQUESTS,
            after(a),
        ));
    }
    if let Some(a) = faults.get(Fault::Unavailable) {
        shared.record(Fault::Unavailable, a.trigger, ctx);
        return Some(retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            messages::UNAVAILABLE,
            after(a),
        ));
    }
    if let Some(a) = faults.get(Fault::Html502) {
        shared.record(Fault::Html502, a.trigger, ctx);
        return Some(html_502());
    }
    None
}

async fn finish(shared: &Shared, reply: Reply) -> Response {
    match reply {
        Reply::Respond(r) => r,
        Reply::Hang => {
            shared.shutdown.cancelled().await;
            abort()
        }
    }
}

// ===== POST /api/v1/payments =====

async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    Stats::bump(&shared.stats.payment_requests);
    let config = shared.config();
    let Some(user) = user_id(&headers) else {
        return bad_request(messages::USER_HEADER_REQUIRED);
    };
    if user.chars().count() > request::MAX_STORED_CHARS {
        return bad_request(messages::USER_ID_TOO_LONG);
    }
    let header = match header_faults(&headers, &config) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Ok(body) = body else {
        return bad_request(messages::UNREADABLE_BODY);
    };
    let req = match request::bind(&body, &config.callback) {
        Ok(r) => r,
        Err(message) => return bad_request(&message),
    };
    let magic = if config.triggers.magic_cards {
        Fault::from_magic_card(&req.card_no)
    } else {
        None
    };
    let forced = forced_faults(&header, magic, Fault::applies_to_payments);

    let guard = if config.idempotency.enabled {
        match begin_idempotent(&shared, &config, &headers, &user, &req) {
            Ok(g) => g,
            Err(r) => return *r,
        }
    } else {
        None
    };
    if config.extensions.one_tx_per_order
        && let Some(existing) = shared.ledger.for_order(&user, &req.order_id).first()
    {
        return success(&TransactionResponse {
            transaction_key: &existing.tx.transaction_key,
            status: existing.tx.status,
            reason: existing.tx.reason.as_deref(),
        });
    }
    let plan =
        lock(&shared.decider).plan_payment(&config, &forced, header.suppress_random, req.card_type);
    // The canonical server keeps going when the client hangs up: run the work detached so a
    // client timeout cannot cancel the creation (the natural "charged but timed out" case).
    let job = shared.tracker.spawn(run_payment(
        Arc::clone(&shared),
        config,
        user,
        req,
        plan,
        guard,
    ));
    let reply = tokio::select! {
        joined = job => joined.unwrap_or_else(|_| Reply::Respond(internal_error())),
        () = shared.shutdown.cancelled() => Reply::Respond(abort()),
    };
    finish(&shared, reply).await
}

fn begin_idempotent(
    shared: &Arc<Shared>,
    config: &SimConfig,
    headers: &HeaderMap,
    user: &str,
    req: &PaymentRequest,
) -> Result<Option<IdempotencyGuard>, Early> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(Box::new(bad_request(messages::IDEMPOTENCY_KEY_INVALID)));
    }
    match shared.idempotency.begin(
        user,
        &key,
        req.fingerprint(),
        config.idempotency.retention,
        config.idempotency.max_keys,
    ) {
        Begin::Started(guard) => Ok(Some(guard)),
        Begin::Replay(body) => {
            let mut r = json_bytes(StatusCode::OK, body);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Err(Box::new(r))
        }
        Begin::Reused => Err(Box::new(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED"),
            messages::IDEMPOTENCY_KEY_REUSED,
        ))),
        Begin::InProgress => Err(Box::new(fail(
            StatusCode::CONFLICT,
            Some("IDEMPOTENCY_KEY_IN_PROGRESS"),
            messages::IDEMPOTENCY_IN_PROGRESS,
        ))),
    }
}

async fn run_payment(
    shared: Arc<Shared>,
    config: Arc<SimConfig>,
    user: String,
    req: PaymentRequest,
    plan: PaymentPlan,
    guard: Option<IdempotencyGuard>,
) -> Reply {
    let faults = &plan.faults;
    let mut ctx = FaultContext {
        user_id: Some(user.clone()),
        order_id: Some(req.order_id.clone()),
        transaction_key: None,
    };
    if let Some(reply) = connection_and_latency_faults(&shared, faults, plan.latency, &ctx).await {
        return reply;
    }
    if let Some(a) = faults.get(Fault::CardOutage) {
        shared.record(Fault::CardOutage, a.trigger, &ctx);
        return Reply::Respond(unstable());
    }
    if let Some(r) = throttling_faults(&shared, &config, faults, &ctx) {
        return Reply::Respond(r);
    }
    if let Some(a) = faults.get(Fault::ErrorBeforeCreate) {
        shared.record(Fault::ErrorBeforeCreate, a.trigger, &ctx);
        return Reply::Respond(unstable());
    }
    if plan.fail_before_create {
        shared.record(Fault::ErrorBeforeCreate, Trigger::FailRate, &ctx);
        return Reply::Respond(unstable());
    }

    // ----- create -----
    let tx_faults = faults.transaction_part();
    let date = local_date(clock::unix_millis(), config.keys.utc_offset_minutes);
    let new = NewTransaction {
        user_id: user,
        order_id: req.order_id,
        card_type: req.card_type,
        card_no: CardNumber::new(req.card_no),
        amount: req.amount,
        callback_url: req.callback_url,
        faults: tx_faults.clone(),
        outcome: plan.outcome,
        processing_delay: plan.processing_delay,
        idempotency: guard.as_ref().map(IdempotencyGuard::record),
    };
    let forced_collision = faults.contains(Fault::KeyCollision);
    let (tx, collisions) =
        match shared
            .ledger
            .insert(new, shared.keys.as_ref(), &date, forced_collision)
        {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(error = %e, "transaction not created");
                return Reply::Respond(internal_error());
            }
        };
    Stats::bump(&shared.stats.payments_created);
    ctx.transaction_key = Some(tx.transaction_key.clone());
    tracing::debug!(
        transaction_key = %tx.transaction_key, order_id = %tx.order_id,
        card_no = %tx.card_no, amount = tx.amount, "transaction created"
    );
    if collisions > 0 {
        let trigger = faults
            .get(Fault::KeyCollision)
            .map_or(Trigger::Rate, |a| a.trigger);
        shared.record(Fault::KeyCollision, trigger, &ctx);
    }
    for a in tx_faults.iter() {
        shared.record(a.fault, a.trigger, &ctx);
    }
    let body = created_body(&tx.transaction_key);
    if let Some(guard) = guard {
        guard.complete(body.clone());
    }
    if tx_faults.contains(Fault::Stuck) {
        tracing::info!(transaction_key = %tx.transaction_key, "transaction stuck (fault)");
    } else {
        processing::schedule(
            &shared,
            tx.transaction_key.clone(),
            plan.processing_delay,
            plan.outcome,
        );
    }

    // ----- post-create faults -----
    if let Some(a) = faults.get(Fault::ChargeButTimeout) {
        shared.record(Fault::ChargeButTimeout, a.trigger, &ctx);
        let hold = a.param.map_or(
            config.faults.charge_but_timeout_delay,
            Duration::from_millis,
        );
        if !wait(&shared, hold).await {
            return Reply::Respond(abort());
        }
    }
    if let Some(a) = faults.get(Fault::ErrorAfterCreate) {
        shared.record(Fault::ErrorAfterCreate, a.trigger, &ctx);
        return Reply::Respond(internal_error());
    }
    if let Some(a) = faults.get(Fault::ResetAfterCreate) {
        shared.record(Fault::ResetAfterCreate, a.trigger, &ctx);
        return Reply::Respond(abort());
    }
    let response =
        malformed(&shared, faults, &ctx, &body).unwrap_or_else(|| json_bytes(StatusCode::OK, body));
    Reply::Respond(response)
}

// ===== GET endpoints =====

/// How one transaction looks to a query now, after the query-lag and stale-pending faults.
enum Visible {
    Hidden,
    Shown(TransactionStatus, Option<String>),
}

fn visibility(
    shared: &Shared,
    config: &SimConfig,
    view: &EntryView,
    request_faults: &ActiveFaults,
    ctx: &FaultContext,
) -> Visible {
    let now = clock::now();
    if let Some(a) = request_faults.get(Fault::QueryLag) {
        shared.record(Fault::QueryLag, a.trigger, ctx);
        return Visible::Hidden;
    }
    if let Some(a) = view.faults.get(Fault::QueryLag) {
        let lag = a
            .param
            .map_or(config.faults.query_lag, Duration::from_millis);
        if now.duration_since(view.created) < lag {
            shared.record(Fault::QueryLag, a.trigger, ctx);
            return Visible::Hidden;
        }
    }
    let status = view.tx.status;
    if status.is_terminal() {
        if let Some(a) = request_faults.get(Fault::StalePending) {
            shared.record(Fault::StalePending, a.trigger, ctx);
            return Visible::Shown(TransactionStatus::Pending, None);
        }
        if let (Some(a), Some(done)) = (view.faults.get(Fault::StalePending), view.completed) {
            let stale = a
                .param
                .map_or(config.faults.stale_pending, Duration::from_millis);
            if now.duration_since(done) < stale {
                shared.record(Fault::StalePending, a.trigger, ctx);
                return Visible::Shown(TransactionStatus::Pending, None);
            }
        }
    }
    Visible::Shown(status, view.tx.reason.clone())
}

/// Latency, connection and error faults of a query; `Some` is the answer to give instead.
async fn query_faults(
    shared: &Shared,
    config: &SimConfig,
    headers: &HeaderMap,
    ctx: &FaultContext,
) -> Result<ActiveFaults, Early> {
    let header = header_faults(headers, config)?;
    let forced = forced_faults(&header, None, Fault::applies_to_queries);
    let plan = lock(&shared.decider).plan_query(config, &forced, header.suppress_random);
    if let Some(reply) =
        connection_and_latency_faults(shared, &plan.faults, plan.latency, ctx).await
    {
        return Err(Box::new(finish(shared, reply).await));
    }
    if let Some(r) = throttling_faults(shared, config, &plan.faults, ctx) {
        return Err(Box::new(r));
    }
    if let Some(a) = plan.faults.get(Fault::QueryError) {
        shared.record(Fault::QueryError, a.trigger, ctx);
        return Err(Box::new(internal_error()));
    }
    Ok(plan.faults)
}

async fn detail(
    State(shared): State<Arc<Shared>>,
    Path(transaction_key): Path<String>,
    headers: HeaderMap,
) -> Response {
    Stats::bump(&shared.stats.detail_queries);
    let config = shared.config();
    let Some(user) = user_id(&headers) else {
        return bad_request(messages::USER_HEADER_REQUIRED);
    };
    let ctx = FaultContext {
        user_id: Some(user.clone()),
        order_id: None,
        transaction_key: Some(transaction_key.clone()),
    };
    let faults = match query_faults(&shared, &config, &headers, &ctx).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let not_found_response = || not_found(&messages::transaction_not_found(&transaction_key));
    let Some(view) = shared.ledger.get_for_user(&user, &transaction_key) else {
        return not_found_response();
    };
    let Visible::Shown(status, reason) = visibility(&shared, &config, &view, &faults, &ctx) else {
        return not_found_response();
    };
    let tx = &view.tx;
    let body = success_bytes(&callback::TransactionBody::new(
        tx,
        card_no_for_response(&tx.card_no, &config),
        status,
        reason.as_deref(),
    ));
    malformed(&shared, &faults, &ctx, &body).unwrap_or_else(|| json_bytes(StatusCode::OK, body))
}

async fn list_by_order(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    Stats::bump(&shared.stats.order_queries);
    let config = shared.config();
    let Some(user) = user_id(&headers) else {
        return bad_request(messages::USER_HEADER_REQUIRED);
    };
    // Canonically a missing orderId ends in an unhandled exception: the generic 500.
    let order_id = query
        .ok()
        .and_then(|Query(pairs)| pairs.into_iter().find(|(k, _)| k == "orderId"))
        .map(|(_, v)| v);
    let Some(order_id) = order_id else {
        return internal_error();
    };
    let ctx = FaultContext {
        user_id: Some(user.clone()),
        order_id: Some(order_id.clone()),
        transaction_key: None,
    };
    let faults = match query_faults(&shared, &config, &headers, &ctx).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let views = shared.ledger.for_order(&user, &order_id);
    let shown: Vec<(String, TransactionStatus, Option<String>)> = views
        .iter()
        .filter_map(|v| match visibility(&shared, &config, v, &faults, &ctx) {
            Visible::Shown(status, reason) => Some((v.tx.transaction_key.clone(), status, reason)),
            Visible::Hidden => None,
        })
        .collect();
    if shown.is_empty() {
        return not_found(&messages::order_not_found(&order_id));
    }
    let body = success_bytes(&OrderResponse {
        order_id: &order_id,
        transactions: shown
            .iter()
            .map(|(k, s, r)| TransactionResponse {
                transaction_key: k,
                status: *s,
                reason: r.as_deref(),
            })
            .collect(),
    });
    malformed(&shared, &faults, &ctx, &body).unwrap_or_else(|| json_bytes(StatusCode::OK, body))
}

// ===== POST /api/v1/payments/{key}/cancel (extension) =====

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(transaction_key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = shared.config();
    if !config.extensions.cancel {
        return not_found(messages::NOT_FOUND);
    }
    Stats::bump(&shared.stats.cancel_requests);
    let Some(user) = user_id(&headers) else {
        return bad_request(messages::USER_HEADER_REQUIRED);
    };
    match shared.ledger.cancel(&user, &transaction_key) {
        Ok((view, changed)) => {
            let tx = view.tx;
            let body = success(&callback::TransactionBody::new(
                &tx,
                card_no_for_response(&tx.card_no, &config),
                tx.status,
                tx.reason.as_deref(),
            ));
            if changed {
                let task_shared = Arc::clone(&shared);
                shared.tracker.spawn(async move {
                    tokio::select! {
                        () = callback::send_plain(&task_shared, &tx) => {}
                        () = task_shared.shutdown.cancelled() => {}
                    }
                });
            }
            body
        }
        Err(crate::ledger::TransitionError::NotFound) => {
            not_found(&messages::transaction_not_found(&transaction_key))
        }
        Err(crate::ledger::TransitionError::InvalidState(status)) => fail(
            StatusCode::CONFLICT,
            None,
            &messages::not_cancelable(&transaction_key, status.as_str()),
        ),
    }
}
