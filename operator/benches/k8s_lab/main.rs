//! `make bench` (operator part): the operator, release build, against a real API server (the k8s-lab or
//! KUBECONFIG). Measures the time from applying a stack to all of its children, the API writes and
//! the GETs a steady-state reconcile costs, the operator's RSS idle, with 1, 200 and N stacks (200 by
//! default; all bundled), the time until every child of N stacks exists and until a steady state, and
//! the API requests per stack. The bench plays the kubelet, since the lab has none.
//!
//! Environment: KUBECONFIG (admin), PERFSTACK_OPERATOR_BIN, BENCH_STACKS (200), BENCH_OUT (a
//! directory: operator.log, operator.md with the figures as Markdown, operator.json),
//! BENCH_QUIET_SECONDS (15: no write for this long is a steady state), BENCH_WINDOW_SECONDS (60: the
//! unprompted window), BENCH_TUNING_INTERVAL (unset: the example's default of 60 s; the make-test
//! smoke run uses the minimum, 10).
//! Run through scripts/bench-operator.sh; figures are recorded there, never asserted.
mod cluster;
mod fleet;
mod operator;
mod steps;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use perfstack_operator::PerformanceStack;
use perfstack_operator::controller::AutoscalingApi;
use serde_json::json;

use cluster::FirstSeen;
use operator::Operator;
use steps::{
    Stage, acted_since, children_of, create, delete_all, last_child_seen, mib, steady_window,
    touch_and_count, wait_for, wait_quiet,
};

/// Reconciles triggered one by one (annotation touches) to count what a steady reconcile writes.
const TOUCHES: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stacks: usize = env_or("BENCH_STACKS", "200").parse().context("BENCH_STACKS")?;
    let out = PathBuf::from(env_or("BENCH_OUT", "bench-out/operator"));
    std::fs::create_dir_all(&out)?;
    let binary = PathBuf::from(std::env::var("PERFSTACK_OPERATOR_BIN").context("PERFSTACK_OPERATOR_BIN")?);
    let client = Client::try_default().await.context("KUBECONFIG")?;

    let namespace = format!("psbench-{:08x}", rand::random::<u32>());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns_object = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    namespaces.create(&PostParams::default(), &ns_object).await?;
    let result = measure(&client, &namespace, &binary, &out, stacks).await;
    let _ = namespaces.delete(&namespace, &Default::default()).await;
    let report = result?;
    std::fs::write(out.join("operator.md"), &report.markdown)?;
    std::fs::write(
        out.join("operator.json"),
        serde_json::to_string_pretty(&report.json)?,
    )?;
    print!("{}", report.markdown);
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Report {
    markdown: String,
    json: serde_json::Map<String, serde_json::Value>,
}

struct Bench {
    /// Writes stop for this long: the operator is in a steady state.
    quiet: Duration,
    /// The window in which the operator is watched doing things unprompted.
    window: Duration,
    stacks: Api<PerformanceStack>,
    operator: Operator,
    seen: FirstSeen,
    acted: Arc<Mutex<Vec<(Instant, String)>>>,
    template: PerformanceStack,
}

async fn measure(
    client: &Client,
    namespace: &str,
    binary: &std::path::Path,
    out: &std::path::Path,
    count: usize,
) -> anyhow::Result<Report> {
    let hpa = match AutoscalingApi::discover(client).await? {
        AutoscalingApi::V2beta2 => perfstack_operator::children::hpa::v2beta2_resource(),
        _ => kube::api::ApiResource::erase::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(&()),
    };
    let seen: FirstSeen = Arc::default();
    let acted = Arc::default();
    let tasks = [
        tokio::spawn(cluster::play_kubelet(
            client.clone(),
            namespace.into(),
            Arc::clone(&acted),
        )),
        tokio::spawn(cluster::track_children(
            client.clone(),
            namespace.into(),
            hpa,
            Arc::clone(&seen),
        )),
    ];
    // A free port from the kernel: a random one could be the lab's etcd or a client's ephemeral port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let operator = Operator::start(binary, namespace, port, &out.join("operator.log")).await?;
    let template_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/minimal.yaml");
    let mut template: PerformanceStack = serde_saphyr::from_str(&std::fs::read_to_string(template_path)?)?;
    if let Ok(interval) = std::env::var("BENCH_TUNING_INTERVAL") {
        template.spec.tuning.interval_seconds = interval.parse().context("BENCH_TUNING_INTERVAL")?;
    }
    let bench = Bench {
        quiet: Duration::from_secs(
            env_or("BENCH_QUIET_SECONDS", "15")
                .parse()
                .context("BENCH_QUIET_SECONDS")?,
        ),
        window: Duration::from_secs(
            env_or("BENCH_WINDOW_SECONDS", "60")
                .parse()
                .context("BENCH_WINDOW_SECONDS")?,
        ),
        stacks: Api::namespaced(client.clone(), namespace),
        operator,
        seen,
        acted,
        template,
    };
    let result = run_phases(&bench, count).await;
    // The stacks carry the operator's cleanup finalizer: delete them while it runs.
    let deleted = delete_all(&bench).await;
    for task in tasks {
        task.abort();
    }
    bench.operator.stop().await?;
    let mut report = result?;
    let deleted = deleted?;
    writeln!(
        report.markdown,
        "\nDeleting all {count} stacks (one `deletecollection`) until the last was gone: {:.1} s.",
        deleted.as_secs_f64()
    )?;
    report
        .json
        .insert("delete_all_seconds".into(), json!(deleted.as_secs_f64()));
    Ok(report)
}

async fn run_phases(bench: &Bench, count: usize) -> anyhow::Result<Report> {
    let mut md = String::new();
    let mut json = serde_json::Map::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = bench.operator.memory()?;

    // 1. One stack on an idle operator: apply -> every child, and the moments in between.
    let start = Instant::now();
    create(bench, "bench-1", &bench.template).await?;
    let one_name = ["bench-1".to_owned()];
    let one_ready = wait_for(bench, &one_name, Stage::Ready, Duration::from_secs(120)).await? - start;
    let children = children_of(bench, "bench-1");
    let all_children = last_child_seen(bench, "bench-1", None).context("no children seen")? - start;
    let one_tuned = wait_for(bench, &one_name, Stage::Tuned, Duration::from_secs(300)).await? - start;
    let one_steady = wait_quiet(bench, Duration::from_secs(120))
        .await?
        .saturating_duration_since(start);
    let one = bench.operator.memory()?;
    writeln!(
        md,
        "One stack (`examples/minimal.yaml`) applied to an idle operator; the bench plays the kubelet"
    )?;
    writeln!(
        md,
        "(it marks each new pod Ready, and the migration pod Succeeded, as soon as it sees it):\n"
    )?;
    writeln!(md, "| ms after `create` | event |\n| ---: | --- |")?;
    let mut timeline: Vec<(Duration, String)> = children
        .iter()
        .map(|(child, t)| (*t - start, format!("operator created {child}")))
        .collect();
    timeline.extend(
        acted_since(bench, start, "bench-1")
            .into_iter()
            .map(|(t, what)| (t, format!("bench: {what}"))),
    );
    timeline.sort();
    for (at, what) in &timeline {
        writeln!(md, "| {} | {what} |", at.as_millis())?;
    }
    writeln!(
        md,
        "\n**Time from applying one stack to all {} children created: {:.2} s** (first child after {} ms).\n",
        children.len(),
        all_children.as_secs_f64(),
        timeline.first().map_or(0, |(t, _)| t.as_millis()),
    )?;
    writeln!(
        md,
        "Ready after {:.2} s; a tuner decision over all of the API's minimum pods (it needs two intervals of \
         their metrics, 60 s each by default) after {:.1} s; the operator's last write after {:.1} s.\n",
        one_ready.as_secs_f64(),
        one_tuned.as_secs_f64(),
        one_steady.as_secs_f64()
    )?;
    json.insert("single_stack_children".into(), json!(children.len()));
    json.insert(
        "single_stack_all_children_seconds".into(),
        json!(all_children.as_secs_f64()),
    );

    // 2. Steady state: reconciles triggered by metadata-only touches must write nothing.
    let touched = touch_and_count(bench, &["bench-1".to_owned()], TOUCHES).await?;
    writeln!(
        md,
        "**API writes per steady-state reconcile: {:.2}** ({} writes over {} reconciles, each triggered by an \
         annotation change on the stack; reads per reconcile {:.1}; writes: {}).\n",
        touched.writes_per_reconcile(),
        touched.writes(),
        touched.reconciles,
        touched.reads_per_reconcile(),
        touched.write_breakdown(),
    )?;
    writeln!(
        md,
        "**GETs of children per steady-state reconcile: {:.2}**; reads per reconcile by verb and resource: {}.\n",
        touched.child_gets_per_reconcile(),
        touched.read_breakdown_per_reconcile(),
    )?;
    json.insert(
        "steady_writes_per_reconcile_1".into(),
        json!(touched.writes_per_reconcile()),
    );
    json.insert(
        "steady_child_gets_per_reconcile_1".into(),
        json!(touched.child_gets_per_reconcile()),
    );

    // 3. The fleet, in batches (to 200 first when N is larger), each until steady.
    let mut growths = Vec::new();
    for batch in fleet::batches(count) {
        growths.push(fleet::grow(bench, batch).await?);
    }
    let all_names: Vec<String> = (1..=count).map(fleet::name).collect();
    let touched_many = touch_and_count(bench, &all_names, 1).await?;
    let window = steady_window(bench, bench.window).await?;

    writeln!(
        md,
        "{count} stacks: the other {} are bundled like the first (their own PostgreSQL and Redis, 11 children \
         and 2 volume claims each; the lab's Service range is a /16), created by 16 concurrent clients{}:\n",
        count - 1,
        if growths.len() > 1 {
            format!(
                ", {} first, then the rest, each batch until the operator was steady",
                fleet::MILESTONE
            )
        } else {
            String::new()
        }
    )?;
    fleet::table(&mut md, bench, &growths)?;
    writeln!(md)?;
    writeln!(
        md,
        "Then, all {count} stacks steady: one touch of every stack wrote {:.2} per reconcile ({} writes, {} \
         reconciles) and sent **{:.2} GETs of children per reconcile** ({} GETs in all); {} s left alone: {} \
         reconciles (tuner intervals, HPA status updates), {} writes ({}).\n",
        touched_many.writes_per_reconcile(),
        touched_many.writes(),
        touched_many.reconciles,
        touched_many.child_gets_per_reconcile(),
        touched_many.gets(),
        bench.window.as_secs(),
        window.reconciles,
        window.writes(),
        window.write_breakdown()
    )?;
    writeln!(
        md,
        "| operator memory | RSS | peak RSS so far |\n| --- | ---: | ---: |"
    )?;
    let mut memory = vec![
        ("idle, no stacks".to_owned(), idle),
        ("1 stack, steady".to_owned(), one),
    ];
    memory.extend(
        growths
            .iter()
            .map(|g| (format!("{} stacks, steady", g.total), g.memory)),
    );
    for (label, m) in &memory {
        writeln!(md, "| {label} | {} | {} |", mib(m.rss_kib), mib(m.peak_kib))?;
    }
    if let Some(milestone) = growths
        .iter()
        .find(|g| g.total == fleet::MILESTONE && count > fleet::MILESTONE)
    {
        fleet::record(&mut json, milestone, "_200");
    }
    if let Some(last) = growths.last() {
        fleet::record(&mut json, last, "");
        json.insert("rss_kib_n".into(), json!(last.memory.rss_kib));
    }
    for (key, value) in [
        ("stacks", json!(count)),
        (
            "steady_writes_per_reconcile_n",
            json!(touched_many.writes_per_reconcile()),
        ),
        (
            "steady_child_gets_per_reconcile_n",
            json!(touched_many.child_gets_per_reconcile()),
        ),
        ("window_seconds", json!(bench.window.as_secs())),
        ("window_reconciles", json!(window.reconciles)),
        ("window_writes", json!(window.writes())),
        ("rss_kib_idle", json!(idle.rss_kib)),
        ("rss_kib_1", json!(one.rss_kib)),
    ] {
        json.insert(key.into(), value);
    }
    Ok(Report { markdown: md, json })
}
