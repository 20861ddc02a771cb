-- availability: Odoo's stock.quant._get_available_quantity expectations
-- (addons/stock/tests/test_quant.py), translated to SQL on hand-made data.
CREATE DATABASE rf_t_availability TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_availability rf_odoo
SET extra_float_digits = 0;
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.warehouse('WH', :phys) AS wh \gset
SELECT rft.stock_of(:wh) AS stock \gset
SELECT rft.loc('Sub2', :stock) AS sub2 \gset
SELECT rft.loc('Sub3', :stock) AS sub3 \gset

-- test_get_available_quantity_1: one quant of 1
SELECT rft.product('P1') AS p \gset
SELECT rft.quant(:p, :stock, 1) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "1";
-- _2: three quants of 1
SELECT rft.product('P2') AS p \gset
SELECT count(rft.quant(:p, :stock, 1)) FROM generate_series(1, 3);
SELECT retailflow.available_qty(:p, :stock) AS "3";
-- _3: 1, 1, 1 and -3 give 0 (also with allow_negative)
SELECT rft.product('P3') AS p \gset
SELECT count(rft.quant(:p, :stock, 1)) FROM generate_series(1, 3);
SELECT rft.quant(:p, :stock, -3) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "0",
       retailflow.available_qty(:p, :stock, allow_negative => true) AS "0 neg";
-- _4: no quants
SELECT rft.product('P4') AS p \gset
SELECT retailflow.available_qty(:p, :stock) AS "0";
-- _5: (10 reserved 9) + (1 reserved 1) give 1
SELECT rft.product('P5') AS p \gset
SELECT rft.quant(:p, :stock, 10, 9) IS NOT NULL, rft.quant(:p, :stock, 1, 1) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "1";
-- _6: (10 reserved 20) + 5 give 0, or -5 with allow_negative
SELECT rft.product('P6') AS p \gset
SELECT rft.quant(:p, :stock, 10, 20) IS NOT NULL, rft.quant(:p, :stock, 5) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "0",
       retailflow.available_qty(:p, :stock, allow_negative => true) AS "-5";
-- _7: lot-tracked, lot1 (10 reserved 20): 0, or -10 with allow_negative
SELECT rft.product('PL7', 'lot') AS p \gset
SELECT rft.lot(:p, 'lot1') AS lot1 \gset
SELECT rft.quant(:p, :stock, 10, 20, :lot1) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock, lot_id => :lot1) AS "0",
       retailflow.available_qty(:p, :stock, lot_id => :lot1, allow_negative => true) AS "-10";
-- _8: a consumable has no quants: 0
SELECT rft.product('PC8', 'none', 'consu') AS p \gset
SELECT retailflow.available_qty(:p, :stock) AS "0";
-- increase_available_quantity_5: a parent counts its child locations
SELECT rft.product('P12') AS p \gset
SELECT rft.quant(:p, :stock, 1) IS NOT NULL, rft.quant(:p, :sub2, 1) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "2", retailflow.available_qty(:p, :sub2) AS "1",
       retailflow.available_qty(:p, :stock, strict => true) AS "1 strict",
       retailflow.warehouse_available_qty(:p, :wh) AS "2 wh";
-- increase_reserved_quantity_3: (5,2),(10,12),(8,3),(35,12) give 29
SELECT rft.product('P18') AS p \gset
SELECT count(rft.quant(:p, :stock, q, r)) FROM (VALUES (5, 2), (10, 12), (8, 3), (35, 12)) v(q, r);
SELECT retailflow.available_qty(:p, :stock) AS "29";
-- test_mix_tracked_untracked_1 (serial product): untracked 1 + lot1 1
SELECT rft.product('PS23', 'serial') AS p \gset
SELECT rft.lot(:p, 'sn1') AS sn1 \gset
SELECT rft.quant(:p, :stock, 1) AS q_untracked \gset
SELECT rft.quant(:p, :stock, 1, 0, :sn1) AS q_lot \gset
SELECT retailflow.available_qty(:p, :stock) AS "2",
       retailflow.available_qty(:p, :stock, strict => true) AS "1",
       retailflow.available_qty(:p, :stock, lot_id => :sn1) AS "2";
-- reserve 1 with lot1 (Odoo puts it on the lot quant): 1 / 1 / 1
UPDATE stock_quant SET reserved_quantity = 1 WHERE id = :q_lot;
SELECT retailflow.available_qty(:p, :stock) AS "1",
       retailflow.available_qty(:p, :stock, strict => true) AS "1",
       retailflow.available_qty(:p, :stock, lot_id => :sn1) AS "1";
-- unreserve: 2 / 1 / 2
UPDATE stock_quant SET reserved_quantity = 0 WHERE id = :q_lot;
SELECT retailflow.available_qty(:p, :stock) AS "2",
       retailflow.available_qty(:p, :stock, strict => true) AS "1",
       retailflow.available_qty(:p, :stock, lot_id => :sn1) AS "2";
-- strict with a lot skips untracked quants of a tracked product
SELECT retailflow.available_qty(:p, :stock, lot_id => :sn1, strict => true) AS "1";
-- one lot's deficit does not reduce another lot's stock
SELECT rft.product('PL2', 'lot') AS p \gset
SELECT rft.lot(:p, 'a') AS la \gset
SELECT rft.lot(:p, 'b') AS lb \gset
SELECT rft.quant(:p, :stock, 5, 0, :la) IS NOT NULL, rft.quant(:p, :sub2, -3, 0, :lb) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "5",
       retailflow.available_qty(:p, :stock, allow_negative => true) AS "2";
-- the same lot is summed across sublocations before the sign test
SELECT rft.quant(:p, :sub3, 4, 0, :lb) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "6";
-- packages and owners: no filter unless given (non-strict); IS NULL when strict
SELECT rft.product('PK') AS p \gset
SELECT rft.package('PACK1') AS pack \gset
SELECT rft.partner('Consignor') AS owner \gset
SELECT rft.quant(:p, :stock, 2) IS NOT NULL, rft.quant(:p, :stock, 3, 0, NULL, :pack) IS NOT NULL,
       rft.quant(:p, :stock, 7, 0, NULL, NULL, :owner) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "12",
       retailflow.available_qty(:p, :stock, package_id => :pack) AS "3",
       retailflow.available_qty(:p, :stock, owner_id => :owner) AS "7",
       retailflow.available_qty(:p, :stock, strict => true) AS "2",
       retailflow.available_qty(:p, :stock, package_id => :pack, strict => true) AS "3 strict",
       retailflow.available_qty(:p, :stock, owner_id => :owner, strict => true) AS "7 strict";
-- fractional quantities compare at the UoM rounding (0.01): -0.004 is zero
-- there, so Odoo returns the raw sum instead of clamping it
SELECT rft.product('PF') AS p \gset
SELECT rft.quant(:p, :stock, 0.1) IS NOT NULL, rft.quant(:p, :stock, 0.2, 0.304) IS NOT NULL;
SELECT retailflow.available_qty(:p, :stock) AS "-0.004 raw",
       retailflow.available_qty(:p, :stock, allow_negative => true) < 0 AS "negative raw";

-- bad input
SELECT rft.err('SELECT retailflow.available_qty(NULL, 1)');
SELECT rft.err('SELECT retailflow.available_qty(1, NULL)');
SELECT rft.err('SELECT retailflow.available_qty(999999, ' || :stock || ')');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', 999999)');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :phys || ', strict => true)');
SELECT rft.product('SVC', 'none', 'service') AS svc \gset
SELECT rft.err('SELECT retailflow.available_qty(' || :svc || ', ' || :stock || ')');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :stock || ', lot_id => -4)');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :stock || ', lot_id => 999999)');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :stock || ', lot_id => ' || :sn1 || ')');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :stock || ', package_id => 999999)');
SELECT rft.err('SELECT retailflow.available_qty(' || :p || ', ' || :stock || ', owner_id => 999999)');
SELECT rft.err('SELECT retailflow.warehouse_available_qty(' || :p || ', 999999)');
SELECT rft.err('SELECT retailflow.warehouse_available_qty(' || :p || ', NULL)');
-- a view location is fine without strict (it counts its children)
SELECT retailflow.available_qty(:p, :phys) AS "from the root view";

\c rf_regression postgres
DROP DATABASE rf_t_availability;
