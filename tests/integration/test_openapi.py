"""docs/openapi.yaml agrees with the route table the server dispatches from: the same
(method, path) pairs, nothing documented that is not served and nothing served that is
not documented."""
import os
import subprocess

import yaml

from conftest import BIN, ROOT

SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def load_spec():
    with open(SPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def served_routes():
    out = subprocess.run([BIN, "routes"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    routes = set()
    for line in out.splitlines():
        if not line.strip():
            continue
        method, path = line.split()
        routes.add((method.upper(), path))
    return routes


def documented_routes(spec):
    return {(m.upper(), path)
            for path, item in spec["paths"].items()
            for m in item if m in METHODS}


def test_routes_match_openapi():
    served = served_routes()
    documented = documented_routes(load_spec())
    assert served, "`trunkline routes` printed nothing"
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"


def test_spec_is_well_formed():
    spec = load_spec()
    assert spec["openapi"] == "3.0.3"
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"].get("description")}
    assert spec["security"] == [{"bearer": []}]
    schemas = spec["components"]["schemas"]
    for name in ("PhoneNumber", "Agent", "Workspace", "Token", "Error", "List"):
        assert name in schemas, name

    # every $ref resolves
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(spec):
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            assert part in node, "unresolved " + ref
            node = node[part]

    # only the health probes go without a token; every operation answers something
    for path, item in spec["paths"].items():
        for m, op in item.items():
            if m not in METHODS:
                continue
            assert op.get("responses"), (m, path)
            public = op.get("security") == []
            assert public == (path in ("/healthz", "/readyz")), (m, path)
            if not public:
                assert "401" in op["responses"], (m, path)
            # a templated path declares its parameter
            if "{id}" in path:
                params = item.get("parameters", []) + op.get("parameters", [])
                assert {"$ref": "#/components/parameters/Id"} in params, (m, path)
