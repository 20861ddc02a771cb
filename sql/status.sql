-- status: extension status, Odoo version detection (17, 18 supported; 16 and
-- older refused naming the column), and clear errors without Odoo tables.
\getenv abs_srcdir PG_ABS_SRCDIR
\set delta18 :abs_srcdir '/test/fixtures/odoo18_delta.sql'
\set delta16 :abs_srcdir '/test/fixtures/odoo16_delta.sql'
-- a database without Odoo's tables
CREATE DATABASE rf_t_status_empty TEMPLATE rf_empty;
\c rf_t_status_empty
SELECT component, name, status FROM retailflow.status() WHERE component <> 'table' ORDER BY 1, 2;
SELECT retailflow.odoo_version() IS NULL AS "no odoo";
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
SELECT rft.err('SELECT * FROM retailflow.product_quantities()');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(1)');
SELECT * FROM retailflow.attach();
-- Odoo 17
CREATE DATABASE rf_t_status17 TEMPLATE rf_odoo17;
\c rf_t_status17
SELECT * FROM retailflow.status() ORDER BY component, name;
SELECT retailflow.odoo_version();
-- triggers attached at CREATE EXTENSION, idempotent attach()
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname LIKE 'retailflow%' ORDER BY tgrelid::regclass::text, 2;
SELECT * FROM retailflow.attach();
-- another schema for Odoo's tables
SET retailflow.odoo_schema = 'nowhere';
SELECT status, detail FROM retailflow.status() WHERE name IN ('version', 'schema') ORDER BY name;
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
RESET retailflow.odoo_schema;
-- unknown GUCs in our prefix are refused
SELECT rft.err('SET retailflow.no_such_setting = 1');
-- Odoo 18 shape
CREATE DATABASE rf_t_status18 TEMPLATE rf_odoo17;
\c rf_t_status18
\set ECHO none
\i :delta18
\set ECHO all
SELECT retailflow.odoo_version();
SELECT status, detail FROM retailflow.status() WHERE name = 'version';
-- Odoo 16 shape: refused, naming the column
CREATE DATABASE rf_t_status16 TEMPLATE rf_odoo17;
\c rf_t_status16
\set ECHO none
\i :delta16
\set ECHO all
SELECT retailflow.odoo_version();
SELECT status, detail FROM retailflow.status() WHERE name = 'version';
SELECT rft.err('SELECT retailflow.available_qty(1, 1)');
SELECT rft.err('SELECT * FROM retailflow.product_quantities()');
-- DROP EXTENSION leaves Odoo's tables without retailflow triggers
\c rf_t_status17
DROP EXTENSION retailflow;
SELECT count(*) AS retailflow_triggers_left FROM pg_trigger WHERE tgname LIKE 'retailflow%';
CREATE EXTENSION retailflow;
SELECT count(*) AS retailflow_triggers FROM pg_trigger WHERE tgname LIKE 'retailflow%';
\c rf_regression
DROP DATABASE rf_t_status_empty;
DROP DATABASE rf_t_status17;
DROP DATABASE rf_t_status18;
DROP DATABASE rf_t_status16;
