//! The HTTP server loop of `serve`: accepts connections until told to stop, serves each with
//! hyper (HTTP/1.1 with a header-read timeout, or HTTP/2), hands the router the client's address
//! (`ConnectInfo`, for per-caller limits), then closes the listener and gives the connections in
//! flight a grace period to finish. `axum::serve` has neither the timeout nor a way to stop
//! accepting at a chosen moment, which the shutdown sequence needs (see `startup::serve`).
use std::time::Duration;

use axum::{Router, body::Body, extract::ConnectInfo};
use futures::FutureExt as _;
use hyper::{Request, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

/// How long the server still waits, once the listener closed, for the first request of the
/// connections it accepted last before treating them as idle (and closing them).
const FIRST_REQUEST_SETTLE: Duration = Duration::from_millis(250);

/// How the server treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers (and keep an idle connection open).
    pub header_read_timeout: Duration,
    /// How long connections may take to finish once the listener closed.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then stops accepting and waits up to
/// `limits.grace` for the requests in flight (idle connections close at once; a response in
/// progress finishes and its connection closes after it).
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %err, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        serve_connection(&builder, &graceful, &app, stream, peer);
    }
    // Connections the kernel completed but the loop had not accepted yet would be reset when the
    // listener closes, after their clients sent a request: take them in first.
    while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
        serve_connection(&builder, &graceful, &app, stream, peer);
    }
    drop(listener);
    // A connection accepted a moment ago has its first request on the way: closing it as idle
    // would fail a request the client already sent. Give it time to arrive.
    tokio::time::sleep(FIRST_REQUEST_SETTLE).await;
    tracing::info!(
        grace_s = limits.grace.as_secs(),
        "listener closed; finishing the requests in flight"
    );
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = limits.grace.as_secs(),
            "grace period over; dropping unfinished requests"
        );
    }
}

/// Serves one accepted connection in its own task, watched by `graceful`.
fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    app: &Router,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let app = app.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
}
