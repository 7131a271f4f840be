# perfstack: the two commands in the README are `make run` and `make test`; the rest are parts of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
ENV := source .run/env &&

.PHONY: help run test lint fmt services-up services-down build crds e2e e2e-tuner e2e-node e2e-faults bench bench-api bench-operator bench-peers bench-tuner-idle images run-operator \
	chart manifests e2e-chart tools

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

services-up: ## install (if missing) and start PostgreSQL 15 and Redis 7 on 127.0.0.1, data in .run/
	@scripts/services.sh up

services-down: ## stop the PostgreSQL and Redis that services-up started
	@scripts/services.sh down

build: ## build every binary (debug)
	$(CARGO) build --workspace --bins

run: ## start the services, migrate, seed and serve the API on 127.0.0.1:8080 (foreground)
	@scripts/run.sh

test: ## everything that runs on one machine: lint, unit, integration, chart, e2e (when a lab exists)
	@scripts/test.sh

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

crds: ## regenerate crds/ from the Rust types
	@scripts/crds.sh

e2e: ## the operator e2e suite alone (e2e/operator.sh), on a cluster without nodes (KUBECONFIG or a node-less k8s-lab)
	@bash e2e/operator.sh

e2e-tuner: ## the tuner e2e alone (e2e/tuner.sh), scripted /metrics stubs, no nodes
	@$(CARGO) build -q -p perfstack-operator --bin perfstack-operator
	@bash e2e/tuner.sh

bench: ## benchmarks (the API on the local stack, the tuner after idle time, the operator on the k8s-lab, the API beside its peers); figures go to docs/benchmarks.md
	@scripts/bench.sh
	@scripts/bench-tuner-idle.sh
	@scripts/bench-operator.sh
	@scripts/bench-peers.sh

bench-api: ## the API part of make bench alone
	@scripts/bench.sh

bench-tuner-idle: ## a sudden load after the local tuner had the app idle (TUNER_IDLE_S=600), against a fixed pool
	@scripts/bench-tuner-idle.sh

bench-peers: ## the API side by side with the Express peer and a bare axum ceiling (../shared/bench-peers; skipped, saying so, without it)
	@scripts/bench-peers.sh

bench-operator: ## the operator part of make bench alone (KUBECONFIG or the k8s-lab; BENCH_STACKS=200)
	@scripts/bench-operator.sh

images: ## container images (needs a container engine; CI here has none)
	@scripts/images.sh

run-operator: ## run the operator against the cluster in KUBECONFIG
	$(CARGO) run -p perfstack-operator -- run

tools: ## install helm, kubectl and kubernetes-validate into .run/tools (only what is missing)
	@scripts/tools.sh

chart: ## lint, render and validate the Helm chart (the make-test stage alone)
	@bash scripts/test.d/40-chart.sh

manifests: ## render deploy/perfstack-operator.yaml (plain-kubectl install) from the chart
	@scripts/chart.sh manifest

e2e-node: ## the whole stack on the k8s-lab's real node (e2e/node.sh): real pods, traffic, tuner, day two (make test runs its short version)
	@NODE_SUITE=full bash e2e/node.sh

e2e-faults: ## faults under load on the k8s-lab's real node (e2e/faults.sh): what fails, for how long, what is lost (FAULTS= picks scenarios)
	@FAULTS_DOC=docs/reliability.md bash e2e/faults.sh

e2e-chart: ## install the chart into a cluster without nodes (KUBECONFIG or a node-less k8s-lab) and prove its RBAC
	@bash e2e/chart.sh
