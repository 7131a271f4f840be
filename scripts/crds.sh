#!/usr/bin/env bash
# `make crds`: regenerate crds/performancestack.yaml from the Rust types (operator/src/crd/).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"
mkdir -p crds
cargo run -q -p perfstack-operator -- crdgen > crds/performancestack.yaml.tmp
mv crds/performancestack.yaml.tmp crds/performancestack.yaml
log "wrote crds/performancestack.yaml"
