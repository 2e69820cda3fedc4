//! Ten commerce instances started together, as child processes, on one fresh Postgres
//! database: every one migrates, seeds and comes up (`/health`), none exits.

use std::time::Duration;

use system_tests::instance::{self, Instance};
use system_tests::postgres::Postgres;

const INSTANCES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_instances_started_together_on_a_fresh_postgres_database_all_come_up() {
    // Arrange: a throwaway server, an empty database, ten configurations.
    let Some(pg) = Postgres::start_or_skip() else {
        return;
    };
    let database = pg.create_database("concurrent_starts").await;
    let dir = tempfile::tempdir().expect("a dir");
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_commerce-instance"));
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| {
            let name = format!("start-{i}");
            // Nothing listens at the PG's address: starting needs no PG.
            let settings = instance::settings(
                &database,
                "http://127.0.0.1:9",
                system_tests::free_port(),
                &name,
            );
            Instance::new(program, dir.path(), &name, &settings)
        })
        .collect();

    // Act: all ten at once.
    for instance in &mut instances {
        instance.start();
    }

    // Assert: all ten answer /health, and none has exited.
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for instance in &mut instances {
        if let Err(e) = instance
            .wait_healthy(&client, Duration::from_secs(60))
            .await
        {
            failures.push(e);
        }
    }
    for instance in &mut instances {
        if let Some(status) = instance.exited() {
            failures.push(format!("{} exited: {status}", instance.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {INSTANCES} came up: {failures:?}",
        INSTANCES - failures.len()
    );
    eprintln!("concurrent starts: {INSTANCES} of {INSTANCES} came up on one fresh database");
}
