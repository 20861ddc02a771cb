-- conflicts: every reservation conflict kind produced on hand-made Odoo 17
-- data and detected by reservation_conflicts() (C) and its SQL twin; the
-- triggers, judged at commit on the transaction's net effect, in log and
-- block mode (set by the DBA, not lowered by Odoo's role);
-- repair_reservations() as Odoo's role; bad input.  Odoo's writes are made by
-- rf_odoo, the non-superuser role that owns the tables.
CREATE DATABASE rf_t_conflicts TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_conflicts rf_odoo
SET extra_float_digits = 0;
-- an Odoo-style move line (quantity in the product's UoM)
CREATE FUNCTION ml(p_move integer, p_qty numeric, p_state text DEFAULT 'assigned', p_lot integer DEFAULT NULL,
                   p_pkg integer DEFAULT NULL, p_owner integer DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id,
                                 lot_id, package_id, owner_id, state, quantity, quantity_product_uom, picked, date)
    SELECT m.id, 1, m.product_id, 1, m.location_id, m.location_dest_id, p_lot, p_pkg, p_owner, p_state,
           p_qty, p_qty, false, '2024-01-01' FROM stock_move m WHERE m.id = p_move
    RETURNING id
$$;
-- a reserved delivery: move with quantity = reserved, one line
CREATE FUNCTION deliver(p_product integer, p_src integer, p_dst integer, p_qty numeric, p_reserved numeric,
                        p_lot integer DEFAULT NULL, p_pkg integer DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE m integer;
BEGIN
    m := rft.move(p_product, p_src, p_dst, p_qty, CASE WHEN p_reserved >= p_qty THEN 'assigned' ELSE 'partially_available' END);
    UPDATE stock_move SET quantity = p_reserved WHERE id = m;
    PERFORM ml(m, p_reserved, (SELECT state FROM stock_move WHERE id = m), p_lot, p_pkg);
    RETURN m;
END $$;
-- one more reserved line on a new move (the caller updates the quant, as Odoo does)
CREATE FUNCTION deliver_line(p_product integer, p_src integer, p_dst integer, p_qty numeric)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE m integer;
BEGIN
    m := rft.move(p_product, p_src, p_dst, p_qty, 'assigned');
    UPDATE stock_move SET quantity = p_qty WHERE id = m;
    PERFORM ml(m, p_qty, 'assigned');
    RETURN m;
END $$;
CREATE VIEW c AS
    SELECT kind, severity, product_id AS prod, location_id AS loc, lot_id AS lot, package_id AS pkg,
           owner_id AS own, warehouse_id AS wh, record_id AS rec, expected::float8 AS exp, actual::float8 AS act
    FROM retailflow.reservation_conflicts() ORDER BY 1, 3, 4, 5, 6, 7, 9;
CREATE VIEW c_diff AS
    SELECT 'only C' AS side, * FROM (
        SELECT kind, severity, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
               round(expected, 6) AS e, round(actual, 6) AS a FROM retailflow.reservation_conflicts()
        EXCEPT ALL
        SELECT kind, severity, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
               round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts_sql()) a
    UNION ALL
    SELECT 'only SQL', * FROM (
        SELECT kind, severity, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
               round(expected, 6) AS e, round(actual, 6) AS a FROM retailflow.reservation_conflicts_sql()
        EXCEPT ALL
        SELECT kind, severity, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
               round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts()) b;

SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.loc('Partners', NULL, 'view') AS partners \gset
SELECT rft.loc('Vendors', :partners, 'supplier') AS vendors \gset
SELECT rft.loc('Customers', :partners, 'customer') AS customers \gset
SELECT rft.loc('Inventory adjustment', NULL, 'inventory') AS inv \gset
SELECT rft.loc('Scrap', NULL, 'inventory', 1, true) AS scrap \gset
SELECT rft.loc('Production', NULL, 'production') AS prodloc \gset
SELECT rft.loc('Inter-company transit', NULL, 'transit', NULL) AS transit_nc \gset
SELECT rft.loc('Inter-warehouse transit', NULL, 'transit', 1) AS transit_co \gset
SELECT rft.warehouse('WH', :phys) AS wh \gset
SELECT rft.stock_of(:wh) AS stock \gset
SELECT rft.loc('Bin1', :stock) AS bin1 \gset

-- clean data: reservations that match, receipts from Vendors reserving nothing,
-- consumables, negative quants in Vendors / Inventory adjustment; written in
-- one transaction as Odoo writes quants and lines together
BEGIN;
SELECT rft.product('P') AS p \gset
SELECT rft.product('PL', 'lot') AS pl \gset
SELECT rft.lot(:pl, 'L1') AS l1 \gset
SELECT rft.product('PC', 'none', 'consu') AS pc \gset
SELECT rft.quant(:p, :stock, 10, 3) IS NOT NULL, rft.quant(:p, :bin1, 5, 0) IS NOT NULL,
       rft.quant(:pl, :stock, 4, 4, :l1) IS NOT NULL,
       rft.quant(:p, :vendors, -15) IS NOT NULL, rft.quant(:p, :inv, -2) IS NOT NULL;
SELECT deliver(:p, :stock, :customers, 3, 3) IS NOT NULL, deliver(:pl, :stock, :customers, 4, 4, :l1) IS NOT NULL;
SELECT ml(rft.move(:p, :vendors, :stock, 7, 'assigned'), 7) IS NOT NULL;      -- receipt line: reserves nothing
SELECT ml(rft.move(:pc, :stock, :customers, 2, 'assigned'), 2) IS NOT NULL;   -- consumable: no quant
UPDATE stock_move SET quantity = 7 WHERE product_id = :p AND location_id = :vendors;
UPDATE stock_move SET quantity = 2 WHERE product_id = :pc;
COMMIT;
SELECT * FROM c;
SELECT count(*) AS "no diff" FROM c_diff;
SELECT count(*) AS "nothing logged" FROM retailflow.exception_log;

-- now break every invariant, as a DBA with the triggers off (Odoo's role may not switch them off)
SELECT rft.err('SET retailflow.conflict_action = off');
\c - postgres
SET retailflow.conflict_action = off;
-- 1. quants reserve 3 but lines 5 (a second line added behind Odoo's back)
SELECT rft.product('P1') AS p1 \gset
SELECT rft.quant(:p1, :stock, 10, 3) AS q1 \gset
SELECT deliver(:p1, :stock, :customers, 5, 5) IS NOT NULL;
-- 2. reserved in bypass locations (17: transit without company too)
SELECT rft.product('P2') AS p2 \gset
SELECT rft.quant(:p2, :vendors, -5, 1) IS NOT NULL, rft.quant(:p2, :scrap, 2, 2) IS NOT NULL,
       rft.quant(:p2, :transit_nc, 1, 1) IS NOT NULL, rft.quant(:p2, :customers, 3, 1) IS NOT NULL,
       rft.quant(:p2, :transit_co, 1, 0) IS NOT NULL;
-- 3. a line reserving stock from a key without any quant (lot L3 has no quant)
SELECT rft.product('P3', 'lot') AS p3 \gset
SELECT rft.lot(:p3, 'L3') AS l3 \gset
SELECT deliver(:p3, :stock, :customers, 2, 2, :l3) IS NOT NULL;
-- 4. over-reservation on a key (two quants: 1 on hand, 3 reserved) and a negative reservation
SELECT rft.product('P4') AS p4 \gset
SELECT rft.quant(:p4, :stock, 1, 2) AS q4a, rft.quant(:p4, :stock, 0, 1) AS q4b \gset
SELECT deliver(:p4, :stock, :customers, 3, 3) IS NOT NULL;
SELECT rft.product('P4N') AS p4n \gset
SELECT rft.quant(:p4n, :stock, 5, -1) IS NOT NULL;
-- 5. negative stock in an internal location (bin), not in Vendors
SELECT rft.product('P5') AS p5 \gset
SELECT rft.quant(:p5, :bin1, -2) IS NOT NULL, rft.quant(:p5, :vendors, -9) IS NOT NULL;
-- 6. duplicate quants for one key (package and owner keys too)
SELECT rft.product('P6') AS p6 \gset
SELECT rft.package('PK6') AS pk6 \gset
SELECT rft.partner('Owner6') AS o6 \gset
SELECT rft.quant(:p6, :stock, 1, 0, NULL, :pk6, :o6) IS NOT NULL, rft.quant(:p6, :stock, 2, 0, NULL, :pk6, :o6) IS NOT NULL,
       rft.quant(:p6, :stock, 2, 0, NULL, :pk6) IS NOT NULL;
-- 7. serial numbers: S1 with 2 units, S2 in two internal quants
SELECT rft.product('P7', 'serial') AS p7 \gset
SELECT rft.lot(:p7, 'S1') AS s1, rft.lot(:p7, 'S2') AS s2 \gset
SELECT rft.quant(:p7, :stock, 2, 0, :s1) IS NOT NULL, rft.quant(:p7, :stock, 1, 0, :s2) IS NOT NULL,
       rft.quant(:p7, :bin1, 1, 0, :s2) IS NOT NULL;
-- 8. oversell risk: 10 to deliver, 4 on hand, 3 incoming
SELECT rft.product('P8') AS p8 \gset
SELECT rft.quant(:p8, :stock, 4, 0) IS NOT NULL;
SELECT rft.move(:p8, :stock, :customers, 10, 'confirmed') IS NOT NULL, rft.move(:p8, :vendors, :stock, 3, 'confirmed') IS NOT NULL;
-- 9. a move whose quantity differs from its lines
SELECT rft.product('P9') AS p9 \gset
SELECT rft.quant(:p9, :stock, 5, 2) IS NOT NULL;
SELECT deliver(:p9, :stock, :customers, 2, 2) AS m9 \gset
UPDATE stock_move SET quantity = 1.5 WHERE id = :m9;
RESET retailflow.conflict_action;
\c - rf_odoo
SET extra_float_digits = 0;

SELECT * FROM c;
SELECT count(*) AS "no diff" FROM c_diff;
SELECT detail FROM retailflow.reservation_conflicts() WHERE product_id = :p1 ORDER BY kind;
SELECT count(*) AS "still nothing logged" FROM retailflow.exception_log;

-- triggers, log mode (the default): judged at commit, on what the transaction changed
SHOW retailflow.conflict_action;
SELECT rft.product('PT') AS pt \gset
BEGIN;
SELECT rft.quant(:pt, :stock, 2, 0) AS qt \gset
COMMIT;
SELECT count(*) AS before FROM retailflow.exception_log \gset
-- Odoo reserves: the quant and its move line in one transaction: nothing to log
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = :qt;
SELECT deliver_line(:pt, :stock, :customers, 1) AS mt \gset
COMMIT;
-- a transient state inside a transaction (45 reserved with 2 on hand), cleaned up before commit
BEGIN;
UPDATE stock_quant SET reserved_quantity = 45 WHERE id = :qt;
UPDATE stock_quant SET reserved_quantity = 1 WHERE id = :qt;
COMMIT;
SELECT count(*) - :before AS "nothing logged" FROM retailflow.exception_log;
-- Odoo 17 states, logged as warnings: a forced reservation above on hand, negative stock
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 4 WHERE id = :qt;
SELECT deliver_line(:pt, :stock, :customers, 4) IS NOT NULL;
COMMIT;
BEGIN;
UPDATE stock_quant SET quantity = -1, reserved_quantity = 0 WHERE id = :qt;
UPDATE stock_move_line SET state = 'done' WHERE product_id = :pt;
COMMIT;
-- broken invariants, logged as errors: a reservation no move line accounts for,
-- a move line deleted behind Odoo's back, a reservation in a location where Odoo never reserves
UPDATE stock_quant SET quantity = 3, reserved_quantity = 3 WHERE id = :qt;
BEGIN;
SELECT deliver_line(:pt, :stock, :customers, 3) AS mt3 \gset
UPDATE stock_quant SET reserved_quantity = 3 WHERE id = :qt;
COMMIT;
DELETE FROM stock_move_line WHERE move_id = :mt3;
INSERT INTO stock_quant (product_id, location_id, quantity, reserved_quantity, company_id, in_date)
VALUES (:pt, :customers, 1, 1, 1, now());
SELECT kind, severity, model, product_id = :pt AS pt, expected::float8, actual::float8, detail, source,
       role = 'rf_odoo' AS role_ok, txid IS NOT NULL AS has_txid
FROM retailflow.exception_log WHERE id > :before ORDER BY id;
SELECT event_type, data->>'kind' AS kind, data->>'severity' AS severity
FROM retailflow.outbox WHERE event_type = 'stock.conflict' ORDER BY id;
-- a rolled-back savepoint takes its changes with it
BEGIN;
SAVEPOINT s;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 7 WHERE id = :qt;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS "nothing logged for the rolled-back savepoint" FROM retailflow.exception_log
WHERE detail LIKE '%by 7%';
-- repair the key before block mode
\c - postgres
SET retailflow.conflict_action = off;
UPDATE stock_quant SET quantity = 3, reserved_quantity = 0 WHERE product_id = :pt;
DELETE FROM stock_move_line WHERE product_id = :pt;
\c - rf_odoo
SET extra_float_digits = 0;

-- block mode: set by the DBA for the database; Odoo's role cannot switch it off
\c - postgres
ALTER DATABASE rf_t_conflicts SET retailflow.conflict_action = block;
\c - rf_odoo
SET extra_float_digits = 0;
SHOW retailflow.conflict_action;
SELECT rft.err('SET retailflow.conflict_action = off');
SELECT rft.err('SET retailflow.conflict_action = log');
SELECT rft.err('ALTER ROLE rf_odoo SET retailflow.conflict_action = off');
SELECT rft.err('ALTER DATABASE rf_t_conflicts SET retailflow.conflict_action = off');
SHOW retailflow.conflict_action;
-- a reservation no move line accounts for: refused at COMMIT with 23514
\set VERBOSITY default
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 2 WHERE id = :qt;
COMMIT;
-- the same, judged early by SET CONSTRAINTS ... IMMEDIATE
SELECT regexp_replace(rft.err(format('UPDATE stock_quant SET reserved_quantity = 2 WHERE id = %s; SET CONSTRAINTS ALL IMMEDIATE', :qt)),
                      'product \d+|location \d+', 'X', 'g') AS err;
-- a move line deleted behind Odoo's back, a reservation in Scrap
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = :qt;
SELECT deliver_line(:pt, :stock, :customers, 1) AS mb \gset
COMMIT;
SELECT regexp_replace(rft.err(format('DELETE FROM stock_move_line WHERE move_id = %s; SET CONSTRAINTS ALL IMMEDIATE', :mb)),
                      'product \d+|location \d+', 'X', 'g') AS err;
SELECT regexp_replace(rft.err(format('INSERT INTO stock_quant (product_id, location_id, quantity, reserved_quantity, company_id, in_date) VALUES (%s, %s, 1, 1, 1, now()); SET CONSTRAINTS ALL IMMEDIATE', :pt, :scrap)),
                      'product \d+|location \d+', 'X', 'g') AS err;
SELECT quantity::float8, reserved_quantity::float8 FROM stock_quant WHERE id = :qt;
-- what Odoo itself does goes through: a consistent reservation, a transient state,
-- a forced reservation above on hand, negative stock (both logged as warnings)
SELECT count(*) AS before FROM retailflow.exception_log \gset
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = :qt;
SELECT deliver_line(:pt, :stock, :customers, 1) IS NOT NULL;
UPDATE stock_quant SET reserved_quantity = 45 WHERE id = :qt;
UPDATE stock_quant SET reserved_quantity = 2 WHERE id = :qt;
COMMIT;
BEGIN;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 5 WHERE id = :qt;
SELECT deliver_line(:pt, :stock, :customers, 5) IS NOT NULL;
COMMIT;
BEGIN;
UPDATE stock_quant SET quantity = -2, reserved_quantity = 0 WHERE id = :qt;
UPDATE stock_move_line SET state = 'done' WHERE product_id = :pt;
COMMIT;
SELECT kind, severity FROM retailflow.exception_log WHERE id > :before ORDER BY id;
SELECT quantity::float8, reserved_quantity::float8 FROM stock_quant WHERE id = :qt;
-- block mode fails closed: changes it cannot judge (Odoo's tables changed in the same
-- transaction) are not committed
SELECT rft.err(format('UPDATE stock_quant SET quantity = quantity + 1 WHERE id = %s; ALTER TABLE stock_location RENAME TO stock_location_x; SET CONSTRAINTS ALL IMMEDIATE', :qt));
\c - postgres
-- and it left guard rows (which make racing reservations conflict, see conflicts_oversell.spec)
SELECT product_id = :pt AS pt, location_id = :stock AS stock, bumps > 0 AS bumped FROM retailflow.reservation_guard;
-- bad values, per role
SELECT rft.err('SET retailflow.conflict_action = maybe');
SELECT rft.err('SET retailflow.conflict_action = ''''');
CREATE ROLE rf_conflicts_blocker;
ALTER ROLE rf_conflicts_blocker SET retailflow.conflict_action = block;
SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'rf_conflicts_blocker';
DROP ROLE rf_conflicts_blocker;
ALTER DATABASE rf_t_conflicts RESET retailflow.conflict_action;
\c - rf_odoo
SET extra_float_digits = 0;
-- log mode never stops Odoo's commit: what it cannot judge is a warning
BEGIN;
UPDATE stock_quant SET quantity = quantity + 1 WHERE id = :qt;
ALTER TABLE stock_location RENAME TO stock_location_x;
COMMIT;
ALTER TABLE stock_location_x RENAME TO stock_location;
UPDATE stock_quant SET quantity = quantity - 1 WHERE id = :qt;

-- repair: dry run lists, apply changes and logs, never touches done moves
SELECT count(*) AS before FROM retailflow.exception_log \gset
SELECT action, product_id, location_id, lot_id, package_id, owner_id, quant_id IS NOT NULL AS has_quant,
       old_reserved::float8, new_reserved::float8, detail
FROM retailflow.repair_reservations() ORDER BY 2, 3, 4, 7, 8;
SELECT count(*) - :before AS "dry run logs nothing" FROM retailflow.exception_log;
\c - postgres
SET retailflow.conflict_action = off;
UPDATE stock_move_line SET state = 'done' WHERE product_id = :p9;
-- a superuser's repair would run Odoo's triggers with a superuser's rights: refused
SELECT rft.err('SELECT * FROM retailflow.repair_reservations(dry_run => false)');
\c - rf_odoo
SET extra_float_digits = 0;
SELECT count(*) AS rows_applied FROM retailflow.repair_reservations(dry_run => false);
SELECT kind, source, count(*) FROM retailflow.exception_log WHERE id > :before GROUP BY 1, 2;
SELECT count(*) AS events FROM retailflow.outbox WHERE event_type = 'stock.reservation_repaired';
SELECT count(*) AS "nothing left to repair" FROM retailflow.repair_reservations();
SELECT kind, count(*) FROM retailflow.reservation_conflicts() GROUP BY 1 ORDER BY 1;
SELECT state, quantity::float8 FROM stock_move_line WHERE product_id = :p9;
SELECT count(*) AS "no diff" FROM c_diff;

-- fractional quantities, and a move whose id lies far beyond the table's size (the scan keeps
-- such moves apart from its array indexed by move id): C and SQL agree, detail text included
SELECT rft.product('PF') AS pf \gset
SELECT rft.quant(:pf, :bin1, -0.5, 0) AS qf \gset
SELECT rft.move(:pf, :stock, :customers, 2.5, 'partially_available') AS mf \gset
UPDATE stock_move SET id = 50000000, quantity = 2.5 WHERE id = :mf;
SELECT ml(50000000, 1.25, 'partially_available') IS NOT NULL AS line;
SELECT kind, record_id = 50000000 AS big_move, expected::float8, actual::float8, detail
FROM retailflow.reservation_conflicts() WHERE product_id = :pf ORDER BY kind;
SELECT count(*) AS "no diff" FROM c_diff;
SELECT count(*) AS "same detail" FROM (
    SELECT kind, location_id, record_id, detail FROM retailflow.reservation_conflicts() WHERE product_id = :pf
    EXCEPT ALL
    SELECT kind, location_id, record_id, detail FROM retailflow.reservation_conflicts_sql() WHERE product_id = :pf) d;
-- a quant Odoo 17 creates for a reservation alone has no quantity (NULL): counted as 0 by both
SELECT rft.product('PN') AS pn \gset
SELECT rft.quant(:pn, :bin1, 0, 2) AS qn \gset
UPDATE stock_quant SET quantity = NULL WHERE id = :qn;
SELECT kind, actual::float8 FROM retailflow.reservation_conflicts() WHERE product_id = :pn ORDER BY kind;
SELECT count(*) AS "no diff" FROM c_diff;

-- a line of lot LF reserving on a quant without lot: Odoo 17/18's gather domain allows it
-- (stock.quant._get_gather_domain), so the key's lots are judged together: block mode
-- commits it, the scan reports nothing; a reservation the lots do not balance is refused
\c - postgres
SET retailflow.conflict_action = block;
SET ROLE rf_odoo;
SELECT count(*) AS before FROM retailflow.exception_log \gset
BEGIN;
SELECT rft.product('PLF', 'lot') AS plf \gset
SELECT rft.lot(:plf, 'LF') AS lf \gset
SELECT rft.quant(:plf, :stock, 5, 2) AS qlf, deliver(:plf, :stock, :customers, 2, 2, :lf) IS NOT NULL AS delivered \gset
COMMIT;
SELECT count(*) AS conflicts FROM retailflow.reservation_conflicts() WHERE product_id = :plf;
SELECT count(*) AS "no diff" FROM c_diff;
SELECT count(*) - :before AS logged FROM retailflow.exception_log;
SELECT regexp_replace(rft.err(format('UPDATE stock_quant SET reserved_quantity = 3 WHERE id = %s; SET CONSTRAINTS ALL IMMEDIATE', :qlf)),
                      'product \d+|location \d+', 'X', 'gi') AS err;
RESET ROLE;
RESET retailflow.conflict_action;
\c - rf_odoo
SET extra_float_digits = 0;

-- bad input
SELECT rft.err('SELECT * FROM retailflow.repair_reservations(NULL)');
SELECT rft.err('SELECT retailflow.conflict_check_trigger()');
\c rf_regression postgres
DROP DATABASE rf_t_conflicts;
CREATE DATABASE rf_t_conflicts TEMPLATE rf_empty OWNER rf_odoo;
\c rf_t_conflicts rf_odoo
SELECT rft.err('SELECT * FROM retailflow.repair_reservations()');
SELECT rft.err('SELECT * FROM retailflow.reservation_conflicts()');
SELECT rft.err('SELECT * FROM retailflow.reservation_conflicts_sql()');

-- generated network: C and SQL agree; no broken reservation
\c rf_regression postgres
DROP DATABASE rf_t_conflicts;
CREATE DATABASE rf_t_conflicts TEMPLATE rf_tiny OWNER rf_odoo;
\c rf_t_conflicts rf_odoo
SELECT kind, count(*) FROM retailflow.reservation_conflicts() GROUP BY 1 ORDER BY 1;
SELECT count(*) AS "no diff" FROM (
    SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
           round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts()
    EXCEPT
    SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
           round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts_sql()) d;
SELECT count(*) AS "same count" FROM retailflow.reservation_conflicts_sql()
HAVING count(*) = (SELECT count(*) FROM retailflow.reservation_conflicts());
SELECT count(*) AS "repair finds nothing" FROM retailflow.repair_reservations();
\c rf_regression postgres
DROP DATABASE rf_t_conflicts;
