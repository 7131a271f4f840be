//! `perfstack-operator run`: the HTTP server for metrics and probes, leader election, and one
//! controller per watched namespace (or one for all), until SIGTERM/SIGINT or lost leadership (then
//! at once: the write fence, `fence.rs`, refuses every write from that moment).
use std::fmt::Debug;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::children::{MANAGED_SELECTOR, STACK_LABEL, hpa};
use crate::cli::RunArgs;
use crate::controller::watched::{
    ChildStores, ChildWriters, TextWriter, WatchedChildren, lean, lean_secret, lean_stack,
};
use crate::controller::{AutoscalingApi, Context, ErrorChain, StackEvents, error_policy, reconcile};
use crate::crd::PerformanceStack;
use crate::fence::WriteFence;
use crate::metrics::Metrics;

/// Why the controllers stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Signal,
    LostLeadership,
}

type StopFuture = Shared<BoxFuture<'static, Stop>>;

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Runs the operator until a shutdown signal; an error means the process should exit non-zero.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let fence = WriteFence::open();
    let client = crate::kube_requests::client(metrics.clone(), &fence)
        .await
        .context("connecting to the Kubernetes API")?;
    let ready = Arc::new(AtomicBool::new(false));
    let signal: StopFuture = async {
        shutdown_signal().await;
        Stop::Signal
    }
    .boxed()
    .shared();
    let server = tokio::spawn(serve(
        args.metrics_addr,
        ServerState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        signal.clone(),
    ));

    // Probe where the operator will watch, so a namespaced grant is enough when --namespaces is set.
    let probe: Api<PerformanceStack> = match args.watched_namespaces().first() {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    probe
        .list(&ListParams::default().limit(1))
        .await
        .context("listing PerformanceStacks (is crds/performancestack.yaml installed?)")?;
    let autoscaling = AutoscalingApi::discover(&client)
        .await
        .context("discovering the autoscaling API")?;
    tracing::info!(?autoscaling, "autoscaling API");
    ready.store(true, Ordering::Release);

    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{}", crate::MANAGER, std::process::id()));
    let events = StackEvents::new(client.clone(), Some(identity.clone()));
    let tuning = crate::controller::Tuning::new(&client, args.tuner_scrape);
    let scopes = watch_scopes(&args, autoscaling);
    let mut watched = WatchedChildren::none();
    for scope in &scopes {
        watched.add_scope(scope.namespace.clone(), scope.stores.clone());
    }
    let ctx = Context::new(client.clone(), autoscaling, events, metrics)
        .with_tuning(tuning)
        .with_watched(watched);
    let ctx = Arc::new(ctx);
    let concurrency = args.max_concurrent_reconciles;
    ctx.metrics.set_concurrency_limit(concurrency);

    let stop = if args.leader_election {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .context("setting up leader election")?;
        let (mut leader, lease_task) = manager.watch().await;
        tracing::info!(
            lease = args.lease_name,
            namespace,
            identity,
            "waiting for leadership"
        );
        let became_leader = tokio::select! {
            changed = leader.wait_for(|is_leader| *is_leader) => Some(changed.is_ok()),
            _ = signal.clone() => None,
        };
        let stop = match became_leader {
            Some(true) => {
                tracing::info!("leading; starting controllers");
                let lost = async move {
                    // Also resolves if the lease task ends: without it nobody renews the Lease.
                    let _ = leader.wait_for(|is_leader| !*is_leader).await;
                    fence.close();
                };
                // A signal stops the controllers gracefully (running reconciles finish); a lost Lease
                // stops them at once, as controller-runtime does: the fence refuses every further
                // write, and dropping the controllers ends the reconciles at their next await.
                tokio::select! {
                    () = run_controllers(scopes, ctx, concurrency, signal.clone()) => Stop::Signal,
                    () = lost => Stop::LostLeadership,
                }
            }
            Some(false) => {
                let ended = lease_task.await;
                anyhow::bail!("leader election stopped before this instance led: {ended:?}");
            }
            None => {
                drop(leader);
                Stop::Signal
            }
        };
        // Dropping the receiver makes the lease task release the Lease for the next leader (a
        // Lease another holder took is left alone); bounded, so a stuck release cannot keep a
        // process that lost leadership alive.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), lease_task).await;
        stop
    } else {
        run_controllers(scopes, ctx, concurrency, signal.clone()).await;
        signal.clone().await
    };
    match stop {
        Stop::Signal => {
            // The server stops on the same signal, once it answered what it was answering.
            let _ = server.await;
            Ok(())
        }
        Stop::LostLeadership => {
            // No signal will come: stop serving now and leave.
            server.abort();
            anyhow::bail!("lost leadership of the Lease; exiting so a new leader takes over")
        }
    }
}

/// What one controller watches: a namespace (`None`: all), and the stores its watches fill.
struct WatchScope {
    namespace: Option<String>,
    stores: ChildStores,
    writers: ChildWriters,
}

/// One scope per watched namespace (or one for all), each with empty stores.
fn watch_scopes(args: &RunArgs, autoscaling: AutoscalingApi) -> Vec<WatchScope> {
    let namespaces = args.watched_namespaces();
    let namespaces: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let hpa = match autoscaling {
        AutoscalingApi::V2 => Some(hpa::v2_resource()),
        AutoscalingApi::V2beta2 => Some(hpa::v2beta2_resource()),
        AutoscalingApi::Unavailable => None,
    };
    namespaces
        .into_iter()
        .map(|namespace| {
            let (stores, writers) = ChildStores::new(hpa.clone());
            WatchScope {
                namespace,
                stores,
                writers,
            }
        })
        .collect()
}

/// One controller per scope. `concurrency` bounds the reconciles running at once in each (0: none);
/// with several watched namespaces the bound is per namespace.
async fn run_controllers(scopes: Vec<WatchScope>, ctx: Arc<Context>, concurrency: u16, stop: StopFuture) {
    let namespaces: Vec<_> = scopes.iter().map(|s| s.namespace.clone()).collect();
    tracing::info!(scopes = ?namespaces, max_concurrent_reconciles = concurrency, "starting controllers");
    futures::future::join_all(
        scopes
            .into_iter()
            .map(|scope| controller(scope, ctx.clone(), concurrency, stop.clone())),
    )
    .await;
}

fn scoped<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The watch of the operator's labelled objects of `api`'s kind, kept in `writer`'s store as `keep`
/// leaves them, passed on as reconcile triggers. Only labelled objects are watched, so memory does
/// not grow with unrelated objects in the cluster.
fn reflected<K>(
    api: Api<K>,
    mut writer: TextWriter<K>,
    keep: fn(&mut K),
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    watcher(api, watcher::Config::default().labels(MANAGED_SELECTOR))
        .modify(keep)
        .map_ok(move |event| {
            writer.apply_watcher_event(&event);
            event
        })
        .touched_objects()
}

async fn controller(scope: WatchScope, ctx: Arc<Context>, concurrency: u16, stop: StopFuture) {
    let client = ctx.client.clone();
    let WatchScope {
        namespace, writers, ..
    } = scope;
    // Every child watch feeds the store observe reads from (`controller::watched`) and triggers the
    // stack's reconcile. The data-bearing objects (the credentials Secret, the volumes' claims)
    // carry no owner reference; their events reach the stack through its label.
    let (stacks, stacks_writer) = reflector::store();
    let stack_watch = watcher(
        scoped::<PerformanceStack>(&client, &namespace),
        watcher::Config::default().any_semantic(),
    )
    .modify(lean_stack)
    .reflect(stacks_writer)
    .applied_objects();
    let mut controller = Controller::for_stream(stack_watch, stacks)
        .watches_stream(
            reflected(scoped(&client, &namespace), writers.secrets, lean_secret),
            by_stack_label,
        )
        .watches_stream(
            reflected(scoped(&client, &namespace), writers.claims, lean),
            by_stack_label,
        )
        .owns_stream(reflected(scoped(&client, &namespace), writers.config_maps, lean))
        .owns_stream(reflected(scoped(&client, &namespace), writers.services, lean))
        .owns_stream(reflected(
            scoped(&client, &namespace),
            writers.stateful_sets,
            lean,
        ))
        .owns_stream(reflected(scoped(&client, &namespace), writers.deployments, lean))
        .owns_stream(reflected(scoped(&client, &namespace), writers.jobs, lean));
    if let Some((writer, resource)) = writers.hpas {
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        controller = controller.owns_stream_with(reflected(api, writer, lean), resource);
    }
    controller
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(stop.map(|_| ()))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((stack, _)) => tracing::debug!(stack = %stack.name, "reconciled"),
                // A child's event for a stack that is already gone: nothing to do.
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                    tracing::debug!(%object, "stack no longer exists")
                }
                Err(error) => tracing::warn!(error = %ErrorChain(&error), "controller error"),
            }
        })
        .await;
}

/// The stack an object belongs to, by its `perfstack.dev/stack` label.
fn by_stack_label<K: Resource>(object: K) -> Option<ObjectRef<PerformanceStack>> {
    let stack = object.meta().labels.as_ref()?.get(STACK_LABEL)?;
    Some(ObjectRef::new(stack).within(object.meta().namespace.as_deref()?))
}

async fn serve(addr: SocketAddr, state: ServerState, stop: StopFuture) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.map(|_| ()))
        .await
        .context("metrics server")
}

async fn metrics_handler(
    State(state): State<ServerState>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let content_type = [(
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )];
    match state.metrics.encode() {
        Ok(text) => (StatusCode::OK, content_type, text),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, content_type, String::new()),
    }
}

async fn readyz(State(state): State<ServerState>) -> StatusCode {
    if state.ready.load(Ordering::Acquire) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
