//! Three commerce instances as child processes on one Postgres database, in front of one PG
//! simulator with failures before and after create, timeouts and lost callbacks. A few
//! thousand mixed orders (POINT and CARD, some with idempotency keys, some keys sent twice at
//! once to two instances) are spread over them; one instance is `kill -9`'d mid-run and
//! restarted under the same id. Afterwards, from the database and the simulator's ledger:
//! every order is final, one order per key, no duplicate history row, no double charge, stock
//! and points conserved, every outbox event published, no two recovery rounds overlapping.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commerce::Settings;
use commerce::persistence::{self as db_statements, Db, OrderRow, overlapping_rounds};
use pg_simulator::{Fault, Latency, Simulator, SimulatorHandle};
use serde_json::{Value, json};
use sqlx::PgPool;
use system_tests::instance::{self, Instance};
use system_tests::pause;
use system_tests::postgres::Postgres;

/// Orders in the run (`SYSTEM_TESTS_ORDERS` overrides it).
const ORDERS: usize = 2_000;
/// Clients sending at once.
const CLIENTS: usize = 24;
/// The instance that is killed (by index).
const VICTIM: usize = 1;
/// Every user's points and every product's stock at the start (set before the load).
const POINTS: i64 = 1_000_000_000_000;
const STOCK: i64 = 1_000_000;
/// How long the orders may take to become final after the load.
const SETTLE: Duration = Duration::from_secs(90);

/// A tiny deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// One order a client wants placed.
#[derive(Clone, Debug)]
struct Plan {
    user: i64,
    body: Value,
    key: Option<String>,
    /// Sent twice at once, to two instances (needs a key).
    twice: bool,
}

/// How many orders: `SYSTEM_TESTS_ORDERS`, else [`ORDERS`].
fn orders_wanted() -> usize {
    std::env::var("SYSTEM_TESTS_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ORDERS)
}

fn plans(count: usize) -> Vec<Plan> {
    let mut rng = Rng(14);
    (0..count)
        .map(|i| {
            let user = 1 + i64::try_from(rng.below(3)).unwrap_or(0);
            let product = 1 + i64::try_from(rng.below(5)).unwrap_or(0);
            let quantity = 1 + i64::try_from(rng.below(3)).unwrap_or(0);
            let payment = if rng.below(5) < 2 {
                json!({"method": "POINT"})
            } else {
                json!({"method": "CARD", "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456"})
            };
            let keyed = rng.below(5) < 2;
            Plan {
                user,
                body: json!({"items": [{"productId": product, "quantity": quantity}], "payment": payment}),
                key: keyed.then(|| format!("sys3-{i}")),
                twice: keyed && rng.below(4) == 0,
            }
        })
        .collect()
}

/// What one client saw for one request (after its retries).
#[derive(Clone, Debug)]
struct Answer {
    plan: usize,
    /// The HTTP status, `None` when no answer came (the instance died under the request).
    status: Option<u16>,
    order_id: Option<i64>,
}

impl Answer {
    fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends plan `index` to instance `first`; a keyed request is retried with its key on the
/// next instances when no answer comes or the key is still in progress (as a client would).
async fn send(
    client: &reqwest::Client,
    urls: &[String],
    index: usize,
    plan: &Plan,
    first: usize,
) -> Answer {
    let tries = if plan.key.is_some() { 6 } else { 1 };
    let mut answer = Answer {
        plan: index,
        status: None,
        order_id: None,
    };
    for attempt in 0..tries {
        let url = &urls[(first + attempt) % urls.len()];
        let mut request = client
            .post(format!("{url}/api/v1/orders"))
            .header("X-USER-ID", plan.user.to_string())
            .json(&plan.body);
        if let Some(key) = &plan.key {
            request = request.header("Idempotency-Key", key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                answer.status = Some(status);
                answer.order_id = body["orderId"].as_i64();
                let in_progress = body["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS";
                if !in_progress {
                    return answer;
                }
            }
            Err(_) => answer.status = None,
        }
        pause(200).await;
    }
    answer
}

/// The clients: `CLIENTS` tasks taking plans in turn, instance `index % 3` first (a twin to
/// the next instance as well, at the same time). `done` counts finished plans.
async fn run_clients(
    urls: Arc<Vec<String>>,
    plans: Arc<Vec<Plan>>,
    done: Arc<AtomicUsize>,
) -> Vec<Answer> {
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (urls, plans, next, done, answers, client) = (
            urls.clone(),
            plans.clone(),
            next.clone(),
            done.clone(),
            answers.clone(),
            client.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(plan) = plans.get(index) else { break };
                let first = index % urls.len();
                let mut got = vec![];
                if plan.twice {
                    let (a, b) = tokio::join!(
                        send(&client, &urls, index, plan, first),
                        send(&client, &urls, index, plan, first + 1)
                    );
                    got.extend([a, b]);
                } else {
                    got.push(send(&client, &urls, index, plan, first).await);
                }
                answers.lock().expect("answers").extend(got);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client task");
    }
    answers.lock().expect("answers").clone()
}

/// `POST /admin/reconcile` on each instance in turn every 300 ms until `stop`, next to the
/// periodic rounds (a round of one instance must not share the lease with another of its
/// own). Returns how many were answered 200.
async fn poke_reconcile(urls: Arc<Vec<String>>, stop: Arc<AtomicUsize>) -> usize {
    let client = reqwest::Client::new();
    let mut ran = 0;
    for turn in 0.. {
        if stop.load(Ordering::Relaxed) > 0 {
            break;
        }
        let url = &urls[turn % urls.len()];
        let answer = client
            .post(format!("{url}/api/v1/admin/reconcile"))
            .bearer_auth(instance::ADMIN_TOKEN)
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            ran += 1;
        }
        pause(300).await;
    }
    ran
}

/// The PG: fast, with failures before create (500), after create (500 and a timeout), lost
/// callbacks and declines, so recovery has work.
async fn simulator() -> SimulatorHandle {
    Simulator::builder()
        .seed(14)
        .latency(Latency::uniform(Duration::ZERO..=Duration::from_millis(20)))
        .request_fail_rate(0.1)
        .processing_delay(Duration::ZERO..=Duration::from_millis(200))
        .processing_concurrency(32)
        .outcome_weights(70, 20, 10)
        .fault_rate(Fault::ErrorAfterCreate, 0.05)
        .fault_rate(Fault::ChargeButTimeout, 0.03)
        .fault_rate(Fault::DropCallback, 0.10)
        .fault_params(|f| f.charge_but_timeout_delay = Duration::from_millis(800))
        .allow_any_loopback_callback()
        .callback_timeout(Duration::from_secs(2))
        .callback_secret(instance::CALLBACK_SECRET)
        .idempotency(true)
        .cancel_endpoint(true)
        .spawn()
        .await
        .expect("the simulator starts")
}

/// One instance's settings: short timeouts, recovery and outbox relays on with short
/// intervals.
fn settings(database: &str, pg: &str, port: u16, id: &str) -> Settings {
    let mut s = instance::settings(database, pg, port, id);
    let backoff = seawall::Backoff::exponential(Duration::from_millis(10))
        .max(Duration::from_secs(1))
        .full_jitter();
    s.gateway.client.charge.read_timeout = Duration::from_millis(500);
    s.gateway.client.charge.retry.backoff = backoff;
    s.gateway.client.query.read_timeout = Duration::from_millis(500);
    s.gateway.client.query.retry.backoff = backoff;
    s.gateway.charge_tuning.enabled = false;
    s.recovery.enabled = true;
    s.recovery.interval_ms = 300;
    s.recovery.older_than_ms = 300;
    s.recovery.not_found_grace_ms = 1_500;
    s.recovery.send_grace_ms = 1_000;
    s.recovery.deadline_ms = 60_000;
    s.recovery.lease_ttl_ms = 5_000;
    s.outbox.interval_ms = 100;
    s.outbox.claim_ttl_ms = 2_000;
    s
}

/// Every product's stock and every user's points set to known values before the load.
async fn set_stock_and_points(pool: &PgPool) -> (HashMap<i64, i64>, HashMap<i64, i64>) {
    sqlx::query("UPDATE products SET stock = $1")
        .bind(STOCK)
        .execute(pool)
        .await
        .expect("stock set");
    sqlx::query("UPDATE users SET points = $1")
        .bind(POINTS)
        .execute(pool)
        .await
        .expect("points set");
    let ids = |table: &str| format!("SELECT id FROM {table}");
    let products: Vec<i64> = sqlx::query_scalar(&ids("products"))
        .fetch_all(pool)
        .await
        .expect("products");
    let users: Vec<i64> = sqlx::query_scalar(&ids("users"))
        .fetch_all(pool)
        .await
        .expect("users");
    (
        products.into_iter().map(|p| (p, STOCK)).collect(),
        users.into_iter().map(|u| (u, POINTS)).collect(),
    )
}

fn is_final(order: &OrderRow) -> bool {
    matches!(order.status.as_str(), "PAID" | "FAILED" | "NEEDS_REVIEW")
}

/// Waits until every order is final, every outbox event published and every PG transaction
/// terminal; returns how long it took, or `None` at the deadline.
async fn settle(db: &Db, pool: &PgPool, pg: &SimulatorHandle) -> Option<Duration> {
    let clock = seawall::Clock::default();
    let start = clock.now();
    loop {
        let orders = db_statements::all_orders(&mut db.reader().await.expect("a connection"))
            .await
            .expect("orders");
        let open = orders.iter().filter(|o| !is_final(o)).count();
        let unpublished: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")
                .fetch_one(pool)
                .await
                .expect("the backlog");
        let pg_open = pg
            .ledger()
            .transactions()
            .iter()
            .filter(|t| !t.status.is_terminal())
            .count();
        if open == 0 && unpublished == 0 && pg_open == 0 {
            return Some(clock.now() - start);
        }
        if clock.now() - start > SETTLE {
            eprintln!(
                "after {SETTLE:?}: {open} orders open, {unpublished} events unpublished, {pg_open} PG transactions open"
            );
            return None;
        }
        pause(250).await;
    }
}

/// Every accepted answer names a final order; answers for one plan (a twin, a retried key)
/// name one order; no two plans share an order; no more orders than plans.
fn check_answers(orders: &[OrderRow], answers: &[Answer], plans: &[Plan]) -> usize {
    let by_id: HashMap<i64, &OrderRow> = orders.iter().map(|o| (o.id.get(), o)).collect();
    let mut plan_of: HashMap<i64, usize> = HashMap::new();
    let mut order_of: HashMap<usize, i64> = HashMap::new();
    for answer in answers.iter().filter(|a| a.accepted()) {
        let id = answer.order_id.expect("an accepted answer names its order");
        let order = by_id
            .get(&id)
            .expect("an accepted order is in the database");
        assert!(is_final(order), "accepted order not final: {order:?}");
        let plan = *plan_of.entry(id).or_insert(answer.plan);
        assert_eq!(plan, answer.plan, "order {id} answered for two plans");
        let first = *order_of.entry(answer.plan).or_insert(id);
        assert_eq!(first, id, "one key, two orders: {:?}", plans[answer.plan]);
    }
    assert!(
        orders.len() <= plans.len(),
        "{} orders from {} plans",
        orders.len(),
        plans.len()
    );
    order_of.len()
}

/// One order per key (the keys table and the orders behind it), no payment history row
/// written twice.
async fn check_keys_and_history(pool: &PgPool, plans: &[Plan]) {
    let shared: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, COUNT(*) FROM idempotency_keys GROUP BY key HAVING COUNT(*) > 1",
    )
    .fetch_all(pool)
    .await
    .expect("keys");
    assert!(shared.is_empty(), "keys with several orders: {shared:?}");
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(pool)
        .await
        .expect("keys");
    let planned = plans.iter().filter(|p| p.key.is_some()).count();
    assert!(
        usize::try_from(keys).unwrap_or(usize::MAX) <= planned,
        "{keys} keys from {planned} keyed plans"
    );
    let doubled: Vec<(i64, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT payment_id, from_status, to_status, COUNT(*) FROM payment_history \
         GROUP BY payment_id, from_status, to_status HAVING COUNT(*) > 1",
    )
    .fetch_all(pool)
    .await
    .expect("history");
    assert!(
        doubled.is_empty(),
        "history rows written twice: {doubled:?}"
    );
}

/// No order charged twice at the PG; a PAID card order has exactly one successful charge, a
/// FAILED one none; every successful charge belongs to an order that is not FAILED; a FAILED
/// card order failed after its request (by recovery) was sent (the PG knows it, or a charge
/// attempt for it is in the call log: an order accepted and then never sent must be sent by
/// recovery, not failed as "not found"). Returns the number of
/// successful charges.
async fn check_ledger(pool: &PgPool, orders: &[OrderRow], pg: &SimulatorHandle) -> usize {
    let ledger = pg.ledger();
    let answered: HashSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT order_ref FROM pg_calls \
         WHERE path = 'charge' AND order_ref IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("the PG call log")
    .into_iter()
    .collect();
    for order in orders
        .iter()
        .filter(|o| o.method == "CARD" && o.status.as_str() == "FAILED")
    {
        if ledger.count_for_order(&order.order_ref) == 0
            && !answered.contains(&order.order_ref)
            && failed_later(pool, order).await
        {
            panic!(
                "a card order failed without ever being sent: {order:?}\n{}",
                order_story(pool, order).await
            );
        }
    }
    assert_eq!(ledger.double_charged_orders(), vec![], "double charges");
    for order in orders.iter().filter(|o| o.method == "CARD") {
        let successes = ledger.successes_for_order(&order.order_ref);
        match order.status.as_str() {
            "PAID" => assert_eq!(successes, 1, "{order:?}"),
            "FAILED" => assert_eq!(successes, 0, "{order:?}"),
            _ => {}
        }
    }
    let by_ref: HashMap<&str, &OrderRow> =
        orders.iter().map(|o| (o.order_ref.as_str(), o)).collect();
    let mut charges = 0;
    for t in ledger.transactions() {
        if t.status == pg_simulator::TransactionStatus::Success {
            charges += 1;
            let order = by_ref.get(t.order_id.as_str());
            assert!(
                order.is_some_and(|o| o.status.as_str() != "FAILED"),
                "a charge for a failed or unknown order: {t:?} {order:?}"
            );
        }
    }
    charges
}

/// Whether the order's payment was failed after its request was answered (by recovery or an
/// operator), rather than by the request itself (a refusal the client was told about, such
/// as an open breaker: nothing sent, nothing to send later).
async fn failed_later(pool: &PgPool, order: &OrderRow) -> bool {
    let sources: Vec<String> = sqlx::query_scalar(
        "SELECT h.source FROM payment_history h JOIN payments p ON p.id = h.payment_id \
         WHERE p.order_id = $1 AND h.to_status = 'FAILED'",
    )
    .bind(order.id)
    .fetch_all(pool)
    .await
    .expect("the history");
    sources.iter().any(|s| s != "request")
}

/// A payment history row: payment, from, to, source, detail, at.
type History = (i64, Option<String>, String, String, Option<String>, i64);
/// A PG call log row: PG, path, requested, responded, status code, outcome.
type Call = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i32>,
    Option<String>,
);
/// A payment: id, status, idempotency key, attempted at, created at.
type Payment = (i64, String, Option<String>, Option<i64>, i64);

/// An order's payments, payment history and PG call log, for failure messages.
async fn order_story(pool: &PgPool, order: &OrderRow) -> String {
    let history: Vec<History> = sqlx::query_as(
        "SELECT h.payment_id, h.from_status, h.to_status, h.source, h.detail, h.created_at \
         FROM payment_history h JOIN payments p ON p.id = h.payment_id \
         WHERE p.order_id = $1 ORDER BY h.id",
    )
    .bind(order.id)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let calls: Vec<Call> = sqlx::query_as(
        "SELECT pg, path, requested_at, responded_at, status_code, outcome FROM pg_calls \
         WHERE order_ref = $1 ORDER BY id",
    )
    .bind(&order.order_ref)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let payments: Vec<Payment> = sqlx::query_as(
        "SELECT id, status, idempotency_key, attempted_at, created_at FROM payments WHERE order_id = $1",
    )
    .bind(order.id)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    format!("payments {payments:?}\nhistory {history:#?}\nPG calls {calls:#?}")
}

/// Stock: initial = on the shelf + held by orders that did not release it. Points: initial
/// = left + spent by POINT orders that did not fail.
async fn check_stock_and_points(
    db: &Db,
    pool: &PgPool,
    orders: &[OrderRow],
    stock: &HashMap<i64, i64>,
    points: &HashMap<i64, i64>,
) {
    for (&product, &before) in stock {
        let now = db_statements::product(
            &mut db.reader().await.expect("a connection"),
            product.into(),
        )
        .await
        .expect("a product")
        .expect("it exists")
        .stock;
        let held = db_statements::units_held(
            &mut db.reader().await.expect("a connection"),
            product.into(),
        )
        .await
        .expect("units held");
        assert_eq!(
            before,
            now + held,
            "stock of product {product}: {now} left, {held} held"
        );
    }
    for (&user, &before) in points {
        let left: i64 = sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(pool)
            .await
            .expect("points");
        let spent: i64 = orders
            .iter()
            .filter(|o| {
                o.user_id.get() == user && o.method == "POINT" && o.status.as_str() != "FAILED"
            })
            .map(|o| o.total_amount)
            .sum();
        assert_eq!(
            before,
            left + spent,
            "points of user {user}: {left} left, {spent} spent"
        );
    }
}

/// Every outbox event published and none parked; a consumer deduplicating by id sees each
/// once; every PAID order has an `OrderPaid` event and every FAILED one an `OrderFailed`.
/// Returns the number of events.
async fn check_outbox(pool: &PgPool, orders: &[OrderRow]) -> usize {
    let rows: Vec<(i64, i64, String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT id, aggregate_id, event_type, published_at, dead FROM outbox_events ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("events");
    let mut seen = HashSet::new();
    let mut kinds: HashSet<(i64, &str)> = HashSet::new();
    for (id, order, kind, published_at, dead) in &rows {
        assert!(
            published_at.is_some() && *dead == 0,
            "event {id} ({kind}) not published"
        );
        assert!(seen.insert(*id), "event {id} consumed twice");
        kinds.insert((*order, kind.as_str()));
    }
    for order in orders {
        let wanted = match order.status.as_str() {
            "PAID" => "OrderPaid",
            "FAILED" => "OrderFailed",
            _ => continue,
        };
        assert!(
            kinds.contains(&(order.id.get(), wanted)),
            "no {wanted} event for {order:?}"
        );
    }
    rows.len()
}

/// No two recovery rounds overlap (from their own start and end records), and rounds ran.
/// Returns (rounds, instances that ran one, rounds abandoned by the kill).
async fn check_rounds(db: &Db) -> (usize, usize, usize) {
    let rounds = db_statements::recovery_rounds(&mut db.reader().await.expect("a connection"))
        .await
        .expect("rounds");
    if std::env::var_os("SYSTEM_TESTS_VERBOSE").is_some() {
        for r in &rounds {
            eprintln!(
                "round {r:?} lasted {:?} ms",
                r.ended_at.map(|e| e - r.started_at)
            );
        }
    }
    assert!(
        overlapping_rounds(&rounds).is_none(),
        "overlapping rounds: {:?}",
        overlapping_rounds(&rounds)
    );
    assert!(!rounds.is_empty(), "no recovery round ran");
    let instances: HashSet<&str> = rounds.iter().map(|r| r.instance_id.as_str()).collect();
    let abandoned = rounds
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("abandoned"))
        .count();
    (rounds.len(), instances.len(), abandoned)
}

/// Starts the three instances and waits until each answers.
async fn start_instances(
    dir: &std::path::Path,
    database: &str,
    pg: &str,
    client: &reqwest::Client,
) -> (Vec<Instance>, Settings) {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_commerce-instance"));
    let mut instances = Vec::new();
    let mut first = None;
    for i in 0..3 {
        let name = format!("node-{i}");
        let settings = settings(database, pg, system_tests::free_port(), &name);
        instances.push(Instance::new(program, dir, &name, &settings));
        first.get_or_insert(settings);
    }
    for instance in &mut instances {
        instance.start();
    }
    for instance in &mut instances {
        if let Err(e) = instance.wait_healthy(client, Duration::from_secs(60)).await {
            panic!("{e}");
        }
    }
    (instances, first.expect("three settings"))
}

/// `kill -9`, a second down, the same instance started again (same id, same port).
async fn kill_and_restart(victim: &mut Instance, client: &reqwest::Client, done: &AtomicUsize) {
    victim.kill9().await;
    eprintln!(
        "killed {} after {} orders",
        victim.name(),
        done.load(Ordering::Relaxed)
    );
    pause(1_000).await;
    victim.start();
    if let Err(e) = victim.wait_healthy(client, Duration::from_secs(60)).await {
        panic!("the restart: {e}");
    }
    eprintln!("restarted it after {} orders", done.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_with_one_killed_lose_no_order_and_charge_none_twice() {
    // Arrange: Postgres, the PG, three instances, known stock and points.
    let Some(postgres) = Postgres::start_or_skip() else {
        return;
    };
    let clock = seawall::Clock::default();
    let began = clock.now();
    let database = postgres.create_database("three_instances").await;
    let pg = simulator().await;
    let dir = tempfile::tempdir().expect("a dir");
    let client = reqwest::Client::new();
    let (mut instances, settings) =
        start_instances(dir.path(), &database, &pg.base_url(), &client).await;
    let pool = PgPool::connect(&database).await.expect("the database");
    let (stock, points) = set_stock_and_points(&pool).await;
    let db = Db::connect(&settings.database.options())
        .await
        .expect("commerce's view of it");
    let plans = Arc::new(plans(orders_wanted()));
    let urls = Arc::new(instances.iter().map(Instance::base_url).collect::<Vec<_>>());

    // Act: the load, with one instance killed a third of the way in and started again.
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicUsize::new(0));
    let pokes = tokio::spawn(poke_reconcile(urls.clone(), stop.clone()));
    let clients = tokio::spawn(run_clients(urls, plans.clone(), done.clone()));
    while done.load(Ordering::Relaxed) < plans.len() / 3 && !clients.is_finished() {
        pause(20).await;
    }
    kill_and_restart(&mut instances[VICTIM], &client, &done).await;
    let answers = clients.await.expect("the clients");
    stop.store(1, Ordering::Relaxed);
    let pokes = pokes.await.expect("the reconcile requests");
    let load = clock.now() - began;
    let settled = settle(&db, &pool, &pg).await;
    for instance in &mut instances {
        assert_eq!(instance.exited(), None, "{} exited", instance.name());
    }

    // Assert: every order final within the deadline, and the money and the goods add up.
    let orders = db_statements::all_orders(&mut db.reader().await.expect("a connection"))
        .await
        .expect("orders");
    let settled = settled.unwrap_or_else(|| panic!("not final within {SETTLE:?}"));
    let accepted = check_answers(&orders, &answers, &plans);
    check_keys_and_history(&pool, &plans).await;
    let charges = check_ledger(&pool, &orders, &pg).await;
    check_stock_and_points(&db, &pool, &orders, &stock, &points).await;
    let events = check_outbox(&pool, &orders).await;
    let (rounds, runners, abandoned) = check_rounds(&db).await;
    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for order in &orders {
        *by_status.entry(order.status.as_str()).or_default() += 1;
    }
    let mut http: HashMap<String, usize> = HashMap::new();
    for answer in &answers {
        let status = answer
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        *http.entry(status).or_default() += 1;
    }
    eprintln!(
        "three instances: {} orders planned, {} requests (HTTP {http:?}), {accepted} accepted, \
         {} in the database, final {by_status:?}; {charges} successful charges of {} PG transactions; \
         {events} events published; {rounds} recovery rounds on {runners} instances ({abandoned} abandoned, {pokes} admin requests answered); \
         load {load:.1?}, final {settled:.1?} after it",
        plans.len(),
        answers.len(),
        orders.len(),
        pg.ledger().len(),
    );
    pool.close().await;
    db.close().await;
}
