#!/usr/bin/env bash
# Installs the system libraries the project needs when they are missing:
# libzbar0 (pyzbar), libGL and GLib (OpenCV), python3-venv (Debian's Python).
# As root it uses apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

PYTHON=${PYTHON:-python3}
missing=()
# grep reads all of ldconfig's output: with -q it could stop early, and under pipefail
# ldconfig's SIGPIPE would read as "missing".
have_lib() { ldconfig -p 2>/dev/null | grep "$1" >/dev/null; }
have_lib 'libzbar\.so\.0' || missing+=(libzbar0)
have_lib 'libGL\.so\.1' || missing+=(libgl1)
have_lib 'libglib-2\.0\.so\.0' || missing+=(libglib2.0-0)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The kiosk screen writes Vietnamese with DejaVu Sans (OpenCV's fonts lack the diacritics).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || missing+=(fonts-dejavu-core)
for extra in "$@"; do
  case "$extra" in
    chromium) command -v chromium >/dev/null || missing+=(chromium) ;;
    # The kiosk window's test on a bare X server: Xvfb, xwininfo (x11-utils), xwd (x11-apps).
    xvfb)
      command -v Xvfb >/dev/null || missing+=(xvfb)
      command -v xwininfo >/dev/null || missing+=(x11-utils)
      command -v xwd >/dev/null || missing+=(x11-apps)
      ;;
    # The HA fault test (make chaos-ha): etcd for Patroni, and PostgreSQL 15's own binaries.
    ha)
      command -v etcd >/dev/null || missing+=(etcd-server)
      [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
      ;;
    # The PgBouncer benchmark (python -m bench --pgbouncer-only).
    pgbouncer) [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || missing+=(pgbouncer) ;;
    *) echo "unknown extra: $extra" >&2; exit 2 ;;
  esac
done

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
else
  echo "Missing system packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
