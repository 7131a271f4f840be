use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{assert_created, assert_problem, ids, spawn};

#[sqlx::test(migrations = false)]
async fn project_crud_round_trip(pool: PgPool) {
    let app = spawn(pool).await;
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let created = app
        .post(
            "/api/v1/projects",
            json!({"ownerId": owner, "name": " Apollo ", "description": "to the moon"}),
        )
        .await;
    let id = assert_created(&created, "/api/v1/projects");
    assert_eq!(created.json["name"], "Apollo");
    assert_eq!(created.json["status"], "active");
    assert_eq!(created.json["ownerId"], owner);

    let got = app.get(&format!("/api/v1/projects/{id}")).await;
    assert_eq!(got.json, created.json);

    // absent fields stay, null clears a nullable field
    let patched = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            json!({"ownerId": other, "status": "archived", "description": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["ownerId"], other);
    assert_eq!(patched.json["status"], "archived");
    assert_eq!(patched.json["description"], Value::Null);
    assert_eq!(patched.json["name"], "Apollo");

    let task = app.task(json!({"projectId": id, "title": "t"})).await;
    app.assert_deleted(&format!("/api/v1/projects/{id}")).await;
    // its tasks went with it
    assert_problem(
        &app.get(&format!("/api/v1/tasks/{}", task["id"])).await,
        StatusCode::NOT_FOUND,
        None,
    );
}

#[sqlx::test(migrations = false)]
async fn projects_list_newest_first_filtered_by_owner_and_status(pool: PgPool) {
    let app = spawn(pool).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let mut anns = Vec::new();
    for i in 0..4 {
        anns.push(app.project(ann, &format!("a{i}")).await);
    }
    let bobs = app.project(bob, "b").await;
    app.patch(
        &format!("/api/v1/projects/{}", anns[1]),
        json!({"status": "completed"}),
    )
    .await;

    let all = app.get("/api/v1/projects").await.json;
    let mut newest_first = anns.clone();
    newest_first.push(bobs);
    newest_first.reverse();
    assert_eq!(ids(&all), newest_first);

    let active = app
        .get(&format!("/api/v1/projects?ownerId={ann}&status=active"))
        .await
        .json;
    assert_eq!(ids(&active), vec![anns[3], anns[2], anns[0]]);
    assert_eq!(active["pagination"]["total"], 3);

    // keyset pages give the same order as one big page
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("/api/v1/projects?limit=2&cursor={cursor}"))
            .await
            .json;
        seen.extend(ids(&page));
        match page["pagination"]["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
}
