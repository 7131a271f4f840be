//! The environment: every variable the operator sets on the API and migration containers is one the
//! app reads for that subcommand.
use std::collections::BTreeSet;

use clap::CommandFactory;
use k8s_openapi::api::core::v1::Container;
use perfstack_operator::children::{app, config, migration};

/// The environment variables the app's `subcommand` reads.
fn app_reads(subcommand: &str) -> BTreeSet<String> {
    let command = perfstack_app::cli::Cli::command();
    let sub = command
        .get_subcommands()
        .find(|c| c.get_name() == subcommand)
        .unwrap_or_else(|| panic!("no subcommand {subcommand}"));
    sub.get_arguments()
        .chain(command.get_arguments())
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

fn container_env(container: &Container) -> BTreeSet<String> {
    container.env.iter().flatten().map(|e| e.name.clone()).collect()
}

#[test]
fn the_api_container_gets_only_variables_serve_reads() {
    let stack = super::validated(serde_json::json!({}));
    let reads = app_reads("serve");
    let deployment = app::deployment(&stack, "ghcr.io/perfstack/perfstack-app:test", None);
    let pod = deployment.spec.and_then(|s| s.template.spec).expect("a pod spec");
    let api = pod
        .containers
        .iter()
        .find(|c| c.name == app::CONTAINER)
        .expect("the api container");
    let mut given = container_env(api);
    let config_map = config::app_config_map(&stack, &perfstack_contract::tuning::PoolSettings::default());
    given.extend(config_map.data.unwrap_or_default().into_keys());
    let unknown: Vec<_> = given.difference(&reads).collect();
    assert!(
        unknown.is_empty(),
        "the operator sets variables `serve` does not read: {unknown:?}"
    );
    for name in perfstack_contract::env::OPERATOR_SET {
        if *name != perfstack_contract::env::REDIS_URL
            || stack.cache != perfstack_operator::children::CacheSource::Disabled
        {
            assert!(reads.contains(*name), "`serve` does not read {name}");
        }
    }
}

#[test]
fn the_migration_container_gets_only_variables_migrate_reads() {
    let stack = super::validated(serde_json::json!({}));
    let reads = app_reads("migrate");
    let job = migration::job(&stack);
    let pod = job
        .spec
        .map(|s| s.template)
        .and_then(|t| t.spec)
        .expect("a pod spec");
    for container in &pod.containers {
        let unknown: Vec<_> = container_env(container)
            .into_iter()
            .filter(|e| !reads.contains(e))
            .collect();
        assert!(
            unknown.is_empty(),
            "the migration Job sets variables `migrate` does not read: {unknown:?}"
        );
        let args = container.args.clone().unwrap_or_default();
        assert_eq!(args.first().map(String::as_str), Some("migrate"), "{args:?}");
    }
}
