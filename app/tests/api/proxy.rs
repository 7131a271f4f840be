//! A TCP proxy in front of the test PostgreSQL that a test can cut: stopping it closes every
//! connection through it and refuses new ones, as a database pod that is deleted does.
use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    /// A proxy to the PostgreSQL of `DATABASE_URL`, on a free port, not started yet.
    pub fn to_postgres() -> Self {
        let options: sqlx::postgres::PgConnectOptions = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL")
            .parse()
            .expect("a PostgreSQL URL");
        let upstream = format!("{}:{}", options.get_host(), options.get_port())
            .parse()
            .expect("an IP address in DATABASE_URL");
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        Self {
            addr,
            upstream,
            tasks: None,
        }
    }

    /// `url` (of the test PostgreSQL) with this proxy's address in place of the server's.
    pub fn url(&self, url: &str) -> String {
        let upstream = self.upstream.to_string();
        url.replace(&upstream, &self.addr.to_string())
    }

    /// Starts accepting and forwarding.
    pub async fn start(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("bind the proxy port");
        let upstream = self.upstream;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                pipes.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Closes every connection and the port.
    pub async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }
}
