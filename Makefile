# The two commands: `make run` (web, worker, beat) and `make test`.
# With no DATABASE_URL / CELERY_BROKER_URL set, both start an embedded
# PostgreSQL and Redis (PyPI wheels) under .data/ and stop them afterwards.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test install migrate services-start services-stop clean

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m config.embedded_services run -- sh -c '\
		python manage.py migrate_all --noinput -v 0 && \
		python manage.py bootstrap_dev && \
		exec honcho start'

test: install
	$(BIN)/python -m config.embedded_services run -- python -m pytest $(PYTEST_ARGS)

migrate: install
	$(BIN)/python -m config.embedded_services run -- python manage.py migrate_all --noinput

services-start: install
	$(BIN)/python -m config.embedded_services start

services-stop: install
	$(BIN)/python -m config.embedded_services stop

clean: services-stop
	rm -rf .data
