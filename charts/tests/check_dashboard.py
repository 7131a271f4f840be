#!/usr/bin/env python3
"""Checks the Grafana dashboard (and, with --rules, a Prometheus rule file) against metrics the real
binaries export: every metric name a query selects must appear in one of the /metrics texts given.

usage: check_dashboard.py DASHBOARD.json METRICS.txt... [--rules RULES.yaml]

Exit 1 with one line per problem. Also checks that every panel has queries and that each query selects
one stack ($stack), so the dashboard never mixes stacks.
"""
import json
import re
import sys

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported(texts):
    """Sample and family names of Prometheus text expositions."""
    names = set()
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) < 4:
                    continue
                name, kind = parts[2], parts[3]
                names.add(name)
                if kind == "counter":
                    names.add(name if name.endswith("_total") else name + "_total")
                elif kind in ("histogram", "summary"):
                    names.update(name + s for s in ("_bucket", "_sum", "_count"))
            elif line and not line.startswith("#"):
                match = IDENT.match(line)
                if match:
                    names.add(match.group(0))
    return names


def selected(expr):
    """Metric names a PromQL expression (or a Grafana label_values() query) selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    expr = re.sub(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)[^)]*\)", r" \1 ", expr)
    names = set()
    for match in IDENT.finditer(expr):
        token = match.group(0)
        rest = expr[match.end():].lstrip()
        if token.lower() in KEYWORDS or rest.startswith("("):
            continue
        if match.start() > 0 and expr[match.start() - 1] in "$.0123456789":
            continue
        names.add(token)
    return names


def panels(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def main(argv):
    rules_file = None
    if "--rules" in argv:
        i = argv.index("--rules")
        rules_file = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    dashboard_file, metric_files = argv[0], argv[1:]
    names = exported(open(f).read() for f in metric_files)
    dashboard = json.load(open(dashboard_file))
    problems = []
    queries = []
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            queries.append((f"variable ${var['name']}", query))
    count = 0
    for panel in panels(dashboard):
        if panel.get("type") == "row":
            continue
        count += 1
        targets = [t.get("expr", "") for t in panel.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"panel {panel.get('title')!r} has no query")
        for expr in targets:
            if "$stack" not in expr:
                problems.append(f"panel {panel.get('title')!r}: query does not select one stack ($stack): {expr}")
            queries.append((f"panel {panel.get('title')!r}", expr))
    if count == 0:
        problems.append("the dashboard has no panels")
    if rules_file:
        recorded, rule_queries = set(), []
        text = open(rules_file).read()
        # The rule file as `perfstack-operator monitoring-rules` writes it (block scalars for expr).
        for block in re.split(r"\n\s*- ", text):
            record = re.search(r"^\s*record: (\S+)", block, re.M)
            if record:
                recorded.add(record.group(1))
            expr = re.search(r"expr: (?:\|-?\n((?:\s{6,}.*\n?)+)|(.+))", block)
            name = re.search(r"(?:alert|record): (\S+)", block)
            if expr:
                rule_queries.append((f"rule {name.group(1) if name else '?'}", expr.group(1) or expr.group(2)))
        if not rule_queries:
            problems.append(f"{rules_file} has no rule expressions")
        names |= recorded
        queries += rule_queries
    for where, expr in queries:
        for name in sorted(selected(expr) - names):
            problems.append(f"{where}: {name} is not exported by the binaries (query: {' '.join(expr.split())[:160]})")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print(f"dashboard check: {count} panels, {len(queries)} queries, {len(names)} exported names, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
