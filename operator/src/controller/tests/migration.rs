//! The migration's outcome: read once from the Job's pod (the contract's report in the termination
//! message), kept as `status.migration`, never parsed back out of a condition message.
use http::Method;
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use perfstack_contract::migration::{MigrationReport, MigrationSummary};
use serde_json::json;

use super::scenario::{Child, NS, Reply, Scenario, json_of};
use super::*;

/// The pods of `job`: one that ended in `phase` with `message` as the migrate container's
/// termination message.
fn job_pods(phase: &str, message: &str) -> Reply {
    Reply::Json(json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {},
        "items": [{
            "metadata": {"name": "shop-migrate-pod", "namespace": NS},
            "status": {"phase": phase, "containerStatuses": [{
                "name": "migrate", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": message}}
            }]}
        }]
    }))
}

fn pods_of(job: &str) -> String {
    format!("/api/v1/namespaces/{NS}/pods?&labelSelector=job-name%3D{job}")
}

/// The observe step's reads up to the migration Job (answered by [`live`], the Job by `job`).
fn reads_through_job(scenario: Scenario, d: &Desired, name: &str, job: Reply) -> Scenario {
    let mut job = Some(job);
    reads_of(scenario, &Child::ALL[..=job_read()], name, |child| match child {
        Child::MigrationJob => job.take().unwrap_or(Reply::NotFound),
        other => live(d, other),
    })
}

/// Where the migration Job is among the observe step's reads.
fn job_read() -> usize {
    Child::ALL
        .iter()
        .position(|c| *c == Child::MigrationJob)
        .unwrap_or(Child::ALL.len())
}

/// The reads after the migration Job.
fn reads_after_job(scenario: Scenario, d: &Desired, name: &str) -> Scenario {
    reads_of(scenario, &Child::ALL[job_read() + 1..], name, |child| {
        live(d, child)
    })
}

#[tokio::test]
async fn a_newly_succeeded_migration_is_read_once_from_its_pod_and_supersedes_older_jobs() {
    let (stack, d, name) = built().parts();
    let summary = MigrationSummary {
        migrations_applied: 4,
        indexes_created: vec!["idx_tasks_project_status".into()],
        ..MigrationSummary::default()
    };
    let report = MigrationReport::Succeeded(summary.clone()).to_line();
    let jobs = json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [
            {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": "shop-migrate-0000000000"}},
            {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": name}}
        ]
    });
    let scenario = reads_through_job(Scenario::new(stack), &d, &name, live(&d, Child::MigrationJob))
        .call(Method::GET, pods_of(&name), job_pods("Succeeded", &report))
        .call(
            Method::GET,
            format!(
                "/apis/batch/v1/namespaces/{NS}/jobs?&labelSelector=perfstack.dev%2Fstack%3Dshop%2Capp.kubernetes.io%2Fcomponent%3Dmigration"
            ),
            Reply::Json(jobs),
        );
    let expected = serde_json::to_value(&summary).unwrap();
    reads_after_job(scenario, &d, &name)
        .call(
            Method::DELETE,
            format!("/apis/batch/v1/namespaces/{NS}/jobs/shop-migrate-0000000000"),
            Reply::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        )
        .status_patch(move |body| {
            let status = &body["status"];
            assert_eq!(status["phase"], "Ready");
            assert_eq!(status["migration"]["state"], "Succeeded");
            assert_eq!(status["migration"]["summary"], expected);
            let message = status["conditions"][3]["message"].as_str().unwrap();
            assert!(message.contains(r#""migrationsApplied":4"#), "{message}");
        })
        .run()
        .await;
}

#[tokio::test]
async fn a_failed_migration_reports_its_error_and_is_not_read_again() {
    let Built {
        mut stack,
        v,
        desired: d,
        job: name,
    } = built();
    let mut job = d.migration.clone().unwrap();
    job.status = Some(JobStatus {
        conditions: Some(vec![JobCondition {
            type_: "Failed".into(),
            status: "True".into(),
            ..JobCondition::default()
        }]),
        ..JobStatus::default()
    });
    let report = MigrationReport::Failed {
        error: "could not build index idx_tasks_search: timeout".into(),
    };
    let scenario = reads_through_job(Scenario::new(stack.clone()), &d, &name, json_of(&job)).call(
        Method::GET,
        pods_of(&name),
        job_pods("Failed", &report.to_line()),
    );
    reads_after_job(scenario, &d, &name)
        .status_patch(|body| {
            let status = &body["status"];
            assert_eq!(status["phase"], "Failed");
            assert_eq!(status["migration"]["state"], "Failed");
            assert_eq!(
                status["migration"]["error"],
                "could not build index idx_tasks_search: timeout"
            );
            let message = status["conditions"][0]["message"].as_str().unwrap();
            assert!(
                message.ends_with("(delete it to retry): could not build index idx_tasks_search: timeout"),
                "{message}"
            );
        })
        .run()
        .await;

    // Once status recorded the failure, the next reconcile reads no pod (and writes nothing new).
    let failed = MigrationStatus {
        job: name.clone(),
        image: v.app_image.clone(),
        state: MigrationState::Failed,
        summary: None,
        error: Some("could not build index idx_tasks_search: timeout".into()),
    };
    let mut status = settled_status(&stack, MigrationSummary::default());
    status.migration = Some(failed);
    stack.status = Some(status);
    let scenario = reads_through_job(Scenario::new(stack), &d, &name, json_of(&job));
    reads_after_job(scenario, &d, &name)
        .status_patch(|body| {
            assert_eq!(body["status"]["migration"]["state"], "Failed");
        })
        .run()
        .await;
}
