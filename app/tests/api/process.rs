//! The real `perfstack-app serve` as a child process, for tests of what only the whole process does
//! (streaming under SIGTERM, trace export).
use std::process::{Child, Command, Stdio};

use sqlx::PgPool;

/// A running `serve`, killed when dropped.
pub struct Server(pub Child);

impl Server {
    /// `perfstack-app serve` on `database_url` on a free port, with `flags` and `env` (no Redis unless
    /// `env` names one).
    pub fn start(database_url: &str, flags: &[&str], env: &[(&str, String)]) -> (Self, u16) {
        let port = perfstack_tests::spare_port();
        let child = Command::new(env!("CARGO_BIN_EXE_perfstack-app"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env("DATABASE_URL", database_url)
            .env_remove("REDIS_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (Self(child), port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The URL of the test database behind `pool` (DATABASE_URL with the database name swapped).
pub fn database_url(pool: &PgPool) -> String {
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let base = std::env::var("DATABASE_URL").unwrap();
    format!("{}/{database}", base.rsplit_once('/').unwrap().0)
}
