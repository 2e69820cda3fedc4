//! The recovery lease: exclusive (not re-entrant), fenced by its generation, and one round
//! at a time inside an instance, shown from the rounds' own records.

use std::time::Duration;

use commerce::domain::Source;
use commerce::persistence;
use commerce::persistence::{now_ms, overlapping_rounds};
use commerce::recovery::{LEASE_NAME, RoundError};
use reqwest::StatusCode;
use seawall::fault::FaultConfig;
use serde_json::Value;

use crate::helpers::{card, eventually, first_payment, order_body, spawn_app, spawn_app_with};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_same_owner_cannot_take_the_lease_twice() {
    let app = spawn_app().await;
    let db = &app.handle.state.db;
    let now = now_ms();
    let first = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now,
        MINUTE,
    )
    .await
    .unwrap()
    .expect("a free lease is taken");
    let again = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now + 1,
        MINUTE,
    )
    .await
    .unwrap();
    assert_eq!(again, None, "the lease is not re-entrant");
    assert!(
        persistence::release_lease(&mut db.writer().await.unwrap(), &first)
            .await
            .unwrap()
    );
    let next = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now + 2,
        MINUTE,
    )
    .await
    .unwrap()
    .expect("a released lease is taken again");
    assert!(next.generation > first.generation);
}

#[tokio::test]
async fn a_stale_generation_can_neither_renew_nor_release_the_lease() {
    // Arrange: instance A's lease ran out, and B took it.
    let app = spawn_app().await;
    let db = &app.handle.state.db;
    let now = now_ms();
    let mut stale = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now,
        Duration::from_millis(10),
    )
    .await
    .unwrap()
    .unwrap();
    let mut current = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-b",
        now + 11,
        MINUTE,
    )
    .await
    .unwrap()
    .expect("an expired lease is taken by another instance");

    // Act + Assert: A's token is refused; B's works.
    assert!(
        !persistence::renew_lease(
            &mut db.writer().await.unwrap(),
            &mut stale,
            None,
            now + 12,
            MINUTE
        )
        .await
        .unwrap()
    );
    assert!(
        !persistence::release_lease(&mut db.writer().await.unwrap(), &stale)
            .await
            .unwrap()
    );
    assert!(
        persistence::try_acquire_lease(
            &mut db.writer().await.unwrap(),
            LEASE_NAME,
            "instance-c",
            now + 13,
            MINUTE
        )
        .await
        .unwrap()
        .is_none(),
        "B still holds it"
    );
    assert!(
        persistence::renew_lease(
            &mut db.writer().await.unwrap(),
            &mut current,
            None,
            now + 14,
            MINUTE
        )
        .await
        .unwrap()
    );
    assert!(
        persistence::release_lease(&mut db.writer().await.unwrap(), &current)
            .await
            .unwrap()
    );

    // Even the same owner, once it took the lease again, fences off its older token.
    let old = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now + 15,
        Duration::from_millis(1),
    )
    .await
    .unwrap()
    .unwrap();
    let new = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-a",
        now + 17,
        MINUTE,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        !persistence::release_lease(&mut db.writer().await.unwrap(), &old)
            .await
            .unwrap()
    );
    assert!(
        persistence::release_lease(&mut db.writer().await.unwrap(), &new)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_round_that_lost_its_lease_stops_writing_and_leaves_the_new_holder_alone() {
    // Arrange: a 1 ms lease (renewed before every payment), four open payments whose
    // queries take 300 ms each, and another instance that takes the lease once it ran out.
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            s.recovery.lease_ttl_ms = 1;
            s.gateway.fault.query = FaultConfig::new()
                .enabled(true)
                .latency(1.0, Duration::from_millis(300));
        },
    )
    .await;
    for _ in 0..4 {
        let (status, _) = app
            .place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let recovery = app.handle.state.recovery.clone();
    let round = tokio::spawn(async move { recovery.run_once(Source::Recovery).await });
    let db = &app.handle.state.db;
    // The first renewal (before the first payment) moves the record's `lease_until`.
    eventually(Duration::from_secs(5), || async {
        let rounds = persistence::recovery_rounds(&mut db.reader().await.unwrap())
            .await
            .unwrap();
        rounds
            .iter()
            .any(|r| r.ended_at.is_none() && r.lease_until > r.started_at + 1)
            .then_some(())
    })
    .await
    .expect("the round starts on its first payment");

    // Act: while the first payment's query is in flight, B takes the expired lease.
    let stolen = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        LEASE_NAME,
        "instance-b",
        now_ms() + 2,
        MINUTE,
    )
    .await
    .unwrap()
    .expect("the 1 ms lease ran out");
    let report = round.await.unwrap().expect("the round ends");

    // Assert: the renewal before the next payment failed, so the round stopped there (the
    // theft came during the first payment's query, or at the latest during a later one);
    // B's lease was neither renewed nor released by it.
    assert!(report.lease_lost, "{report:?}");
    assert!((1..4).contains(&report.examined), "{report:?}");
    let rounds = persistence::recovery_rounds(&mut db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(rounds[0].outcome.as_deref(), Some("lease lost"));
    assert!(
        persistence::try_acquire_lease(
            &mut db.writer().await.unwrap(),
            LEASE_NAME,
            "instance-c",
            now_ms(),
            MINUTE
        )
        .await
        .unwrap()
        .is_none(),
        "B still holds it"
    );
    assert!(
        persistence::release_lease(&mut db.writer().await.unwrap(), &stolen)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_admin_reconcile_during_a_running_round_is_refused_with_409() {
    // Arrange: one open payment whose query takes 600 ms, so a round lasts that long.
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            s.gateway.fault.query = FaultConfig::new()
                .enabled(true)
                .latency(1.0, Duration::from_millis(600));
        },
    )
    .await;
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(first_payment(&order)["transactionKey"].is_string());
    let recovery = app.handle.state.recovery.clone();
    let periodic = tokio::spawn(async move { recovery.run_once(Source::Recovery).await });
    let db = app.handle.state.db.clone();
    eventually(Duration::from_secs(5), || async {
        let rounds = persistence::recovery_rounds(&mut db.reader().await.unwrap())
            .await
            .unwrap();
        rounds.iter().any(|r| r.ended_at.is_none()).then_some(())
    })
    .await
    .expect("the periodic round starts");

    // Act
    let response = app
        .admin(
            app.client
                .post(format!("{}/api/v1/admin/reconcile", app.address)),
        )
        .send()
        .await
        .unwrap();

    // Assert: a clear refusal; the periodic round finishes; the records do not overlap.
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RECOVERY_ALREADY_RUNNING", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already running")
    );
    let report = periodic.await.unwrap().expect("the periodic round runs");
    assert!(report.ran && report.examined == 1, "{report:?}");
    assert!(matches!(
        app.handle.state.recovery.run_once(Source::Admin).await,
        Ok(ref r) if r.ran
    ));
    let rounds = persistence::recovery_rounds(&mut app.handle.state.db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(overlapping_rounds(&rounds), None, "{rounds:?}");
}

#[tokio::test]
async fn concurrent_rounds_of_two_instances_never_overlap() {
    // Arrange: two instances' jobs on one database (the second built over the first's
    // payments, under another name), and open payments to work on.
    let app = spawn_app().await;
    for _ in 0..3 {
        app.place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
            .await;
    }
    let a = app.handle.state.recovery.clone();
    let b = commerce::recovery::RecoveryJob::new(
        app.handle.state.payments.clone(),
        app.settings.recovery.clone(),
        "instance-b",
    );

    // Act: 20 rounds each, as fast as they go, plus admin rounds on A.
    let run = |job: commerce::recovery::RecoveryJob, source| async move {
        let mut ran = 0;
        for _ in 0..20 {
            match job.run_once(source).await {
                Ok(report) if report.ran => ran += 1,
                Ok(_) | Err(RoundError::AlreadyRunning) => {}
                Err(error) => panic!("{error}"),
            }
        }
        ran
    };
    let (ran_a, ran_b, ran_admin) = tokio::join!(
        tokio::spawn(run(a.clone(), Source::Recovery)),
        tokio::spawn(run(b, Source::Recovery)),
        tokio::spawn(run(a, Source::Admin)),
    );

    // Assert: every round that took the lease is recorded, and none overlaps another.
    let rounds = persistence::recovery_rounds(&mut app.handle.state.db.reader().await.unwrap())
        .await
        .unwrap();
    let ran = ran_a.unwrap() + ran_b.unwrap() + ran_admin.unwrap();
    assert!(ran > 0);
    assert_eq!(rounds.len(), ran);
    assert!(rounds.iter().all(|r| r.outcome.as_deref() == Some("done")));
    assert_eq!(overlapping_rounds(&rounds), None, "{rounds:?}");
}
