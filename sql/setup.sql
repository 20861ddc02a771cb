-- setup: builds the template databases the other tests clone.  Runs first.
-- Odoo runs as an ordinary role that owns its database and its tables; so do
-- the tests: rf_odoo (LOGIN CREATEDB, not a superuser) creates the Odoo
-- databases and loads them, a superuser installs the extension, and the
-- roles get exactly the grants README prescribes.
--   rf_empty   no Odoo tables, retailflow installed
--   rf_odoo17  Odoo 17 schema (no rows), retailflow installed
--   rf_tiny    Odoo 17 schema + the deterministic "tiny" retail network, retailflow installed
--   roles      rf_odoo (Odoo's role), rf_admin (webhook/approval administrator),
--              rf_reader (reporting)
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/test/fixtures/odoo17_schema.sql'
\set generate_file :abs_srcdir '/test/fixtures/generate.sql'
\set helpers_file :abs_srcdir '/test/fixtures/helpers.sql'
SET client_min_messages = warning;
DROP DATABASE IF EXISTS rf_empty;
DROP DATABASE IF EXISTS rf_odoo17;
DROP DATABASE IF EXISTS rf_tiny;
DROP ROLE IF EXISTS rf_odoo;
DROP ROLE IF EXISTS rf_admin;
DROP ROLE IF EXISTS rf_reader;
CREATE ROLE rf_odoo LOGIN CREATEDB;
CREATE ROLE rf_admin LOGIN;
CREATE ROLE rf_reader LOGIN;
CREATE DATABASE rf_empty TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER rf_odoo;
CREATE DATABASE rf_odoo17 TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER rf_odoo;
\c rf_empty
CREATE EXTENSION retailflow;
-- README's grants (the extension created the group roles)
GRANT retailflow_odoo TO rf_odoo;
GRANT retailflow_admin TO rf_admin;
GRANT retailflow_reader TO rf_reader;
\c rf_empty rf_odoo
SET check_function_bodies = off;
\set ECHO none
\i :helpers_file
\set ECHO all
\c rf_odoo17 rf_odoo
SET client_min_messages = warning;
\set ECHO none
\i :schema_file
\i :generate_file
\i :helpers_file
\set ECHO all
\c rf_odoo17 postgres
CREATE EXTENSION retailflow;
SELECT retailflow.odoo_version();
\c rf_regression postgres
-- generated before CREATE EXTENSION, as a retailflow install meets an existing Odoo
CREATE DATABASE rf_tiny TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER rf_odoo;
\c rf_tiny rf_odoo
SET client_min_messages = warning;
\set ECHO none
\i :schema_file
\i :generate_file
\i :helpers_file
\set ECHO all
SELECT rf_fixture_generate(3, 30, 300, 100) IS NOT NULL AS generated;
\c rf_tiny postgres
CREATE EXTENSION retailflow;
ANALYZE;
\c rf_tiny rf_odoo
SELECT count(*) > 0 AS has_quants FROM stock_quant;
-- Odoo's role owns every Odoo table and is not a superuser
SELECT r.rolsuper AS odoo_is_superuser, count(*) FILTER (WHERE c.relowner <> r.oid) AS tables_of_others
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
CROSS JOIN pg_roles r WHERE r.rolname = 'rf_odoo' AND c.relkind = 'r' GROUP BY r.rolsuper;
\c rf_regression postgres
