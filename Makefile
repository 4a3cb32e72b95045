# Set-up and the two commands of the README. Both create .venv and install what they need (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The device install (`make install`, README "On a device"): a venv under PREFIX holding the package, the unit
# with ExecStart pointing into it, the default config if there is none. DESTDIR stages it all under a folder.
PREFIX ?= /opt/edge-sdrm3
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
DESTDIR ?=
# What pip installs into the venv: this tree, or a built wheel (PACKAGE=dist/edge_sdrm3-0.1.0-py3-none-any.whl)
PACKAGE ?= .
# 32-bit Arm has no ai-edge-litert wheel: the tflite-runtime extra (README "Boards") is added there
EXTRAS ?= $(if $(filter armv7l armv6l,$(shell uname -m)),[tflite-runtime],)
SHIPPED := edge_sdrm3/data/systemd
CONF := $(DESTDIR)$(SYSCONFDIR)/edge-sdrm3/edge-sdrm3.toml
UNIT := $(DESTDIR)$(UNITDIR)/edge-sdrm3.service
# written by make install: make uninstall removes PREFIX only where it finds this mark
MARK := .installed-by-edge-sdrm3

.PHONY: demo test clean dist install install-venv install-config install-unit uninstall

# (setup.py builds the C estimate in place where a C compiler is present; the .c changed: rebuilt)
$(STAMP): pyproject.toml setup.py edge_sdrm3/core/policies/_sdrm3_estimate_c.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/edge-sdrm3 demo

# the wheel, into dist/ (`python -m build` makes the sdist and the wheel, with the build package installed)
# (build/ is setuptools' staging folder: a file left there from an older tree would be packed too)
# The wheel is pure Python (py3-none-any, for every board: EDGE_SDRM3_PURE=1 builds no C estimate); installing
# from the tree or the sdist compiles the C estimate where a compiler is (README "The package").
dist:
	rm -rf build
	EDGE_SDRM3_PURE=1 $(PYTHON) -m pip wheel -q --no-deps -w dist .

install: install-venv install-unit install-config
	@echo
	@echo "installed edge-sdrm3 in $(PREFIX). To start it now and at every boot:"
	@echo "  sudo systemctl daemon-reload"
	@echo "  sudo systemctl enable --now edge-sdrm3"
	@echo "The MediaPipe models (once; the service then runs mediapipe_xr, else digits):"
	@echo "  sudo $(PREFIX)/bin/edge-sdrm3 models fetch --dest /var/lib/edge-sdrm3/models"
	@echo "Check an edited $(SYSCONFDIR)/edge-sdrm3/edge-sdrm3.toml before a restart:"
	@echo "  sudo EDGE_SDRM3_MODEL_CACHE=/var/lib/edge-sdrm3/models $(PREFIX)/bin/edge-sdrm3 serve --check" \
	      "--config $(SYSCONFDIR)/edge-sdrm3/edge-sdrm3.toml"

# A venv made under DESTDIR names DESTDIR in its scripts' first lines: they are rewritten to PREFIX, where the
# staged tree will live. The files are world-readable (umask 022): the service runs as a dynamic user.
install-venv:
	umask 022; $(PYTHON) -m venv $(DESTDIR)$(PREFIX)
	umask 022; $(DESTDIR)$(PREFIX)/bin/python -m pip uninstall -q -y edge-sdrm3 2>/dev/null || true
	rm -rf build
	umask 022; $(DESTDIR)$(PREFIX)/bin/python -m pip install -q "$(PACKAGE)$(EXTRAS)"
	if [ -n "$(DESTDIR)" ]; then \
	  grep -rlI -- "$(DESTDIR)$(PREFIX)" $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/pyvenv.cfg | \
	    xargs -r sed -i "s|$(DESTDIR)$(PREFIX)|$(PREFIX)|g"; \
	fi
	touch $(DESTDIR)$(PREFIX)/$(MARK)

install-unit:
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/edge-sdrm3
	install -m 0644 docs/protocol.md $(DESTDIR)$(PREFIX)/share/doc/edge-sdrm3/protocol.md
	sed -e 's|^ExecStart=/usr/bin/env edge-sdrm3 |ExecStart=$(PREFIX)/bin/edge-sdrm3 |' \
	    -e 's|^Documentation=file:///usr/share/doc/edge-sdrm3/|Documentation=file://$(PREFIX)/share/doc/edge-sdrm3/|' \
	    $(SHIPPED)/edge-sdrm3.service > $(UNIT).tmp
	grep -q '^ExecStart=$(PREFIX)/bin/edge-sdrm3 serve ' $(UNIT).tmp
	chmod 0644 $(UNIT).tmp && mv $(UNIT).tmp $(UNIT)
	@echo "unit: $(UNIT)"

# The config is the administrator's: installed only where there is none. One that differs from the shipped
# default (edited, or an older default) is kept, and the new default is written beside it as .new.
install-config:
	install -d -m 0755 $(dir $(CONF))
	@if [ ! -e $(CONF) ]; then \
	  install -m 0644 $(SHIPPED)/edge-sdrm3.toml $(CONF) && echo "config: $(CONF) (the default)"; \
	elif cmp -s $(SHIPPED)/edge-sdrm3.toml $(CONF); then \
	  echo "config: $(CONF) (the default, unchanged)"; \
	else \
	  install -m 0644 $(SHIPPED)/edge-sdrm3.toml $(CONF).new && \
	  echo "config: $(CONF) kept as it is; the shipped default is beside it: $(CONF).new"; \
	fi

# Removes what make install put there; the config ($(SYSCONFDIR)/edge-sdrm3) and the state (/var/lib/edge-sdrm3,
# the job log and the model cache) stay.
uninstall:
	rm -f $(UNIT)
	@if [ -e $(DESTDIR)$(PREFIX)/$(MARK) ]; then rm -rf $(DESTDIR)$(PREFIX) && echo "removed $(DESTDIR)$(PREFIX)"; \
	elif [ -e $(DESTDIR)$(PREFIX) ]; then echo "kept $(DESTDIR)$(PREFIX): not made by make install"; fi
	@echo "kept $(SYSCONFDIR)/edge-sdrm3 and /var/lib/edge-sdrm3. If the service was enabled:"
	@echo "  sudo systemctl disable --now edge-sdrm3; sudo systemctl daemon-reload"

clean:
	rm -rf $(VENV) build dist *.egg-info
