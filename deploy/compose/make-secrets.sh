#!/bin/sh
# Creates the secret files compose.yaml reads, once (existing files are kept):
#
#   deploy/compose/make-secrets.sh live.example.com
#
# The argument is the public host name browsers use: TURN is offered to them there. Files go
# to deploy/compose/secrets/ (override with SECRETS_OUT), a directory only you can open;
# the files in it are readable by the containers' users. Files named live_* become LIVE_*
# settings in the live containers (see deploy/docker-entrypoint.sh).
set -eu

host=${1:?usage: make-secrets.sh PUBLIC_HOST_NAME}
out=${SECRETS_OUT:-$(dirname "$0")/secrets}
umask 077
mkdir -p "$out"
chmod 700 "$out"

random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# write NAME VALUE: the file, unless it exists (re-running never changes a password in use)
write() {
  if [ ! -e "$out/$1" ]; then
    printf '%s\n' "$2" > "$out/$1"
    chmod 644 "$out/$1"
  fi
}
# value NAME: a password kept in its own file, created at the first run
value() { write "$1" "$(random)"; cat "$out/$1"; }

postgres_password=$(value postgres_password)
redis_password=$(value redis_password)
turn_password=$(value turn_password)

write live_session_secret "$(random)"
write live_ingest_secret "$(random)"
write live_ledger_url "postgresql://live:$postgres_password@postgres:5432/live"
write live_redis_url "redis://:$redis_password@redis:6379/0"
write live_ice_servers "turn:$host:3478?transport=udp|live|$turn_password,turn:$host:3478?transport=tcp|live|$turn_password"
write redis_conf "requirepass $redis_password"
write turn_credentials "user=live:$turn_password"
# The ledger's Ed25519 signing key, one for the whole cluster (PKCS#8 PEM).
if [ ! -e "$out/ledger_signing_key" ]; then
  openssl genpkey -algorithm ed25519 -out "$out/ledger_signing_key"
  chmod 644 "$out/ledger_signing_key"
fi
echo "secrets in $out"
