-- product_quantities: Odoo's _compute_quantities_dict per product and
-- warehouse (or location subtree), fulfilment options, and bad input.
CREATE DATABASE rf_t_pq TEMPLATE rf_odoo17;
\c rf_t_pq
SET extra_float_digits = 0;
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.loc('Partners', NULL, 'view') AS partners \gset
SELECT rft.loc('Vendors', :partners, 'supplier') AS vendors \gset
SELECT rft.loc('Customers', :partners, 'customer') AS customers \gset
SELECT rft.warehouse('WH1', :phys) AS wh1 \gset
SELECT rft.warehouse('WH2', :phys) AS wh2 \gset
SELECT rft.warehouse('WH3', :phys, false) AS wh3 \gset
SELECT rft.stock_of(:wh1) AS s1, rft.stock_of(:wh2) AS s2, rft.stock_of(:wh3) AS s3 \gset
SELECT rft.loc('WH1/Stock/Bin', :s1) AS bin1 \gset
SELECT rft.product('P') AS p, rft.product('C', 'none', 'consu') AS c, rft.product('Q') AS q,
       rft.product('SVC', 'none', 'service') AS svc \gset
-- quants: WH1 10 (3 reserved) + 5 in a bin, WH2 7, inactive WH3 4, vendors -20
SELECT rft.quant(:p, :s1, 10, 3) > 0, rft.quant(:p, :bin1, 5) > 0, rft.quant(:p, :s2, 7) > 0,
       rft.quant(:p, :s3, 4) > 0, rft.quant(:p, :vendors, -20) > 0, rft.quant(:q, :s2, 1) > 0;
-- moves: only waiting/confirmed/assigned/partially_available count
SELECT rft.move(:p, :vendors, :s1, 8, 'confirmed') > 0 AS "in WH1",
       rft.move(:p, :s1, :customers, 4, 'assigned') > 0 AS "out WH1",
       rft.move(:p, :s1, :s2, 2, 'waiting') > 0 AS "WH1 to WH2",
       rft.move(:p, :s1, :bin1, 1, 'confirmed') > 0 AS "internal to WH1",
       rft.move(:p, :vendors, :s2, 3, 'draft') > 0 AS "draft",
       rft.move(:p, :s2, :customers, 1, 'done') > 0 AS "done",
       rft.move(:p, :s2, :customers, 9, 'cancel') > 0 AS "cancelled",
       rft.move(:p, :s2, :customers, 6, 'partially_available') > 0 AS "out WH2",
       rft.move(:c, :vendors, :s1, 5, 'confirmed') > 0 AS "consumable in WH1";
-- every active warehouse, explicit products
SELECT * FROM retailflow.product_quantities(ARRAY[:p, :c]) ORDER BY 1, 2;
-- NULL products: every active storable product
SELECT product_id = :p AS is_p, warehouse_id, qty_available, free_qty
FROM retailflow.product_quantities() ORDER BY product_id, warehouse_id;
-- an inactive warehouse when asked for explicitly; duplicates collapse
SELECT * FROM retailflow.product_quantities(ARRAY[:p, :p], ARRAY[:wh3]);
-- a location subtree (strictness is not offered: the subtree always counts)
SELECT location_id = :s1 AS "WH1/Stock", warehouse_id = :wh1 AS wh, qty_available, incoming_qty, outgoing_qty
FROM retailflow.product_quantities(ARRAY[:p], location_ids => ARRAY[:s1, :bin1]) ORDER BY location_id;
-- include_zero => false leaves out cells with nothing at all
SELECT count(*) AS dense FROM retailflow.product_quantities(ARRAY[:p, :q, :c]);
SELECT count(*) AS sparse FROM retailflow.product_quantities(ARRAY[:p, :q, :c], include_zero => false);
-- fulfilment options for a basket
SELECT * FROM retailflow.fulfilment_options(ARRAY[:p, :q], ARRAY[6, 1]);
SELECT * FROM retailflow.fulfilment_options(ARRAY[:p, :p], ARRAY[6, 7]::numeric[], ARRAY[:wh1]);
-- bad input
SELECT rft.err('SELECT * FROM retailflow.product_quantities(ARRAY[1, NULL])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities(ARRAY[' || :p || '], ARRAY[' || :wh1 || '], ARRAY[' || :s1 || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities(ARRAY[' || :p || '], ARRAY[424242])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities(ARRAY[' || :svc || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities(ARRAY[[1, 2], [3, 4]])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities(NULL, NULL, ARRAY[NULL]::int[])');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(ARRAY[' || :p || '], ARRAY[-1])');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(ARRAY[' || :p || '], ARRAY[1, 2])');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(ARRAY[' || :p || '], ARRAY[NULL]::numeric[])');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(NULL::int[], NULL)');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(NULL::int)');
SELECT rft.err('SELECT * FROM retailflow.fulfilment_options(424242)');

-- the cache follows location changes made in this session, and rollbacks
BEGIN;
UPDATE stock_location SET location_id = :s2,
       parent_path = (SELECT parent_path FROM stock_location WHERE id = :s2) || id || '/'
WHERE id = :bin1;
SELECT warehouse_id, qty_available FROM retailflow.product_quantities(ARRAY[:p]) ORDER BY 1;
ROLLBACK;
SELECT warehouse_id, qty_available FROM retailflow.product_quantities(ARRAY[:p]) ORDER BY 1;
-- a new warehouse appears at once; archiving one removes it from the default set
SELECT rft.warehouse('WH4', :phys) AS wh4 \gset
SELECT count(DISTINCT warehouse_id) AS warehouses FROM retailflow.product_quantities(ARRAY[:p]);
UPDATE stock_warehouse SET active = false WHERE id = :wh4;
SELECT count(DISTINCT warehouse_id) AS warehouses FROM retailflow.product_quantities(ARRAY[:p]);
-- a product becoming a service is refused at once
UPDATE product_template SET type = 'service', detailed_type = 'service'
WHERE id = (SELECT product_tmpl_id FROM product_product WHERE id = :q);
SELECT rft.err('SELECT retailflow.available_qty(' || :q || ', ' || :s2 || ')');

-- Odoo 18: a move in progress is judged by its final destination
\c rf_regression
CREATE DATABASE rf_t_pq18 TEMPLATE rf_odoo17;
\c rf_t_pq18
\getenv abs_srcdir PG_ABS_SRCDIR
\set delta18 :abs_srcdir '/test/fixtures/odoo18_delta.sql'
SELECT rft.ensure_base();  -- base rows before 18's extra NOT NULL columns
\set ECHO none
\i :delta18
\set ECHO all
SELECT retailflow.odoo_version();
SELECT rft.loc('Physical Locations', NULL, 'view') AS phys \gset
SELECT rft.loc('Customers', NULL, 'customer') AS customers \gset
SELECT rft.warehouse('WH', :phys) AS wh \gset
SELECT rft.stock_of(:wh) AS stock \gset
SELECT rft.loc('WH/Output', (SELECT view_location_id FROM stock_warehouse WHERE id = :wh)) AS output \gset
SELECT rft.product('P18') AS p \gset
SELECT rft.quant(:p, :stock, 10) > 0;
SELECT rft.move(:p, :stock, :output, 4, 'assigned') AS pick \gset
UPDATE stock_move SET location_final_id = :customers WHERE id = :pick;
SELECT qty_available, outgoing_qty, virtual_available FROM retailflow.product_quantities(ARRAY[:p]);
\c rf_regression
DROP DATABASE rf_t_pq;
DROP DATABASE rf_t_pq18;
