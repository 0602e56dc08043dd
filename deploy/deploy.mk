# Offline deployment checks: `make deploy-check` (included from the Makefile). No cluster, no Docker
# engine: every tool comes from PyPI into its own venv, so checkov's pins never touch the app's venv.
SHELL := /bin/bash
PYTHON ?= python3
UV ?= uv
DEPLOY_VENV := .venv-deploy
DEPLOY_BIN := $(DEPLOY_VENV)/bin
DEPLOY_OUT := build/deploy
# Helm logs every resolved symlink (the chart's example routing config points into deploy/config).
DEPLOY_HELM_QUIET := 2> >(grep -v 'found symbolic link in path' >&2)

.PHONY: deploy-check deploy-venv deploy-render deploy-topics

$(DEPLOY_VENV)/.synced: deploy/requirements-check.txt | $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(DEPLOY_VENV)
	$(UV) pip sync --quiet --python $(DEPLOY_BIN)/python --require-hashes deploy/requirements-check.txt
	@touch $@

deploy-venv: $(DEPLOY_VENV)/.synced ## the deployment checkers' own venv (.venv-deploy)

deploy-topics: deploy-venv ## regenerate the chart's topics from shared/omnirouter_shared/topics.py
	$(DEPLOY_BIN)/python deploy/tools/gen_topics.py

deploy-render: deploy-venv ## helm lint --strict and render every values profile into build/deploy
	@rm -rf $(DEPLOY_OUT)
	$(DEPLOY_BIN)/python deploy/tools/render.py --out $(DEPLOY_OUT) $(DEPLOY_HELM_QUIET)

deploy-check: deploy-render ## chart, manifests, CRs, image and compose checks, all offline
	$(DEPLOY_BIN)/yamllint --strict -c deploy/yamllint.yaml docker-compose.yml deploy/compose deploy/checkov.yaml \
	  deploy/yamllint.yaml deploy/helm/omnirouter/Chart.yaml deploy/helm/omnirouter/values.yaml \
	  deploy/helm/omnirouter/ci deploy/helm/omnirouter/files/alerts.yml
	$(DEPLOY_BIN)/python deploy/tools/gen_topics.py --check
	$(DEPLOY_BIN)/python deploy/tools/validate.py $(DEPLOY_OUT)/*.yaml
	$(DEPLOY_BIN)/checkov --config-file deploy/checkov.yaml --framework kubernetes -f $(DEPLOY_OUT)/production.yaml
	@# The default profile runs tagged images (no digest): CKV_K8S_43 does not apply there.
	$(DEPLOY_BIN)/checkov --config-file deploy/checkov.yaml --framework kubernetes \
	  --skip-check CKV_K8S_15,CKV_K8S_35,CKV_K8S_43 -f $(DEPLOY_OUT)/default.yaml
	$(DEPLOY_BIN)/checkov --config-file deploy/checkov.yaml --framework dockerfile -f Dockerfile
	$(DEPLOY_BIN)/hadolint --failure-threshold info Dockerfile
	$(DEPLOY_BIN)/docker-compose -f docker-compose.yml config -q
	$(DEPLOY_BIN)/python -m pytest -c tests/deploy/pytest.ini --rootdir=tests/deploy --confcutdir=tests/deploy \
	  -q tests/deploy $(DEPLOY_HELM_QUIET)
