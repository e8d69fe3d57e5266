//! The deployment state machine against the database: history, superseding, races, and the
//! one-active-deployment constraint.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    models::deployment::machine::{self, State, TransitionError},
    schema::deployments,
    testing::{Fixture, TestApp},
};
use uuid::Uuid;

/// A service and its production environment, made through the API.
async fn service(app: &TestApp) -> (Uuid, Uuid) {
    let mut fixture = Fixture::new(app).await;
    (fixture.push_service("web").await, fixture.production)
}

async fn state_of(app: &TestApp, id: Uuid) -> (String, Option<String>) {
    let mut conn = app.state.db.get().await.unwrap();
    deployments::table
        .find(id)
        .select((deployments::state, deployments::reason))
        .first(&mut conn)
        .await
        .unwrap()
}

async fn ship(app: &TestApp, service: Uuid, env: Uuid) -> Uuid {
    let mut conn = app.state.db.get().await.unwrap();
    let id = machine::create(&mut conn, service, env, Some("main"), Some("0123abcd"), None)
        .await
        .unwrap();
    for (from, to) in [
        (State::Queued, State::Building),
        (State::Building, State::Deploying),
        (State::Deploying, State::Active),
    ] {
        machine::transition(&mut conn, id, from, to, "step")
            .await
            .unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_walks_the_states_and_keeps_its_history() {
    let app = TestApp::new().await;
    let (service, env) = service(&app).await;
    let first = ship(&app, service, env).await;
    assert_eq!(state_of(&app, first).await.0, "active");
    let mut conn = app.state.db.get().await.unwrap();
    let history = machine::history(&mut conn, first).await.unwrap();
    let steps: Vec<(Option<&str>, &str)> = history
        .iter()
        .map(|(f, t, _, _)| (f.as_deref(), t.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (None, "queued"),
            (Some("queued"), "building"),
            (Some("building"), "deploying"),
            (Some("deploying"), "active")
        ]
    );
    assert!(
        history.windows(2).all(|w| w[0].3 <= w[1].3),
        "timestamps in order"
    );

    // The next one supersedes it, in the same transaction.
    let second = ship(&app, service, env).await;
    assert_eq!(state_of(&app, second).await.0, "active");
    assert_eq!(state_of(&app, first).await.0, "superseded");
    let history = machine::history(&mut conn, first).await.unwrap();
    assert!(history.last().unwrap().2.contains(&second.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_keep_their_reason_and_forbidden_moves_change_nothing() {
    let app = TestApp::new().await;
    let (service, env) = service(&app).await;
    let mut conn = app.state.db.get().await.unwrap();
    let id = machine::create(&mut conn, service, env, Some("main"), None, None)
        .await
        .unwrap();
    let err = machine::transition(&mut conn, id, State::Queued, State::Active, "skip")
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::NotAllowed { .. }), "{err}");
    let err = machine::transition(&mut conn, id, State::Building, State::Deploying, "wrong from")
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::Lost("building")), "{err}");
    assert_eq!(state_of(&app, id).await.0, "queued");

    machine::transition(&mut conn, id, State::Queued, State::Building, "building")
        .await
        .unwrap();
    machine::transition(
        &mut conn,
        id,
        State::Building,
        State::Failed,
        "npm ci exited with 1",
    )
    .await
    .unwrap();
    assert_eq!(
        state_of(&app, id).await,
        ("failed".into(), Some("npm ci exited with 1".into()))
    );
    let err = machine::transition(&mut conn, id, State::Failed, State::Building, "again")
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::NotAllowed { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn of_racing_transitions_exactly_one_applies() {
    let app = TestApp::new().await;
    let (service, env) = service(&app).await;
    let id = {
        let mut conn = app.state.db.get().await.unwrap();
        machine::create(&mut conn, service, env, None, None, None)
            .await
            .unwrap()
    };
    let racers = (0..8).map(|_| {
        let db = app.state.db.clone();
        tokio::spawn(async move {
            let mut conn = db.get().await.unwrap();
            machine::transition(&mut conn, id, State::Queued, State::Building, "claimed")
                .await
                .is_ok()
        })
    });
    let wins = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
    let mut conn = app.state.db.get().await.unwrap();
    assert_eq!(
        machine::history(&mut conn, id).await.unwrap().len(),
        2,
        "one queued and one building event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_refuses_a_second_active_deployment() {
    let app = TestApp::new().await;
    let (service, env) = service(&app).await;
    ship(&app, service, env).await;
    let mut conn = app.state.db.get().await.unwrap();
    let other = machine::create(&mut conn, service, env, None, None, None)
        .await
        .unwrap();
    let forced = diesel::update(deployments::table.find(other))
        .set(deployments::state.eq("active"))
        .execute(&mut conn)
        .await;
    assert!(forced.is_err(), "unique index on the active deployment");
}
