#!/usr/bin/env bash
# Debian packages the tests use, installed only when missing (idempotent; CI runs as root):
#   openssl     the TLS tests make their certificates with it
#   prometheus  apps/sidecar-e2e/src/prometheus.spec.ts scrapes a sidecar with a real Prometheus
#   chromium    apps/dashboard's browser tests drive it through playwright-core (/usr/bin/chromium);
#               fonts-liberation (its recommended fonts) so that pages and screenshots have text
#   postgresql  the PostgreSQL dialect's tests start real servers from its binaries
#               (packages/postgres-testing); no service is started
#   pgbouncer   the store's spec of sidecars behind a pooler in transaction mode runs a real one
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v prometheus >/dev/null || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-liberation)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing: ${need[*]} — install them (apt-get install ${need[*]}) or run this script as root" >&2
  exit 1
fi
echo "installing ${need[*]}"
apt-get update -qq
# Package scripts must not start services (no init system here, and none is wanted).
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${need[@]}"
