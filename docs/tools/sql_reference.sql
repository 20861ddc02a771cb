-- docs/tools/sql_reference.sql: prints docs/sql-reference.md from the catalog
-- of a database where retailflow is installed:
--   psql -X -At -d DB -f docs/tools/sql_reference.sql > docs/sql-reference.md
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = 'retailflow' AND d.deptype = 'e'
), funcs AS (
    SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result,
           coalesce(obj_description(p.oid, 'pg_proc'), '') AS descr
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    WHERE pg_get_function_result(p.oid) NOT IN ('trigger', 'event_trigger')
), rels AS (
    SELECT c.relname, c.relkind, coalesce(obj_description(c.oid, 'pg_class'), '') AS descr
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    WHERE c.relkind IN ('r', 'v')
)
SELECT concat_ws(E'\n',
  '# SQL reference',
  '',
  'Every function, view and table of schema `retailflow`, generated from the catalog by',
  '`docs/tools/sql_reference.sql` (the regression test `sql/sql_reference.sql` fails when an',
  'object is missing here). Functions marked *Internal* are helpers of the others. Each',
  'capability''s document (conflicts.md, webhooks.md, approvals.md, exceptions.md) explains',
  'semantics, errors and examples; README.md covers availability.',
  '',
  '## Functions',
  '',
  '| function | returns | description |',
  '| --- | --- | --- |',
  (SELECT string_agg(format('| `retailflow.%s(%s)` | %s | %s |', proname, replace(args, '|', '\|'),
                            replace(result, '|', '\|'), replace(descr, '|', '\|')), E'\n' ORDER BY proname, args)
   FROM funcs),
  '',
  '## Views',
  '',
  '| view | description |',
  '| --- | --- |',
  (SELECT string_agg(format('| `retailflow.%s` | %s |', relname, descr), E'\n' ORDER BY relname) FROM rels WHERE relkind = 'v'),
  '',
  '## Tables',
  '',
  '| table | description |',
  '| --- | --- |',
  (SELECT string_agg(format('| `retailflow.%s` | %s |', relname, descr), E'\n' ORDER BY relname) FROM rels WHERE relkind = 'r'),
  '');
