"""Checks on rendered perfstack-operator manifests that schema validation cannot make.

    check_render.py default RENDER.yaml     chart defaults (release "ps" in perfstack-system)
    check_render.py namespaced RENDER.yaml  ci/namespaced-values.yaml
    check_render.py kube120 RENDER.yaml     defaults rendered with --kube-version 1.20.2
    check_render.py e2e-rbac e2e/rbac.yaml  the rights the operator's own e2e grants

The operator's rights are written out here, independently of the chart's templates, from the RBAC list
the operator core asks for: the chart must grant exactly these, no more and no fewer.
"""

import json
import sys

import yaml

RELEASE_NS = "perfstack-system"

# The children the operator owns, which it may read, watch, create, change and delete.
OWNED = {"get", "list", "watch", "create", "patch", "delete"}
OWNED_KINDS = [
    ("", "secrets"), ("", "configmaps"), ("", "services"), ("apps", "statefulsets"), ("apps", "deployments"),
    ("batch", "jobs"), ("autoscaling", "horizontalpodautoscalers"),
]

# (apiGroup, resource) -> verbs, exactly as the operator uses them.
OPERATOR_RIGHTS = {
    ("perfstack.dev", "performancestacks"): {"get", "list", "watch", "patch", "update"},
    ("perfstack.dev", "performancestacks/status"): {"get", "patch", "update"},
    ("perfstack.dev", "performancestacks/finalizers"): {"update"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/proxy"): {"get"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("monitoring.coreos.com", "podmonitors"): {"get", "create", "patch", "delete"},
    ("monitoring.coreos.com", "prometheusrules"): {"get", "create", "patch", "delete"},
} | dict.fromkeys(OWNED_KINDS, OWNED)
LEASE_RIGHTS = {("coordination.k8s.io", "leases"): {"get", "list", "watch", "create", "update", "patch"}}

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def rights(role):
    """Flattens a role's rules into (group, resource) -> verbs; wildcards and resourceNames are refused."""
    out = {}
    for rule in role.get("rules", []):
        check("resourceNames" not in rule and "nonResourceURLs" not in rule,
              f"{role['kind']} {role['metadata']['name']}: unexpected rule shape {rule}")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                verbs = set(rule.get("verbs", []))
                check("*" not in verbs and group != "*" and resource != "*",
                      f"{role['kind']} {role['metadata']['name']}: wildcard in {rule}")
                out.setdefault((group, resource), set()).update(verbs)
    return out


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    check(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0] if found else {}


def is_user_role(role):
    labels = role["metadata"].get("labels", {})
    return any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels)


def binds(docs, kind, role_name, namespace, sa, sa_ns):
    binding_kind = "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding"
    for b in by_kind(docs, binding_kind):
        if namespace is not None and b["metadata"].get("namespace") != namespace:
            continue
        if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name}:
            return {"kind": "ServiceAccount", "name": sa, "namespace": sa_ns} in b.get("subjects", [])
    return False


def check_lease_role(docs, lease_ns, sa):
    lease_roles = [r for r in by_kind(docs, "Role") if rights(r) == LEASE_RIGHTS]
    check(len(lease_roles) == 1, f"expected one lease Role, found {len(lease_roles)}")
    for r in lease_roles:
        check(r["metadata"]["namespace"] == lease_ns, f"lease Role in {r['metadata']['namespace']}, want {lease_ns}")
        check(binds(docs, "Role", r["metadata"]["name"], lease_ns, sa, RELEASE_NS), "lease Role not bound to the SA")


def operator_container(docs):
    dep = one(docs, "Deployment")
    pod = dep.get("spec", {}).get("template", {}).get("spec", {})
    containers = pod.get("containers", [{}])
    check(len(containers) == 1, "operator pod should have exactly one container")
    return dep, pod, containers[0]


def check_deployment(docs, sa, port):
    dep, pod, c = operator_container(docs)
    check(pod.get("serviceAccountName") == sa, f"pod runs as {pod.get('serviceAccountName')}, want {sa}")
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, "pod must run as non-root")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault missing")
    check(sc.get("readOnlyRootFilesystem") is True, "root filesystem must be read-only")
    check(sc.get("allowPrivilegeEscalation") is False, "privilege escalation must be off")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities must drop ALL")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness probe is not /healthz")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness probe is not /readyz")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("metrics") == port, f"metrics port {ports.get('metrics')}, want {port}")
    res = c.get("resources", {})
    check(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"), "memory request and limit needed")
    env = {e["name"]: e for e in c.get("env", [])}
    for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        got = env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        check(got == path, f"{name} must come from the downward API {path}, got {got}")
    args = c.get("args", [])
    check(args[:1] == ["run"], f"first arg must be the run subcommand: {args}")
    check(f"--metrics-addr=0.0.0.0:{port}" in args, f"metrics address flag missing: {args}")
    return dep, args


def check_default(docs):
    sa = "ps-perfstack-operator"
    one(docs, "ServiceAccount", sa)
    operator_roles = [r for r in by_kind(docs, "ClusterRole") if not is_user_role(r)]
    check(len(operator_roles) == 1, f"expected one operator ClusterRole, found {len(operator_roles)}")
    for role in operator_roles:
        check(rights(role) == OPERATOR_RIGHTS, f"ClusterRole rights differ:\n{diff(rights(role), OPERATOR_RIGHTS)}")
        check(binds(docs, "ClusterRole", role["metadata"]["name"], None, sa, RELEASE_NS), "ClusterRole not bound to the SA")
    check([r for r in by_kind(docs, "Role") if rights(r) != LEASE_RIGHTS] == [], "unexpected namespaced Role")
    check_lease_role(docs, RELEASE_NS, sa)
    for role in filter(is_user_role, by_kind(docs, "ClusterRole")):
        check({g for g, _ in rights(role)} == {"perfstack.dev"}, "user-facing roles must only cover perfstack.dev")
    dep, args = check_deployment(docs, sa, 8080)
    check(dep["spec"]["replicas"] == 1, "default replicas is 1")
    check("--leader-election" in args, "leader election must be on by default")
    check(f"--lease-namespace={RELEASE_NS}" in args and "--lease-name=ps-perfstack-operator" in args, f"lease flags: {args}")
    check(not any(a.startswith("--namespaces") for a in args), "no --namespaces by default")
    check("--tuner-scrape=auto" in args, f"tuner scrape mode defaults to auto: {args}")
    _, _, c = operator_container(docs)
    check(c.get("image") == "ghcr.io/perfstack/perfstack-operator:0.1.0", f"image defaults to appVersion: {c.get('image')}")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb.get("apiVersion") == "policy/v1", "PDB is policy/v1 on current Kubernetes")
    check(pdb.get("spec", {}).get("maxUnavailable") == 1, "default PDB allows one pod down")
    svc = one(docs, "Service")
    check(svc.get("spec", {}).get("ports", [{}])[0].get("targetPort") == "metrics", "metrics Service targets port metrics")
    check(by_kind(docs, "ServiceMonitor") == [], "no ServiceMonitor by default")


def check_namespaced(docs):
    sa = "perfstack"
    check(by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == [],
          "namespaced mode must grant nothing cluster-wide")
    for ns in ("team-a", "team-b"):
        roles = [r for r in by_kind(docs, "Role") if r["metadata"]["namespace"] == ns]
        check(len(roles) == 1, f"expected one Role in {ns}, found {len(roles)}")
        for role in roles:
            check(rights(role) == OPERATOR_RIGHTS, f"Role in {ns} differs:\n{diff(rights(role), OPERATOR_RIGHTS)}")
            check(binds(docs, "Role", role["metadata"]["name"], ns, sa, RELEASE_NS), f"Role in {ns} not bound to the SA")
    check({r["metadata"]["namespace"] for r in by_kind(docs, "Role")} == {"team-a", "team-b", RELEASE_NS},
          "Roles only in the watched namespaces and the lease namespace")
    check_lease_role(docs, RELEASE_NS, sa)
    dep, args = check_deployment(docs, sa, 9090)
    check(dep["spec"]["replicas"] == 2, "replicas from values")
    check("--namespaces=team-a,team-b" in args, f"--namespaces flag: {args}")
    check("--tuner-scrape=proxy" in args, f"--tuner-scrape from values: {args}")
    check("--leader-election" in args and "--lease-name=perfstack-leader" in args, f"lease flags: {args}")
    _, pod, c = operator_container(docs)
    check([v["name"] for v in pod.get("volumes", [])] == ["tmp", "corporate-ca"], "extraVolumes appended")
    check([m["mountPath"] for m in c.get("volumeMounts", [])] == ["/tmp", "/etc/ssl/corporate"], "extraVolumeMounts appended")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb.get("spec", {}).get("minAvailable") == 1 and "maxUnavailable" not in pdb.get("spec", {}),
          "minAvailable wins over maxUnavailable")
    sm = one(docs, "ServiceMonitor")
    check(sm.get("metadata", {}).get("labels", {}).get("release") == "kube-prometheus-stack", "ServiceMonitor labels")
    endpoint = sm.get("spec", {}).get("endpoints", [{}])[0]
    check(endpoint.get("port") == "metrics" and endpoint.get("interval") == "15s", f"ServiceMonitor endpoint {endpoint}")
    dashboards = one(docs, "ConfigMap")
    meta = dashboards.get("metadata", {})
    check(meta.get("namespace") == "monitoring" and meta.get("labels", {}).get("grafana_dashboard") == "1"
          and meta.get("annotations", {}).get("grafana_folder") == "perfstack",
          f"dashboard ConfigMap: namespace, sidecar label and folder annotation from values: {meta}")
    try:
        dashboard = json.loads(dashboards.get("data", {}).get("perfstack.json", ""))
        check(dashboard.get("uid") == "perfstack-stack" and len(dashboard.get("panels", [])) > 10,
              "the dashboard ConfigMap carries dashboards/perfstack.json")
    except ValueError as error:
        check(False, f"the dashboard ConfigMap's perfstack.json is not JSON: {error}")
    svc = one(docs, "Service")
    selector = sm.get("spec", {}).get("selector", {}).get("matchLabels", {})
    svc_labels = svc.get("metadata", {}).get("labels", {})
    check(all(svc_labels.get(k) == v for k, v in selector.items()), "ServiceMonitor does not select the metrics Service")


def check_kube120(docs):
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb.get("apiVersion") == "policy/v1beta1", "PDB must fall back to policy/v1beta1 before 1.21")


def check_e2e_rbac(docs):
    """The operator's own e2e runs it with e2e/rbac.yaml: a rule added there must reach the chart."""
    roles = by_kind(docs, "ClusterRole")
    check(len(roles) == 1, f"expected one ClusterRole in e2e/rbac.yaml, found {len(roles)}")
    want = {**OPERATOR_RIGHTS, **LEASE_RIGHTS}
    for role in roles:
        check(rights(role) == want, "e2e/rbac.yaml and the chart's RBAC differ (update both):\n"
              + diff(rights(role), want))


def diff(got, want):
    lines = []
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            lines.append(f"  {key}: granted {sorted(got.get(key, []))}, operator uses {sorted(want.get(key, []))}")
    return "\n".join(lines)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    checks = {"default": check_default, "namespaced": check_namespaced, "kube120": check_kube120,
              "e2e-rbac": check_e2e_rbac}
    checks[mode](docs)
    if failures:
        for message in failures:
            print(f"chart check ({mode}): {message}", file=sys.stderr)
        sys.exit(1)
    print(f"chart check ({mode}): {len(docs)} objects ok")


if __name__ == "__main__":
    main()
