-- sql_reference: every function, view and table of the extension is listed
-- in docs/sql-reference.md (regenerate it with docs/tools/sql_reference.sql),
-- and every one has a description.
-- in a database where retailflow is installed
\c rf_empty
\getenv abs_srcdir PG_ABS_SRCDIR
\set refdoc :abs_srcdir '/docs/sql-reference.md'
CREATE TEMP TABLE doc AS
SELECT DISTINCT m[1] AS name FROM regexp_matches(pg_read_file(:'refdoc'), '`retailflow\.([a-z_0-9]+)', 'g') AS m;
CREATE TEMP TABLE objs AS
SELECT coalesce(p.proname, c.relname)::text AS name,
       coalesce(obj_description(p.oid, 'pg_proc'), obj_description(c.oid, 'pg_class')) AS descr
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'retailflow'
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
     AND pg_get_function_result(p.oid) NOT IN ('trigger', 'event_trigger')
LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid AND c.relkind IN ('r', 'v')
WHERE d.deptype = 'e' AND (p.oid IS NOT NULL OR c.oid IS NOT NULL);
SELECT count(*) > 50 AS many_objects FROM objs;
-- in the catalog but not in the reference (must be empty)
SELECT name AS undocumented FROM objs EXCEPT SELECT name FROM doc ORDER BY 1;
-- without a description (must be empty)
SELECT name AS no_description FROM objs WHERE coalesce(descr, '') = '' ORDER BY 1;
