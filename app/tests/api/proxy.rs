//! A TCP proxy in front of the test PostgreSQL that a test can cut: stopping it closes every
//! connection through it and refuses new ones, as a database pod that is deleted does. It also
//! counts round trips: the server's ReadyForQuery messages (one ends every exchange, a statement
//! or a ping alike). Counting needs the plain protocol: use it with `sslmode=disable`.
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Option<JoinSet<()>>,
    round_trips: Arc<AtomicU64>,
}

/// Forwards the server's bytes to the client, counting ReadyForQuery (`Z`) messages. Server
/// messages are framed as a type byte and a big-endian length that includes itself.
async fn forward_counting(
    mut server: tokio::net::tcp::OwnedReadHalf,
    mut client: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = server.read(&mut buf).await {
        if n == 0 || client.write_all(&buf[..n]).await.is_err() {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while pending.len() >= at + 5 {
            let len = u32::from_be_bytes([pending[at + 1], pending[at + 2], pending[at + 3], pending[at + 4]])
                as usize;
            if pending.len() < at + 1 + len {
                break;
            }
            if pending[at] == b'Z' {
                count.fetch_add(1, Ordering::Relaxed);
            }
            at += 1 + len;
        }
        pending.drain(..at);
    }
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
        let addr = SocketAddr::from(([127, 0, 0, 1], perfstack_tests::spare_port()));
        Self {
            addr,
            upstream,
            tasks: None,
            round_trips: Arc::new(AtomicU64::new(0)),
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
        let round_trips = Arc::clone(&self.round_trips);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let round_trips = Arc::clone(&round_trips);
                pipes.spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let (mut from_client, to_client) = client.into_split();
                        let (from_server, mut to_server) = server.into_split();
                        let up = async move {
                            let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                            let _ = to_server.shutdown().await;
                        };
                        tokio::join!(up, forward_counting(from_server, to_client, round_trips));
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// ReadyForQuery messages forwarded so far: the round trips made through the proxy.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Closes every connection and the port.
    pub async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }
}
