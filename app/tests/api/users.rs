use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{assert_problem, spawn};

#[sqlx::test(migrations = false)]
async fn user_crud_round_trip(pool: PgPool) {
    let app = spawn(pool).await;
    let created = app
        .post(
            "/api/v1/users",
            json!({"email": " Ada@Example.org", "username": "ada", "firstName": "Ada", "role": "admin"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_i64().unwrap();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("/api/v1/users/{id}")
    );
    assert_eq!(created.json["email"], "ada@example.org");
    assert_eq!(created.json["role"], "admin");
    assert_eq!(created.json["status"], "active");

    let got = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json, created.json);

    let patched = app
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"lastName": "Lovelace", "status": "inactive"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["lastName"], "Lovelace");
    assert_eq!(patched.json["status"], "inactive");
    assert_eq!(patched.json["firstName"], "Ada");

    assert_eq!(
        app.delete(&format!("/api/v1/users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &app.get(&format!("/api/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_problem(
        &app.delete(&format!("/api/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
}
