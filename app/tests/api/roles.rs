//! The app's own role, set up by `migrate`: it reads and writes the app's tables and nothing more.
use perfstack_app::db::{
    Db, QueryMonitor,
    roles::{AppRole, ensure_app_role},
};
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{database_url, spawn};

#[sqlx::test(migrations = false)]
async fn the_app_role_can_write_rows_but_not_the_schema(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let name = format!("perfstack_app_{}", std::process::id());
    let role = AppRole {
        name: name.clone(),
        password: "first-password".to_owned().into(),
    };
    let owner = Db::from_pool(pool.clone(), QueryMonitor::new(std::time::Duration::from_secs(1)));
    ensure_app_role(&owner, &role).await.unwrap();
    // Re-runs are idempotent, and a new password replaces the old one.
    let role = AppRole {
        password: "second-password".to_owned().into(),
        ..role
    };
    ensure_app_role(&owner, &role).await.unwrap();

    let url = database_url(&pool);
    let (_, rest) = url.split_once("://").unwrap();
    let (_, host_db) = rest.split_once('@').unwrap();
    let as_app = |password: &str| format!("postgres://{name}:{password}@{host_db}");
    assert!(
        PgConnection::connect(&as_app("first-password")).await.is_err(),
        "the old password is gone"
    );
    let mut conn = PgConnection::connect(&as_app("second-password")).await.unwrap();

    let user_id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, username) VALUES ('r@x.org', 'rolecheck') RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query("UPDATE users SET first_name = 'R' WHERE id = $1")
        .bind(user_id)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(&mut conn)
        .await
        .unwrap();
    let insufficient =
        |err: sqlx::Error| err.as_database_error().and_then(|e| e.code()).as_deref() == Some("42501");
    for ddl in [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE users ADD COLUMN intruder int",
        "DROP TABLE tasks",
        "CREATE INDEX intruder ON users (email)",
        "DELETE FROM _sqlx_migrations",
        "CREATE TEMP TABLE intruder (id int)",
        "CREATE ROLE intruder",
    ] {
        let err = sqlx::raw_sql(ddl).execute(&mut conn).await.unwrap_err();
        assert!(insufficient(err), "{ddl} must be refused");
    }
    let (superuser, create_role, create_db, bypass_rls): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!(superuser || create_role || create_db || bypass_rls));
    // PostgreSQL 16+: not a member of the role that may use reserved_connections.
    let reserved: Option<bool> = sqlx::query_scalar(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'pg_use_reserved_connections'",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    assert_ne!(reserved, Some(true));
    conn.close().await.unwrap();
    drop(app);
    sqlx::raw_sql(&format!("DROP OWNED BY {name}; DROP ROLE {name}"))
        .execute(&pool)
        .await
        .unwrap();
}
