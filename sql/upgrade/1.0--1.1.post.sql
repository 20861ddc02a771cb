-- 1.0 -> 1.1, last: the triggers on Odoo's tables, from the registry.
SELECT count(*) AS triggers_attached FROM retailflow.attach();
