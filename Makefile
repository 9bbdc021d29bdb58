# Metasync: `make demo` runs the main job on the embedded default; `make test`
# installs what it needs on a fresh Debian/Ubuntu machine and runs every test.

SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO ?= cargo

# Tauri's system libraries, and what the window and keychain tests need.
APT_PACKAGES := build-essential pkg-config libssl-dev libwebkit2gtk-4.1-dev libgtk-3-dev \
	libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev \
	xvfb xauth dbus-x11 webkit2gtk-driver gnome-keyring libsecret-tools \
	gcc-mingw-w64-x86-64

.PHONY: bench-workbench demo app test deps apt node ui uitest bindings tools moto lint unit windows keychain desktop deploy-lint lambda bench bench-window bench-target bench-local bench-sync bench-quota fuzz clean

# The AWS emulator the contract suite runs against (tests start and stop it themselves
# on a free loopback port). Pinned: the suite's notes list where this moto differs
# from AWS.
MOTO_VERSION := 5.2.5

# The CLI builds with a C compiler only (SQLite is bundled, TLS and the keychain are
# pure Rust): install one if the machine has none.
demo:
	@command -v cc >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq build-essential; }
	$(CARGO) build --release -q -p metasync-cli
	@echo "== Files as they arrive from spreadsheets: problems found, nothing sent =="
	./target/release/metasync validate examples/broken/*.csv --errors-out target/demo-rejects; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@echo "Rejected rows, annotated for Excel: target/demo-rejects/"
	@echo
	./target/release/metasync demo --dir target/demo
	@echo
	@echo "The desktop app (drop files, fix them in place): make app"

# The desktop app, with any files given: make app FILES="a.csv b.csv".
# It needs the Tauri system libraries and Node (installed by `make deps`).
app: apt node ui
	$(CARGO) build -p metasync-desktop
	./target/debug/metasync-desktop $(FILES)

test: deps lint deploy-lint uitest unit windows keychain desktop
	@echo "make test: all passed"

deps: apt node ui tools moto

# Installs only what is missing, so a prepared machine skips apt entirely.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v node >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm; }
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

# `npm install`, not `npm ci`: the lockfile npm writes here lacks other platforms'
# optional rollup packages (npm/cli#4828), which `npm ci` rejects. With the lockfile
# present, `npm install` installs exactly its versions.
node:
	cd ui && npm install --no-audit --no-fund

tools:
	@command -v tauri-driver >/dev/null || $(CARGO) install tauri-driver --locked

ui:
	npm --prefix ui run build

# Vitest over the screens' logic (the backend module mocked).
uitest: node
	npm --prefix ui test

# Regenerate ui/src/backend/bindings.ts from the Rust IPC types (`make test` fails
# while it is stale).
bindings:
	METASYNC_WRITE_BINDINGS=1 $(CARGO) test -q -p metasync-runtime --lib typescript_bindings_are_current

moto:
	@if ! .venv/bin/python -c 'import moto, sys; sys.exit(moto.__version__ != "$(MOTO_VERSION)")' 2>/dev/null; then \
	  python3 -m venv .venv 2>/dev/null || { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv && python3 -m venv .venv; }; \
	  .venv/bin/pip install -q --disable-pip-version-check "moto[server]==$(MOTO_VERSION)"; \
	fi

# The Lambda build links no keychain and no desktop library (its dependency tree, as
# `make lambda` resolves it).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@! $(CARGO) tree -q -p metasync-lambda -e normal --prefix none | grep -iE '^(keyring|secret-service|tauri|gtk|webkit2gtk|wry) ' \
	  || { echo "metasync-lambda links a keychain or desktop library"; exit 1; }

# The SAM template, offline: `sam validate --lint`, then cfn-lint on the CloudFormation
# aws-sam-translator makes of it (pinned in their own venv, .venv-sam; ~45 s the first
# time, ~6 s after).
deploy-lint:
	bash deploy/lint.sh

# The Lambda functions' one binary for arm64 (provided.al2023), where `sam build`
# (deploy/function/Makefile) reads it: target/lambda/metasync-lambda/bootstrap.
# cargo-lambda and zig come pinned from PyPI into .venv-lambda. A release build of the
# AWS SDK for another architecture: minutes, so not part of `make test` (which builds
# the handlers natively, in debug, with the other tests).
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.13.0
LAMBDA_TARGET := aarch64-unknown-linux-gnu
lambda:
	@if ! .venv-lambda/bin/cargo-lambda --version 2>/dev/null | grep -q "$(CARGO_LAMBDA_VERSION)" || \
	    ! .venv-lambda/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("ziglang") != "$(ZIGLANG_VERSION)")' 2>/dev/null; then \
	  python3 -m venv .venv-lambda && \
	  .venv-lambda/bin/pip install -q --disable-pip-version-check "cargo-lambda==$(CARGO_LAMBDA_VERSION)" "ziglang==$(ZIGLANG_VERSION)"; \
	fi
	@rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)
	PATH="$(CURDIR)/.venv-lambda/bin:$$PATH" cargo lambda build --release --arm64 -p metasync-lambda
	@ls -l target/lambda/metasync-lambda/bootstrap

# The desktop's test hook for every debug test build, so `cargo test` and the window
# test's build resolve one feature set. `cargo test` never builds the desktop package
# (its targets have `test = false`); the window test's build adds only Tauri's crates
# (~4.5 min on 2 cores), not the AWS SDK again.
TEST_FEATURES := --features metasync-desktop/test-hooks

# Every cargo test, the storage contract suite included (it starts moto from .venv).
unit: moto
	$(CARGO) test --workspace $(TEST_FEATURES)

# The embedded backend has Windows-only code (no folder fsync there): type-check it for
# Windows with the MinGW C compiler (bundled SQLite is C). macOS is not checked: its C
# side needs Apple's SDK, which no package here provides.
WINDOWS := x86_64-pc-windows-gnu
windows:
	@rustup target list --installed | grep -qx $(WINDOWS) || rustup target add $(WINDOWS)
	$(CARGO) check -q --target $(WINDOWS) -p metasync-local

# `metasync credentials` through a real Secret Service (gnome-keyring) on a private bus;
# the target is the sandbox, the AWS side moto.
# The binary is the one `cargo test --workspace` builds: the same package selection, so
# the same features and no second build of the AWS SDK (`build -p metasync-cli` alone
# resolves other features and compiles it all again).
keychain: moto
	$(CARGO) test --workspace --no-run -q $(TEST_FEATURES)
	dbus-run-session -- tests/keychain.sh target/debug/metasync

# The real window under Xvfb, driven through tauri-driver and WebKitWebDriver. The app
# is built with `test-hooks` (files open through the drop's Rust path, saves go to a
# folder: WebDriver can neither drop OS files nor click native dialogs); the CLI comes
# from the test build. Screenshots land in target/desktop/.
desktop: ui
	$(CARGO) build --workspace --all-targets -q $(TEST_FEATURES)
	timeout 900 xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- \
	  python3 -u tests/desktop_window.py target/debug/metasync-desktop target/debug/metasync

bench:
	python3 scripts/bench_validate.py

# The window test, then a 20,000-record sync from the window against a sandbox at
# 300 requests/s: progress updates a second, and click and command answer times while
# the workers run (debug build, as the window test; ~4 min).
bench-window: ui
	$(CARGO) build --workspace --all-targets -q $(TEST_FEATURES)
	METASYNC_WINDOW_BENCH=1 timeout 1800 xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- \
	  python3 -u tests/desktop_window.py target/debug/metasync-desktop target/debug/metasync

# The target side against the sandbox: quota use, faults, an unknown quota (~2 min).
bench-target:
	$(CARGO) run --release -q -p metasync-catalog-client --example target_bench

# The embedded backend: queue and state throughput on a real folder, and receives with
# 50,000 messages blocked in one group under 8 pollers (~45 s). Exits 1 on a missed goal.
bench-local:
	$(CARGO) run --release -q -p metasync-local --example local_bench

# The workbench on a 1M-row episode file with 100,000 US dates (release): validation
# against the CLI's, windows of rows, an edit, a bulk fix, save (~1 min). Exits 1 on
# a missed goal.
bench-workbench:
	$(CARGO) build --release -q -p metasync-cli
	$(CARGO) run --release -q -p metasync-runtime --example workbench_bench -- target/release/metasync

# The whole pipeline (release CLI) against the sandbox at quota 200/s with 20 ms latency:
# 20,000 records uniform and skewed, calls per record, a 1M-record plan's memory (~6 min).
bench-sync:
	python3 scripts/bench_sync.py

# Eight Lambda consumers (through the harness, moto and the sandbox) against a target
# quota of 100/s for 60 s: no 429, at least 95/s, state-store writes per permit, the rate
# second by second (~1.5 min). METASYNC_QUOTA_LATENCY_MS=150 makes the target a distant one.
bench-quota: moto
	METASYNC_QUOTA_SECONDS=60 METASYNC_QUOTA_MIN_RATE=95 $(CARGO) test -q --workspace $(TEST_FEATURES) \
	  --test contract -- lambda::eight --nocapture

# Not part of `make test`. The toolchain is stable; RUSTC_BOOTSTRAP lets cargo-fuzz
# pass its sanitizer flags.
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run validate -- -max_total_time=$${SECONDS_TO_FUZZ:-600} -max_len=8192

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules
