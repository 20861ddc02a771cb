-- 10_availability.sql: stock availability with Odoo 17/18 semantics
-- (stock_quant._get_available_quantity and product.product._compute_quantities_dict),
-- implemented in C (src/availability.c), plus fulfilment options built on them.

CREATE FUNCTION retailflow.available_qty(
    product_id     integer,
    location_id    integer,
    lot_id         integer DEFAULT NULL,
    package_id     integer DEFAULT NULL,
    owner_id       integer DEFAULT NULL,
    strict         boolean DEFAULT false,
    allow_negative boolean DEFAULT false)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rf_available_qty'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.available_qty(integer, integer, integer, integer, integer, boolean, boolean) IS
  'Odoo stock.quant._get_available_quantity: quantity of a product that can be reserved at a location (and its children unless strict)';

CREATE FUNCTION retailflow.warehouse_available_qty(
    product_id     integer,
    warehouse_id   integer,
    lot_id         integer DEFAULT NULL,
    package_id     integer DEFAULT NULL,
    owner_id       integer DEFAULT NULL,
    allow_negative boolean DEFAULT false)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rf_warehouse_available_qty'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.warehouse_available_qty(integer, integer, integer, integer, integer, boolean) IS
  'available_qty() over a whole warehouse (its view location and every child location)';

-- The row of both quantity functions (a named type: the parser takes it from
-- the type cache instead of rebuilding it from pg_proc on every call).
CREATE TYPE retailflow.product_quantity AS (
    product_id        integer,
    warehouse_id      integer,
    location_id       integer,
    qty_available     double precision,
    reserved          double precision,
    free_qty          double precision,
    incoming_qty      double precision,
    outgoing_qty      double precision,
    virtual_available double precision);
COMMENT ON TYPE retailflow.product_quantity IS
  'Odoo quantities of one product at one warehouse or location subtree (product_quantities, product_quantities_at)';

CREATE FUNCTION retailflow.product_quantities(
    product_ids   integer[] DEFAULT NULL,
    warehouse_ids integer[] DEFAULT NULL,
    location_ids  integer[] DEFAULT NULL,
    include_zero  boolean DEFAULT true)
RETURNS SETOF retailflow.product_quantity
AS 'MODULE_PATHNAME', 'rf_product_quantities'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retailflow.product_quantities(integer[], integer[], integer[], boolean) IS
  'Odoo product quantities (qty_available, free_qty, incoming, outgoing, virtual) per product and warehouse or location subtree; NULL products = all active storable products, NULL warehouses = all active warehouses';

-- product_quantities() for element-wise (product, location) pairs only.
CREATE FUNCTION retailflow.product_quantities_at(
    product_ids  integer[],
    location_ids integer[])
RETURNS SETOF retailflow.product_quantity
AS 'MODULE_PATHNAME', 'rf_product_quantities_at'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retailflow.product_quantities_at(integer[], integer[]) IS
  'product_quantities() for the pairs (product_ids[i], location_ids[i]) only: one row per distinct pair (zeros included), in order of first appearance, each at the location''s subtree';

-- Which warehouses can serve a basket (product, quantity) from free stock.
CREATE FUNCTION retailflow.fulfilment_options(
    product_ids   integer[],
    quantities    numeric[],
    warehouse_ids integer[] DEFAULT NULL,
    OUT warehouse_id integer,
    OUT lines integer,
    OUT lines_full integer,
    OUT lines_partial integer,
    OUT lines_none integer,
    OUT can_fulfil_all boolean,
    OUT fill_rate numeric,
    OUT missing jsonb)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF product_ids IS NULL OR quantities IS NULL THEN
        RAISE EXCEPTION 'product_ids and quantities must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'A basket needs one quantity for each product.';
    END IF;
    IF coalesce(array_length(product_ids, 1), 0) <> coalesce(array_length(quantities, 1), 0) THEN
        RAISE EXCEPTION 'product_ids and quantities must have the same length'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s products and %s quantities.',
                                  coalesce(array_length(product_ids, 1), 0),
                                  coalesce(array_length(quantities, 1), 0));
    END IF;
    IF array_position(quantities, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'quantities must not contain nulls'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = format('Element %s of quantities is null.', array_position(quantities, NULL));
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(quantities) q WHERE q <= 0) THEN
        RAISE EXCEPTION 'quantities must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A basket line asks for zero or a negative quantity.',
                  HINT = 'Leave lines with nothing to deliver out of the basket.';
    END IF;
    RETURN QUERY
    WITH need AS (
        SELECT b.p AS product_id, sum(b.q) AS qty
        FROM unnest(product_ids, quantities) AS b(p, q)
        GROUP BY b.p
    ), pq AS (
        SELECT q.product_id, q.warehouse_id, q.free_qty
        FROM retailflow.product_quantities(
                 (SELECT array_agg(n.product_id) FROM need n), warehouse_ids, NULL, true) q
    ), per_line AS (
        SELECT pq.warehouse_id, n.product_id, n.qty AS needed,
               greatest(pq.free_qty, 0)::numeric AS free
        FROM need n JOIN pq ON pq.product_id = n.product_id
    )
    SELECT l.warehouse_id,
           count(*)::integer,
           count(*) FILTER (WHERE l.free >= l.needed)::integer,
           count(*) FILTER (WHERE l.free > 0 AND l.free < l.needed)::integer,
           count(*) FILTER (WHERE l.free <= 0)::integer,
           bool_and(l.free >= l.needed),
           round(sum(least(l.free, l.needed)) / nullif(sum(l.needed), 0), 4),
           coalesce(jsonb_agg(jsonb_build_object(
                        'product_id', l.product_id, 'needed', l.needed,
                        'free', l.free, 'short', l.needed - l.free)
                      ORDER BY l.product_id) FILTER (WHERE l.free < l.needed), '[]'::jsonb)
    FROM per_line l
    GROUP BY l.warehouse_id
    ORDER BY 6 DESC, 7 DESC, 1;
END
$$;
COMMENT ON FUNCTION retailflow.fulfilment_options(integer[], numeric[], integer[]) IS
  'For a basket of (product, quantity): which warehouses can serve every line from free stock, which part, and what is missing';

-- The same for the open lines of a sale order (remaining quantity in the product's UoM).
CREATE FUNCTION retailflow.fulfilment_options(
    sale_order_id integer,
    warehouse_ids integer[] DEFAULT NULL,
    OUT warehouse_id integer,
    OUT lines integer,
    OUT lines_full integer,
    OUT lines_partial integer,
    OUT lines_none integer,
    OUT can_fulfil_all boolean,
    OUT fill_rate numeric,
    OUT missing jsonb)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prods integer[];
    qtys  numeric[];
    found_order boolean;
BEGIN
    IF sale_order_id IS NULL THEN
        RAISE EXCEPTION 'sale_order_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT retailflow.odoo_tables_exist('{sale_order,sale_order_line}') THEN
        RAISE EXCEPTION 'odoo table "sale_order_line" was not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'fulfilment_options(sale_order_id) reads sale orders.',
                  HINT = 'Install Odoo''s sale_stock module, or pass products and quantities instead.';
    END IF;
    SELECT t.ok INTO found_order
      FROM retailflow.odoo_query('SELECT EXISTS (SELECT 1 FROM {odoo}.sale_order WHERE id = $1)', sale_order_id)
        AS t(ok boolean);
    IF NOT found_order THEN
        RAISE EXCEPTION 'sale order % does not exist', sale_order_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('There is no row with id %s in sale_order.', sale_order_id);
    END IF;
    -- remaining quantity per line, converted from the line's UoM to the product's
    -- (uom._compute_quantity: qty / from.factor * to.factor)
    SELECT t.p, t.q INTO prods, qtys FROM retailflow.odoo_query($q$
        SELECT array_agg(x.product_id ORDER BY x.product_id), array_agg(x.qty ORDER BY x.product_id)
        FROM (
            SELECT l.product_id,
                   sum(CASE WHEN lu.id IS NULL OR lu.id = pu.id
                            THEN l.product_uom_qty - coalesce(l.qty_delivered, 0)
                            ELSE (l.product_uom_qty - coalesce(l.qty_delivered, 0)) / lu.factor * pu.factor
                       END) AS qty
            FROM {odoo}.sale_order_line l
            JOIN {odoo}.product_product pp ON pp.id = l.product_id
            JOIN {odoo}.product_template pt ON pt.id = pp.product_tmpl_id
            LEFT JOIN {odoo}.uom_uom lu ON lu.id = l.product_uom
            LEFT JOIN {odoo}.uom_uom pu ON pu.id = pt.uom_id
            WHERE l.order_id = $1 AND l.display_type IS NULL AND pt.type <> 'service'
            GROUP BY l.product_id
        ) x WHERE x.qty > 0$q$, sale_order_id) AS t(p integer[], q numeric[]);
    IF prods IS NULL THEN
        RETURN;                 -- nothing left to deliver
    END IF;
    RETURN QUERY SELECT * FROM retailflow.fulfilment_options(prods, qtys, warehouse_ids);
END
$$;
COMMENT ON FUNCTION retailflow.fulfilment_options(integer, integer[]) IS
  'fulfilment_options() for the quantities a sale order still has to deliver';
