#!/bin/sh
# Entry point of the live image: settings from secret files, then the command (`live serve`).
#
# Every file in $SECRETS_DIR (default /run/secrets, where Docker Compose and Kubernetes
# mount secrets) named `live_<setting>` becomes the variable LIVE_<SETTING>, e.g.
# /run/secrets/live_session_secret -> LIVE_SESSION_SECRET, so secrets never sit in the
# compose file, the manifests or `docker inspect`. One trailing newline is dropped. A
# variable already set wins over the file. Other files there (keys read by path, such as
# LIVE_LEDGER_KEY_FILE) are left alone.
set -eu

secrets_dir=${SECRETS_DIR:-/run/secrets}
if [ -d "$secrets_dir" ]; then
  for file in "$secrets_dir"/live_*; do
    [ -f "$file" ] || continue
    name=$(basename "$file" | tr '[:lower:]' '[:upper:]')
    case "$name" in
      *[!A-Z0-9_]*) echo "docker-entrypoint: ignoring $file (not a setting name)" >&2; continue ;;
    esac
    if eval "[ -n \"\${$name+set}\" ]"; then
      continue
    fi
    value=$(cat "$file")
    export "$name=$value"
  done
fi
unset SECRETS_DIR
exec "$@"
