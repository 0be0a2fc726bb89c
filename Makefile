# voice-device — every target does its own setup on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libasound2-dev libasound2-plugins alsa-utils pulseaudio pulseaudio-utils \
                python3-venv python3-dev gcc shellcheck systemd \
                python3-setuptools python3-wheel openssl \
                mosquitto mosquitto-clients espeak-ng
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps venv test lint typecheck demo bench soak install uninstall clean

all: test

# System packages: installed only when one is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: deps $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check device tests benchmarks
	$(VENV)/bin/ruff format --check device tests benchmarks
	$(VENV)/bin/mypy

typecheck: lint

test: venv
	$(VENV)/bin/ruff check device tests benchmarks
	$(VENV)/bin/ruff format --check device tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

demo: venv
	$(VENV)/bin/voice-device demo --out reply.wav

bench: venv
	$(VENV)/bin/python -m benchmarks

soak: venv
	$(VENV)/bin/python -m benchmarks.soak

install:
	$(SUDO) bash scripts/install.sh

uninstall:
	$(SUDO) bash scripts/uninstall.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reply.wav
