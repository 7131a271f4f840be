"""Validates the PerformanceStacks in examples/ against the CRD in crds/, offline, and the CRD's enums.

    check_examples.py CRD.yaml EXAMPLE.yaml...

Two checks per custom resource: the CRD's openAPIV3Schema as JSON Schema (types, enums, bounds,
required), and no field the schema does not know. The API server prunes unknown fields silently, so
without the second check a renamed spec field would leave an example that applies cleanly and means
nothing.
"""

import sys

import jsonschema
import yaml


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def unknown_fields(value, schema, path):
    """Paths in value that schema does not declare (honouring preserve-unknown-fields)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                found += unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{path}.{key}")
            elif props is not None or extra is False:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def mistyped_enums(schema, path):
    """Enum values whose YAML type differs from the schema's type. Kubernetes reads YAML 1.1, as PyYAML
    does: an unquoted Off, No or Yes in a CRD is a boolean, and the string can then never be set."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            found += [f"{path}: {v!r}" for v in schema.get("enum", []) if not isinstance(v, str)]
        for key, sub in schema.items():
            found += mistyped_enums(sub, f"{path}.{key}" if key != "properties" else path)
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += mistyped_enums(sub, f"{path}[{i}]")
    return found


def main():
    crds = [d for d in load_all(sys.argv[1]) if d.get("kind") == "CustomResourceDefinition"]
    schemas = {}
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    failures, checked = [], 0
    for (api_version, kind), schema in schemas.items():
        for bad in mistyped_enums(schema, kind):
            failures.append(f"CRD {api_version} {bad} is not a string as Kubernetes reads it (quote it in the YAML)")
    for path in sys.argv[2:]:
        for doc in load_all(path):
            schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
            if schema is None:
                continue
            checked += 1
            name = f"{path}: {doc['kind']} {doc.get('metadata', {}).get('name')}"
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            body_schema = dict(schema, properties={k: v for k, v in schema.get("properties", {}).items()
                                                   if k not in ("apiVersion", "kind", "metadata")})
            for error in jsonschema.Draft7Validator(body_schema).iter_errors(body):
                failures.append(f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}")
            for field in unknown_fields(body, body_schema, ""):
                failures.append(f"{name}: unknown field {field.lstrip('.')} (the API server would drop it)")
    for message in failures:
        print(f"examples: {message}", file=sys.stderr)
    if checked == 0:
        print("examples: no custom resource found to check", file=sys.stderr)
        sys.exit(1)
    print(f"examples: {checked} custom resources checked against the CRD")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
