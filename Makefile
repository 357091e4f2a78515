# deepcls — every target that needs the venv creates it first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= quick
JOBS   ?= 1

.PHONY: setup test runs seeds report readme lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	@# ipykernel leaves an empty <tmp>/tmp*_kernels folder behind: give it a temporary folder of its own
	@tmp=$$(mktemp -d); TMPDIR=$$tmp $(PY) -m ipykernel install --prefix $(VENV) --name deepcls \
		--display-name "deepcls (.venv)"; status=$$?; rm -rf $$tmp; exit $$status
	touch $(STAMP)

# Unit and integration tests, then every notebook at the smoke profile with nbmake (notebooks/conftest.py),
# each executed once there (the report's tests build two), and the runs they trained checked
# (notebooks/test_trained_runs.py); pytest's temporary folders live in one folder removed afterwards.
test: $(STAMP)
	@tmp=$$(mktemp -d); \
	$(PY) -m pytest --basetemp=$$tmp/unit && \
	$(PY) -m pytest --basetemp=$$tmp/notebooks --nbmake --nbmake-timeout=1200 notebooks/; \
	status=$$?; rm -rf $$tmp; exit $$status

# Train a profile's missing runs without rendering (resumable; e.g. PROFILE=paper TABLES=vgg_mnist JOBS=2).
runs: $(STAMP)
	$(VENV)/bin/deepcls results --profile $(PROFILE) --train --jobs $(JOBS) $(if $(TABLES),--tables $(TABLES))

# Train the seeds that decide the ledger's undecided conclusions, cheapest first (resumable;
# e.g. PROFILE=paper JOBS=2 CONCLUSIONS=batch32_beats_128,se_helps RUNS=2; see `deepcls ledger --plan`).
seeds: $(STAMP)
	$(VENV)/bin/deepcls ledger --profile $(PROFILE) --train --jobs $(JOBS) $(if $(CONCLUSIONS),--conclusions $(CONCLUSIONS)) $(if $(RUNS),--runs $(RUNS))

# Train the profile's missing runs, execute only the notebooks whose inputs changed (source, runs read,
# deepcls's version: results/notebooks/<profile>/cache.json) and write only what changed; RERUN=1
# executes every notebook again (e.g. make report PROFILE=smoke, make report PROFILE=paper JOBS=2).
report: $(STAMP)
	$(VENV)/bin/deepcls report --profile $(PROFILE) --jobs $(JOBS) $(if $(RERUN),--rerun)

readme: $(STAMP)
	$(VENV)/bin/deepcls markdown --readme README.md

# Kernels start in notebooks/: point them at the project's results and data folders.
lab: $(STAMP)
	DEEPCLS_RESULTS_DIR=$${DEEPCLS_RESULTS_DIR:-$(CURDIR)/results} \
	DEEPCLS_DATA_DIR=$${DEEPCLS_DATA_DIR:-$(CURDIR)/data} \
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(VENV)/bin/deepcls bench --model resnet18 --dataset cifar10 --batch-size 128
	$(VENV)/bin/deepcls bench --model resnet18 --stem cifar --dataset cifar10 --batch-size 128
	$(VENV)/bin/deepcls bench --model vgg7 --dataset mnist --batch-size 128
	$(PY) -m deepcls.bench.loader
	$(PY) -m deepcls.bench.denormals

clean:
	rm -rf $(VENV) results/.cache
