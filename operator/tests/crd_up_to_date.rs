//! The committed CRD must be what the Rust types generate; `make crds` regenerates it.
#[test]
fn committed_crd_matches_the_rust_types() {
    let generated = perfstack_operator::crd_yaml().expect("CRD renders");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/performancestack.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/performancestack.yaml exists");
    assert!(
        committed == generated,
        "crds/performancestack.yaml is stale: run `make crds` and commit the result"
    );
}

#[test]
fn crd_has_the_printer_columns_short_name_and_rules() {
    let yaml = perfstack_operator::crd_yaml().expect("CRD renders");
    for column in [
        "name: Phase",
        "name: Ready",
        "name: P95",
        "name: Replicas",
        "name: Pool",
        "name: Age",
    ] {
        assert!(yaml.contains(column), "missing printer column {column}");
    }
    assert!(yaml.contains("- pstack"));
    assert!(
        yaml.contains("- \"Off\""),
        "tuning.mode Off must be quoted, or Kubernetes reads it as false"
    );
    assert!(yaml.contains("rule: self.minConnections <= self.maxConnections"));
    assert!(yaml.contains("has(self.external)"));
    assert!(
        !yaml.contains("Auto-generated"),
        "developer notes leak into descriptions"
    );
}
