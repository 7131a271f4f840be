#!/usr/bin/env python3
"""The least of a Kubernetes API server that lets `perfstack-operator run` start, reconcile, and serve
/metrics with no cluster at hand (the dashboard check reads that /metrics): discovery, one
PerformanceStack (`dash` in `default`, so the per-stack families have a sample), empty lists of
everything else, 404 for every named object. Watches end at once (the operator's watchers retry);
writes are refused, so reconciles fail after they decided the stack's settings. Not a cluster: the e2e
suites use a real API server.

usage: fake_apiserver.py PORT_FILE   (listens on 127.0.0.1, a free port, written to PORT_FILE)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

GROUPS = {
    "kind": "APIGroupList", "apiVersion": "v1",
    "groups": [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
               for g, v in (("apps", "v1"), ("batch", "v1"), ("autoscaling", "v2"), ("perfstack.dev", "v1alpha1"))],
}


STACK = {
    "apiVersion": "perfstack.dev/v1alpha1", "kind": "PerformanceStack",
    "metadata": {"name": "dash", "namespace": "default", "uid": "00000000-0000-0000-0000-00000000da5b",
                 "generation": 1, "resourceVersion": "1", "finalizers": ["perfstack.dev/cleanup"]},
    "spec": {},
}


def named(path):
    """Whether `path` names one object (a GET of it) rather than a collection."""
    segments = path.strip("/").split("/")
    rest = segments[2:] if segments[0] == "api" else segments[3:]
    if rest[:1] == ["namespaces"]:
        rest = rest[2:]
    return len(rest) >= 2


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/apis":
            return self.reply(200, GROUPS)
        if url.path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if url.path == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})
        if "watch=true" in url.query or "watch=1" in url.query:
            return self.reply(200, {})
        if named(url.path):
            return self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
        items = [STACK] if url.path.endswith("/performancestacks") else []
        return self.reply(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})

    def do_POST(self):
        self.reply(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405})

    do_PATCH = do_PUT = do_DELETE = do_POST

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
