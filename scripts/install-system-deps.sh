#!/usr/bin/env bash
# Install the system packages datso needs: PostgreSQL 15 + PostGIS 3 (and, with --browser, Chromium for
# the browser tests, and gdal-bin for the GDAL client tests). Idempotent: does nothing when everything is already there.
set -euo pipefail

want_browser=0
for a in "$@"; do [[ $a == --browser ]] && want_browser=1; done

pkgs=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $pg_bin || ! -x $pg_bin/initdb ]]; then pkgs+=(postgresql); fi
if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
  major=$( [[ -n $pg_bin ]] && basename "$(dirname "$pg_bin")" || echo 15)
  pkgs+=("postgresql-${major}-postgis-3")
fi
if ((want_browser)) && [[ ! -x /usr/bin/chromium ]]; then pkgs+=(chromium fonts-dejavu-core); fi
# the GIS clients the tests drive: ogrinfo/ogr2ogr (GDAL from Debian, as analysts have it)
if ((want_browser)) && ! command -v ogr2ogr >/dev/null 2>&1; then pkgs+=(gdal-bin); fi
# PgBouncer, which the operations tests put in front of the embedded cluster
if ((want_browser)) && [[ ! -x /usr/sbin/pgbouncer ]]; then pkgs+=(pgbouncer); fi

if ((${#pkgs[@]} == 0)); then
  echo "system deps: already installed"; exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<MSG
datso needs: ${pkgs[*]}
This script installs them with apt-get (Debian/Ubuntu). On other systems install PostgreSQL >= 14 with
PostGIS >= 3.2 yourself (macOS: brew install postgis; Fedora: dnf install postgis), or point DATABASE_URL at an
existing PostGIS and datso will not start its own cluster.
MSG
  exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Need root to install: ${pkgs[*]} (run this script as root, or install them yourself)" >&2; exit 1
  fi
fi
echo "system deps: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo "system deps: done"
