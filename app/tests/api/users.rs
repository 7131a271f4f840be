use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_created, assert_problem, ids, spawn, spawn_with_project};

#[sqlx::test(migrations = false)]
async fn user_crud_round_trip(pool: PgPool) {
    let app = spawn(pool).await;
    let created = app
        .post(
            "/api/v1/users",
            json!({"email": " Ada@Example.org", "username": "ada", "firstName": "Ada", "role": "admin"}),
        )
        .await;
    let id = assert_created(&created, "/api/v1/users");
    assert_eq!(created.json["email"], "ada@example.org");
    assert_eq!(created.json["role"], "admin");
    assert_eq!(created.json["status"], "active");
    assert_eq!(created.json["lastName"], "");
    assert!(created.json["createdAt"].is_string());

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
    assert_ne!(patched.json["updatedAt"], created.json["updatedAt"]);

    app.assert_deleted(&format!("/api/v1/users/{id}")).await;
    assert_problem(
        &app.delete(&format!("/api/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_problem(
        &app.patch(&format!("/api/v1/users/{id}"), json!({"firstName": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        None,
    );
}

async fn five_users(app: &TestApp) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cyd", "dan", "eve"] {
        ids.push(app.user(name).await);
    }
    ids
}

#[sqlx::test(migrations = false)]
async fn offset_pages_report_total_and_neighbours(pool: PgPool) {
    let app = spawn(pool).await;
    let all = five_users(&app).await;

    let first = app.get("/api/v1/users?limit=2").await.json;
    assert_eq!(ids(&first), all[..2]);
    assert_eq!(
        first["pagination"],
        json!({"page": 1, "limit": 2, "total": 5, "totalPages": 3, "hasNext": true, "hasPrev": false})
    );
    let last = app.get("/api/v1/users?limit=2&page=3").await.json;
    assert_eq!(ids(&last), all[4..]);
    assert_eq!(
        last["pagination"],
        json!({"page": 3, "limit": 2, "total": 5, "totalPages": 3, "hasNext": false, "hasPrev": true})
    );
    let beyond = app.get("/api/v1/users?limit=2&page=9").await.json;
    assert!(ids(&beyond).is_empty());
    assert_eq!(beyond["pagination"]["hasNext"], false);
    assert_eq!(beyond["pagination"]["total"], 5);

    // limit is clamped to 1..=100, default 20
    let big = app.get("/api/v1/users?limit=100000").await.json;
    assert_eq!(big["pagination"]["limit"], 100);
    let zero = app.get("/api/v1/users?limit=0").await.json;
    assert_eq!(zero["pagination"]["limit"], 1);
    assert_eq!(ids(&zero).len(), 1);
    let default = app.get("/api/v1/users").await.json;
    assert_eq!(default["pagination"]["limit"], 20);
}

#[sqlx::test(migrations = false)]
async fn keyset_pages_walk_the_whole_list_once(pool: PgPool) {
    let app = spawn(pool).await;
    let all = five_users(&app).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = app.get(&format!("/api/v1/users?limit=2&cursor={cursor}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        seen.extend(ids(&page.json));
        let p = &page.json["pagination"];
        assert!(p.get("total").is_none(), "keyset pages do not count: {p}");
        if p["hasNext"] == false {
            assert!(p["nextCursor"].is_null());
            break;
        }
        cursor = p["nextCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, all);
    // `after` is an alias of `cursor`
    let first = app.get("/api/v1/users?limit=2&after=").await.json;
    assert_eq!(ids(&first), all[..2]);
}

#[sqlx::test(migrations = false)]
async fn fields_pick_from_the_whitelist(pool: PgPool) {
    let app = spawn(pool).await;
    let id = app.user("ann").await;
    let one = app.get(&format!("/api/v1/users/{id}?fields=email,id")).await.json;
    assert_eq!(one, json!({"id": id, "email": "ann@example.com"}));
    let list = app.get("/api/v1/users?fields=username").await.json;
    assert_eq!(list["data"], json!([{"username": "ann"}]));
    app.assert_bad_query("/api/v1/users?fields=id,password", "fields")
        .await;
    app.assert_bad_query(&format!("/api/v1/users/{id}?fields=nope"), "fields")
        .await;
}

#[sqlx::test(migrations = false)]
async fn filters_by_active_email_and_case_insensitive_username(pool: PgPool) {
    let app = spawn(pool).await;
    let ann = app.user("Ann_Smith").await;
    let bob = app.user("bob").await;
    app.patch(&format!("/api/v1/users/{bob}"), json!({"status": "suspended"}))
        .await;

    let found = app
        .get("/api/v1/users?email=ANN_SMITH@example.com&status=active")
        .await
        .json;
    assert_eq!(ids(&found), vec![ann]);
    let suspended = app
        .get("/api/v1/users?email=bob@example.com&status=active")
        .await
        .json;
    assert!(ids(&suspended).is_empty());
    let by_name = app.get("/api/v1/users?username=ann_smith").await.json;
    assert_eq!(ids(&by_name), vec![ann]);
    let by_status = app.get("/api/v1/users?status=suspended").await.json;
    assert_eq!(ids(&by_status), vec![bob]);
    app.assert_bad_query("/api/v1/users?status=gone", "status").await;
}

#[sqlx::test(migrations = false)]
async fn user_owning_projects_cannot_be_deleted(pool: PgPool) {
    let (app, owner, project) = spawn_with_project(pool).await;
    assert_problem(
        &app.delete(&format!("/api/v1/users/{owner}")).await,
        StatusCode::CONFLICT,
        None,
    );
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{project}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/v1/users/{owner}")).await.status,
        StatusCode::NO_CONTENT
    );
}
