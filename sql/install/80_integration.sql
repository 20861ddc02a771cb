-- 80_integration.sql: wiring between capabilities that were built apart:
-- every reservation-conflict kind is an exception kind (one conflict scan per
-- run_checks() shared by all of them), and pg_dump includes retailflow's
-- configuration and state tables.

-- The conflict scan, kept once per transaction (C, in the transaction's
-- memory) so that the conflict kinds of one run_checks() share a single scan
-- of quants, moves and lines.
CREATE FUNCTION retailflow.conflicts_for_checks()
RETURNS TABLE (kind text, severity text, product_id integer, location_id integer, lot_id integer,
               package_id integer, owner_id integer, warehouse_id integer, record_id integer,
               expected numeric, actual numeric, detail text)
AS 'MODULE_PATHNAME', 'rf_conflicts_for_checks'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION retailflow.conflicts_for_checks() FROM PUBLIC;

INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query)
SELECT 'conflict_' || k.kind, k.sev, k.action, k.descr, '{stock_quant,stock_move,stock_move_line}',
       format($q$
 SELECT %L AS model, %s AS record_id,
        format('product %%s at location %%s', c.product_id, c.location_id) AS reference,
        NULL::timestamptz AS since, NULL::integer AS user_id, NULL::integer AS team_id,
        NULL::integer AS company_id, %s AS warehouse_id, %s AS reason,
        jsonb_build_object('product_id', c.product_id, 'location_id', c.location_id, 'lot_id', c.lot_id,
                           'package_id', c.package_id, 'owner_id', c.owner_id,
                           'expected', c.expected, 'actual', c.actual) AS data,
        NULL::text AS severity
 FROM retailflow.conflicts_for_checks() c WHERE c.kind = %L %s
$q$, k.model, k.rec, k.wh, k.reason, k.kind, k.grp)
FROM (VALUES
  ('reservation_mismatch', 'high', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Run retailflow.repair_reservations() (dry run first) or unreserve and reserve the moves again in Odoo',
   'Quants'' reserved quantity differs from the open move lines reserving them'),
  ('reserved_in_bypass_location', 'high', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Run retailflow.repair_reservations(); Odoo never reserves in supplier, customer, inventory, production or scrap locations',
   'Reserved quantity in a location where Odoo never reserves'),
  ('reservation_without_quant', 'high', 'stock.move.line', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Run retailflow.repair_reservations() or unreserve the move lines in Odoo',
   'Open move lines reserving stock that no quant holds'),
  ('over_reservation', 'critical', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Unreserve the surplus or count the location: more is promised than is on hand',
   'More reserved than on hand for a quant key'),
  ('negative_reservation', 'high', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Run retailflow.repair_reservations()', 'Negative reserved quantity'),
  ('negative_stock', 'high', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Count the location and apply an inventory adjustment', 'Negative on-hand stock in an internal location'),
  ('duplicate_quant', 'low', 'stock.quant', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Nothing urgent: Odoo merges duplicate quants in its quant housekeeping', 'Several quants for one quant key'),
  ('serial_overstock', 'high', 'stock.lot', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Find the duplicated serial number and correct it with an inventory adjustment',
   'A serial number holding more than one unit'),
  ('serial_duplicated', 'medium', 'stock.lot', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Check where the serial number really is and correct the other quant',
   'A serial number in more than one internal quant'),
  ('move_quantity_mismatch', 'high', 'stock.move', 'c.record_id', 'c.warehouse_id', 'c.detail', '',
   'Unreserve and reserve the move again in Odoo', 'A move whose quantity differs from its move lines')
) AS k(kind, sev, model, rec, wh, reason, grp, action, descr);

-- oversell risk is per (warehouse, product): one exception per product, naming the warehouses
INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('conflict_oversell_risk', 'high',
 'Replenish or transfer stock, or stop promising it: open demand exceeds stock plus expected receipts',
 'Open outgoing demand greater than on hand plus incoming in a warehouse',
 '{stock_quant,stock_move,stock_move_line}',
 $q$
 SELECT 'product.product' AS model, c.product_id AS record_id, format('product %s', c.product_id) AS reference,
        NULL::timestamptz AS since, NULL::integer AS user_id, NULL::integer AS team_id,
        NULL::integer AS company_id, min(c.warehouse_id) AS warehouse_id,
        string_agg(c.detail, '; ') AS reason,
        jsonb_build_object('product_id', c.product_id, 'warehouses', jsonb_agg(c.warehouse_id)) AS data,
        NULL::text AS severity
 -- aggregated in the subquery's order (one sort, instead of one per product for ORDER BY in the aggregates)
 FROM (SELECT c.product_id, c.warehouse_id, c.detail
       FROM retailflow.conflicts_for_checks() c WHERE c.kind = 'oversell_risk'
       ORDER BY c.product_id, c.warehouse_id OFFSET 0) c
 GROUP BY c.product_id
$q$);

-- Every change repair_reservations() applies also goes to the tamper-evident
-- audit trail (the exception log keeps the operational record).
CREATE FUNCTION retailflow.audit_repair_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.audit('reservation_repaired', NEW.model, NEW.record_id,
                             jsonb_build_object('reserved_quantity', NEW.actual, 'keys', NEW.keys),
                             jsonb_build_object('reserved_quantity', NEW.expected, 'keys', NEW.keys,
                                                'detail', NEW.detail));
    RETURN NULL;
END
$$;
CREATE TRIGGER exception_log_audit_repair
    AFTER INSERT ON retailflow.exception_log
    FOR EACH ROW WHEN (NEW.source = 'repair')
    EXECUTE FUNCTION retailflow.audit_repair_trigger();

-- pg_dump includes the configuration an operator writes (rules, endpoints
-- with their secrets, subscriptions); see docs/operations.md for the rest.
SELECT pg_catalog.pg_extension_config_dump('retailflow.approval_rule', '');
SELECT pg_catalog.pg_extension_config_dump('retailflow.approval_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retailflow.endpoint', '');
SELECT pg_catalog.pg_extension_config_dump('retailflow.endpoint_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retailflow.subscription', '');
