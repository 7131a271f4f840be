//! The mocked API server and a small builder for the calls a reconcile must make: each expected call
//! is a method, the start of a URI, an optional check of the body and a reply; the server fails on a
//! missing, different or extra call. The children a reconcile reads come from the stores the
//! controller's watches fill, as when the operator runs: a scenario's reads fill those stores (and
//! expect a GET only where the operator still sends one), unless its stores never sync.
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::{Body, ClientBuilder};
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::children::ChildNames;
use crate::children::volume::claim_name;
use crate::controller::watched::{ChildStores, ChildWriters, TextWriter, WatchedChildren, lean, lean_secret};
use crate::controller::{AutoscalingApi, Context, StackEvents, Tuning, reconcile};
use crate::crd::PerformanceStack;
use crate::fence::WriteFence;
use crate::metrics::Metrics;
use crate::tuner::scrape::Scraper;
use crate::tuner::targets::{MetricsSource, Reach};

type Check = Box<dyn Fn(&Value) + Send>;

/// The namespace every scenario's stack lives in.
pub(super) const NS: &str = "team-a";
/// The query of every server-side apply the operator sends.
pub(super) const APPLY_QUERY: &str = "?&force=true&fieldManager=perfstack-operator";

/// How the mock answers a call.
pub(super) enum Reply {
    /// 200 with this body.
    Json(Value),
    /// 200 (201 for POST) with the request body echoed back, as an apply or create would.
    Echo,
    /// 404 Not Found.
    NotFound,
    /// The API server refuses: this code, reason and message.
    Refused(u16, &'static str, String),
}

/// `object` as the API server would return it.
pub(super) fn json_of<K: Serialize>(object: K) -> Reply {
    Reply::Json(serde_json::to_value(object).unwrap_or(Value::Null))
}

/// One expected call.
struct Call {
    method: Method,
    /// The request URI must start with this (path and the start of the query).
    uri: String,
    check: Option<Check>,
    reply: Reply,
}

/// A child of the stack `shop`, in the order the observe step reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Child {
    Credentials,
    PostgresService,
    Postgres,
    /// PostgreSQL's data volume claim.
    PostgresClaim,
    RedisService,
    Redis,
    /// Redis' data volume claim.
    RedisClaim,
    /// The Redis Deployment of operators before the StatefulSet.
    RedisDeployment,
    AppConfig,
    TuningConfig,
    Api,
    /// The migration Job of the desired image; its name is given to [`Child::uri`].
    MigrationJob,
    ApiService,
    Hpa,
}

impl Child {
    /// Every child of a bundled stack, in the order they are read.
    pub(super) const ALL: [Child; 14] = [
        Child::Credentials,
        Child::PostgresService,
        Child::Postgres,
        Child::PostgresClaim,
        Child::RedisService,
        Child::Redis,
        Child::RedisClaim,
        Child::RedisDeployment,
        Child::AppConfig,
        Child::TuningConfig,
        Child::Api,
        Child::MigrationJob,
        Child::ApiService,
        Child::Hpa,
    ];

    /// The child's URI; `job` names the migration Job.
    pub(super) fn uri(self, job: &str) -> String {
        let names = ChildNames::new("shop");
        let (group, plural, name) = match self {
            Child::Credentials => ("/api/v1", "secrets", names.credentials()),
            Child::PostgresService => ("/api/v1", "services", names.postgres()),
            Child::Postgres => ("/apis/apps/v1", "statefulsets", names.postgres()),
            Child::PostgresClaim => ("/api/v1", "persistentvolumeclaims", claim_name(&names.postgres())),
            Child::RedisService => ("/api/v1", "services", names.redis()),
            Child::Redis => ("/apis/apps/v1", "statefulsets", names.redis()),
            Child::RedisDeployment => ("/apis/apps/v1", "deployments", names.redis()),
            Child::RedisClaim => ("/api/v1", "persistentvolumeclaims", claim_name(&names.redis())),
            Child::AppConfig => ("/api/v1", "configmaps", names.config()),
            Child::TuningConfig => ("/api/v1", "configmaps", names.tuning()),
            Child::Api => ("/apis/apps/v1", "deployments", names.api()),
            Child::MigrationJob => ("/apis/batch/v1", "jobs", job.to_owned()),
            Child::ApiService => ("/api/v1", "services", names.api()),
            Child::Hpa => ("/apis/autoscaling/v2", "horizontalpodautoscalers", names.api()),
        };
        format!("{group}/namespaces/{NS}/{plural}/{name}")
    }

    /// The child's kind, as its manifests say.
    fn kind(self) -> &'static str {
        match self {
            Child::Credentials => "Secret",
            Child::PostgresService | Child::RedisService | Child::ApiService => "Service",
            Child::Postgres | Child::Redis => "StatefulSet",
            Child::PostgresClaim | Child::RedisClaim => "PersistentVolumeClaim",
            Child::RedisDeployment | Child::Api => "Deployment",
            Child::AppConfig | Child::TuningConfig => "ConfigMap",
            Child::MigrationJob => "Job",
            Child::Hpa => "HorizontalPodAutoscaler",
        }
    }
}

/// The URI of the stack itself (add `/status` for its status).
pub(super) fn stack_uri() -> String {
    format!("/apis/perfstack.dev/v1alpha1/namespaces/{NS}/performancestacks/shop")
}

/// A reconcile of one stack and every call it must make, in order.
pub(super) struct Scenario {
    stack: PerformanceStack,
    events: bool,
    calls: Vec<Call>,
    /// The client's write fence (as `run` sets it up), when the scenario closes it.
    fence: Option<WriteFence>,
    /// Whether the operator runs its tuner (a fresh one: an operator just started).
    tuner: bool,
    /// Whether the child stores listed their kinds (else every read is a GET).
    synced: bool,
    /// What the synced stores hold: each child as the watches listed it.
    stored: Vec<(Child, Value)>,
}

impl Scenario {
    /// A reconcile of `stack` that records no Events.
    pub(super) fn new(stack: PerformanceStack) -> Self {
        Self {
            stack,
            events: false,
            calls: Vec::new(),
            fence: None,
            tuner: false,
            synced: true,
            stored: Vec::new(),
        }
    }

    /// The child stores never finish their first list: the reconcile waits for them a short while,
    /// then reads every child with a GET.
    pub(super) fn with_unsynced_stores(mut self) -> Self {
        self.synced = false;
        self
    }

    /// The operator runs its tuner, freshly started (as after a restart); pods are scraped by IP.
    pub(super) fn with_tuner(mut self) -> Self {
        self.tuner = true;
        self
    }

    /// The client goes through `fence`, as the operator's does (`kube_requests::client`).
    pub(super) fn fenced_by(mut self, fence: &WriteFence) -> Self {
        self.fence = Some(fence.clone());
        self
    }

    /// Events are recorded (each one is an expected POST).
    pub(super) fn with_events(mut self) -> Self {
        self.events = true;
        self
    }

    fn push(mut self, method: Method, uri: String, reply: Reply, check: Option<Check>) -> Self {
        self.calls.push(Call {
            method,
            uri,
            check,
            reply,
        });
        self
    }

    /// Expects a call with any body.
    pub(super) fn call(self, method: Method, uri: impl Into<String>, reply: Reply) -> Self {
        self.push(method, uri.into(), reply, None)
    }

    /// Expects a call whose body passes `check`.
    pub(super) fn checked(
        self,
        method: Method,
        uri: impl Into<String>,
        reply: Reply,
        check: impl Fn(&Value) + Send + 'static,
    ) -> Self {
        self.push(method, uri.into(), reply, Some(Box::new(check)))
    }

    /// The observe step's read of `child` (`job`: the migration Job's name), answered `reply`: from
    /// the synced stores (found: it is there; not found: it is not), except the credentials Secret,
    /// which is looked for with a GET when the store lacks it; a GET when the stores never synced.
    pub(super) fn read(mut self, child: Child, job: &str, reply: Reply) -> Self {
        match (self.synced, reply) {
            (true, Reply::Json(object)) => {
                self.stored.push((child, object));
                self
            }
            (true, Reply::NotFound) if child != Child::Credentials => self,
            (_, reply) => self.call(Method::GET, child.uri(job), reply),
        }
    }

    /// Expects the server-side apply of `child`, owned by the stack and carrying its digest.
    pub(super) fn apply(self, child: Child, job: &str, reply: Reply) -> Self {
        let kind = child.kind();
        let uri = child.uri(job);
        let name = uri.rsplit('/').next().unwrap_or_default().to_owned();
        self.checked(Method::PATCH, format!("{uri}{APPLY_QUERY}"), reply, move |body| {
            assert_eq!(body["kind"], kind);
            assert_eq!(body["metadata"]["name"], name.as_str());
            assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
            assert!(body["metadata"]["annotations"]["perfstack.dev/applied-digest"].is_string());
        })
    }

    /// Expects the server-side apply of `child` whose body also passes `check`.
    pub(super) fn apply_checked(
        self,
        child: Child,
        job: &str,
        check: impl Fn(&Value) + Send + 'static,
    ) -> Self {
        let uri = format!("{}{APPLY_QUERY}", child.uri(job));
        self.checked(Method::PATCH, uri, Reply::Echo, check)
    }

    /// Expects the status patch, whose body passes `check`.
    pub(super) fn status_patch(self, check: impl Fn(&Value) + Send + 'static) -> Self {
        let reply = json_of(&self.stack);
        self.checked(Method::PATCH, format!("{}/status?", stack_uri()), reply, check)
    }

    /// Expects a patch of the stack's metadata (the finalizer), whose body passes `check`.
    pub(super) fn stack_patch(self, check: impl Fn(&Value) + Send + 'static) -> Self {
        let reply = json_of(&self.stack);
        self.checked(Method::PATCH, format!("{}?", stack_uri()), reply, check)
    }

    /// Expects an Event with `reason`.
    pub(super) fn event(self, reason: &'static str) -> Self {
        let uri = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
        self.checked(Method::POST, uri, Reply::Echo, move |body| {
            assert_eq!(body["reason"], reason)
        })
    }

    /// How many calls the scenario expects so far.
    pub(super) fn expected_calls(&self) -> usize {
        self.calls.len()
    }

    /// Runs one reconcile and checks that it then waits for the next change (no requeue).
    pub(super) async fn run_then_await_change(self) {
        assert_eq!(self.run().await, Action::await_change());
    }

    /// Runs one reconcile against the scripted server; panics on a failed reconcile or call.
    pub(super) async fn run(self) -> Action {
        self.run_result().await.expect("reconcile succeeded")
    }

    /// Runs one reconcile against the scripted server and returns how it ended; panics on a
    /// missing, different or extra call.
    pub(super) async fn run_result(self) -> Result<Action, crate::controller::Error> {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = match &self.fence {
            Some(fence) => ClientBuilder::new(service, NS).with_layer(&fence.layer()).build(),
            None => Client::new(service, NS),
        };
        let events = if self.events {
            StackEvents::new(client.clone(), Some("test".into()))
        } else {
            StackEvents::disabled()
        };
        let (watched, _writers) = watched(&self.stored, self.synced);
        let mut ctx = Context::new(client, AutoscalingApi::V2, events, Arc::new(Metrics::default()))
            .with_watched(watched);
        if self.tuner {
            let scraper = Scraper::new(Duration::from_secs(1)).expect("an HTTP client");
            ctx = ctx.with_tuning(Tuning::with_source(Reach::PodIp, MetricsSource::Direct(scraper)));
        }
        let ctx = Arc::new(ctx);
        let server = tokio::spawn(serve(handle, self.calls));
        let result =
            tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(self.stack), ctx)).await;
        if let Err(panic) = server.await {
            std::panic::resume_unwind(panic.into_panic());
        }
        result.expect("reconcile finished")
    }
}

/// The stores of the namespace [`NS`], holding `stored` and listed once when `synced`, and their
/// writers (kept until the reconcile ends, as the watches keep theirs).
fn watched(stored: &[(Child, Value)], synced: bool) -> (WatchedChildren, ChildWriters) {
    let (stores, mut w) = ChildStores::new(Some(crate::children::hpa::v2_resource()));
    let of = |kind: &str| -> Vec<Value> {
        stored
            .iter()
            .filter(|(child, _)| child.kind() == kind)
            .map(|(_, object)| {
                let mut object = object.clone();
                // The API server always says where an object lives; the items of a list (a watch's
                // first list) do not repeat their apiVersion and kind.
                object["metadata"]["namespace"] = json!(NS);
                if let Some(fields) = object
                    .as_object_mut()
                    .filter(|_| kind == "HorizontalPodAutoscaler")
                {
                    fields.remove("apiVersion");
                    fields.remove("kind");
                }
                object
            })
            .collect()
    };
    list(&mut w.secrets, of("Secret"), lean_secret, synced);
    list(&mut w.claims, of("PersistentVolumeClaim"), lean, synced);
    list(&mut w.config_maps, of("ConfigMap"), lean, synced);
    list(&mut w.services, of("Service"), lean, synced);
    list(&mut w.stateful_sets, of("StatefulSet"), lean, synced);
    list(&mut w.deployments, of("Deployment"), lean, synced);
    list(&mut w.jobs, of("Job"), lean, synced);
    if let Some((hpas, _)) = w.hpas.as_mut() {
        list(hpas, of("HorizontalPodAutoscaler"), lean, synced);
    }
    let mut watched = WatchedChildren::none().with_sync_wait(Duration::from_millis(50));
    watched.add_scope(Some(NS.into()), stores);
    (watched, w)
}

/// A watch's first list of `objects` into `writer`, each left as `keep` leaves it; done if `done`.
fn list<K>(writer: &mut TextWriter<K>, objects: Vec<Value>, keep: fn(&mut K), done: bool)
where
    K: Resource + Serialize + DeserializeOwned,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        let mut object: K = serde_json::from_value(object).expect("a stored child");
        keep(&mut object);
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    if done {
        writer.apply_watcher_event(&watcher::Event::InitDone);
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404})
}

/// Serves `script` in order, then fails if any further call arrives.
async fn serve(mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>, script: Vec<Call>) {
    for expected in script {
        let next = tokio::time::timeout(Duration::from_secs(2), handle.next_request()).await;
        let (request, send) = match next {
            Ok(Some(pair)) => pair,
            _ => panic!("expected {} {} but no call came", expected.method, expected.uri),
        };
        let uri = request.uri().to_string();
        assert_eq!(
            request.method(),
            expected.method,
            "method of call to {uri} (expected {})",
            expected.uri
        );
        assert!(
            uri.starts_with(&expected.uri),
            "expected a call to {}, got {uri}",
            expected.uri
        );
        let bytes = request.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(check) = &expected.check {
            check(&body);
        }
        let (status, reply) = match expected.reply {
            Reply::Json(value) => (200, value),
            Reply::Echo => (if expected.method == Method::POST { 201 } else { 200 }, body),
            Reply::NotFound => (404, not_found()),
            Reply::Refused(code, reason, message) => (
                code,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code}),
            ),
        };
        let response = Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        send.send_response(response);
    }
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await
    {
        panic!("unexpected call: {} {}", request.method(), request.uri());
    }
}
