//! The role the API connects as: it may read and write the app's tables and nothing more (no DDL,
//! no superuser, no reserved connections). `migrate`, running as the owner of the schema, creates
//! it or sets its password, and grants it exactly that, on every run: re-runs are idempotent, a
//! changed password in the stack's Secret reaches the database with the next migration, and tables
//! a new migration adds are granted in the same run (docs/install.md, "Database roles").
use secrecy::{ExposeSecret, SecretString};

use super::Db;

/// Advisory lock key held while the role is set up, so concurrent migrate runs take turns.
const ROLE_LOCK_KEY: i64 = 0x0070_6572_6672_6f6c;

/// The app's role: its name and password.
#[derive(Debug, Clone)]
pub struct AppRole {
    pub name: String,
    pub password: SecretString,
}

/// Statements that give `$1` exactly what the API needs, after it exists with a password. The
/// tables include `_sqlx_migrations` only to revoke them again: the app never writes the history.
// language=PostgreSQL
const GRANTS: [&str; 7] = [
    "GRANT CONNECT ON DATABASE %I TO %I",
    "GRANT USAGE ON SCHEMA public TO %2$I",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC, %2$I",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %2$I",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %2$I",
    "REVOKE ALL ON TABLE _sqlx_migrations FROM %2$I",
    "REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, %I",
];

/// Creates `role` (or brings an existing one back to a plain login role with this password) and
/// grants it the app's tables, in one transaction as the connected (owner) role.
pub async fn ensure_app_role(db: &Db, role: &AppRole) -> Result<(), sqlx::Error> {
    let name = role.name.as_str();
    let password = role.password.expose_secret();
    db.timed(
        "migrate.app_role",
        "CREATE/ALTER ROLE ...; GRANT ...",
        |pool| async move {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLE_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
            let verb = if exists { "ALTER" } else { "CREATE" };
            // The password goes in as a literal quoted by the server (%L); statements never log it.
            let create: String = sqlx::query_scalar(&format!(
                "SELECT format('{verb} ROLE %I WITH LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE \
             NOREPLICATION NOBYPASSRLS INHERIT', $1::text, $2::text)"
            ))
            .bind(name)
            .bind(password)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::raw_sql(&create).execute(&mut *tx).await?;
            for grant in GRANTS {
                let statement: String =
                    sqlx::query_scalar(&format!("SELECT format('{grant}', current_database(), $1::text)"))
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::raw_sql(&statement).execute(&mut *tx).await?;
            }
            tx.commit().await
        },
    )
    .await
}
