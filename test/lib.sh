# test/lib.sh: shell functions shared by test/run, demo/run and bench/*:
# install missing Debian packages, build, make a private relocated
# PostgreSQL 15 install that contains retailflow, and start/stop throwaway
# clusters on a unix socket.  Source it; it defines functions only.

RF_PGVER=15
RF_SYS_BIN=/usr/lib/postgresql/$RF_PGVER/bin
RF_PKGS_BASE="make gcc libc6-dev pkg-config postgresql-$RF_PGVER postgresql-client-$RF_PGVER postgresql-server-dev-$RF_PGVER libcurl4-openssl-dev libjansson-dev libipc-run-perl perl python3"

rf_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rf_die() { rf_log "error: $*"; exit 1; }

# rf_deps [extra packages...]: apt-get install whatever is missing (root only).
rf_deps() {
  local missing=() p
  for p in $RF_PKGS_BASE "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    rf_die "missing packages: ${missing[*]} (run as root, or install them with apt-get)"
  fi
  rf_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || rf_die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rf_die "apt-get install failed"
  # Debian's postgresql package starts a system cluster; we never use it.
}

# rf_build ROOT: warning-free build (-Wall -Wextra -Werror come from the Makefile).
rf_build() {
  local root=$1
  rf_log "building retailflow"
  make -C "$root" -s -j"$(nproc)" PG_CONFIG="$RF_SYS_BIN/pg_config" >/dev/null || rf_die "build failed"
}

# rf_temp_install ROOT DEST: a relocated copy of PostgreSQL 15 (hard links
# where possible) with retailflow installed into it; prints its bin dir.
rf_temp_install() {
  local root=$1 dest=$2 d
  mkdir -p "$dest/usr/lib/postgresql" "$dest/usr/share/postgresql"
  for d in /usr/lib/postgresql/$RF_PGVER /usr/share/postgresql/$RF_PGVER; do
    cp -al "$d" "$(dirname "$dest$d")/" 2>/dev/null || cp -a "$d" "$(dirname "$dest$d")/"
  done
  # Never write through a hard link into the system install.
  rm -rf "$dest"/usr/lib/postgresql/$RF_PGVER/lib/retailflow* \
         "$dest"/usr/lib/postgresql/$RF_PGVER/lib/bitcode/retailflow* \
         "$dest"/usr/share/postgresql/$RF_PGVER/extension/retailflow*
  make -C "$root" -s install DESTDIR="$dest" PG_CONFIG="$RF_SYS_BIN/pg_config" >/dev/null || rf_die "install into $dest failed"
  chmod -R a+rX "$dest"
  echo "$dest/usr/lib/postgresql/$RF_PGVER/bin"
}

# rf_as_pg CMD...: run a command as the postgres OS user when we are root.
rf_as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- env PATH="$PATH" HOME="${RF_PG_HOME:-/tmp}" "$@"
  else
    "$@"
  fi
}

# rf_cluster_start BINDIR DATADIR SOCKDIR [extra postgresql.conf lines...]
rf_cluster_start() {
  local bin=$1 data=$2 sock=$3; shift 3
  mkdir -p "$data" "$sock"
  [ "$(id -u)" = 0 ] && chown postgres "$data" "$sock" "$(dirname "$data")"
  rf_as_pg "$bin/initdb" -D "$data" -A trust -U postgres --locale=C -E UTF8 >/dev/null || rf_die "initdb failed"
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$sock'"
    echo "port = 5432"
    echo "shared_preload_libraries = 'retailflow'"
    echo "fsync = off"
    echo "max_prepared_transactions = 10"
    echo "log_min_messages = warning"
    local l; for l in "$@"; do echo "$l"; done
  } >> "$data/postgresql.conf"
  rf_as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$data/server.log" >&2; rf_die "cluster did not start"; }
}

# rf_cluster_stop BINDIR DATADIR
rf_cluster_stop() {
  [ -f "$2/postmaster.pid" ] && rf_as_pg "$1/pg_ctl" -D "$2" -m fast -w -t 60 stop >/dev/null 2>&1
  return 0
}

# rf_test_inputs ROOT RUN: copies the test inputs to RUN/src (owned by the
# postgres user, with RUN/out for results) and sets PGXS_DIR, PG_REGRESS,
# PG_ISO and RF_SHARED_ODOO: the real Odoo databases of ../shared/odoo, which
# are optional (RF_SHARED_ODOO may point elsewhere).
rf_test_inputs() {
  local root=$1 run=$2
  PGXS_DIR=$(dirname "$("$RF_SYS_BIN/pg_config" --pgxs)")/..
  PG_REGRESS="$PGXS_DIR/test/regress/pg_regress"
  PG_ISO="$PGXS_DIR/test/isolation/pg_isolation_regress"
  mkdir -p "$run/src" "$run/out" "$run/tap"
  cp -a "$root/sql" "$root/expected" "$root/test" "$root/bench" "$root/docs" "$root/monitoring" "$run/src/"
  [ "$(id -u)" = 0 ] && chown -R postgres "$run/src" "$run/out" "$run/tap"
  RF_SHARED_ODOO=${RF_SHARED_ODOO:-}
  [ -z "$RF_SHARED_ODOO" ] && [ -d "$root/../shared/odoo" ] && RF_SHARED_ODOO=$(cd "$root/../shared/odoo" && pwd)
  export RF_SHARED_ODOO
  return 0
}

# rf_prove RUN NAME [VAR=value...]: runs the TAP test test/t/NAME.pl from
# RUN/src (after rf_test_inputs) with the extra environment given; its output
# goes to RUN/tap-NAME.log; returns prove's status.
rf_prove() {
  local run=$1 n=$2; shift 2
  mkdir -p "$run/tap/$n"; [ "$(id -u)" = 0 ] && chown postgres "$run/tap/$n"
  (cd "$run/src" && rf_as_pg env TESTDIR="$run/tap/$n" PG_REGRESS="$PG_REGRESS" \
      RF_SRC="$run/src" RF_ROOT="${ROOT:-}" RF_SHARED_ODOO="$RF_SHARED_ODOO" "$@" \
      prove -v -I "$PGXS_DIR/test/perl" -I test/t "test/t/$n.pl") > "$run/tap-$n.log" 2>&1
}

# Debian packages Odoo 17/18 runs on (../shared/odoo/README-odoo-runtime.md);
# chromium and python3-websocket (browser tours only) are left out.
RF_ODOO_PKGS="python3-babel python3-dateutil python3-decorator python3-docutils python3-freezegun
  python3-geoip2 python3-gevent python3-greenlet python3-idna python3-jinja2 python3-libsass python3-lxml
  python3-markupsafe python3-num2words python3-ofxparse python3-passlib python3-pil python3-polib
  python3-psutil python3-psycopg2 python3-pydot python3-pypdf2 python3-qrcode python3-reportlab
  python3-requests python3-rjsmin python3-stdnum python3-tz python3-urllib3 python3-vobject
  python3-werkzeug python3-xlrd python3-xlsxwriter python3-zeep"

# rf_odoo_source ROOT: prints the Odoo tree the Odoo tier runs: $ODOO_SRC (a
# user's own Odoo 17/18 checkout) or else ROOT/../shared/odoo/odoo17-src.tar.gz.
# Returns 1 with the reason on stdout when there is neither.
rf_odoo_source() {
  local root=$1 tarball="$1/../shared/odoo/odoo17-src.tar.gz"
  if [ -n "${ODOO_SRC:-}" ]; then
    echo "$ODOO_SRC"
  elif [ -f "$tarball" ]; then
    echo "$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")"
  else
    echo "ODOO_SRC is not set and $(cd "$root/.." && pwd)/shared/odoo/odoo17-src.tar.gz does not exist"
    return 1
  fi
}
