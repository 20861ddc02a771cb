#!/usr/bin/env bash
# bench/approvals.sh: speed of approval rule evaluation and enforcement.
#   1. retailflow.required_approvals('sale.order', random order) with 200 active
#      sale.order rules, pgbench -M simple, against SELECT 1 in the same run
#      (target: >= 60% of the floor's throughput).
#      Reference in the same rounds: a SELECT of the order by primary key.
#   2. confirming sale orders (state draft -> sale on the order and its lines)
#      with the enforcement triggers attached (retailflow.approval_enforcement
#      = log, every matching approval granted beforehand) against the same
#      workload with them detached (target: >= 90% retained).
# Fixture: the "small" network (10 warehouses, 1000 products).  Runs are
# interleaved (floor, subject, floor, subject, ...) and summed.
# Usage: bash bench/approvals.sh [seconds per run, default 10] [rounds, default 3]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/lib.sh"
SECS=${1:-10}
ROUNDS=${2:-3}
CLIENTS=${RF_BENCH_CLIENTS:-2}

rf_deps
rf_build "$ROOT"
RUN=$(mktemp -d /tmp/retailflow-bench.XXXXXX); chmod 755 "$RUN"
BIN=""
cleanup() { [ -n "$BIN" ] && rf_cluster_stop "$BIN" "$RUN/data"; rm -rf "$RUN"; }
trap cleanup EXIT
BIN=$(rf_temp_install "$ROOT" "$RUN/install") || exit 1
export PATH="$BIN:$PATH"
rf_cluster_start "$BIN" "$RUN/data" "$RUN/sock" "max_connections = 20" "shared_buffers = 256MB"
cp -a "$ROOT/test/fixtures" "$RUN/fixtures"; [ "$(id -u)" = 0 ] && chown -R postgres "$RUN/fixtures"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$RUN/sock" -U postgres)
rf_as_pg "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'"
rf_log "generating the small fixture"
rf_as_pg "${PSQL[@]}" -d bench -c "SET client_min_messages = warning" -f "$RUN/fixtures/odoo17_schema.sql" \
  -f "$RUN/fixtures/generate.sql" -c "SELECT rf_fixture_generate(10, 1000, 20000, 5000)" >/dev/null \
  || rf_die "fixture failed"
rf_as_pg "${PSQL[@]}" -d bench >/dev/null <<'SQL' || rf_die "bench setup failed"
SET client_min_messages = warning;
CREATE EXTENSION retailflow;
-- three more companies so that company-scoped rules exist for others
INSERT INTO res_company (id, name, partner_id, currency_id, layout_background, fiscalyear_last_day,
                         fiscalyear_last_month, account_opening_date, po_lead, security_lead, active)
SELECT c, 'Co ' || c, 1, 1, 'Blank', 31, '12', '2024-01-01', 0, 0, true FROM generate_series(2, 4) c;
-- 200 active sale.order rules of every kind (and 20 inactive ones)
INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, amount_max, max_discount,
                                      min_margin, product_category_id, partner_category_ids, group_id, level,
                                      sequence, sla, active)
SELECT 'band ' || k, 'sale.order', NULL::int, k * 250, (k + 1) * 250, NULL::numeric, NULL::numeric, NULL::int, NULL::int[], 6, 1 + k % 3, k,
       interval '4 hours', true FROM generate_series(0, 39) k
UNION ALL
SELECT 'other company ' || k, 'sale.order', 2 + k % 3, k * 100, NULL, NULL, NULL, NULL, NULL, 6, 1, k, NULL::interval, true
  FROM generate_series(0, 39) k
UNION ALL
SELECT 'discount ' || k, 'sale.order', NULL, NULL, NULL, 5 + k % 10, NULL, 3 + k % 6, NULL, 4, 2, k, NULL, true
  FROM generate_series(0, 39) k
UNION ALL
SELECT 'margin ' || k, 'sale.order', NULL, NULL, NULL, NULL, 10 + k % 20, 3 + k % 6, NULL, 6, 2, k, NULL, true
  FROM generate_series(0, 39) k
UNION ALL
SELECT 'segment ' || k, 'sale.order', 1, 500 * (k % 8), NULL, NULL, NULL, NULL, ARRAY[1 + k % 3], 6, 3, k, NULL, true
  FROM generate_series(0, 39) k
UNION ALL
SELECT 'inactive ' || k, 'sale.order', NULL, 0, NULL, NULL, NULL, NULL, NULL, 6, 1, k, NULL, false
  FROM generate_series(0, 19) k;
-- the confirmation workload: every order matching a rule has its approvals granted
-- (requested by the salesperson, approved by the admin, user 2)
UPDATE sale_order SET create_uid = 4 WHERE create_uid = 2;
SELECT count(*) FROM sale_order s, LATERAL retailflow.request_approvals('sale.order', s.id, 5) r,
       LATERAL retailflow.approve(r.id, 2) a;
UPDATE sale_order SET state = 'draft';
UPDATE sale_order_line SET state = 'draft';
VACUUM ANALYZE;
SQL
rf_as_pg "${PSQL[@]}" -d bench -At -c "SELECT 'orders ' || count(*) || ', active rules ' || (SELECT count(*) FROM retailflow.approval_rule WHERE active) || ', matches per order (avg) ' || round(avg(n), 2) || ', requests ' || (SELECT count(*) FROM retailflow.approval_request) FROM (SELECT s.id, (SELECT count(*) FROM retailflow.required_approvals('sale.order', s.id)) n FROM sale_order s) x"
NSO=$(rf_as_pg "${PSQL[@]}" -d bench -At -c "SELECT max(id) FROM sale_order")
ORDERS=$(rf_as_pg "${PSQL[@]}" -d bench -At -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM sale_order WHERE state = 'draft'")

cat > "$RUN/floor.sql" <<'SQL'
SELECT 1;
SQL
cat > "$RUN/required.sql" <<SQL
\set id random(1, $NSO)
SELECT * FROM retailflow.required_approvals('sale.order', :id);
SQL
# reference: the cheapest SQL that reads the document at all (its row, by primary key)
cat > "$RUN/pk.sql" <<SQL
\set id random(1, $NSO)
SELECT id, amount_total, currency_rate, partner_id, company_id FROM sale_order WHERE id = :id;
SQL
# confirm a random draft order and its lines, then put them back (one transaction each way)
cat > "$RUN/confirm.sql" <<SQL
\set id random(1, $NSO)
UPDATE sale_order SET state = 'sale' WHERE id = :id AND state = 'draft';
UPDATE sale_order_line SET state = 'sale' WHERE order_id = :id AND state = 'draft';
UPDATE sale_order SET state = 'draft' WHERE id = :id;
UPDATE sale_order_line SET state = 'draft' WHERE order_id = :id;
SQL
chmod 644 "$RUN"/*.sql

tps() {  # tps SCRIPT: pgbench -M simple throughput
  rf_as_pg pgbench -h "$RUN/sock" -U postgres -M simple -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$1" bench 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
attach() { rf_as_pg "${PSQL[@]}" -d bench -c "SELECT count(*) FROM retailflow.attach()" >/dev/null; }
detach() {
  rf_as_pg "${PSQL[@]}" -d bench -c "DROP TRIGGER retailflow_approval_enforce ON sale_order" >/dev/null
}

rf_log "required_approvals vs SELECT 1 ($ROUNDS rounds x ${SECS}s, $CLIENTS clients)"
F=0; R=0; K=0
for i in $(seq "$ROUNDS"); do
  f=$(tps "$RUN/floor.sql"); r=$(tps "$RUN/required.sql"); k=$(tps "$RUN/pk.sql")
  printf '  round %s: SELECT 1 %10.0f tps   required_approvals %10.0f tps   sale_order by id %10.0f tps\n' "$i" "$f" "$r" "$k"
  F=$(echo "$F + $f" | bc -l); R=$(echo "$R + $r" | bc -l); K=$(echo "$K + $k" | bc -l)
done
RATIO1=$(echo "100 * $R / $F" | bc -l)
RATIO1K=$(echo "100 * $K / $F" | bc -l)

rf_log "confirming sale orders: enforcement triggers attached (log) vs detached"
B=0; E=0
for i in $(seq "$ROUNDS"); do
  detach; b=$(tps "$RUN/confirm.sql")
  attach; e=$(tps "$RUN/confirm.sql")
  printf '  round %s: detached %10.0f tps   attached %10.0f tps\n' "$i" "$b" "$e"
  B=$(echo "$B + $b" | bc -l); E=$(echo "$E + $e" | bc -l)
done
RATIO2=$(echo "100 * $E / $B" | bc -l)
NEW=$(rf_as_pg "${PSQL[@]}" -d bench -At -c "SELECT count(*) FROM retailflow.audit_log WHERE action = 'approval.enforcement_logged'")

printf 'required_approvals: %.1f%% of the SELECT 1 floor (target >= 60%%); reference: SELECT of the order by primary key %.1f%%\n' "$RATIO1" "$RATIO1K"
printf 'enforcement on sale order confirmation: %.1f%% of throughput retained (target >= 90%%); enforcement rows logged: %s\n' "$RATIO2" "$NEW"
