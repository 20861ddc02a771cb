-- integration: the capabilities working together: a reservation conflict
-- becomes an exception (with its event), repair_reservations() fixes it and
-- its change lands in the tamper-evident audit trail, the exception closes.
-- Odoo's writes and the repair as Odoo's role (rf_odoo), the checks as the
-- administrator (rf_admin); the clock is set by the DBA.
CREATE DATABASE rf_t_integration TEMPLATE rf_odoo17 OWNER rf_odoo;
ALTER DATABASE rf_t_integration SET retailflow.now_override = '2024-07-01 00:00:00+00';
\c rf_t_integration rf_odoo
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.warehouse('WH', :phys) AS wh \gset
SELECT rft.stock_of(:wh) AS stock \gset
SELECT rft.product('P') AS p \gset
-- a quant reserving 4 of 10 with no move line behind it: Odoo's invariant broken
SELECT rft.quant(:p, :stock, 10, 4) AS q \gset
SELECT kind, severity, expected, actual FROM retailflow.reservation_conflicts() ORDER BY kind;
\c - rf_admin
SELECT kind, status, opened, resolved, open FROM retailflow.run_checks(ARRAY(
    SELECT kind FROM retailflow.exception_check WHERE kind LIKE 'conflict\_%' ORDER BY kind)) ORDER BY kind;
SELECT kind, severity, model, record_id = :q AS is_quant, reason FROM retailflow.exceptions ORDER BY kind;
SELECT event_type, model, record_id = :q AS is_quant, data->>'kind' AS kind
FROM retailflow.outbox WHERE event_type LIKE 'exception.%' ORDER BY id;
-- repair: the quant is set to what the move lines reserve (nothing)
\c - rf_odoo
SELECT action, quant_id = :q AS is_quant, old_reserved, new_reserved FROM retailflow.repair_reservations(dry_run => false);
SELECT reserved_quantity FROM stock_quant WHERE id = :q;
SELECT action, entity, entity_id = :q AS is_quant, before->>'reserved_quantity' AS before,
       after->>'reserved_quantity' AS after
FROM retailflow.audit_log WHERE action = 'reservation_repaired';
SELECT * FROM retailflow.verify_audit_log();
-- the next run closes the exception and announces it
\c - rf_admin
SELECT kind, status, opened, resolved, open FROM retailflow.run_checks(ARRAY['conflict_reservation_mismatch']);
SELECT count(*) AS open_exceptions FROM retailflow.exceptions;
SELECT event_type, data->>'kind' AS kind FROM retailflow.outbox WHERE event_type = 'exception.resolved';
-- pg_dump keeps the operator's configuration tables
\c - postgres
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'retailflow';
\c rf_regression postgres
DROP DATABASE rf_t_integration;
