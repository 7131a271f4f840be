//! The load tester against the real API: each scenario at a tiny scale against `perfstack-app
//! serve` on a fresh, migrated and seeded PostgreSQL database; the report files; exit code 1 when
//! a check fails; and, against a deliberately slow fixture server, that queueing counts as latency.
use std::{path::PathBuf, process::Stdio, time::Duration};

use perfstack_app::loadtest::{
    self, LoadtestArgs,
    client::ApiClient,
    driver,
    mix::Dataset,
    scenario::{Origin, Plan, Scenario, Stage},
    shape::{CapacityArgs, RateArgs},
    verdict::Thresholds,
};
use sqlx::{Connection, Executor, PgConnection};
use tokio::process::{Child, Command};

/// Fixtures: a fresh database, the served app, a slow server. `cfg(test)` makes clippy treat them
/// as test code, where unwrap and expect are the point.
#[cfg(test)]
mod fixture {
    use super::*;

    pub const BIN: &str = env!("CARGO_BIN_EXE_perfstack-app");

    /// A fresh database, dropped by [`TestDb::drop_now`].
    pub struct TestDb {
        admin_url: String,
        name: String,
        pub url: String,
    }

    impl TestDb {
        /// `tag` tells apart the databases of tests running at once in this process.
        pub async fn create(tag: &str) -> Self {
            let admin_url = std::env::var("DATABASE_URL")
                .expect("DATABASE_URL (run scripts/services.sh up and source .run/env)");
            let name = format!("perfstack_loadtest_{tag}_{}", std::process::id());
            let (base, _) = admin_url.rsplit_once('/').expect("DATABASE_URL has a database");
            let url = format!("{base}/{name}");
            let mut admin = PgConnection::connect(&admin_url).await.unwrap();
            admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                .await
                .unwrap();
            admin
                .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                .await
                .unwrap();
            Self { admin_url, name, url }
        }

        pub async fn drop_now(self) {
            let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
            admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str())
                .await
                .unwrap();
        }
    }

    /// 50 users, 10 projects, 1,000 tasks, written directly so the test depends only on the schema.
    pub async fn seed(url: &str) {
        let mut conn = PgConnection::connect(url).await.unwrap();
        conn.execute(
            r#"
            INSERT INTO users (email, username, first_name, last_name)
            SELECT 'user' || g || '@example.test', 'user' || g, 'First' || g, 'Last' || g
            FROM generate_series(1, 50) g;
            INSERT INTO projects (owner_id, name, description)
            SELECT (SELECT min(id) FROM users) + g % 50, 'project ' || g, 'seeded'
            FROM generate_series(1, 10) g;
            INSERT INTO tasks (project_id, title, status, priority, assignee_id, due_date)
            SELECT (SELECT min(id) FROM projects) + g % 10, 'task ' || g,
                   (ARRAY['todo', 'in_progress', 'review', 'done'])[1 + g % 4], g % 5,
                   (SELECT min(id) FROM users) + g % 50, DATE '2027-01-01' + g % 300
            FROM generate_series(1, 1000) g;
            "#,
        )
        .await
        .unwrap();
    }

    /// A fresh database, migrated by the binary and seeded, and `serve` on it.
    pub async fn served(tag: &str) -> (TestDb, Server) {
        let db = TestDb::create(tag).await;
        let migrate = Command::new(BIN)
            .arg("migrate")
            .env("DATABASE_URL", &db.url)
            .output()
            .await
            .unwrap();
        assert!(migrate.status.success(), "migrate: {migrate:?}");
        seed(&db.url).await;
        let server = serve(&db.url).await;
        (db, server)
    }

    /// Runs `perfstack-app loadtest` with `flags` (and `--out`); its exit code and stderr.
    pub async fn loadtest_binary(out: &std::path::Path, flags: &[&str]) -> (Option<i32>, String) {
        let run = Command::new(BIN)
            .arg("loadtest")
            .args(flags)
            .arg("--out")
            .arg(out)
            .output()
            .await
            .unwrap();
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stderr).into_owned(),
        )
    }

    /// `perfstack-app serve` on a free local port, killed when dropped.
    pub struct Server {
        _child: Child,
        pub base_url: String,
    }

    pub async fn serve(database_url: &str) -> Server {
        let port = perfstack_tests::spare_port();
        let child = Command::new(BIN)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DB_POOL_MAX", "20")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base_url = format!("http://127.0.0.1:{port}");
        let client = ApiClient::new(&base_url, Duration::from_secs(2), 1).unwrap();
        for _ in 0..300 {
            if let Ok(a) = client.send(http::Method::GET, "/readyz", None).await
                && a.status.is_success()
            {
                return Server {
                    _child: child,
                    base_url,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("perfstack-app serve did not become ready");
    }

    /// Limits loose enough for a debug build on a busy 2-core machine: this test proves the tool
    /// works, the SLOs themselves are measured by `make bench` and real runs.
    pub fn lenient() -> Thresholds {
        Thresholds {
            max_p95_ms: 5_000.0,
            max_p99_ms: 10_000.0,
            max_error_pct: 1.0,
            min_rps: 1.0,
            min_plan_pct: 1.0,
        }
    }

    pub fn args(base_url: &str, scenario: Scenario, scale: f64, out: PathBuf) -> LoadtestArgs {
        LoadtestArgs {
            base_url: base_url.to_owned(),
            scenario,
            scale,
            out,
            seed: 42,
            request_timeout_ms: 10_000,
            token: None,
            thresholds: lenient(),
            rate: RateArgs::default(),
            capacity: CapacityArgs::default(),
            report_pct: 0,
            ledger: None,
        }
    }

    /// [`args`] for an open-model run: `rate` requests per second (the scenario's mix) for
    /// `duration_s` seconds.
    pub fn at_rate(
        base_url: &str,
        scenario: Scenario,
        rate: f64,
        duration_s: f64,
        out: PathBuf,
    ) -> LoadtestArgs {
        LoadtestArgs {
            rate: RateArgs {
                rate: Some(rate),
                duration_s,
            },
            ..args(base_url, scenario, 1.0, out)
        }
    }

    /// A directory for the reports of the test `tag`, apart from other runs of the suite.
    pub fn out_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("perfstack-{tag}-{}", std::process::id()))
    }

    /// A fixture server that takes 50 ms per request, so one virtual user serves 20 rps at most.
    pub async fn slow_server() -> String {
        use axum::{Router, routing::any};
        let app = Router::new().fallback(any(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            "{}"
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// Runs the binary's baseline scenario against `base_url` with `flags`; its exit code and stderr.
    pub async fn run_baseline(
        base_url: &str,
        out: &std::path::Path,
        flags: &[&str],
    ) -> (Option<i32>, String) {
        let mut all = vec!["--base-url", base_url, "--scenario", "baseline"];
        all.extend_from_slice(flags);
        loadtest_binary(out, &all).await
    }

    pub fn one_user_plan(rate: f64) -> Plan {
        Plan {
            scenario: Scenario::Baseline,
            scale: 1.0,
            stages: vec![Stage {
                duration: Duration::from_secs(1),
                vus: 1,
                rate,
            }],
            origin: Origin::Scenario,
        }
    }
}

use fixture::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_reports_and_fails_with_exit_code_1() {
    let (db, server) = served("scenarios").await;
    let out = out_dir("loadtest");

    // Each scenario for about 2-3 seconds (stress: 1.8 s at 1000 rps).
    let runs = [
        (Scenario::Baseline, 0.01),
        (Scenario::Peak, 0.004),
        (Scenario::Stress, 0.002),
        (Scenario::Spike, 0.01),
    ];
    for (scenario, scale) in runs {
        let finished = loadtest::execute(&args(&server.base_url, scenario, scale, out.clone()))
            .await
            .unwrap_or_else(|e| panic!("{scenario:?}: {e:#}"));
        let report = &finished.report;
        assert!(report.passed, "{scenario:?}: {:?}", report.checks);
        assert_eq!(report.results.requests, report.planned_requests, "{scenario:?}");
        assert!(
            report.results.operations.len() >= 5,
            "{scenario:?}: mix too narrow"
        );

        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&finished.written.json).unwrap()).unwrap();
        assert_eq!(json["plan"]["scenario"], scenario.name());
        assert_eq!(json["passed"], true);
        assert_eq!(json["checks"].as_array().unwrap().len(), 4);
        assert!(!json["results"]["timeline"].as_array().unwrap().is_empty());
        assert!(json["results"]["latencyMs"]["p99"].as_f64().unwrap() > 0.0);

        let html = std::fs::read_to_string(&finished.written.html).unwrap();
        assert!(html.contains(r#"<svg id="latency-chart""#));
        assert!(html.contains(r#"<svg id="throughput-chart""#));
        assert!(html.contains(r#"data-series="p99""#));
        assert!(!html.contains("<script src") && !html.contains("<link"));
    }

    // The binary fails (exit code 1) when a check fails, and says which.
    let (code, stderr) = run_baseline(
        &server.base_url,
        &out,
        &["--scale", "0.005", "--max-p95-ms", "0.001", "--min-rps", "1"],
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("FAIL  p95 < 0.001 ms"), "{stderr}");
    assert!(stderr.contains("elapsed "), "no progress line: {stderr}");

    // A healthy baseline passes its throughput check with the default limits: it plans 50 rps,
    // below the 100 rps floor, so it is judged against its plan (latency limits loosened for a
    // debug build; the throughput limits are the defaults).
    let loose = [
        "--scale",
        "0.01",
        "--max-p95-ms",
        "10000",
        "--max-p99-ms",
        "20000",
    ];
    let (code, stderr) = run_baseline(&server.base_url, &out, &loose).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("pass  throughput > 45 rps (90 % of the planned 50 rps)"),
        "{stderr}"
    );

    let _ = std::fs::remove_dir_all(&out);
    drop(server);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queueing_behind_a_slow_server_counts_as_latency() {
    let base = slow_server().await;
    let data = Dataset {
        user_ids: vec![1],
        project_ids: vec![1],
        task_ids: vec![1],
        total_tasks: 1,
        total_projects: 1,
    };
    let client = || ApiClient::new(&base, Duration::from_secs(10), 1).unwrap();

    // Within capacity: 10 rps against 20 rps of capacity, latency is the service time.
    let relaxed = driver::drive(
        &one_user_plan(10.0),
        client(),
        data.clone(),
        1,
        std::future::pending(),
    )
    .await;
    assert_eq!(relaxed.totals.requests, 10);
    assert!(
        relaxed.totals.latency_ms.p50 < 300.0,
        "{:?}",
        relaxed.totals.latency_ms
    );

    // Over capacity: 40 requests intended within 1 s take about 2 s to serve. A closed-model tool
    // would still report ~50 ms; measured from the intended send time the last ones waited ~1 s.
    let overloaded = driver::drive(&one_user_plan(40.0), client(), data, 1, std::future::pending()).await;
    let l = overloaded.totals.latency_ms;
    assert_eq!(overloaded.totals.requests, 40);
    assert!(l.p50 > 300.0, "queueing hidden: {l:?}");
    assert!(l.p99 > 800.0, "queueing hidden: {l:?}");
    assert!(overloaded.elapsed >= Duration::from_millis(1900));
    // The server itself stayed fast: the latency is queueing, and the report tells them apart.
    for op in &overloaded.totals.operations {
        assert!(op.service_ms.p50 < 300.0, "{op:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_rate_and_a_capacity_search_against_serve() {
    let (db, server) = served("capacity").await;
    let out = out_dir("capacity");

    // --rate 20 for 2 s: 40 requests at about 20 per second, in rate.json.
    let fixed = at_rate(&server.base_url, Scenario::Peak, 20.0, 2.0, out.clone());
    let finished = loadtest::execute(&fixed).await.unwrap();
    let report = &finished.report;
    assert_eq!(report.plan.origin, Origin::Rate);
    assert_eq!(report.planned_requests, 40);
    assert_eq!(report.results.requests, 40);
    assert!(
        (10.0..=21.0).contains(&report.throughput_rps),
        "offered 20 rps, achieved {}",
        report.throughput_rps
    );
    assert!(report.passed, "{:?}", report.checks);
    assert_eq!(finished.written.json, out.join("rate.json"));

    // A search with a tiny ladder (10, 20, 40 rps, 1.5 s each) holds every step and stops at the
    // max: the knee is the max, and each step read the pool's figures from /metrics.
    let search = [
        "--base-url",
        &server.base_url,
        "--find-capacity",
        "--start-rate",
        "10",
        "--step-factor",
        "2",
        "--max-rate",
        "40",
        "--step-duration",
        "1.5",
        "--max-p95-ms",
        "5000",
        "--max-p99-ms",
        "10000",
        "--max-rate-gap-pct",
        "50",
    ];
    let (code, stderr) = loadtest_binary(&out, &search).await;
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    let rates: Vec<f64> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rate"].as_f64().unwrap())
        .collect();
    assert_eq!(rates, [10.0, 20.0, 40.0], "{json}");
    assert_eq!(json["kneeRps"], 40.0);
    assert_eq!(json["stopped"], "maxRate");
    assert!(
        json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["held"] == true)
    );
    assert_eq!(json["steps"][0]["figures"]["signs"]["poolMax"], 20.0, "{json}");
    assert!(
        json["steps"][2]["figures"]["signs"]["appCores"]
            .as_f64()
            .is_some()
    );
    let text = std::fs::read_to_string(out.join("capacity.txt")).unwrap();
    assert!(
        text.contains("knee: 40 rps; every rate up to --max-rate held"),
        "{text}"
    );
    assert!(stderr.contains("knee: 40 rps"), "{stderr}");

    // An SLO nothing can meet breaks the first step: no knee, a resource named, exit code 1.
    let impossible: Vec<&str> = search
        .iter()
        .map(|flag| if *flag == "5000" { "0.001" } else { flag })
        .collect();
    let (code, stderr) = loadtest_binary(&out, &impossible).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no rate held the SLO: the first step (10 rps) broke it"),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    assert_eq!(json["steps"].as_array().unwrap().len(), 1);
    assert_eq!(json["kneeRps"], serde_json::Value::Null);
    assert_eq!(json["stopped"], "sloBroken");
    assert!(json["saturated"].is_string(), "{json}");

    let _ = std::fs::remove_dir_all(&out);
    drop(server);
    db.drop_now().await;
}

/// `--ledger` records exactly the writes the API acknowledged: every created task id is a row, every
/// report job id the API handed out has its `jobs` record, and the counts match the report's.
#[tokio::test]
async fn the_ledger_holds_every_acknowledged_write() {
    let (db, server) = served("ledger").await;
    let out = out_dir("ledger");
    let mut run = at_rate(&server.base_url, Scenario::Baseline, 40.0, 3.0, out.clone());
    run.report_pct = 10;
    run.ledger = Some(out.join("ledger.jsonl"));
    let finished = loadtest::execute(&run).await.unwrap();
    let ok = |name: &str| {
        finished
            .report
            .results
            .operations
            .iter()
            .find(|o| o.operation.name() == name)
            .map_or(0, |o| o.requests - o.errors)
    };
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(out.join("ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of = |op: &str| {
        entries
            .iter()
            .filter(|e| e["operation"] == op)
            .collect::<Vec<_>>()
    };
    let (created, patched, reports) = (of("createTask"), of("patchTask"), of("createReport"));
    assert_eq!(
        entries.len(),
        created.len() + patched.len() + reports.len(),
        "reads are not recorded"
    );
    assert_eq!(created.len() as u64, ok("createTask"));
    assert_eq!(patched.len() as u64, ok("patchTask"));
    assert_eq!(reports.len() as u64, ok("createReport"));
    assert!(!created.is_empty() && !reports.is_empty(), "{entries:?}");

    let task_ids: Vec<i64> = created.iter().map(|e| e["taskId"].as_i64().unwrap()).collect();
    let job_ids: Vec<String> = reports
        .iter()
        .map(|e| e["jobId"].as_str().unwrap().to_owned())
        .collect();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1)")
        .bind(&task_ids)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE job_id = ANY($1) AND queue = 'report'")
            .bind(&job_ids)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tasks as usize, task_ids.len());
    assert_eq!(jobs as usize, job_ids.len());
    conn.close().await.unwrap();

    let _ = std::fs::remove_dir_all(&out);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn bad_rates_are_cli_errors() {
    let out = out_dir("badrate");
    let base = ["--base-url", "http://127.0.0.1:9"];
    for (flags, code, says) in [
        (
            &["--rate", "0"][..],
            2,
            "a rate (requests per second) must be above 0",
        ),
        (
            &["--rate", "-3"],
            2,
            "must be above 0 and at most 1000000, got -3",
        ),
        (
            &["--find-capacity", "--step-duration", "0"],
            2,
            "a duration (seconds) must be above 0",
        ),
        (
            &["--find-capacity", "--start-rate", "500", "--max-rate", "100"],
            1,
            "--max-rate (100) must not be below --start-rate (500)",
        ),
    ] {
        let all: Vec<&str> = base.iter().chain(flags).copied().collect();
        let (exit, stderr) = loadtest_binary(&out, &all).await;
        assert_eq!(exit, Some(code), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
