-- gucs: every retailflow setting is documented in docs/gucs.md (and nothing
-- documented there is missing from the server).
\getenv abs_srcdir PG_ABS_SRCDIR
\set gucdoc :abs_srcdir '/docs/gucs.md'
CREATE TEMP TABLE doc AS
SELECT DISTINCT m[1] AS name
FROM regexp_matches(pg_read_file(:'gucdoc'), '`(retailflow\.[a-z_]+)`', 'g') AS m;
SELECT count(*) > 20 AS many_settings FROM pg_settings WHERE name LIKE 'retailflow.%';
-- settings the server has but the table lacks (must be empty)
SELECT name AS undocumented FROM pg_settings WHERE name LIKE 'retailflow.%'
EXCEPT SELECT name FROM doc ORDER BY 1;
-- settings the table names that do not exist (must be empty)
SELECT name AS unknown FROM doc EXCEPT SELECT name FROM pg_settings ORDER BY 1;
