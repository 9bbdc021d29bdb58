#!/usr/bin/env bash
# The OS keychain end to end: a Secret Service (gnome-keyring, unlocked, in a throwaway
# HOME) on a private D-Bus session, and `metasync credentials` going through it.
# Run inside `dbus-run-session -- tests/keychain.sh PATH_TO_METASYNC`.
set -uo pipefail
bin=$(realpath "${1:?usage: keychain.sh PATH_TO_METASYNC}")
HOME=$(mktemp -d)
export HOME XDG_DATA_HOME="$HOME/.local/share" XDG_RUNTIME_DIR="$HOME/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
trap 'rm -rf "$HOME"' EXIT
eval "$(printf '\n' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

passed=0 failed=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}
profile=ci-keychain
secret="s3cret-$RANDOM$RANDOM$RANDOM"
out=$(mktemp -p "$HOME")

check "no credentials at first (exit 1)" bash -c "'$bin' credentials status --profile $profile >/dev/null; [ \$? -eq 1 ]"
printf 'the-key\n%s\n' "$secret" | "$bin" credentials set --profile $profile --from-stdin >"$out" 2>&1
check "set stores them" [ $? -eq 0 ]
check "set does not print the secret" bash -c "! grep -q '$secret' '$out'"
check "status sees them" "$bin" credentials status --profile $profile
check "the secret is in the Secret Service" bash -c \
  "[ \"\$(secret-tool lookup service metasync username $profile/target-secret)\" = '$secret' ]"
"$bin" credentials status --profile $profile >"$out" 2>&1
check "status does not print the secret or the key" bash -c "! grep -qe '$secret' -e 'the-key' '$out'"
check "delete without --yes and no terminal refuses (exit 2)" bash -c \
  "'$bin' credentials delete --profile $profile </dev/null >/dev/null 2>&1; [ \$? -eq 2 ]"
check "delete --yes removes them" "$bin" credentials delete --profile $profile --yes
check "gone afterwards (exit 1)" bash -c "'$bin' credentials status --profile $profile >/dev/null; [ \$? -eq 1 ]"
check "a bad profile name is refused (exit 2)" bash -c "'$bin' credentials status --profile '../x' >/dev/null 2>&1; [ \$? -eq 2 ]"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
