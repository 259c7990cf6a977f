# The two commands a newcomer needs: `make run` and `make test`. Both work from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A thin wrapper over app/neo4j_server (`graphflags neo4j ...`); it runs before the virtualenv exists too.
NEO4JCTL := neo4j/neo4jctl
# The development server's home: jars, data, logs and generated password, all git-ignored.
NEO4J_DEV_HOME := .local/neo4j/home
NEO4J_DEV_HEAP ?= 1g
NEO4J_DEV_PAGECACHE ?= 1g
# `make run TLS=1` serves HTTPS with a self-signed development certificate made here once.
TLS_DIR := .local/tls
# axe-core for the console's accessibility test (see the `axe` target).
AXE_VERSION := 4.14.1
AXE_JS := .local/axe/axe.min.js
# OpenFeature's web OFREP provider and what it imports, for the event-stream browser test (`ofrep-web`).
OFREP_WEB_DIR := .local/ofrep-web
OFREP_WEB_PACKAGES := ofrep-web-provider@0.4.3:index.esm.js ofrep-core@2.3.0:index.esm.js \
	web-sdk@1.10.0:dist/esm/index.js core@1.12.0:dist/esm/index.js
OFREP_WEB_JS := $(OFREP_WEB_DIR)/core.js

.PHONY: help run stop neo4j token test unit lint clean
.PHONY: import backup restore bench soak

help:
	@echo "make run    start the local Neo4j (or use NEO4J_URI) and serve the API on 127.0.0.1:8080"
	@echo "make run TLS=1   the same over HTTPS, with a development certificate in $(TLS_DIR)"
	@echo "make stop   stop the local Neo4j"
	@echo "make test   run the whole test suite against a disposable Neo4j"
	@echo "make unit   run the tests that need no Neo4j (seconds)"
	@echo "make token  print a development admin token"
	@echo "make screenshots  the console's pictures for the README (docs/img/), taken by the browser tests"
	@echo "make clean  remove the virtualenv and everything under .local/ (the dev database too)"
	@echo "make import ORGS=orgs.csv [VALUES=values.csv]  bulk-load with neo4j-admin (REPLACES the dev database)"
	@echo "make backup [OFFLINE=1]   back up into $(BACKUP_DIR) (online export, or offline dump), encrypted with"
	@echo "            GRAPHFLAGS_BACKUP_KEY_FILE (graphflags backup-key --out FILE); UNENCRYPTED=1 to go without"
	@echo "make restore FROM=DIR     restore a backup folder into the dev database (REPLACES it)"
	@echo "make fuzz   fuzz the OpenAPI contract for minutes with schemathesis (FUZZ_EXAMPLES=100)"

# The virtualenv is rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "graphflags: Python 3.11+ is required ($(PYTHON) not found)"; exit 3; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# Assemble, configure and start the development Neo4j, unless NEO4J_URI names another server.
neo4j: $(BIN)/.installed
ifeq ($(NEO4J_URI),)
	@$(NEO4JCTL) assemble
	@$(NEO4JCTL) init $(NEO4J_DEV_HOME) --heap $(NEO4J_DEV_HEAP) --pagecache $(NEO4J_DEV_PAGECACHE) >/dev/null
	@$(NEO4JCTL) start $(NEO4J_DEV_HOME)
else
	@echo "graphflags: using the Neo4j server at $(NEO4J_URI)"
endif

run: neo4j
	@$(BIN)/graphflags migrate
	@echo "graphflags: development admin token (1 day):"
	@$(BIN)/graphflags token --sub dev --role admin --org '*' --ttl 86400
	@echo "graphflags: Neo4j Browser at http://127.0.0.1:7474/browser/ (user neo4j, password in $(NEO4J_DEV_HOME)/password)"
ifeq ($(TLS),1)
	@test -s $(TLS_DIR)/cert.pem -a -s $(TLS_DIR)/key.pem || $(BIN)/graphflags dev-cert --out $(TLS_DIR) >/dev/null
	@echo "graphflags: serving on https://$${GRAPHFLAGS_HOST:-127.0.0.1}:$${GRAPHFLAGS_PORT:-8080} (trust $(TLS_DIR)/cert.pem: curl --cacert $(TLS_DIR)/cert.pem; Ctrl-C to stop)"
	@GRAPHFLAGS_TLS_CERT_FILE=$(TLS_DIR)/cert.pem GRAPHFLAGS_TLS_KEY_FILE=$(TLS_DIR)/key.pem $(BIN)/graphflags serve
else
	@echo "graphflags: serving on http://$${GRAPHFLAGS_HOST:-127.0.0.1}:$${GRAPHFLAGS_PORT:-8080} (Ctrl-C to stop; make stop stops Neo4j)"
	@$(BIN)/graphflags serve
endif

stop:
	@$(NEO4JCTL) stop $(NEO4J_DEV_HOME)

token: $(BIN)/.installed
	@$(BIN)/graphflags token --sub dev --role admin --org '*' --ttl 86400

# The suite starts its own disposable Neo4j on free ports (or uses NEO4J_URI when set), one per
# xdist worker: two workers by default, one per core (TEST_WORKERS=0 runs it in one process).
# Modules that share a server or a browser run together on one worker, in the order
# tests/conftest.py gives them (longest first), hence --no-loadscope-reorder.
TEST_WORKERS ?= 2
test: lint $(AXE_JS) $(OFREP_WEB_JS)
	@command -v promtool >/dev/null || { echo "graphflags: promtool is required to test ops/alerts.yml (apt-get install prometheus)"; exit 3; }
	@command -v chromium >/dev/null || { echo "graphflags: the browser tests need Debian's chromium (apt-get install chromium)"; exit 3; }
	@$(NEO4JCTL) assemble
	$(BIN)/pytest -n $(TEST_WORKERS) --no-loadscope-reorder

# Style that is checked: ruff (lint and format) over the tree, mypy strict on app/domain and
# app/store (the rules are in pyproject.toml). `make test` runs this first, so CI fails on findings.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Tests that ask for no database fixture and start nothing (marked in tests/conftest.py).
unit: $(BIN)/.installed
	$(BIN)/pytest -q -m unit

# axe-core (accessibility checks in tests/test_console_browser.py), pinned, from the npm registry:
# a test asset, not shipped; too big to commit (650 KB). AXE_VERSION and AXE_JS are set at the top.
.PHONY: axe screenshots
axe: $(AXE_JS)
$(AXE_JS):
	@command -v npm >/dev/null || { echo "graphflags: fetching axe-core needs npm (apt-get install npm)"; exit 3; }
	@mkdir -p .local/axe
	cd .local/axe && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar -xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js \
		&& mv package/axe.min.js axe.min.js && rmdir package && rm axe-core-$(AXE_VERSION).tgz

# @openfeature/ofrep-web-provider and its imports (tests/test_ofrep_web_provider.py), pinned, from the npm
# registry: each package's ES module build as $(OFREP_WEB_DIR)/<name>.js, loaded by the test page's import map.
.PHONY: ofrep-web
ofrep-web: $(OFREP_WEB_JS)
$(OFREP_WEB_JS):
	@command -v npm >/dev/null || { echo "graphflags: fetching the OpenFeature web provider needs npm (apt-get install npm)"; exit 3; }
	@mkdir -p $(OFREP_WEB_DIR)
	cd $(OFREP_WEB_DIR) && for entry in $(OFREP_WEB_PACKAGES); do \
		spec=$${entry%%:*}; file=$${entry#*:}; name=$${spec%@*}; \
		tarball=$$(npm pack --silent @openfeature/$$spec) && tar -xzf $$tarball package/$$file \
		&& mv package/$$file $$name.js && rm -r package $$tarball || exit 1; \
	done

# The README's pictures of the console (docs/img/*.png), taken by the browser tests themselves.
screenshots: $(BIN)/.installed $(AXE_JS)
	@$(NEO4JCTL) assemble
	GRAPHFLAGS_SCREENSHOTS=docs/img $(BIN)/pytest -q tests/test_console_browser.py

clean: stop
	rm -rf $(VENV) .local

# Bulk load, backup and restore of the dev home (docs/scale.md has the steps and figures).
BACKUP_DIR ?= .local/backups

import: $(BIN)/.installed
	@test -n "$(ORGS)" || { echo "usage: make import ORGS=orgs.csv [VALUES=values.csv]"; exit 2; }
	$(BIN)/graphflags import "$(ORGS)" $(if $(VALUES),--values "$(VALUES)") --home $(NEO4J_DEV_HOME)

backup: $(BIN)/.installed
	$(BIN)/graphflags backup --to $(BACKUP_DIR) $(if $(OFFLINE),--offline) $(if $(UNENCRYPTED),--unencrypted) --home $(NEO4J_DEV_HOME)

restore: $(BIN)/.installed
	@test -n "$(FROM)" || { echo "usage: make restore FROM=$(BACKUP_DIR)/graphflags-..."; exit 2; }
	$(BIN)/graphflags restore --from "$(FROM)" --home $(NEO4J_DEV_HOME)

# Hot-path load benchmark (bench/hotpath.py): a 1M-org graph in its own Neo4j home, h2load, vegeta and wrk;
# then cold lookups over 10M orgs (bench/cold.py: builds, measures and deletes its own store under /tmp);
# then toggles as writers grow (bench/toggles.py: 2/8/20/50 connections, fixed rates) on a graph of its own;
# then 10,000 OpenFeature event streams on one worker (bench/streams.py: memory, idle CPU, fan-out, lookups;
# the streams are read by bench/sse-reader, in Go);
# then the console's first screen in Debian's chromium (bench/console.py: cold and warm, asset sizes).
VEGETA_VERSION := v12.13.0
bench: $(BIN)/.installed
	@command -v h2load >/dev/null && command -v wrk >/dev/null || { echo "graphflags: make bench needs wrk and h2load (apt-get install wrk nghttp2-client)"; exit 3; }
	@command -v go >/dev/null || { echo "graphflags: make bench needs Go (vegeta and the event-stream reader bench/sse-reader are built with it)"; exit 3; }
	@command -v vegeta >/dev/null || test -x .local/bin/vegeta || GOBIN=$(CURDIR)/.local/bin go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)
	@$(NEO4JCTL) assemble
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/hotpath.py
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/cold.py
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/toggles.py
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/streams.py
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/console.py

# Long contract fuzz (tests/fuzzing/run.py): schemathesis CLI, every check, per token kind, against
# `graphflags serve` on a free port over its own disposable Neo4j; FUZZ_EXAMPLES per operation and token
# kind. Under the benchmark lock: it keeps both cores busy for minutes.
FUZZ_EXAMPLES ?= 100
.PHONY: fuzz
fuzz: $(BIN)/.installed
	@$(NEO4JCTL) assemble
	flock /tmp/graphflags-bench.lock $(BIN)/python tests/fuzzing/run.py --max-examples $(FUZZ_EXAMPLES)

# Soak (bench/soak.py): lookups and toggles at a steady rate for 10 minutes; errors, memory, p95 per minute.
soak: $(BIN)/.installed
	@command -v h2load >/dev/null || { echo "graphflags: make soak needs h2load (apt-get install nghttp2-client)"; exit 3; }
	@$(NEO4JCTL) assemble
	flock /tmp/graphflags-bench.lock $(BIN)/python bench/soak.py
