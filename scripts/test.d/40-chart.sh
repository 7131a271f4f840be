# The Helm chart: lint, render with default and non-default values, validate the output against the
# Kubernetes schemas, check RBAC/Deployment invariants, check that bad values are refused by
# values.schema.json, that the chart's CRDs and the plain-kubectl manifest are not stale, and that
# examples/ match the CRD.
set -euo pipefail
ROOT=${PERFSTACK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
source scripts/tools.sh

CHART=charts/perfstack-operator
TESTS=charts/tests
# Oldest and newest Kubernetes that kubernetes-validate has schemas for, and the one k8s-openapi targets.
VALIDATE_VERSIONS=(1.25.0 1.33.0 1.37.0)
# Kinds from other projects' CRDs that kubernetes-validate has no schema for; check_render.py covers them.
FOREIGN_KINDS='ServiceMonitor'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); log "FAIL: $*"; }

# 1. The chart ships the CRD that `perfstack-operator crdgen` generates, byte for byte.
if compgen -G 'crds/*.yaml' >/dev/null; then
  if diff -r crds "$CHART/crds" >"$out/crds.diff"; then ok; else
    ko "chart CRDs differ from crds/ (run scripts/chart.sh sync-crds):"; cat "$out/crds.diff" >&2
  fi
else
  log "crds/ not generated yet (operator core not merged): chart CRD comparison skipped"
fi

# 1b. The examples people copy match the CRD: types, bounds, and no field the API server would drop.
if compgen -G 'crds/*.yaml' >/dev/null; then
  if cat crds/*.yaml >"$out/crds.yaml" && "$TOOLS_PYTHON" "$TESTS/check_examples.py" "$out/crds.yaml" examples/*.yaml; then ok; else
    ko "examples/ do not match crds/"
  fi
else
  log "crds/ not generated yet: examples not checked against the CRD"
fi

# 2. helm lint, strict, with each values set.
for values in "$CHART"/ci/*-values.yaml; do
  if helm lint --strict "$CHART" -f "$values" >"$out/lint.log" 2>&1; then ok; else
    ko "helm lint with $values"; cat "$out/lint.log" >&2
  fi
done

# 3. Render: defaults, the non-default set, and defaults for a 1.20 cluster (PDB fallback).
render() { # render NAME [helm template flags...]
  local name=$1; shift
  helm template ps "$CHART" --namespace perfstack-system "$@" >"$out/$name.yaml" 2>"$out/$name.err" \
    || { ko "helm template $name"; cat "$out/$name.err" >&2; return 1; }
}
render default && ok
render namespaced -f "$CHART/ci/namespaced-values.yaml" && ok
render kube120 --kube-version 1.20.2 && ok
render with-crds --include-crds -f "$CHART/ci/namespaced-values.yaml" && ok

# 4. Validate against the Kubernetes schemas, strictly (unknown fields are errors).
for v in "${VALIDATE_VERSIONS[@]}"; do
  for name in default namespaced with-crds; do
    if kubernetes-validate --strict --quiet -k "$v" "$out/$name.yaml" >"$out/validate.log" 2>&1 \
      && ! grep -v -E "kind ($FOREIGN_KINDS) with" "$out/validate.log" | grep -q "Couldn't find schema"; then
      ok
    else
      ko "kubernetes-validate --strict -k $v $name"; cat "$out/validate.log" >&2
    fi
  done
done

# 5. What a schema cannot say: exact RBAC, security context, probes, flags, PDB version.
for name in default namespaced kube120; do
  if "$TOOLS_PYTHON" "$TESTS/check_render.py" "$name" "$out/$name.yaml"; then ok; else ko "check_render $name"; fi
done

if [[ -f e2e/rbac.yaml ]]; then
  if "$TOOLS_PYTHON" "$TESTS/check_render.py" e2e-rbac e2e/rbac.yaml; then ok; else ko "e2e/rbac.yaml differs from the chart"; fi
fi

# 6. Bad values fail at install time, through values.schema.json (not later in a template).
for bad in "$TESTS"/invalid-values/*.yaml; do
  expect=$(sed -n '1s/^# expect: //p' "$bad")
  if helm template ps "$CHART" -f "$bad" >/dev/null 2>"$out/bad.err"; then
    ko "$(basename "$bad"): accepted, should have been refused"
  elif grep -q "values don't meet the specifications of the schema" "$out/bad.err" && grep -qF -- "$expect" "$out/bad.err"; then
    ok
  else
    ko "$(basename "$bad"): refused, but not by the schema at '$expect':"; cat "$out/bad.err" >&2
  fi
done

# 7. The committed plain-kubectl manifest matches the chart.
if scripts/chart.sh manifest-stdout 2>/dev/null | diff -u deploy/perfstack-operator.yaml - >"$out/manifest.diff"; then ok; else
  ko "deploy/perfstack-operator.yaml is stale (run make manifests):"; head -40 "$out/manifest.diff" >&2
fi

# 8. The chart packages (and leaves its ci/ values out of the package).
if helm package "$CHART" -d "$out" >/dev/null && ! tar tzf "$out"/perfstack-operator-*.tgz | grep -q '/ci/'; then ok; else
  ko "helm package"
fi

echo "chart: $passed passed, $failed failed"
((failed == 0))
