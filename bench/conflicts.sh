#!/usr/bin/env bash
# bench/conflicts.sh: reservation conflicts, measured side by side in one run
# on a generated Odoo 17 network (default 100 warehouses, 50,000 products,
# 1,000,000 quants, 200,000 open moves):
#   1. the conflict scan: retailflow.reservation_conflicts() (C, heap scans
#      and hash aggregates) against retailflow.reservation_conflicts_sql(),
#      one plain SQL statement for the same nine kinds (best of JIT on/off),
#      best of 3 each, and the two results compared;
#   2. trigger overhead on Odoo's hot path: pgbench -M simple, REPEATABLE READ
#      like Odoo, a script that reserves (update quant, insert move line,
#      update move) and unreserves (update quant, delete move line, update
#      move) one unit, with the conflict triggers disabled (baseline) and
#      enabled in log and block mode, rounds interleaved, median and best tps (the machine is shared:
#      the best run is the one least disturbed by other load);
#   3. the same writes in a server-side plpgsql loop, best of 9 interleaved
#      runs per mode: the triggers' CPU cost per write.
# Not part of test/run.  Usage: bash bench/conflicts.sh [--quick] [--scan-only] [--seconds N] [--rounds N]
#   --scan-only: part 1 only
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/lib.sh"

GEN="100, 50000, 1000000, 200000"; SECS=5; CLIENTS=1; ROUNDS=7; SCAN_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) GEN="20, 5000, 100000, 20000"; SECS=5; shift;;
    --seconds) SECS=$2; shift 2;;
    --rounds) ROUNDS=$2; shift 2;;
    --scan-only) SCAN_ONLY=1; shift;;
    *) rf_die "unknown option $1";;
  esac
done

rf_deps
rf_build "$ROOT"
RUN=$(mktemp -d /tmp/retailflow-bench.XXXXXX); chmod 755 "$RUN"
BIN=""
cleanup() { [ -n "$BIN" ] && rf_cluster_stop "$BIN" "$RUN/data"; rm -rf "$RUN"; }
trap cleanup EXIT
BIN=$(rf_temp_install "$ROOT" "$RUN/install") || exit 1
export PATH="$BIN:$PATH"
mkdir -p "$RUN/src" "$RUN/pgb"; cp -a "$ROOT/test" "$RUN/src/"; [ "$(id -u)" = 0 ] && chown -R postgres "$RUN/src" "$RUN/pgb"
rf_cluster_start "$BIN" "$RUN/data" "$RUN/sock" "shared_buffers = 2GB" "work_mem = 256MB" \
  "max_parallel_workers_per_gather = 2" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
PSQL=(rf_as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$RUN/sock" -U postgres)
Q() { "${PSQL[@]}" -d bench -At -c "$1"; }

rf_log "generating ($GEN)"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'"
"${PSQL[@]}" -d bench -c "SET client_min_messages = warning" \
  -f "$RUN/src/test/fixtures/odoo17_schema.sql" -f "$RUN/src/test/fixtures/generate.sql" >/dev/null
SECONDS=0
"${PSQL[@]}" -d bench -c "SELECT rf_fixture_generate($GEN)" >/dev/null || exit 1
"${PSQL[@]}" -d bench -c "CREATE EXTENSION retailflow" -c "VACUUM ANALYZE" >/dev/null || exit 1
rf_log "generated in ${SECONDS}s: $(Q "SELECT count(*) FROM stock_quant") quants, $(Q "SELECT count(*) FROM stock_move WHERE state IN ('waiting','confirmed','assigned','partially_available')") open moves, $(Q "SELECT count(*) FROM stock_move_line WHERE state NOT IN ('done','cancel')") open move lines"

# ---- 1. the scan
RF="SELECT count(*), string_agg(kind || '=' || n, ',' ORDER BY kind) FROM (SELECT kind, count(*) AS n FROM retailflow.reservation_conflicts() GROUP BY 1) s"
SQL="${RF/reservation_conflicts()/reservation_conflicts_sql()}"
best3() {
  local best="" res="" t
  for _ in 1 2 3; do
    t=$("${PSQL[@]}" -d bench -At -c "${2:-SET jit = on}" -c '\timing on' -c "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
  done
  res=$("${PSQL[@]}" -d bench -At -c "$1" 2>/dev/null | head -1)
  echo "$best $res"
}
echo
echo "== conflict scan, best of 3 (ms); result = kinds|count per kind"
read -r t_rf r_rf < <(best3 "$RF")
read -r t_sql1 r_sql < <(best3 "$SQL")
read -r t_sql2 _ < <(best3 "$SQL" "SET jit = off")
t_sql=$(awk -v a="$t_sql1" -v b="$t_sql2" 'BEGIN{print (a<b)?a:b}')
printf '%-52s %10s  %s\n' "retailflow.reservation_conflicts() (C)" "$t_rf" "$r_rf"
printf '%-52s %10s  %s\n' "plain SQL, same conflicts (best of jit on/off)" "$t_sql" "$r_sql"
awk -v a="$t_sql" -v b="$t_rf" 'BEGIN{printf "scan speed-up: %.2fx\n", a/b}'
[ "$r_rf" = "$r_sql" ] && echo "scan results identical" || echo "WARNING: scan results differ"

[ "$SCAN_ONLY" = 1 ] && exit 0

# ---- 2. trigger overhead
# quants with a free unit in internal locations, each with an open confirmed move of the product from there
Q "CREATE TABLE bench_res AS
   SELECT row_number() OVER (ORDER BY q.id)::int AS i, q.id AS q, q.product_id AS p, q.location_id AS l, m.id AS m, m.location_dest_id AS d
   FROM stock_quant q JOIN stock_location l ON l.id = q.location_id AND l.usage = 'internal'
   JOIN LATERAL (SELECT id, location_dest_id FROM stock_move m WHERE m.product_id = q.product_id AND m.state = 'confirmed'
                 ORDER BY id LIMIT 1) m ON true
   WHERE q.quantity - q.reserved_quantity >= 1 AND q.lot_id IS NULL AND q.package_id IS NULL AND q.owner_id IS NULL;
   ALTER TABLE bench_res ADD PRIMARY KEY (i); ANALYZE bench_res;" >/dev/null
NRES=$(Q "SELECT count(*) FROM bench_res")
cat > "$RUN/pgb/reserve.sql" <<SQL
\\set i random(1, $NRES)
SELECT q, p, l, m, d FROM bench_res WHERE i = :i \\gset
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1, write_date = now() WHERE id = :q;
INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id, state, quantity, quantity_product_uom, picked, date) VALUES (:m, 1, :p, 1, :l, :d, 'assigned', 1, 1, false, now()) RETURNING id AS ml \\gset
UPDATE stock_move SET state = 'assigned', quantity = coalesce(quantity, 0) + 1 WHERE id = :m;
COMMIT;
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity - 1, write_date = now() WHERE id = :q;
DELETE FROM stock_move_line WHERE id = :ml;
UPDATE stock_move SET state = 'confirmed', quantity = quantity - 1 WHERE id = :m;
COMMIT;
SQL
[ "$(id -u)" = 0 ] && chown -R postgres "$RUN/pgb"
TRIGS="stock_quant retailflow_conflict_ins, stock_quant retailflow_conflict_upd, stock_move_line retailflow_conflict_ins, stock_move_line retailflow_conflict_upd"
triggers() {   # triggers enable|disable
  local t
  IFS=, read -ra T <<< "$TRIGS"
  for t in "${T[@]}"; do set -- $t; Q "ALTER TABLE $1 ${ACTION} TRIGGER $2" >/dev/null; done
}
# bench MODE: tps of the script with conflict_action = MODE (or triggers disabled for "none")
bench() {
  local mode=$1 opts="-c default_transaction_isolation=repeatable\\ read" out
  if [ "$mode" = none ]; then ACTION=DISABLE triggers; else ACTION=ENABLE triggers; opts="$opts -c retailflow.conflict_action=$mode"; fi
  Q "CHECKPOINT" >/dev/null
  out=$(rf_as_pg env PGOPTIONS="$opts" pgbench -n -M simple --max-tries=20 -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" \
        -h "$RUN/sock" -U postgres -f "$RUN/pgb/reserve.sql" bench 2>&1)
  echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
best() { sort -n | tail -1; }
bench none >/dev/null; bench log >/dev/null     # warm up
declare -A R
for r in $(seq "$ROUNDS"); do
  for mode in none log block off; do R[$mode]+="$(bench $mode) "; done
done
ACTION=ENABLE triggers
echo
echo "== trigger overhead: reserve + unreserve one unit (2 transactions, 6 writes), pgbench -M simple, c=$CLIENTS, ${SECS}s x $ROUNDS rounds, REPEATABLE READ"
for mode in none off log block; do
  m=$(echo ${R[$mode]} | tr ' ' '\n' | median); b=$(echo ${R[$mode]} | tr ' ' '\n' | best)
  declare "MED_$mode=$m" "BEST_$mode=$b"
  printf '%-34s median tps %8.1f  best %8.1f  (runs: %s)\n' "$( [ $mode = none ] && echo 'triggers disabled (baseline)' || echo "triggers enabled, $mode")" "$m" "$b" "${R[$mode]}"
done
awk -v b="$MED_none" -v o="$MED_off" -v l="$MED_log" -v k="$MED_block" 'BEGIN{
  printf "throughput retained (median): off %.1f%%, log %.1f%%, block %.1f%%\n", 100*o/b, 100*l/b, 100*k/b }'
awk -v b="$BEST_none" -v o="$BEST_off" -v l="$BEST_log" -v k="$BEST_block" 'BEGIN{
  printf "throughput retained (best run, least disturbed by other load): off %.1f%%, log %.1f%%, block %.1f%%\n", 100*o/b, 100*l/b, 100*k/b }'

# ---- 2b. the same writes in a server-side loop (no client round trips, no commits):
# the triggers' CPU cost per write, least sensitive to other load on the machine
Q "CREATE FUNCTION bench_cycle(n integer) RETURNS float8 LANGUAGE plpgsql AS \$f\$
DECLARE r record; t0 timestamptz; mlid integer; nres integer := (SELECT count(*) FROM bench_res);
BEGIN
  t0 := clock_timestamp();
  FOR k IN 1..n LOOP
    SELECT * INTO r FROM bench_res WHERE i = 1 + ((k * 7919) % nres);
    UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1, write_date = now() WHERE id = r.q;
    INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id, state,
                                 quantity, quantity_product_uom, picked, date)
    VALUES (r.m, 1, r.p, 1, r.l, r.d, 'assigned', 1, 1, false, now()) RETURNING id INTO mlid;
    UPDATE stock_move SET state = 'assigned', quantity = coalesce(quantity, 0) + 1 WHERE id = r.m;
    UPDATE stock_quant SET reserved_quantity = reserved_quantity - 1, write_date = now() WHERE id = r.q;
    DELETE FROM stock_move_line WHERE id = mlid;
    UPDATE stock_move SET state = 'confirmed', quantity = quantity - 1 WHERE id = r.m;
  END LOOP;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$f\$" >/dev/null
cycle() {   # cycle MODE: ms for 2000 reserve+unreserve cycles
  if [ "$1" = none ]; then ACTION=DISABLE triggers; else ACTION=ENABLE triggers; fi
  "${PSQL[@]}" -d bench -At -c "SET retailflow.conflict_action = $( [ "$1" = none ] && echo off || echo "$1" )" \
    -c "SET default_transaction_isolation = 'repeatable read'" -c "SELECT round(bench_cycle(2000)::numeric, 1)" | tail -1
}
declare -A C
for mode in none log; do cycle $mode >/dev/null; done
for r in $(seq 9); do
  for mode in none off log block; do C[$mode]+="$(cycle $mode) "; done
done
ACTION=ENABLE triggers
echo
echo "== trigger cost in a server-side loop: 2000 reserve+unreserve cycles (12,000 writes), ms, best of 9 interleaved"
for mode in none off log block; do
  b=$(echo ${C[$mode]} | tr ' ' '\n' | sort -n | head -1); declare "CB_$mode=$b"
  printf '%-34s best %8.1f ms  (runs: %s)\n' "$( [ $mode = none ] && echo 'triggers disabled (baseline)' || echo "triggers enabled, $mode")" "$b" "${C[$mode]}"
done
awk -v b="$CB_none" -v o="$CB_off" -v l="$CB_log" -v k="$CB_block" 'BEGIN{
  printf "throughput retained (server loop): off %.1f%%, log %.1f%%, block %.1f%%; trigger cost per write: off %.1f us, log %.1f us, block %.1f us\n",
    100*b/o, 100*b/l, 100*b/k, (o-b)*1000/12000, (l-b)*1000/12000, (k-b)*1000/12000 }'
echo "conflicts logged during the run: $(Q "SELECT count(*) FROM retailflow.exception_log")"
echo "guard rows: $(Q "SELECT count(*) FROM retailflow.reservation_guard")"
