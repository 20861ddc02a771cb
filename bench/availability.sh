#!/usr/bin/env bash
# bench/availability.sh: availability speed, measured side by side in one run
# on a generated Odoo 17 network (default 100 warehouses, 50,000 products,
# 1,000,000 quants, 200,000 open moves):
#   1. single lookups with pgbench -M simple (Odoo's driver sends plain
#      queries): the round-trip floor (SELECT 1), retailflow.available_qty()
#      for a random product and warehouse, the SQL Odoo issues for it, and as
#      a reference the least SQL that reads the same quants (by product_id);
#   2. the whole product x warehouse matrix: product_quantities() against the
#      best plain SQL with the same semantics, dense and sparse;
#   3. the backend's peak private memory (RssAnon) during the matrix.
# Not part of test/run.  Usage: bash bench/availability.sh [--quick] [--seconds N]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/lib.sh"

GEN="100, 50000, 1000000, 200000"; SECS=15; CLIENTS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) GEN="20, 5000, 100000, 20000"; SECS=5; shift;;
    --seconds) SECS=$2; shift 2;;
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
rf_log "generated in ${SECONDS}s: $(Q "SELECT count(*) FROM stock_quant") quants, $(Q "SELECT count(*) FROM stock_move WHERE state IN ('waiting','confirmed','assigned','partially_available')") open moves, $(Q "SELECT count(*) FROM stock_warehouse WHERE active") active warehouses, $(Q "SELECT count(*) FROM product_product") products"

# (product, warehouse) pairs to draw from: storable products x active warehouses
Q "CREATE TABLE bench_pick AS
   SELECT row_number() OVER (ORDER BY p.id, w.id)::int AS i, p.id AS p, w.view_location_id AS l,
          quote_literal(v.parent_path || '%') AS path
   FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
   CROSS JOIN stock_warehouse w JOIN stock_location v ON v.id = w.view_location_id
   WHERE t.type = 'product' AND w.active;
   ALTER TABLE bench_pick ADD PRIMARY KEY (i); ANALYZE bench_pick;" >/dev/null
NPICK=$(Q "SELECT count(*) FROM bench_pick")

# correctness first: the lookup equals the Odoo SQL (untracked products) on a sample
BAD=$(Q "SELECT count(*) FROM (SELECT b.*, t.tracking FROM bench_pick b JOIN product_product pp ON pp.id = b.p
          JOIN product_template t ON t.id = pp.product_tmpl_id WHERE b.i % 997 = 0) s
        WHERE tracking = 'none' AND abs(retailflow.available_qty(p, l) -
          greatest(coalesce((SELECT sum(quantity) - sum(reserved_quantity) FROM stock_quant q
            WHERE q.product_id = s.p AND q.location_id IN
            (SELECT id FROM stock_location WHERE parent_path LIKE (SELECT parent_path FROM stock_location WHERE id = s.l) || '%')), 0), 0)) > 1e-6")
rf_log "sample check: $BAD mismatches between available_qty() and the Odoo SQL"

pre() { printf '\\set i random(1, %s)\nSELECT p, l, path FROM bench_pick WHERE i = :i \\gset\n' "$NPICK"; }
{ pre; echo "SELECT 1;"; } > "$RUN/pgb/floor.sql"
{ pre; echo "SELECT retailflow.available_qty(:p, :l);"; } > "$RUN/pgb/retailflow.sql"
{ pre; echo "SELECT sum(quantity) - sum(reserved_quantity) FROM stock_quant WHERE product_id = :p AND location_id IN (SELECT id FROM stock_location WHERE parent_path LIKE :path);"; } > "$RUN/pgb/odoo.sql"
# reference: the least SQL that reads the same quants (the product's, by its index, no location test)
{ pre; echo "SELECT sum(quantity) - sum(reserved_quantity) FROM stock_quant WHERE product_id = :p;"; } > "$RUN/pgb/quants.sql"
[ "$(id -u)" = 0 ] && chown -R postgres "$RUN/pgb"

# run NAME CLIENTS: prints "tps last_statement_latency_ms"
run() {
  local out
  out=$(rf_as_pg pgbench -n -M simple -r -c "$2" -j "$2" -T "$SECS" -h "$RUN/sock" -U postgres -f "$RUN/pgb/$1.sql" bench 2>&1)
  local tps lat
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
  lat=$(echo "$out" | grep -E '^\s+[0-9.]+\s+[0-9]+\s+SELECT' | tail -1 | awk '{print $1}')
  echo "$tps $lat"
}
for f in floor retailflow odoo quants; do run "$f" 1 >/dev/null; done   # warm caches
declare -A TPS LAT
for c in 1 $CLIENTS; do
  for f in floor retailflow odoo quants; do
    read -r t l < <(run "$f" "$c"); TPS[$f$c]=$t; LAT[$f$c]=$l
  done
done

echo
echo "== single lookups, pgbench -M simple, ${SECS}s each, script = pick a random pair (\\gset) + the statement"
printf '%-36s %10s %10s %16s %16s\n' statement "tps c=1" "tps c=$CLIENTS" "stmt ms (c=1)" "stmt ms (c=$CLIENTS)"
for f in floor retailflow odoo quants; do
  printf '%-36s %10.0f %10.0f %16.4f %16.4f\n' "$f" "${TPS[${f}1]}" "${TPS[$f$CLIENTS]}" "${LAT[${f}1]}" "${LAT[$f$CLIENTS]}"
done
awk -v ft="${TPS[floor1]}" -v rt="${TPS[retailflow1]}" -v ot="${TPS[odoo1]}" \
    -v fl="${LAT[floor1]}" -v rl="${LAT[retailflow1]}" -v ol="${LAT[odoo1]}" \
    -v ft2="${TPS[floor$CLIENTS]}" -v rt2="${TPS[retailflow$CLIENTS]}" -v ot2="${TPS[odoo$CLIENTS]}" 'BEGIN {
  printf "retailflow vs floor: script tps %.1f%% (c=1), %.1f%% (c=%d); statement throughput (1/latency) %.1f%%\n", 100*rt/ft, 100*rt2/ft2, '"$CLIENTS"', 100*fl/rl;
  printf "retailflow vs Odoo SQL: script tps %.2fx (c=1), %.2fx (c=%d); statement latency %.2fx\n", rt/ot, rt2/ot2, '"$CLIENTS"', ol/rl }'
awk -v ft="${TPS[floor1]}" -v qt="${TPS[quants1]}" -v ft2="${TPS[floor$CLIENTS]}" -v qt2="${TPS[quants$CLIENTS]}" 'BEGIN {
  printf "reference, the product'"'"'s quants summed by product_id alone, vs floor: script tps %.1f%% (c=1), %.1f%% (c=%d)\n", 100*qt/ft, 100*qt2/ft2, '"$CLIENTS"' }'

# Matrix: best of 3 runs each, timed inside the server.
MATRIX_SQL_DENSE="WITH wh AS (SELECT w.id AS wid, l.parent_path AS pp FROM stock_warehouse w JOIN stock_location l ON l.id = w.view_location_id WHERE w.active),
 loc AS (SELECT l.id, wh.wid FROM stock_location l JOIN wh ON l.parent_path LIKE wh.pp || '%'),
 prods AS (SELECT pp.id, u.rounding FROM product_product pp JOIN product_template pt ON pt.id = pp.product_tmpl_id JOIN uom_uom u ON u.id = pt.uom_id WHERE pt.type = 'product' AND pp.active),
 q AS (SELECT loc.wid, q.product_id, sum(q.quantity) AS qty, sum(q.reserved_quantity) AS res FROM stock_quant q JOIN loc ON loc.id = q.location_id GROUP BY 1, 2),
 mv AS (SELECT m.product_id, m.product_qty, s.wid AS swid, d.wid AS dwid FROM stock_move m LEFT JOIN loc s ON s.id = m.location_id LEFT JOIN loc d ON d.id = m.location_dest_id
        WHERE m.state IN ('waiting', 'confirmed', 'assigned', 'partially_available') AND s.wid IS DISTINCT FROM d.wid),
 inc AS (SELECT dwid AS wid, product_id, sum(product_qty) AS qty FROM mv WHERE dwid IS NOT NULL GROUP BY 1, 2),
 outg AS (SELECT swid AS wid, product_id, sum(product_qty) AS qty FROM mv WHERE swid IS NOT NULL GROUP BY 1, 2),
 m AS (SELECT p.id AS product_id, wh.wid AS warehouse_id,
        round(coalesce(q.qty, 0) / p.rounding) * p.rounding AS qty_available,
        round(coalesce(q.res, 0) / p.rounding) * p.rounding AS reserved,
        round((coalesce(q.qty, 0) - coalesce(q.res, 0)) / p.rounding) * p.rounding AS free_qty,
        round(coalesce(inc.qty, 0) / p.rounding) * p.rounding AS incoming_qty,
        round(coalesce(outg.qty, 0) / p.rounding) * p.rounding AS outgoing_qty,
        round((coalesce(q.qty, 0) + coalesce(inc.qty, 0) - coalesce(outg.qty, 0)) / p.rounding) * p.rounding AS virtual_available
       FROM prods p CROSS JOIN wh LEFT JOIN q ON q.product_id = p.id AND q.wid = wh.wid
       LEFT JOIN inc ON inc.product_id = p.id AND inc.wid = wh.wid LEFT JOIN outg ON outg.product_id = p.id AND outg.wid = wh.wid)
SELECT count(*), round(sum(free_qty), 2), round(sum(virtual_available), 2) FROM m"
MATRIX_SQL_SPARSE="${MATRIX_SQL_DENSE/CROSS JOIN wh LEFT JOIN q ON q.product_id = p.id AND q.wid = wh.wid/JOIN (SELECT wid, product_id FROM q UNION SELECT wid, product_id FROM inc UNION SELECT wid, product_id FROM outg) k ON k.product_id = p.id JOIN wh ON wh.wid = k.wid LEFT JOIN q ON q.product_id = p.id AND q.wid = wh.wid}"
RF_DENSE="SELECT count(*), round(sum(free_qty)::numeric, 2), round(sum(virtual_available)::numeric, 2) FROM retailflow.product_quantities()"
RF_SPARSE="SELECT count(*), round(sum(free_qty)::numeric, 2), round(sum(virtual_available)::numeric, 2) FROM retailflow.product_quantities(include_zero => false)"

# best3 SQL [settings]: best wall time (ms) of 3 runs, and the result row
best3() {
  local best="" res="" t
  for _ in 1 2 3; do
    t=$("${PSQL[@]}" -d bench -At -c "${2:-SET jit = on}" -c '\timing on' -c "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    res=$("${PSQL[@]}" -d bench -At -c "$1" 2>/dev/null | head -1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
  done
  echo "$best $res"
}
echo
echo "== whole matrix, best of 3 (ms), result = rows|sum free|sum virtual"
read -r t_rf_d r_rf_d < <(best3 "$RF_DENSE")
read -r t_sql_d r_sql_d < <(best3 "$MATRIX_SQL_DENSE")
read -r t_sql_d2 _ < <(best3 "$MATRIX_SQL_DENSE" "SET jit = off")
read -r t_rf_s r_rf_s < <(best3 "$RF_SPARSE")
read -r t_sql_s r_sql_s < <(best3 "$MATRIX_SQL_SPARSE")
read -r t_sql_s2 _ < <(best3 "$MATRIX_SQL_SPARSE" "SET jit = off")
t_sql_d=$(awk -v a="$t_sql_d" -v b="$t_sql_d2" 'BEGIN{print (a<b)?a:b}')
t_sql_s=$(awk -v a="$t_sql_s" -v b="$t_sql_s2" 'BEGIN{print (a<b)?a:b}')
printf '%-44s %10s  %s\n' "product_quantities() dense" "$t_rf_d" "$r_rf_d"
printf '%-44s %10s  %s\n' "plain SQL dense (best of jit on/off)" "$t_sql_d" "$r_sql_d"
printf '%-44s %10s  %s\n' "product_quantities(include_zero => false)" "$t_rf_s" "$r_rf_s"
printf '%-44s %10s  %s\n' "plain SQL sparse (best of jit on/off)" "$t_sql_s" "$r_sql_s"
awk -v a="$t_sql_d" -v b="$t_rf_d" -v c="$t_sql_s" -v d="$t_rf_s" 'BEGIN{printf "matrix speed-up: dense %.2fx, sparse %.2fx\n", a/b, c/d}'
[ "$r_rf_d" = "$r_sql_d" ] && echo "dense results identical" || echo "WARNING: dense results differ"
[ "$r_rf_s" = "$r_sql_s" ] && echo "sparse results identical" || echo "WARNING: sparse results differ"

# Peak private memory of the backend during the dense matrix (RssAnon sampled every 5 ms).
echo
"${PSQL[@]}" -d bench -At -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(1)" -c "$RF_DENSE" > "$RUN/mem.out" 2>&1 &
sleep 0.5
PID=$(head -1 "$RUN/mem.out"); PEAK=0; BASE=$(awk '/RssAnon/{print $2}' /proc/"$PID"/status 2>/dev/null || echo 0)
while kill -0 "$PID" 2>/dev/null && [ "$(wc -l < "$RUN/mem.out")" -lt 3 ]; do
  v=$(awk '/RssAnon/{print $2}' /proc/"$PID"/status 2>/dev/null || echo 0); [ "${v:-0}" -gt "$PEAK" ] && PEAK=$v; sleep 0.005
done
wait
echo "== backend private memory (RssAnon): before $((BASE / 1024)) MB, peak during the dense matrix $((PEAK / 1024)) MB"
