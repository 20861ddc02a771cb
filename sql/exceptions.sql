-- exceptions: the exception queue (registered checks, run_due_checks,
-- events, acknowledge/assign/resolve, self-closing), operational KPIs and
-- risk scoring on a hand-made Odoo 17 scenario with explicit dates.  The
-- scenario is written by Odoo's role (rf_odoo); the checks run as the
-- background worker would (a superuser) or as the administrator (rf_admin);
-- the clock and the check settings are the DBA's.
CREATE DATABASE rf_t_exceptions TEMPLATE rf_odoo17 OWNER rf_odoo;
ALTER DATABASE rf_t_exceptions SET retailflow.now_override = '2024-06-10 12:00:00+00';
-- the scenario's quants reserve without move lines: the conflict triggers stay out of its event list
ALTER DATABASE rf_t_exceptions SET retailflow.conflict_action = off;
\c rf_t_exceptions rf_admin
-- this scenario's moves carry quantities without move lines on purpose; the
-- reservation-conflict kinds are exercised in sql/integration.sql
UPDATE retailflow.exception_check SET enabled = false WHERE kind LIKE 'conflict\_%';
\c rf_t_exceptions rf_odoo
SET extra_float_digits = 0;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';

-- locations, two warehouses, picking types, teams, partners, products
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.loc('Partners', NULL, 'view') AS partners \gset
SELECT rft.loc('Vendors', :partners, 'supplier') AS vendors \gset
SELECT rft.loc('Customers', :partners, 'customer') AS customers \gset
SELECT rft.loc('Inventory adjustment', NULL, 'inventory') AS invloc \gset
SELECT rft.warehouse('WH1', :phys) AS wh1 \gset
SELECT rft.warehouse('WH2', :phys) AS wh2 \gset
SELECT rft.stock_of(:wh1) AS s1, rft.stock_of(:wh2) AS s2 \gset
INSERT INTO stock_picking_type (id, name, code, sequence_code, company_id, warehouse_id, reservation_method, create_backorder)
VALUES (1, '{"en_US": "Delivery"}', 'outgoing', 'OUT', 1, :wh1, 'at_confirm', 'ask'),
       (2, '{"en_US": "Receipt"}', 'incoming', 'IN', 1, :wh1, 'at_confirm', 'ask');
INSERT INTO crm_team (id, name, company_id, active) VALUES
  (1, '{"en_US": "Website"}', 1, true), (2, '{"en_US": "Stores"}', 1, true);
INSERT INTO res_partner (id, name, active, commercial_partner_id, street, city) VALUES
  (101, 'Alice (regular)', true, 101, '1 Main St', 'Springfield'),
  (102, 'Bob (new)', true, 102, '2 Side St', 'Springfield'),
  (103, 'Bob shipping', true, 103, '9 Far Away Rd', 'Shelbyville'),
  (104, 'Carol (burst)', true, 104, '3 Elm St', 'Springfield'),
  (105, 'Store walk-in', true, 105, '4 Oak St', 'Springfield'),
  (201, 'Vendor', true, 201, '5 Supply Rd', 'Capital');
SELECT rft.product('P1') AS p1, rft.product('P2') AS p2 \gset
INSERT INTO product_supplierinfo (partner_id, product_tmpl_id, currency_id, delay, min_qty, price)
SELECT 201, product_tmpl_id, 1, 7, 1, 5 FROM product_product WHERE id = :p1;

-- sale orders: (id, name, partner, invoice, shipping, team, state, amount, created, confirmed)
CREATE FUNCTION pg_temp.so(p_id int, p_name text, p_partner int, p_team int, p_state text, p_amount numeric,
                           p_created timestamp, p_confirmed timestamp, p_ship int DEFAULT NULL)
RETURNS int LANGUAGE sql AS $$
    INSERT INTO sale_order (id, name, partner_id, partner_invoice_id, partner_shipping_id, company_id, picking_policy,
                            warehouse_id, date_order, create_date, team_id, state, amount_total)
    VALUES (p_id, p_name, p_partner, p_partner, coalesce(p_ship, p_partner), 1, 'direct', 1,
            coalesce(p_confirmed, p_created), p_created, p_team, p_state, p_amount)
    RETURNING id
$$;
CREATE FUNCTION pg_temp.sol(p_order int, p_product int, p_qty numeric, p_price numeric, p_discount numeric DEFAULT 0)
RETURNS int LANGUAGE sql AS $$
    INSERT INTO sale_order_line (order_id, product_id, product_uom, product_uom_qty, price_unit, discount,
                                 customer_lead, name)
    VALUES (p_order, p_product, 1, p_qty, p_price, p_discount, 0, 'line') RETURNING id
$$;
CREATE FUNCTION pg_temp.pick(p_id int, p_name text, p_type int, p_state text, p_scheduled timestamp,
                             p_created timestamp, p_sale int DEFAULT NULL, p_done timestamp DEFAULT NULL,
                             p_return int DEFAULT NULL)
RETURNS int LANGUAGE sql AS $$
    INSERT INTO stock_picking (id, name, picking_type_id, state, scheduled_date, create_date, sale_id, date_done,
                               return_id, move_type, location_id, location_dest_id, company_id, origin)
    VALUES (p_id, p_name, p_type, p_state, p_scheduled, p_created, p_sale, p_done, p_return, 'direct',
            CASE WHEN p_type = 1 THEN (SELECT lot_stock_id FROM stock_warehouse WHERE code = 'WH1')
                 ELSE (SELECT id FROM stock_location WHERE usage = 'customer') END,
            CASE WHEN p_type = 1 THEN (SELECT id FROM stock_location WHERE usage = 'customer')
                 ELSE (SELECT lot_stock_id FROM stock_warehouse WHERE code = 'WH1') END, 1,
            (SELECT name FROM sale_order WHERE id = p_sale))
    RETURNING id
$$;
-- channel history: 10 confirmed Website orders of about 100, discounts 0-5%
SELECT count(pg_temp.so(i, 'S' || lpad(i::text, 5, '0'), 105, 1, 'sale', 95 + i, '2024-05-01 09:00',
                        '2024-05-01 09:00'::timestamp + make_interval(hours => i)))
FROM generate_series(1, 10) i;
SELECT count(pg_temp.sol(i, :p2, 1, 95 + i, i % 2 * 5)) FROM generate_series(1, 10) i;
-- Alice's own history: 4 orders of 90-110
SELECT pg_temp.so(11, 'S00011', 101, 2, 'sale', 100, '2024-04-01', '2024-04-01'),
       pg_temp.so(12, 'S00012', 101, 2, 'sale', 110, '2024-04-05', '2024-04-05'),
       pg_temp.so(13, 'S00013', 101, 2, 'sale', 90, '2024-04-09', '2024-04-09'),
       pg_temp.so(14, 'S00014', 101, 2, 'sale', 105, '2024-04-13', '2024-04-13');
-- SO 20: confirmed 2024-06-01, delivery still open (stuck); SO 21: confirmed yesterday (within SLA)
SELECT pg_temp.so(20, 'S00020', 101, 1, 'sale', 120, '2024-05-31 10:00', '2024-06-01 10:00'),
       pg_temp.so(21, 'S00021', 101, 1, 'sale', 130, '2024-06-09 08:00', '2024-06-09 10:00'),
       pg_temp.so(22, 'S00022', 105, 2, 'sale', 80, '2024-05-20 10:00', '2024-05-20 12:00'),
       pg_temp.so(23, 'S00023', 105, 2, 'sale', 70, '2024-05-21 10:00', '2024-05-21 11:00');
SELECT pg_temp.pick(1, 'WH1/OUT/00001', 1, 'assigned', '2024-06-12', '2024-06-01 10:00', 20),
       pg_temp.pick(2, 'WH1/OUT/00002', 1, 'confirmed', '2024-06-12', '2024-06-09 10:00', 21),
       pg_temp.pick(3, 'WH1/OUT/00003', 1, 'confirmed', '2024-06-05 08:00', '2024-06-04 08:00'),
       pg_temp.pick(4, 'WH1/OUT/00004', 1, 'assigned', '2024-06-20', '2024-06-01 08:00'),
       pg_temp.pick(5, 'WH1/OUT/00005', 1, 'done', '2024-05-21', '2024-05-20 12:00', 22, '2024-05-22 12:00'),
       pg_temp.pick(6, 'WH1/OUT/00006', 1, 'done', '2024-05-22', '2024-05-21 11:00', 23, '2024-05-21 17:00'),
       pg_temp.pick(7, 'WH1/IN/00001', 2, 'done', '2024-05-25', '2024-05-24 10:00', NULL, '2024-05-25 10:00', 5),
       pg_temp.pick(8, 'WH1/IN/00002', 2, 'done', '2024-05-26', '2024-05-25 10:00', NULL, '2024-05-26 10:00', 6),
       pg_temp.pick(9, 'WH1/IN/00003', 2, 'done', '2024-06-08', '2024-06-07 10:00', NULL, '2024-06-08 10:00', 6);
-- the partially available delivery WH1/OUT/00004: one move reserved, one partly
INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, name, procure_method,
                        product_uom_qty, product_qty, quantity, state, date, picking_id)
VALUES (1, :p2, 1, :s1, :customers, 'a', 'make_to_stock', 2, 2, 2, 'assigned', '2024-06-20', 4),
       (1, :p2, 1, :s1, :customers, 'b', 'make_to_stock', 5, 5, 1, 'partially_available', '2024-06-20', 4);
-- a refund for S00023 (return WH1/IN/00002 received 2024-05-26, refund posted 2024-05-28)
INSERT INTO account_move (id, name, move_type, state, currency_id, journal_id, date, auto_post, invoice_origin,
                          create_date, amount_total)
VALUES (1, 'INV/2024/00001', 'out_invoice', 'posted', 1, 1, '2024-05-21', 'no', 'S00023', '2024-05-21 12:00', 70),
       (2, 'RINV/2024/00001', 'out_refund', 'posted', 1, 1, '2024-05-28', 'no', NULL, '2024-05-28 10:00', 70),
       (3, 'RINV/2024/00002', 'out_refund', 'draft', 1, 1, '2024-05-28', 'no', 'S00022', '2024-05-28 10:00', 80);
UPDATE account_move SET reversed_entry_id = 1 WHERE id = 2;

-- stock: P1 5 free in WH1 (reordering rule min 10 / max 30 / multiple 4), 60 sold in May-June
SELECT rft.quant(:p1, :s1, 5) > 0, rft.quant(:p2, :s1, 3, 3) > 0, rft.quant(:p2, :s2, 50) > 0;
INSERT INTO stock_warehouse_orderpoint (name, warehouse_id, location_id, product_id, company_id, trigger,
                                        product_min_qty, product_max_qty, qty_multiple, active)
VALUES ('OP/00001', :wh1, :s1, :p1, 1, 'auto', 10, 30, 4, true),
       ('OP/00002', :wh2, :s2, :p2, 1, 'auto', 2, 0, 1, true),
       ('OP/00003', :wh1, :s1, :p2, 1, 'manual', 4, 0, 6, true);
INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, name, procure_method,
                        product_uom_qty, product_qty, quantity, state, date, is_inventory)
VALUES (1, :p1, 1, :s1, :customers, 'sold', 'make_to_stock', 40, 40, 40, 'done', '2024-05-20', false),
       (1, :p1, 1, :s1, :customers, 'sold', 'make_to_stock', 20, 20, 20, 'done', '2024-06-05', false),
       (1, :p1, 1, :s1, :customers, 'too old', 'make_to_stock', 99, 99, 99, 'done', '2024-04-01', false),
       (1, :p2, 1, :s2, :customers, 'sold', 'make_to_stock', 3, 3, 3, 'done', '2024-06-01', false),
       -- inventory adjustments: +2 of P1 and a confirmed count (0) of P2 in WH1, -4 of P2 in WH2
       (1, :p1, 1, :invloc, :s1, 'adj', 'make_to_stock', 2, 2, 2, 'done', '2024-06-02', true),
       (1, :p2, 1, :s1, :invloc, 'adj', 'make_to_stock', 0, 0, 0, 'done', '2024-06-02', true),
       (1, :p2, 1, :s2, :invloc, 'adj', 'make_to_stock', 4, 4, 4, 'done', '2024-06-03', true);

-- quotations to score: Bob's first order (big, other address, big quantity, big
-- discount), Alice's unusually large order, Carol's third order in a day
SELECT pg_temp.so(30, 'S00030', 102, 1, 'draft', 5000, '2024-06-10 09:00', NULL, 103),
       pg_temp.so(31, 'S00031', 101, 2, 'sent', 1000, '2024-06-10 10:00', NULL),
       pg_temp.so(32, 'S00032', 104, 1, 'sale', 90, '2024-06-10 07:00', '2024-06-10 07:00'),
       pg_temp.so(33, 'S00033', 104, 1, 'sale', 95, '2024-06-10 08:00', '2024-06-10 08:00'),
       pg_temp.so(34, 'S00034', 104, 1, 'draft', 99, '2024-06-10 09:30', NULL);
SELECT pg_temp.sol(30, :p1, 50, 200, 50) > 0, pg_temp.sol(31, :p2, 2, 500) > 0, pg_temp.sol(34, :p2, 1, 99) > 0;

\c - postgres
SET extra_float_digits = 0;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';
SET ROLE rf_odoo;
-- risk scores with their reasons
SELECT so.name, r.score, jsonb_pretty(r.reasons)
FROM sale_order so, retailflow.order_risk(so.id) r WHERE so.id IN (30, 31, 34, 21) ORDER BY so.id;
SELECT rft.err('SELECT retailflow.order_risk(NULL)');
SELECT rft.err('SELECT retailflow.order_risk(424242)');
-- parameters are a table the administrator edits: with a robust z threshold of 100, S00031 (z = 60.2) is no longer unusual
SELECT rft.err('UPDATE retailflow.risk_parameter SET value = 100 WHERE name = ''robust_z''');
SET ROLE rf_admin;
UPDATE retailflow.risk_parameter SET value = 100 WHERE name = 'robust_z';
SET ROLE rf_odoo;
SELECT score, reasons FROM retailflow.order_risk(31);
SET ROLE rf_admin;
UPDATE retailflow.risk_parameter SET value = 3.5 WHERE name = 'robust_z';
SET ROLE rf_odoo;

-- stockout risk: P1 sold 60 in the last 30 days (2/day): 5 free = 2.5 days < lead 7 + safety 3
SELECT * FROM retailflow.stockout_risk();
SELECT * FROM retailflow.stockout_risk(ARRAY[:wh2]);
SELECT rft.err('SELECT * FROM retailflow.stockout_risk(ARRAY[NULL]::int[])');
-- replenishment: forecast 5 < 10 -> max 30 - 5 = 25, rounded up to the multiple 4 -> 28;
-- OP/00003: free 0 < 4, forecast -4 (the open delivery) -> 4 + 4 = 8, rounded up to 6 -> 12
SELECT reference, product_ref, free_qty, forecast_qty, min_qty, max_qty, qty_multiple, qty_to_order
FROM retailflow.replenishment_needs() ORDER BY reference;

-- the registry
SELECT kind, severity, requires, enabled FROM retailflow.exception_check ORDER BY kind;

-- first scheduled run, as the background worker runs it (a superuser): every check is due
RESET ROLE;
SELECT * FROM retailflow.run_due_checks();
SELECT kind, severity, model, reference, since, reason, suggested_action
FROM retailflow.exceptions ORDER BY kind, model, record_id;
SELECT data FROM retailflow.exceptions WHERE kind IN ('replenishment', 'stockout_risk') ORDER BY kind, record_id;
-- one exception.opened event per exception
SELECT event_type, model, record_id, data->>'kind' AS kind, data->>'reference' AS reference, data->>'severity' AS severity
FROM retailflow.outbox ORDER BY id;
-- nothing is due again a second later
SELECT * FROM retailflow.run_due_checks('2024-06-10 12:00:01+00');
-- two minutes later everything is due again except late_picking (5 min)
SET retailflow.check_intervals = 'late_picking = 5 min, stockout_risk=1 hour';
SELECT * FROM retailflow.run_due_checks('2024-06-10 12:02:00+00');
SELECT count(*) AS "no new events" FROM retailflow.outbox;

-- the late picking is shipped: its exception closes itself at the next run
SET ROLE rf_odoo;
UPDATE stock_picking SET state = 'done', date_done = '2024-06-10 12:03' WHERE name = 'WH1/OUT/00003';
RESET ROLE;
SELECT * FROM retailflow.run_due_checks('2024-06-10 12:06:00+00');
SELECT event_type, model, record_id, data->>'kind' AS kind, data->>'how' AS how
FROM retailflow.outbox WHERE event_type = 'exception.resolved' ORDER BY id;
SELECT kind, reference, opened_at, closed_at, close_reason FROM retailflow.exception
WHERE closed_at IS NOT NULL ORDER BY id;

-- acknowledge, assign, annotate, resolve: Odoo's role (the Odoo module) does it
SET ROLE rf_odoo;
SELECT id AS stuck FROM retailflow.exceptions WHERE kind = 'stuck_order' \gset
SELECT id AS repl FROM retailflow.exceptions WHERE kind = 'replenishment' AND reference = 'OP/00001' \gset
SELECT kind, acknowledged_at, acknowledged_by IS NOT NULL AS by, assigned_user_id, note, closed_at
FROM retailflow.exception_ack(:stuck);
SELECT kind, acknowledged_at, assigned_user_id, note FROM retailflow.exception_ack(:stuck, 'assign', 4, 'carrier called');
SELECT kind, assigned_user_id, note FROM retailflow.exception_ack(:stuck, 'unassign');
RESET ROLE;
SET retailflow.now_override = '2024-06-10 12:30:00+00';
SET ROLE rf_odoo;
SELECT kind, acknowledged_at, closed_at, close_reason, resolved_by FROM retailflow.exception_ack(:repl, 'resolve', note => 'PO sent');
SELECT event_type, data->>'kind' AS kind, data->>'how' AS how, data->>'note' AS note
FROM retailflow.outbox ORDER BY id DESC LIMIT 1;
SELECT rft.err('SELECT retailflow.exception_ack(' || :repl || ', ''resolve'')');
SELECT rft.err('SELECT retailflow.exception_ack(424242)');
SELECT rft.err('SELECT retailflow.exception_ack(NULL)');
SELECT rft.err('SELECT retailflow.exception_ack(' || :stuck || ', ''delete'')');
SELECT rft.err('SELECT retailflow.exception_ack(' || :stuck || ', ''assign'')');
SELECT * FROM retailflow.exception_summary ORDER BY kind, severity;
-- resolved by hand but still below its minimum: the next run opens it again
SELECT rft.err('SELECT * FROM retailflow.run_checks(ARRAY[''replenishment''])');
SET ROLE rf_admin;
SELECT * FROM retailflow.run_checks(ARRAY['replenishment']);
SET ROLE rf_odoo;
SELECT count(*) AS "open OP/00001" FROM retailflow.exceptions WHERE reference = 'OP/00001';

-- KPIs over June (and May for returns)
SELECT * FROM retailflow.kpi_exceptions('2024-06-10', '2024-06-11');
SELECT * FROM retailflow.kpi_order_release('2024-05-01', '2024-07-01');
SELECT * FROM retailflow.kpi_fulfilment_latency('2024-05-01', '2024-07-01');
SELECT * FROM retailflow.kpi_return_cycle('2024-05-01', '2024-07-01');
SELECT * FROM retailflow.kpi_stock_accuracy('2024-06-01', '2024-07-01');
SELECT * FROM retailflow.kpi_approval_turnaround('2024-06-01', '2024-07-01');
SELECT * FROM retailflow.kpi_webhook_delivery('2024-06-01', '2024-07-01');
SELECT rft.err('SELECT * FROM retailflow.kpi_order_release(NULL, ''2024-07-01'')');
SELECT rft.err('SELECT * FROM retailflow.kpi_exceptions(''2024-07-01'', ''2024-06-01'')');

-- retention: closed exceptions and exception_log rows older than the cutoff go,
-- at most a batch of each per call; open exceptions stay whatever their age
RESET ROLE;
INSERT INTO retailflow.exception_log (kind, severity, model, detail, source, occurred_at)
VALUES ('test', 'info', 'stock.quant', 'old 1', 'manual', '2023-01-01'),
       ('test', 'info', 'stock.quant', 'old 2', 'manual', '2023-01-02');
SHOW retailflow.exception_retention;
SET ROLE rf_admin;
SELECT retailflow.purge_exceptions(1) AS "180 days, batch 1";
SELECT detail FROM retailflow.exception_log WHERE kind = 'test';
SELECT count(*) AS open_before FROM retailflow.exceptions \gset
SELECT kind, closed_at FROM retailflow.exception WHERE closed_at IS NOT NULL ORDER BY id;
SELECT retailflow.purge_exceptions(older_than => '10 minutes') AS "closed before 12:20, and old 2";
SELECT kind, closed_at FROM retailflow.exception WHERE closed_at IS NOT NULL ORDER BY id;
SELECT count(*) = :open_before AS "open ones kept" FROM retailflow.exceptions;
SELECT count(*) AS "old log rows" FROM retailflow.exception_log WHERE kind = 'test';
SELECT rft.err('SELECT retailflow.purge_exceptions(0)');
SELECT rft.err('SELECT retailflow.purge_exceptions(NULL)');
SELECT rft.err('SELECT retailflow.purge_exceptions(10, ''-1 day'')');
RESET ROLE;
ALTER SYSTEM SET retailflow.exception_retention = 'banana';

-- a broken check is reported and does not stop the others; a check whose
-- tables are missing is skipped
INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, query)
VALUES ('broken', 'low', 'none', 'a check with a bad query', 'SELECT 1 AS model FROM no_such_table');
SET client_min_messages = error;
SET ROLE rf_admin;
SELECT * FROM retailflow.run_checks(ARRAY['broken', 'approval_overdue', 'stuck_order']);
RESET ROLE;
RESET client_min_messages;
SELECT kind, last_status, last_error FROM retailflow.exception_check WHERE kind IN ('broken', 'approval_overdue') ORDER BY kind;
SELECT rft.err('SELECT * FROM retailflow.run_checks(ARRAY[''nope''])');
SELECT rft.err('SELECT * FROM retailflow.run_checks(ARRAY[NULL])');
-- settings are validated
SELECT rft.err('SET retailflow.order_sla = ''banana''');
SELECT rft.err('SET retailflow.order_sla = ''-1 day''');
SELECT rft.err('SET retailflow.now_override = ''yesterday-ish''');
SET retailflow.check_intervals = 'late_picking';
SELECT rft.err('SELECT * FROM retailflow.run_due_checks()');
SET retailflow.check_intervals = 'late_picking=soon';
SELECT rft.err('SELECT * FROM retailflow.run_due_checks()');
RESET retailflow.check_intervals;
-- the SLA is a setting: with 10 days S00020 is no longer stuck
SET retailflow.order_sla = '10 days';
SELECT * FROM retailflow.run_checks(ARRAY['stuck_order']);
RESET retailflow.order_sla;

-- Odoo 18: storable is is_storable; the quantity to order is rounded down to
-- the multiple when the rule has a maximum, up when it has none
\c rf_regression postgres
CREATE DATABASE rf_t_exceptions18 TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_exceptions18 rf_odoo
\getenv abs_srcdir PG_ABS_SRCDIR
\set delta18 :abs_srcdir '/test/fixtures/odoo18_delta.sql'
SELECT rft.ensure_base();  -- the company, partner and UoM rows, in the 17 shape the delta migrates
\set ECHO none
\i :delta18
\set ECHO all
SELECT retailflow.odoo_version();
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.warehouse('WH1', :phys) AS wh1 \gset
SELECT rft.stock_of(:wh1) AS s1 \gset
SELECT rft.product('A') AS a, rft.product('B') AS b, rft.product('C', 'none', 'consu') AS c \gset
SELECT rft.quant(:a, :s1, 5) > 0, rft.quant(:b, :s1, 5) > 0;
INSERT INTO stock_warehouse_orderpoint (name, warehouse_id, location_id, product_id, company_id, trigger,
                                        product_min_qty, product_max_qty, qty_multiple, active)
VALUES ('OP/A', :wh1, :s1, :a, 1, 'auto', 10, 30, 4, true),   -- 25 rounded down to 24
       ('OP/B', :wh1, :s1, :b, 1, 'auto', 10, 0, 4, true),    -- 5 rounded up to 8
       ('OP/C', :wh1, :s1, :c, 1, 'auto', 10, 0, 4, true);    -- a consumable: ignored
SELECT reference, free_qty, forecast_qty, qty_to_order FROM retailflow.replenishment_needs() ORDER BY reference;
\c - rf_admin
SELECT kind, status, opened FROM retailflow.run_checks(ARRAY['replenishment', 'late_picking']);

-- without Odoo's tables: checks are skipped, the functions say what is missing
\c rf_regression postgres
CREATE DATABASE rf_t_exceptions_empty TEMPLATE rf_empty OWNER rf_odoo;
\c rf_t_exceptions_empty rf_admin
SELECT count(*) AS checks, count(*) FILTER (WHERE status = 'skipped') AS skipped FROM retailflow.run_checks();
SELECT kind, last_error FROM retailflow.exception_check WHERE last_status = 'skipped' ORDER BY kind LIMIT 3;
\c - rf_odoo
SELECT rft.err('SELECT retailflow.order_risk(1)');
SELECT rft.err('SELECT * FROM retailflow.stockout_risk()');
SELECT rft.err('SELECT * FROM retailflow.kpi_order_release(''2024-01-01'', ''2024-02-01'')');
SELECT count(*) FROM retailflow.kpi_exceptions('2024-01-01', '2024-02-01');

-- the tiny generated network: no crash, plausible counts
\c rf_regression postgres
CREATE DATABASE rf_t_exceptions_tiny TEMPLATE rf_tiny OWNER rf_odoo;
ALTER DATABASE rf_t_exceptions_tiny SET retailflow.now_override = '2024-07-01 00:00:00+00';
\c rf_t_exceptions_tiny rf_admin
SELECT kind, status, opened > 0 AS some_opened FROM retailflow.run_checks() ORDER BY kind;
\c - rf_odoo
SELECT count(*) = (SELECT count(*) FROM retailflow.exceptions) AS "one event per exception"
FROM retailflow.outbox WHERE event_type = 'exception.opened';
SELECT count(*) > 0 AS scored, max(score) <= 100 AS bounded
FROM sale_order so, retailflow.order_risk(so.id);

-- every check declares every Odoo table its query names (what run_check tests before running it)
SELECT c.kind, m[1] AS undeclared
FROM retailflow.exception_check c, regexp_matches(c.query, '\{odoo\}\.([a-z_0-9]+)', 'g') AS m
WHERE m[1] <> ALL (SELECT substring(r FROM '^([^(]+)') FROM unnest(c.requires) r)
ORDER BY 1, 2;
-- a stock-only database (no sale, sale_stock, purchase, account, sales team): every check
-- runs or is skipped with what it misses, none fails; then stock + sale + purchase: all run
\c rf_regression postgres
CREATE DATABASE rf_t_exceptions_stock TEMPLATE rf_tiny OWNER rf_odoo;
ALTER DATABASE rf_t_exceptions_stock SET retailflow.now_override = '2024-07-01 00:00:00+00';
\c rf_t_exceptions_stock rf_odoo
SET client_min_messages = warning;
DROP TABLE sale_order, sale_order_line, purchase_order, purchase_order_line, account_move, crm_team CASCADE;
ALTER TABLE stock_picking DROP COLUMN sale_id;
ALTER TABLE stock_move DROP COLUMN sale_line_id, DROP COLUMN purchase_line_id;
\c - rf_admin
SELECT kind, status FROM retailflow.run_checks() WHERE status <> 'ok' ORDER BY kind;
SELECT kind, last_status, last_error FROM retailflow.exception_check WHERE last_status <> 'ok' ORDER BY kind;
SELECT kind, count(*) AS open FROM retailflow.exceptions WHERE kind IN ('late_picking', 'partial_delivery')
GROUP BY kind ORDER BY kind;
\c rf_t_exceptions_tiny rf_admin
SELECT count(*) AS checks, count(*) FILTER (WHERE status = 'ok') AS ok FROM retailflow.run_checks();
SELECT count(*) AS with_team FROM retailflow.exceptions WHERE kind = 'late_picking' AND team_id IS NOT NULL;

-- the checks' change test: binary-image equality (equal but differently written numbers count as changed)
SELECT retailflow.jsonb_identical('{"a": 1}', '{"a": 1}') AS same,
       retailflow.jsonb_identical('{"b": 2, "a": 1}', '{"a": 1, "b": 2}') AS same_keys_reordered,
       retailflow.jsonb_identical('{"a": 1.0}', '{"a": 1}') AS scale_differs,
       retailflow.jsonb_identical('{"a": 1}', '{"a": 2}') AS differs,
       retailflow.jsonb_identical(NULL, '{}') AS null_in;
\c rf_regression postgres
DROP DATABASE rf_t_exceptions;
DROP DATABASE rf_t_exceptions_empty;
DROP DATABASE rf_t_exceptions18;
DROP DATABASE rf_t_exceptions_tiny;
DROP DATABASE rf_t_exceptions_stock;
