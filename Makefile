# outlet: one Makefile for the developer, the demo and CI.
# `make run` brings up the whole site on a fresh machine; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
# Django 6 needs Python 3.12+. Override with `make run PYTHON=/path/to/python3.13`.
PYTHON ?= $(shell for c in python3.14 python3.13 \
	$$(ls -d $$HOME/.pyenv/versions/3.1[3-9]*/bin/python3 /root/.pyenv/versions/3.1[3-9]*/bin/python3 2>/dev/null) \
	python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3 /root/.pyenv/versions/3.12*/bin/python3 2>/dev/null) \
	python3; do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done)
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 8000
# Every port `make run` opens can be moved: the web site (PORT), localstripe (STRIPE_PORT,
# default 8420) and the mail capture (MAIL_PORT, default 1025), e.g.
#   make run PORT=8100 STRIPE_PORT=8101 MAIL_PORT=8102
# They set STRIPE_API_BASE and EMAIL_URL, which may also be given directly.
STRIPE_PORT ?=
MAIL_PORT ?=
RUN_PORTS := $(if $(STRIPE_PORT),STRIPE_API_BASE=http://127.0.0.1:$(STRIPE_PORT)) \
	$(if $(MAIL_PORT),EMAIL_URL=smtp://127.0.0.1:$(MAIL_PORT))
N ?= 100000

.PHONY: help run serve test test-fast messages i18n-check lint fmt browser wrk varnish smtp-sink install bench-pages bench-edge bench-webhooks bench-send bench-clicks bench-admin bench-scale bench-import drill drill-bounces backup drill-restore postfix dovecot spamassassin promtool metrics-check metrics-live clean

help:
	@echo "make run            the whole site on http://127.0.0.1:$(PORT)/ (SQLite, worker, beat, localstripe, mail capture)"
	@echo "                    ports: make run PORT=8000 STRIPE_PORT=8420 MAIL_PORT=1025"
	@echo "make test           the test suite (installs what it needs, Chromium included)"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make serve          production shape: gunicorn + worker + beat on DATABASE_URL / CELERY_BROKER_URL"
	@echo "make bench-pages | bench-edge | bench-webhooks | bench-send N=100000 [DKIM=1|ed25519] | bench-clicks"
	@echo "make bench-admin SUBSCRIBERS=1000000 | bench-scale NS=10000,100000,1000000"
	@echo "make bench-import N=100000  archive_import of a synthetic WordPress export"
	@echo "make drill          the fault drill against Postfix's smtp-sink (PostgreSQL + Redis)"
	@echo "make drill-bounces  a real Postfix relays a signed issue, writes the DSNs; the worker takes them in (root)"
	@echo "make backup         pg_dump + MEDIA_ROOT + manifest into BACKUP_DIR (OUTPUT=dir); restore: manage.py restore"
	@echo "make drill-restore  back up a working stack, restore it, resume its send, replay Stripe (PostgreSQL + Redis)"
	@echo "make metrics-check  promtool: the Prometheus config, the alert rules and their unit tests"
	@echo "make metrics-live   a real Prometheus scrapes \`make run\`'s stack during a send and webhooks"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "outlet needs Python 3.12 or newer (Django 6). None was found on PATH or under pyenv."; \
	  echo "Install one (e.g. 'pyenv install 3.13') or pass it: make run PYTHON=/path/to/python3.13"; exit 1; fi
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v 'is ignored: it is neither' || true
	@$(VPY) -c 'import django, celery, stripe' || { echo 'Installing dependencies failed; see the messages above.'; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# Chromium for the end-to-end tests comes from Debian; Playwright never downloads its own browser.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium and chromium-driver for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-liberation >/dev/null; \
	  else \
	    echo "The browser tests need Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; exit 1; \
	  fi; \
	fi

# wrk (load for the benchmarks) and Varnish with the xkey vmod (bench-edge and the
# browser test through a shared cache) come from Debian too.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's wrk for the benchmarks..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "The benchmarks need wrk: sudo apt-get install wrk"; exit 1; fi; }

varnish:
	@if [ ! -x /usr/sbin/varnishd ] || [ -z "$$(find /usr/lib -name libvmod_xkey.so 2>/dev/null | head -n1)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's varnish and varnish-modules (xkey)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq varnish varnish-modules >/dev/null; \
	  else \
	    echo "Varnish with the xkey vmod is needed: sudo apt-get install varnish varnish-modules"; exit 1; \
	  fi; \
	fi

# The Nu Html Checker (the W3C validator) for the valid-HTML test: vnu.jar from the npm
# registry's vnu-jar package, run with Java (Debian's default-jre-headless).
VNU_VERSION := 26.9.27
VNU_JAR := var/tools/vnu-$(VNU_VERSION).jar
$(VNU_JAR):
	@command -v java >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq default-jre-headless >/dev/null; \
	  else echo "The HTML validity test needs Java: sudo apt-get install default-jre-headless"; exit 1; fi; }
	@command -v npm >/dev/null || { echo "Fetching the HTML validator needs npm (Debian package npm)."; exit 1; }
	@mkdir -p var/tools/vnu && cd var/tools/vnu && npm pack --silent vnu-jar@$(VNU_VERSION) >/dev/null \
	  && tar xzf vnu-jar-$(VNU_VERSION).tgz package/build/dist/vnu.jar
	@mv var/tools/vnu/package/build/dist/vnu.jar $(VNU_JAR) && rm -rf var/tools/vnu
	@echo "HTML validator: $(VNU_JAR)"

# The translations: locale/<ll>/LC_MESSAGES/*.po are the source (committed); the .mo files
# Django reads are built from them here (not committed), so they can never be stale.
# GNU gettext's msgfmt does it; Debian's gettext package is installed when missing.
messages: $(STAMP)
	@command -v msgfmt >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's gettext for the translations..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; \
	  else echo "Compiling the translations needs GNU gettext: sudo apt-get install gettext"; exit 1; fi; }
	@if ls locale/*/LC_MESSAGES/*.po >/dev/null 2>&1; then \
	  DEBUG=1 $(VPY) manage.py compilemessages --verbosity 0 --ignore '.venv' --ignore 'var'; fi

# The catalog check CI runs:
# untranslated or fuzzy entries, marked strings missing from them, template text outside
# translation tags (outlet/core/catalogs.py).
i18n-check: messages
	DEBUG=1 $(VPY) manage.py i18n_check

run: $(STAMP) messages
	DEBUG=$${DEBUG:-1} STRIPE_DIALECT=$${STRIPE_DIALECT:-localstripe} $(strip $(RUN_PORTS)) $(VPY) manage.py runstack --port $(PORT)

serve: $(STAMP) messages
	$(VPY) manage.py runstack --production --port $(PORT)

test: $(STAMP) messages browser varnish promtool dovecot spamassassin $(VNU_JAR)
	VNU_JAR=$(abspath $(VNU_JAR)) $(VPY) -m pytest $(PYTEST_ARGS)

# Everything but the browser and worker-process tests, for a quick loop.
test-fast: $(STAMP) messages
	$(VPY) -m pytest -m "not e2e and not worker" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/mypy outlet

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-pages: $(STAMP) wrk
	$(VPY) benchmarks/pages.py

bench-edge: $(STAMP) wrk varnish
	$(VPY) benchmarks/edge.py

bench-webhooks: $(STAMP)
	$(VPY) benchmarks/webhooks.py

bench-send: $(STAMP)
	$(VPY) benchmarks/newsletter_send.py --n $(N) $(if $(DKIM),--dkim=$(DKIM))

bench-clicks: $(STAMP) wrk
	$(VPY) benchmarks/clicks.py

SUBSCRIBERS ?= 1000000
bench-admin: $(STAMP)
	$(VPY) benchmarks/admin_pages.py --subscribers $(SUBSCRIBERS)

bench-import: $(STAMP)
	$(VPY) benchmarks/archive_import.py --n $(N)

NS ?= 10000,100000,1000000
bench-scale: $(STAMP) smtp-sink
	$(VPY) benchmarks/scale.py --ns $(NS)

# Postfix's smtp-sink is the third-party SMTP server the fault drill switches into faults.
smtp-sink:
	@if [ ! -x /usr/sbin/smtp-sink ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's postfix for its smtp-sink..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; \
	  else \
	    echo "The fault drill needs Postfix's smtp-sink: sudo apt-get install postfix"; exit 1; \
	  fi; \
	fi

drill: $(STAMP) smtp-sink
	$(VPY) benchmarks/drill.py

# The bounce drill runs private Postfix instances (their own config, queue and loopback
# ports; Debian's system Postfix is left unconfigured and never started): the package is
# installed with "No configuration" and policy-rc.d keeps apt from starting services.
postfix:
	@if [ ! -x /usr/sbin/postfix ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's postfix (unconfigured; the drills run their own instances)..."; \
	    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; \
	  else \
	    echo "The bounce drill needs Debian's postfix and root: sudo apt-get install postfix"; exit 1; \
	  fi; \
	fi

# Dovecot (the IMAP bounce mailbox test) and SpamAssassin (the signed issue's score) come
# from Debian too; the tests run private instances and skip, saying so, when these are
# missing. apt must not start the system Dovecot (it would take ports 143/993): a
# policy-rc.d that forbids starting services is put in place for the install when the
# machine has none.
dovecot:
	@command -v /usr/sbin/dovecot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's dovecot-imapd (never started as a system service)..."; \
	    created=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created=1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	    status=$$?; [ -z "$$created" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
	  else echo "The IMAP test needs Dovecot: sudo apt-get install dovecot-imapd"; exit 1; fi; }

spamassassin:
	@command -v spamassassin >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's spamassassin (its rules; spamd is not installed)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin >/dev/null; \
	  else echo "The score check needs SpamAssassin: sudo apt-get install spamassassin"; exit 1; fi; }

drill-bounces: $(STAMP) postfix
	$(VPY) benchmarks/drill_bounces.py

# promtool (checks /metrics' exposition and tests the alert rules) comes with Debian's
# prometheus package, which also brings the Prometheus server itself.
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's prometheus for its promtool..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  else echo "The metrics checks need promtool: sudo apt-get install prometheus"; exit 1; fi; }

# The scrape config and alert rules in deploy/prometheus/ are valid, and every alert fires
# on the trouble it names and stays quiet beside it (outlet-alerts.test.yml).
metrics-check: promtool
	cd deploy/prometheus && promtool check config prometheus.yml
	cd deploy/prometheus && promtool check rules outlet-alerts.yml
	cd deploy/prometheus && promtool test rules outlet-alerts.test.yml

metrics-live: $(STAMP) promtool
	$(VPY) benchmarks/metrics_live.py

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

# A consistent backup of the PostgreSQL database and MEDIA_ROOT (docs/operations.md#backups).
backup: $(STAMP)
	$(VPY) manage.py backup $(if $(OUTPUT),--output $(OUTPUT))

# Backup while a send runs, restore into a fresh database, resume, replay Stripe's events.
drill-restore: $(STAMP) smtp-sink
	$(VPY) benchmarks/drill_restore.py
