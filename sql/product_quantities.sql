-- product_quantities: Odoo's _compute_quantities_dict per product and
-- warehouse (or location subtree), fulfilment options, and bad input.
CREATE DATABASE rf_t_pq TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_pq rf_odoo
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
-- a location outside every warehouse (customers): warehouse_id is NULL, and
-- its incoming quantity is what open moves bring there from outside it
SELECT min(id) AS cust FROM stock_location WHERE usage = 'customer' \gset
SELECT count(*) > 0 AS has_rows, bool_and(warehouse_id IS NULL) AS no_warehouse,
       sum(incoming_qty) > 0 AS has_incoming,
       round(sum(incoming_qty)::numeric, 2) =
       (SELECT round(sum(m.product_qty), 2) FROM stock_move m
        JOIN product_product pp ON pp.id = m.product_id JOIN product_template pt ON pt.id = pp.product_tmpl_id
        WHERE m.location_dest_id = :cust AND m.location_id <> :cust AND pt.type = 'product' AND pp.active
          AND m.state IN ('waiting', 'confirmed', 'assigned', 'partially_available')) AS incoming_matches
FROM retailflow.product_quantities(NULL, NULL, ARRAY[:cust]);
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
\c rf_regression postgres
CREATE DATABASE rf_t_pq18 TEMPLATE rf_odoo17 OWNER rf_odoo;
\c rf_t_pq18 rf_odoo
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
-- the same per pair: judged by its final destination, nothing comes into WH/Output
SELECT location_id = :stock AS "WH/Stock", qty_available, incoming_qty, outgoing_qty, virtual_available
FROM retailflow.product_quantities_at(ARRAY[:p, :p], ARRAY[:stock, :output]);
SELECT a IS NOT DISTINCT FROM b AS same
FROM (SELECT array_agg(x ORDER BY x.location_id) AS a FROM retailflow.product_quantities_at(ARRAY[:p, :p], ARRAY[:stock, :output]) x) pa,
     (SELECT array_agg(x ORDER BY x.location_id) AS b FROM retailflow.product_quantities(ARRAY[:p], NULL, ARRAY[:stock, :output]) x) pb;

-- product_quantities_at() on the tiny network: every (product, location) pair,
-- each twice, in a scrambled order, equals product_quantities() cell by cell
\c rf_regression postgres
CREATE DATABASE rf_t_pqat TEMPLATE rf_tiny OWNER rf_odoo;
\c rf_t_pqat rf_odoo
SET extra_float_digits = 0;
CREATE TEMP TABLE pairs AS
SELECT row_number() OVER (ORDER BY md5(pp.id || '/' || l.id || '/' || k)) AS n, pp.id AS product_id, l.id AS location_id
FROM product_product pp
JOIN product_template pt ON pt.id = pp.product_tmpl_id AND pt.type <> 'service'
CROSS JOIN stock_location l CROSS JOIN generate_series(1, 2) k;
SELECT count(*) AS pairs, count(DISTINCT (product_id, location_id)) AS distinct_pairs,
       count(DISTINCT location_id) AS locations, count(DISTINCT product_id) AS products FROM pairs;
CREATE TEMP TABLE at AS
SELECT * FROM retailflow.product_quantities_at((SELECT array_agg(product_id ORDER BY n) FROM pairs),
                                               (SELECT array_agg(location_id ORDER BY n) FROM pairs))
     WITH ORDINALITY AS x(product_id, warehouse_id, location_id, qty_available, reserved, free_qty,
                          incoming_qty, outgoing_qty, virtual_available, ord);
CREATE TEMP TABLE mx AS
SELECT * FROM retailflow.product_quantities((SELECT array_agg(DISTINCT product_id) FROM pairs), NULL,
                                            (SELECT array_agg(DISTINCT location_id) FROM pairs));
-- one row per distinct pair, in the order of first appearance
SELECT count(*) AS rows, count(DISTINCT (product_id, location_id)) AS distinct_rows FROM at;
SELECT count(*) AS out_of_order
FROM at JOIN (SELECT product_id, location_id, min(n) AS first FROM pairs GROUP BY 1, 2) f USING (product_id, location_id)
JOIN at at2 ON at2.ord = at.ord + 1
JOIN (SELECT product_id, location_id, min(n) AS first FROM pairs GROUP BY 1, 2) f2
  ON f2.product_id = at2.product_id AND f2.location_id = at2.location_id
WHERE f2.first < f.first;
-- equal to the matrix, row by row (mx has every cell, zeros included)
SELECT count(*) AS matrix_cells,
       count(*) FILTER (WHERE (a.warehouse_id, a.qty_available, a.reserved, a.free_qty, a.incoming_qty,
                               a.outgoing_qty, a.virtual_available)
                              IS NOT DISTINCT FROM
                              (m.warehouse_id, m.qty_available, m.reserved, m.free_qty, m.incoming_qty,
                               m.outgoing_qty, m.virtual_available)) AS equal
FROM mx m FULL JOIN at a USING (product_id, location_id);
-- the comparison is not vacuous: stock, reservations, incoming and outgoing, nested locations
SELECT count(*) FILTER (WHERE qty_available <> 0) AS with_stock, count(*) FILTER (WHERE reserved <> 0) AS with_reserved,
       count(*) FILTER (WHERE incoming_qty <> 0) AS with_incoming, count(*) FILTER (WHERE outgoing_qty <> 0) AS with_outgoing,
       count(*) FILTER (WHERE qty_available = 0 AND incoming_qty = 0 AND outgoing_qty = 0) AS empty
FROM at;
-- a location and its child, for the product with the most stock in the child
SELECT q.product_id AS p, l.id AS child, l.location_id AS parent
FROM stock_quant q JOIN stock_location l ON l.id = q.location_id
WHERE l.location_id IS NOT NULL AND l.usage = 'internal'
GROUP BY q.product_id, l.id, l.location_id ORDER BY sum(q.quantity) DESC, 1, 2 LIMIT 1 \gset
SELECT location_id = :parent AS parent, qty_available > 0 AS has_stock,
       qty_available = (SELECT qty_available FROM retailflow.product_quantities(ARRAY[:p], location_ids => ARRAY[x.location_id])) AS same
FROM retailflow.product_quantities_at(ARRAY[:p, :p, :p], ARRAY[:child, :parent, :child]) x;
SELECT (SELECT qty_available FROM retailflow.product_quantities_at(ARRAY[:p], ARRAY[:parent]))
     >= (SELECT qty_available FROM retailflow.product_quantities_at(ARRAY[:p], ARRAY[:child])) AS parent_holds_child;
-- nothing asked, nothing returned
SELECT count(*) FROM retailflow.product_quantities_at('{}', '{}');
-- replenishment_needs(as of 2024-07-01) finds the same rules and quantities as from the whole matrix
-- (rules added on a quarter of the pairs, their minimums around the free
-- quantity so that some are below it and some not, a few snoozed)
INSERT INTO stock_warehouse_orderpoint
SELECT (jsonb_populate_record(NULL::stock_warehouse_orderpoint, to_jsonb(o) || jsonb_build_object(
          'id', 1000 + x.k, 'name', 'OP/T' || x.k, 'product_id', x.product_id, 'location_id', x.location_id,
          'product_min_qty', round(x.free_qty) + x.k % 5 - 2,
          'snoozed_until', CASE WHEN x.k % 9 = 0 THEN '2024-08-01' WHEN x.k % 9 = 1 THEN '2024-06-01' END))).*
FROM (SELECT * FROM stock_warehouse_orderpoint ORDER BY id LIMIT 1) o,
     (SELECT row_number() OVER (ORDER BY m.product_id, m.location_id) AS k, m.*
      FROM mx m JOIN stock_location l ON l.id = m.location_id
      WHERE l.usage IN ('internal', 'view') AND (m.product_id + m.location_id) % 4 = 0
        AND NOT EXISTS (SELECT 1 FROM stock_warehouse_orderpoint e
                        WHERE e.product_id = m.product_id AND e.location_id = m.location_id)) x;
SELECT count(*) AS rules, count(*) FILTER (WHERE snoozed_until IS NOT NULL) AS snoozed FROM stock_warehouse_orderpoint;
CREATE TEMP VIEW from_matrix AS
SELECT v.id, v.free, v.fc
FROM (SELECT o.id, o.product_min_qty AS mn,
             round(coalesce(m.free_qty, 0)::numeric / u.rounding) * u.rounding AS free,
             round(coalesce(m.virtual_available, 0)::numeric / u.rounding) * u.rounding AS fc
      FROM stock_warehouse_orderpoint o
      JOIN product_product pp ON pp.id = o.product_id
      JOIN product_template pt ON pt.id = pp.product_tmpl_id
      JOIN uom_uom u ON u.id = pt.uom_id
      LEFT JOIN mx m ON m.product_id = o.product_id AND m.location_id = o.location_id
      WHERE coalesce(o.active, true) AND coalesce(pp.active, true) AND pt.type = 'product'
        AND (o.snoozed_until IS NULL OR o.snoozed_until <= '2024-07-01')) v
WHERE v.free < v.mn OR v.fc < v.mn;
SELECT count(*) AS rules, count(*) FILTER (WHERE free_qty <= 0) AS none_free,
       (SELECT count(*) FROM from_matrix) AS from_matrix FROM retailflow.replenishment_needs('2024-07-01 00:00:00+00');
SELECT count(*) AS differ
FROM ((SELECT orderpoint_id, free_qty, forecast_qty FROM retailflow.replenishment_needs('2024-07-01 00:00:00+00')
       EXCEPT ALL SELECT * FROM from_matrix)
      UNION ALL
      (SELECT * FROM from_matrix
       EXCEPT ALL SELECT orderpoint_id, free_qty, forecast_qty FROM retailflow.replenishment_needs('2024-07-01 00:00:00+00'))) d;
-- bad input
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(NULL, ARRAY[1])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[1], NULL)');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[' || :p || ', ' || :p || '], ARRAY[' || :child || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(''{}'', ARRAY[' || :child || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[' || :p || ', NULL], ARRAY[' || :child || ', ' || :child || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[' || :p || '], ARRAY[NULL]::int[])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[424242], ARRAY[' || :child || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[' || :p || '], ARRAY[424242])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[(SELECT min(pp.id) FROM product_product pp JOIN product_template pt ON pt.id = pp.product_tmpl_id WHERE pt.type = ''service'')], ARRAY[' || :child || '])');
SELECT rft.err('SELECT * FROM retailflow.product_quantities_at(ARRAY[[1, 2], [3, 4]], ARRAY[[1, 2], [3, 4]])');
\c rf_regression postgres
DROP DATABASE rf_t_pq;
DROP DATABASE rf_t_pq18;
DROP DATABASE rf_t_pqat;
