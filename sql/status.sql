-- status: extension status, Odoo version detection (17, 18 supported; 16 and
-- older refused naming the column), clear errors without Odoo tables, the
-- deployment model as status() reports it, the plain-table rule (a view in
-- place of an Odoo table is refused), and changes of the managed triggers by
-- the tables' owner (recorded, and repaired by attach()).
\getenv abs_srcdir PG_ABS_SRCDIR
\set delta18 :abs_srcdir '/test/fixtures/odoo18_delta.sql'
\set delta16 :abs_srcdir '/test/fixtures/odoo16_delta.sql'
-- a database without Odoo's tables
CREATE DATABASE rf_t_status_empty TEMPLATE rf_empty OWNER rf_odoo;
\c rf_t_status_empty rf_odoo
SELECT component, name, status FROM retailflow.status() WHERE component <> 'table' ORDER BY 1, 2;
SELECT retailflow.odoo_version() IS NULL AS "no odoo";
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
SELECT rft.err('SELECT * FROM retailflow.product_quantities()');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(1)');
SELECT * FROM retailflow.attach();
-- Odoo 17
\c rf_regression postgres
CREATE DATABASE rf_t_status17 TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_status17 rf_odoo
SELECT * FROM retailflow.status() ORDER BY component, name;
SELECT retailflow.odoo_version();
-- triggers attached at CREATE EXTENSION, idempotent attach() (Odoo's role may run it on its tables)
SELECT tgrelid::regclass, tgname, tgdeferrable FROM pg_trigger WHERE tgname LIKE 'retailflow%' ORDER BY tgrelid::regclass::text, 2;
SELECT * FROM retailflow.attach();
-- Odoo's role may not point retailflow at another schema; a superuser may
SELECT rft.err('SET retailflow.odoo_schema = ''nowhere''');
\c - postgres
SET retailflow.odoo_schema = 'nowhere';
SELECT status, detail FROM retailflow.status() WHERE name IN ('version', 'schema') ORDER BY name;
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
RESET retailflow.odoo_schema;
-- unknown GUCs in our prefix are refused
SELECT rft.err('SET retailflow.no_such_setting = 1');
-- a managed trigger dropped or disabled by the tables' owner: recorded (audit row,
-- event, exception), and attach() puts it back
\c - rf_odoo
DROP TRIGGER retailflow_capture ON sale_order;
ALTER TABLE stock_quant DISABLE TRIGGER retailflow_conflict_commit;
ALTER TABLE stock_move_line DISABLE TRIGGER USER;
SELECT action, after->>'table' AS tbl, after->>'trigger' AS trg, after->>'statement' AS statement, db_role
FROM retailflow.audit_log WHERE entity = 'retailflow.managed_trigger' ORDER BY id;
SELECT count(*) AS events FROM retailflow.outbox WHERE event_type = 'retailflow.trigger_changed';
SELECT reference, severity, reason FROM retailflow.exceptions WHERE kind = 'managed_trigger' ORDER BY reference;
ALTER TABLE stock_move_line ENABLE TRIGGER USER;
ALTER TABLE stock_quant ENABLE TRIGGER retailflow_conflict_commit;
SELECT * FROM retailflow.attach() WHERE action <> 'present';
\c - rf_admin
SELECT status, opened, resolved, open FROM retailflow.run_checks(ARRAY['managed_trigger']);
SELECT count(*) AS "still open" FROM retailflow.exceptions WHERE kind = 'managed_trigger';
-- a look-alike under a managed name (it does nothing): recorded, flagged by the check
-- as not the one retailflow created, and replaced by attach()
\c - rf_odoo
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE OR REPLACE TRIGGER retailflow_capture AFTER UPDATE ON sale_order FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT action, after->>'trigger' AS trg, after->>'statement' AS statement FROM retailflow.audit_log
WHERE entity = 'retailflow.managed_trigger' ORDER BY id DESC LIMIT 1;
SELECT reference, severity, reason, data->>'state' AS state FROM retailflow.exceptions WHERE kind = 'managed_trigger';
SELECT * FROM retailflow.attach() WHERE action <> 'present';
\c - rf_admin
SELECT status, opened, resolved, open FROM retailflow.run_checks(ARRAY['managed_trigger']);
\c - rf_odoo
-- attach() leaves its own changes unrecorded only while it runs: a drop later in the
-- same transaction is recorded, and so is the work of attach_triggers() called directly
BEGIN;
SELECT count(*) AS attached FROM retailflow.attach();
DROP TRIGGER retailflow_capture ON sale_order;
SELECT * FROM retailflow.attach_triggers() WHERE action <> 'present';
COMMIT;
SELECT action, after->>'trigger' AS trg FROM retailflow.audit_log
WHERE entity = 'retailflow.managed_trigger' ORDER BY id DESC LIMIT 2;
-- a view in place of an Odoo table: refused by every reader, reported by status()
ALTER TABLE stock_location RENAME TO stock_location_real;
CREATE VIEW stock_location AS SELECT * FROM stock_location_real;
SELECT name, status, detail FROM retailflow.status() WHERE name = 'stock_location';
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
SELECT rft.err('SELECT * FROM retailflow.reservation_conflicts()');
SELECT rft.err('SELECT * FROM retailflow.kpi_stock_accuracy(''2024-01-01'', ''2024-02-01'')');
DROP VIEW stock_location;
ALTER TABLE stock_location_real RENAME TO stock_location;
-- renaming a table that holds managed triggers is recorded too
SELECT action, after->>'table' AS tbl, after->>'trigger' AS trg, after->>'statement' AS statement
FROM retailflow.audit_log WHERE action LIKE 'managed_trigger.table%' ORDER BY id;
SELECT name, status FROM retailflow.status() WHERE name = 'stock_location';
-- Odoo 18 shape
\c rf_regression postgres
CREATE DATABASE rf_t_status18 TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_status18 rf_odoo
\set ECHO none
\i :delta18
\set ECHO all
SELECT retailflow.odoo_version();
SELECT status, detail FROM retailflow.status() WHERE name = 'version';
-- Odoo 16 shape: refused, naming the column
\c rf_regression postgres
CREATE DATABASE rf_t_status16 TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_status16 rf_odoo
\set ECHO none
\i :delta16
\set ECHO all
SELECT retailflow.odoo_version();
SELECT status, detail FROM retailflow.status() WHERE name = 'version';
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
SELECT rft.err('SELECT * FROM retailflow.product_quantities()');
-- DROP EXTENSION leaves Odoo's tables without retailflow triggers
\c rf_t_status17 postgres
DROP EXTENSION retailflow;
SELECT count(*) AS retailflow_triggers_left FROM pg_trigger WHERE tgname LIKE 'retailflow%';
CREATE EXTENSION retailflow;
SELECT count(*) AS retailflow_triggers FROM pg_trigger WHERE tgname LIKE 'retailflow%';
\c rf_regression postgres
DROP DATABASE rf_t_status_empty;
DROP DATABASE rf_t_status17;
DROP DATABASE rf_t_status18;
DROP DATABASE rf_t_status16;
