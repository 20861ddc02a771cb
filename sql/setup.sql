-- setup: builds the template databases the other tests clone.  Runs first.
--   rf_empty   no Odoo tables, retailflow installed
--   rf_odoo17  Odoo 17 schema (no rows), retailflow installed
--   rf_tiny    Odoo 17 schema + the deterministic "tiny" retail network, retailflow installed
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/test/fixtures/odoo17_schema.sql'
\set generate_file :abs_srcdir '/test/fixtures/generate.sql'
\set helpers_file :abs_srcdir '/test/fixtures/helpers.sql'
SET client_min_messages = warning;
DROP DATABASE IF EXISTS rf_empty;
DROP DATABASE IF EXISTS rf_odoo17;
DROP DATABASE IF EXISTS rf_tiny;
CREATE DATABASE rf_empty TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8';
CREATE DATABASE rf_odoo17 TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8';
\c rf_empty
CREATE EXTENSION retailflow;
SET check_function_bodies = off;
\set ECHO none
\i :helpers_file
\set ECHO all
\c rf_odoo17
SET client_min_messages = warning;
\set ECHO none
\i :schema_file
\i :generate_file
\i :helpers_file
\set ECHO all
CREATE EXTENSION retailflow;
SELECT retailflow.odoo_version();
\c rf_regression
-- generated before CREATE EXTENSION, as a retailflow install meets an existing Odoo
CREATE DATABASE rf_tiny TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8';
\c rf_tiny
SET client_min_messages = warning;
\set ECHO none
\i :schema_file
\i :generate_file
\i :helpers_file
\set ECHO all
SELECT rf_fixture_generate(3, 30, 300, 100) IS NOT NULL AS generated;
CREATE EXTENSION retailflow;
ANALYZE;
SELECT count(*) > 0 AS has_quants FROM stock_quant;
\c rf_regression
