//! Many instances starting together on one fresh database all come up: the migrations run
//! once under a lock, and the demo seed tolerates a concurrent one.

use std::sync::Arc;

use commerce::Application;
use commerce::configuration::Settings;
use commerce::domain::UserId;
use commerce::persistence;

use crate::helpers::{fresh_postgres_database, test_settings, test_simulator};

/// Ten instances' settings over one fresh database (Postgres with
/// `COMMERCE_TEST_POSTGRES_URL`, else one SQLite file), each with its own id.
async fn ten_instances(dir: &tempfile::TempDir, pg_url: &str) -> Vec<Settings> {
    let postgres = fresh_postgres_database().await;
    (0..10)
        .map(|i| {
            let mut settings = test_settings(dir);
            if let Some(url) = &postgres {
                settings.database.url.clone_from(url);
            }
            settings.application.instance_id = Some(format!("instance-{i}"));
            settings.gateway.base_url = Some(pg_url.to_owned());
            settings
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_instances_started_together_on_a_fresh_database_all_come_up() {
    // Arrange
    let pg = test_simulator()
        .spawn()
        .await
        .expect("the simulator starts");
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let instances = ten_instances(&dir, &pg.base_url()).await;

    // Act: all at once.
    let starts = instances
        .into_iter()
        .map(|settings| tokio::spawn(Application::build(settings)))
        .collect::<Vec<_>>();
    let mut apps = Vec::new();
    for start in starts {
        apps.push(start.await.unwrap());
    }

    // Assert: every one came up, and the demo data is there once.
    let errors: Vec<String> = apps
        .iter()
        .filter_map(|app| app.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        errors.is_empty(),
        "{} of 10 failed: {errors:?}",
        errors.len()
    );
    let app = apps.remove(0).unwrap();
    let db = &app.handle().state.db;
    let products = persistence::products(&mut db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        products.iter().map(|p| p.id.get()).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    for user in 1..=3 {
        assert!(
            persistence::user_points(&mut db.reader().await.unwrap(), UserId::new(user))
                .await
                .unwrap()
                .is_some(),
            "user {user}"
        );
    }
    assert_eq!(
        persistence::user_points(&mut db.reader().await.unwrap(), UserId::new(4))
            .await
            .unwrap(),
        None
    );
    // The products' id sequence is past the seeded ids.
    assert_eq!(
        persistence::insert_product(&mut db.writer().await.unwrap(), "Desk mat", 19_000, 10)
            .await
            .unwrap()
            .get(),
        6
    );
}
