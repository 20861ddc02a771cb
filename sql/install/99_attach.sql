-- 99_attach.sql: runs last; attaches every registered trigger to the Odoo
-- tables present at CREATE EXTENSION time.  Tables Odoo creates later are
-- picked up by SELECT retailflow.attach().
SELECT count(*) FILTER (WHERE action = 'created') AS triggers_attached FROM retailflow.attach();
