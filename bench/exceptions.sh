#!/bin/bash
# bench/exceptions.sh: timings of the exception checks, the exceptions view,
# replenishment, stockout and order risk, and the KPIs on the bench-scale
# generated network (100 warehouses, 50k products, 1M quants, 200k moves).
# Prints median milliseconds of N runs and the ratio against a baseline
# measured in the same run (a sequential count(*) of stock_quant).  Every
# run of a conflict kind pays the shared conflict scan, as in production.
# Usage: bash bench/exceptions.sh [runs (default 3)]   (run as root or postgres)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/lib.sh"
RUNS=${1:-3}
WORK=$(mktemp -d /tmp/rf-bench-exceptions.XXXXXX)
trap 'rf_cluster_stop "$BIN" "$WORK/data"; rm -rf "$WORK"' EXIT
rf_deps
rf_build "$ROOT"
BIN=$(rf_temp_install "$ROOT" "$WORK/install")
rf_cluster_start "$BIN" "$WORK/data" "$WORK/sock" "shared_buffers = 512MB" "work_mem = 64MB" "max_wal_size = 4GB" "jit = off"
PSQL() { rf_as_pg "$BIN/psql" -h "$WORK/sock" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
PSQL -c "CREATE DATABASE bench TEMPLATE template0 LOCALE 'C'"
rf_log "generating the bench network (about 40 s)"
PSQL -d bench -f "$ROOT/test/fixtures/odoo17_schema.sql" >/dev/null
PSQL -d bench -f "$ROOT/test/fixtures/generate.sql" >/dev/null
PSQL -d bench -c "SELECT rf_fixture_generate(100, 50000, 1000000, 200000)" >/dev/null
PSQL -d bench -c "CREATE EXTENSION retailflow" -c "VACUUM ANALYZE" >/dev/null
rf_log "measuring ($RUNS runs each, median)"
PSQL -d bench -v runs="$RUNS" <<'SQL'
\pset footer off
SET client_min_messages = warning;
SET retailflow.now_override = '2024-07-01 00:00:00+00';
CREATE FUNCTION pg_temp.t(stmt text, runs int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; ms double precision[] := '{}';
BEGIN
    FOR i IN 1..runs LOOP
        -- forget the conflict scan this transaction already made: every run pays it,
        -- as a check run alone (or a scheduler tick) in its own transaction does
        DROP TABLE IF EXISTS pg_temp.rf_conflicts_tx_meta;
        t0 := clock_timestamp();
        EXECUTE stmt;
        ms := ms || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END $$;
CREATE TEMP TABLE r (step int, what text, ms double precision);
INSERT INTO r SELECT 0, 'baseline: SELECT count(*) FROM stock_quant', pg_temp.t('SELECT count(*) FROM stock_quant', :runs);
-- warm the availability cache of this session, as the background worker's is
SELECT count(*) > 0 AS warmed FROM retailflow.product_quantities(ARRAY[1]);
-- first run of every check: opens every exception and emits its event
INSERT INTO r SELECT 1, 'first run_checks() (opens all, emits events)', pg_temp.t('SELECT * FROM retailflow.run_checks()', 1);
INSERT INTO r SELECT 2, 'steady run_checks(' || kind || ')',
       pg_temp.t(format('SELECT * FROM retailflow.run_checks(ARRAY[%L])', kind), :runs)
FROM retailflow.exception_check WHERE kind NOT LIKE 'approval%' AND kind NOT LIKE 'webhook%' ORDER BY kind;
INSERT INTO r SELECT 3, 'steady run_checks() (all)', pg_temp.t('SELECT * FROM retailflow.run_checks()', :runs);
INSERT INTO r SELECT 3, 'run_due_checks() with nothing due', pg_temp.t('SELECT * FROM retailflow.run_due_checks(''2024-07-01 00:00:01+00'')', :runs);
INSERT INTO r SELECT 4, 'SELECT * FROM retailflow.exceptions (full view)', pg_temp.t('SELECT * FROM retailflow.exceptions ORDER BY severity, kind, since', :runs);
INSERT INTO r SELECT 4, 'exceptions view: count per kind/severity', pg_temp.t('SELECT kind, severity, count(*) FROM retailflow.exceptions GROUP BY 1, 2', :runs);
INSERT INTO r SELECT 5, 'replenishment_needs()', pg_temp.t('SELECT count(*) FROM retailflow.replenishment_needs()', :runs);
INSERT INTO r SELECT 5, 'stockout_risk()', pg_temp.t('SELECT count(*) FROM retailflow.stockout_risk()', :runs);
INSERT INTO r SELECT 5, 'order_risk() x 1000 orders', pg_temp.t('SELECT count(*) FROM generate_series(1, 1000) s, retailflow.order_risk(s * 50)', 1);
INSERT INTO r SELECT 6, 'kpi_order_release (year)', pg_temp.t('SELECT count(*) FROM retailflow.kpi_order_release(''2024-01-01'', ''2025-01-01'')', :runs);
INSERT INTO r SELECT 6, 'kpi_fulfilment_latency (year)', pg_temp.t('SELECT count(*) FROM retailflow.kpi_fulfilment_latency(''2024-01-01'', ''2025-01-01'')', :runs);
INSERT INTO r SELECT 6, 'kpi_return_cycle (year)', pg_temp.t('SELECT count(*) FROM retailflow.kpi_return_cycle(''2024-01-01'', ''2025-01-01'')', :runs);
INSERT INTO r SELECT 6, 'kpi_stock_accuracy (year)', pg_temp.t('SELECT count(*) FROM retailflow.kpi_stock_accuracy(''2024-01-01'', ''2025-01-01'')', :runs);
INSERT INTO r SELECT 6, 'kpi_exceptions (year)', pg_temp.t('SELECT count(*) FROM retailflow.kpi_exceptions(''2024-01-01'', ''2025-01-01'')', :runs);
SELECT kind, last_open AS open_exceptions FROM retailflow.exception_check WHERE last_status = 'ok' ORDER BY kind;
SELECT what, round(ms::numeric, 1) AS median_ms,
       round((ms / (SELECT ms FROM r WHERE step = 0))::numeric, 2) AS x_baseline
FROM r ORDER BY step, what;
SQL
