-- monitoring: every query of monitoring/postgres_exporter_queries.yaml runs
-- against a real retailflow database (so a renamed column breaks this test,
-- not the operator's dashboards).
CREATE DATABASE rf_t_monitoring TEMPLATE rf_tiny OWNER rf_odoo;
-- the exporter connects as a reporting role: retailflow_reader, plus SELECT on
-- the Odoo tables, which Odoo's role (their owner) grants (docs/security.md)
\c rf_t_monitoring rf_odoo
GRANT SELECT ON ALL TABLES IN SCHEMA public TO rf_reader;
\c rf_t_monitoring postgres
\getenv abs_srcdir PG_ABS_SRCDIR
\set yaml :abs_srcdir '/monitoring/postgres_exporter_queries.yaml'
CREATE TEMP TABLE q AS
SELECT (regexp_matches(pg_read_file(:'yaml'), E'\n([a-z_]+):\n  query: \\|\n((?:    [^\n]*\n)+)', 'g')) AS m;
SELECT count(*) AS queries FROM q;
GRANT SELECT ON q TO rf_reader;
SET ROLE rf_reader;
DO $$
DECLARE r record; n bigint;
BEGIN
    FOR r IN SELECT m[1] AS name, m[2] AS sql FROM q ORDER BY 1 LOOP
        EXECUTE 'SELECT count(*) FROM (' || r.sql || ') x' INTO n;
        RAISE NOTICE '% runs', r.name;
    END LOOP;
END $$;
RESET ROLE;
-- the Grafana dashboard is valid JSON and uses only metrics the queries define
-- (postgres_exporter names them <query name>_<column>)
\set dash :abs_srcdir '/monitoring/grafana_dashboard.json'
WITH metrics AS (
    SELECT q.m[1] || '_' || c[1] AS metric
    FROM (SELECT (regexp_matches(pg_read_file(:'yaml'), E'\n([a-z_]+):\n  query: \\|\n(?:    [^\n]*\n)+  metrics:\n((?:    - [^\n]*\n)+)', 'g')) AS m) q,
         regexp_matches(q.m[2], E'- ([a-z0-9_]+): \\{usage: "(?:GAUGE|COUNTER)"', 'g') AS c
), used AS (
    SELECT DISTINCT u[1] AS metric
    FROM jsonb_path_query(pg_read_file(:'dash')::jsonb, '$.panels[*].targets[*].expr') AS e,
         regexp_matches(e #>> '{}', '(retailflow_[a-z0-9_]+)', 'g') AS u
)
SELECT (SELECT count(*) FROM used) AS metrics_used,
       (SELECT count(*) FROM used WHERE metric NOT IN (SELECT metric FROM metrics)) AS undefined;
\c rf_regression postgres
DROP DATABASE rf_t_monitoring;
