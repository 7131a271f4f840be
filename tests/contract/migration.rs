//! The migration report: the line `perfstack-app migrate` writes to the termination log is what the
//! operator reads into `status.migration`.
use perfstack_contract::migration::{MigrationReport, MigrationSummary};

#[test]
fn the_operator_reads_the_report_the_app_writes() {
    let summary = MigrationSummary {
        migrations_applied: 2,
        indexes_created: vec!["idx_users_email_active".into()],
        indexes_repaired: vec![],
        indexes_valid: vec!["idx_tasks_search".into()],
    };
    let line = MigrationReport::Succeeded(summary.clone()).to_line();
    // The app writes the line with a newline; the kubelet hands the file back as the message.
    let message = format!("{line}\n");
    assert_eq!(
        MigrationReport::parse(&message),
        Some(MigrationReport::Succeeded(summary))
    );
    let failed = MigrationReport::Failed {
        error: "could not build index idx_tasks_search: canceling statement due to lock timeout".into(),
    };
    assert_eq!(MigrationReport::parse(&failed.to_line()), Some(failed));
}

#[test]
fn the_migration_job_writes_its_report_where_the_operator_reads_it() {
    let stack = super::validated(serde_json::json!({}));
    let job = perfstack_operator::children::migration::job(&stack);
    let pod = job
        .spec
        .map(|s| s.template)
        .and_then(|t| t.spec)
        .expect("a pod spec");
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap_or_default().join(" ");
    let path = container
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    assert!(args.contains(&format!("--summary-file {path}")), "{args}");
    // The app's flag exists under that name.
    let command = <perfstack_app::cli::Cli as clap::CommandFactory>::command();
    let migrate = command.find_subcommand("migrate").expect("migrate");
    assert!(
        migrate
            .get_arguments()
            .any(|a| a.get_long() == Some("summary-file"))
    );
}
