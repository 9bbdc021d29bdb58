#!/usr/bin/env bash
# Opens the desktop app in a real window under Xvfb and waits for its page to load.
# The app quits by itself (METASYNC_SMOKE_EXIT); the timeout catches a hang.
set -euo pipefail
app=${1:?usage: desktop-smoke.sh PATH_TO_APP}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Software rendering: CI has no GPU.
export METASYNC_SMOKE_EXIT=1 LIBGL_ALWAYS_SOFTWARE=1 WEBKIT_DISABLE_COMPOSITING_MODE=1
if ! timeout 120 dbus-run-session -- xvfb-run -a -s "-screen 0 1280x900x24" "$app" >"$log" 2>&1; then
  echo "desktop smoke test: the app did not start and load its page" >&2
  cat "$log" >&2
  exit 1
fi
if ! grep -q "page loaded in window main" "$log"; then
  echo "desktop smoke test: no page-load report from the app" >&2
  cat "$log" >&2
  exit 1
fi
echo "desktop smoke test: window opened and the UI loaded"
