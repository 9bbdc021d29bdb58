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

# A profile in metasync.toml, credentials from the keychain, the sandbox as the target.
"$bin" sandbox --port 0 >"$HOME/sandbox.log" 2>&1 &
sandbox_pid=$!
trap 'kill $sandbox_pid 2>/dev/null; rm -rf "$HOME"' EXIT
for _ in $(seq 50); do grep -q "http://127" "$HOME/sandbox.log" && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$HOME/sandbox.log" | head -1)
cat >"$HOME/metasync.toml" <<TOML
[profiles.sb.target]
dialect = "media_manager"
url = "$url/api/v1"
quota = 50
burst = 5

[profiles.sbrest]
production = true
[profiles.sbrest.target]
dialect = "rest"
url = "$url/rest"
token_url = "$url/oauth2/token"

[profiles.down.target]
dialect = "media_manager"
url = "http://127.0.0.1:9/api/v1"
timeout_seconds = 0.5
max_retries = 1
base_delay_seconds = 0.1
TOML
cfg="--config $HOME/metasync.toml"
printf 'sandbox-key\nsandbox-secret\n' | "$bin" credentials set --profile sb --from-stdin >/dev/null
check "target check: the sandbox accepts the profile's keychain credentials" \
  bash -c "'$bin' target check --profile sb $cfg | grep -q 'credentials were accepted'"
printf 'sandbox-key\nwrong-secret\n' | "$bin" credentials set --profile sb --from-stdin >/dev/null
"$bin" target check --profile sb $cfg >"$out" 2>&1; status=$?
check "target check: refused credentials exit 2 with one clear error" \
  bash -c "[ $status -eq 2 ] && grep -q 'were refused' '$out' && ! grep -q 'wrong-secret' '$out'"
printf 'sandbox-client\nsandbox-client-secret\n' | "$bin" credentials set --profile sbrest --from-stdin >/dev/null
check "target check: OAuth2 REST profile, marked production" \
  bash -c "'$bin' target check --profile sbrest $cfg | grep -q 'sbrest \[PRODUCTION\]: connected'"
printf 'k\ns\n' | "$bin" credentials set --profile down --from-stdin >/dev/null
check "target check: an unreachable target exits 1" \
  bash -c "'$bin' target check --profile down $cfg >/dev/null 2>&1; [ \$? -eq 1 ]"
check "target check: an unknown profile exits 2 naming the known ones" \
  bash -c "'$bin' target check --profile nope $cfg 2>&1 | grep -q 'it has: down, sb, sbrest'"
for p in sb sbrest down; do "$bin" credentials delete --profile $p --yes >/dev/null; done

# AWS keys from the keychain, against moto: with them `infra up` works with no AWS
# variables and no ~/.aws; without them it fails saying what to set.
moto=${METASYNC_MOTO_SERVER:-$(dirname "$0")/../.venv/bin/moto_server}
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$moto_port" >"$HOME/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $sandbox_pid $moto_pid 2>/dev/null; rm -rf "$HOME"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break; sleep 0.1; done
cat >>"$HOME/metasync.toml" <<TOML

[profiles.cloud]
backend = "aws"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:$moto_port"
bucket = "kc-bucket"
table = "kc-table"
queue_prefix = "kc"
TOML
noaws() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE "$@"; }
aws_secret="aws-$RANDOM$RANDOM"
printf 'AKIAKEYCHAIN\n%s\n' "$aws_secret" | "$bin" credentials set --profile cloud --aws --from-stdin >/dev/null
check "aws keys: status --aws sees them" "$bin" credentials status --profile cloud --aws
check "aws keys: apart from the target's (none set)" bash -c "'$bin' credentials status --profile cloud >/dev/null; [ \$? -eq 1 ]"
noaws "$bin" infra up --profile cloud $cfg >"$out" 2>&1; status=$?
check "aws keys: infra up with the keychain's keys and no AWS variables" \
  bash -c "[ $status -eq 0 ] && grep -q 'created  table' '$out' && ! grep -q '$aws_secret' '$out'"
"$bin" credentials delete --profile cloud --aws --yes >/dev/null
noaws "$bin" infra up --profile cloud $cfg >"$out" 2>&1; status=$?
check "aws keys: without them (and no chain) exit 2 saying what to set" \
  bash -c "[ $status -eq 2 ] && grep -q 'no AWS credentials' '$out'"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
