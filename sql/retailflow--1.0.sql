-- generated from sql/install/*.sql by make; do not edit
\echo Use "CREATE EXTENSION retailflow" to load this file. \quit

-- >>> sql/install/00_core.sql
-- 00_core.sql: the retailflow schema's foundation: status and Odoo detection,
-- the registry of triggers retailflow manages on Odoo's tables, attach() and
-- detach(), and the event trigger that cleans Odoo's tables on DROP EXTENSION.

COMMENT ON SCHEMA retailflow IS 'retailflow: omnichannel stock, conflicts, approvals and webhooks for Odoo databases';

CREATE FUNCTION retailflow.status(
    OUT component text, OUT name text, OUT status text, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_status'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.status() IS
  'Extension version, detected Odoo version and which Odoo tables and columns were found';

CREATE FUNCTION retailflow.odoo_version()
RETURNS integer
AS 'MODULE_PATHNAME', 'rf_odoo_version'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.odoo_version() IS
  'Odoo major version detected from the catalog: 17 or 18, 16 when too old, NULL when no Odoo tables';

CREATE FUNCTION retailflow.cache_invalidate_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_cache_invalidate_trigger'
LANGUAGE C;

-- Every trigger retailflow puts on an Odoo table is registered here; attach()
-- creates the missing ones (tables may appear after CREATE EXTENSION, when
-- Odoo installs a module), detach() removes them all.
CREATE TABLE retailflow.managed_trigger (
    table_name   name NOT NULL,
    trigger_name name NOT NULL CHECK (trigger_name::text LIKE 'retailflow\_%'),
    concern      text NOT NULL,
    -- what follows "CREATE TRIGGER <name>"; %s stands for the qualified table
    definition   text NOT NULL CHECK (definition LIKE '%\%s%'),
    PRIMARY KEY (table_name, trigger_name)
);
COMMENT ON TABLE retailflow.managed_trigger IS
  'Triggers retailflow manages on Odoo tables; attach() creates them, detach() drops them';

INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition)
SELECT t, 'retailflow_cache_inval', 'availability cache',
       'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()'
FROM unnest(ARRAY['stock_location', 'stock_warehouse', 'product_product',
                  'product_template', 'uom_uom']) AS t;

CREATE FUNCTION retailflow.attach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch  text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    r    record;
    rel  regclass;
BEGIN
    FOR r IN SELECT m.table_name, m.trigger_name, m.definition
             FROM retailflow.managed_trigger m ORDER BY 1, 2
    LOOP
        table_name := r.table_name;
        trigger_name := r.trigger_name;
        rel := to_regclass(format('%I.%I', sch, r.table_name));
        IF rel IS NULL THEN
            action := 'table missing';
        ELSIF EXISTS (SELECT 1 FROM pg_trigger tg
                      WHERE tg.tgrelid = rel AND tg.tgname = r.trigger_name) THEN
            action := 'present';
        ELSE
            EXECUTE format('CREATE TRIGGER %I ', r.trigger_name)
                 || format(r.definition, rel::text);
            action := 'created';
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.attach() IS
  'Creates every trigger registered in retailflow.managed_trigger on the Odoo tables that exist';

CREATE FUNCTION retailflow.detach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    -- Drop by name wherever retailflow put them, whatever the schema GUC says now.
    FOR r IN SELECT tg.tgrelid::regclass AS rel, c.relname, tg.tgname
             FROM pg_trigger tg
             JOIN pg_class c ON c.oid = tg.tgrelid
             JOIN retailflow.managed_trigger m
               ON m.table_name = c.relname AND m.trigger_name = tg.tgname
             WHERE NOT tg.tgisinternal
             ORDER BY 2, 3
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        table_name := r.relname;
        trigger_name := r.tgname;
        action := 'dropped';
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.detach() IS
  'Drops every retailflow trigger from Odoo tables; DROP EXTENSION calls it first';

REVOKE ALL ON FUNCTION retailflow.attach() FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.detach() FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.managed_trigger FROM PUBLIC;

CREATE FUNCTION retailflow.drop_extension_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rf_drop_extension_guard'
LANGUAGE C;

CREATE EVENT TRIGGER retailflow_drop_extension_guard
    ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION retailflow.drop_extension_guard();

-- >>> sql/install/05_outbox.sql
-- 05_outbox.sql: the transactional outbox every concern writes events to.
-- An event row exists if and only if the transaction that emitted it
-- committed; background workers (webhook delivery) read it after commit.
-- retailflow.emit() is the one entry point for events from SQL and C; it
-- also fans the event out to the matching webhook endpoints (one
-- retailflow.delivery row per endpoint, tables in 30_webhooks.sql) and
-- wakes the delivery workers when the transaction commits.

-- Known event types; emit() refuses others.  Each concern registers its own.
CREATE TABLE retailflow.event_type (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    description text NOT NULL
);
COMMENT ON TABLE retailflow.event_type IS 'Event types retailflow can emit (Standard Webhooks "type")';

CREATE TABLE retailflow.outbox (
    id          bigserial PRIMARY KEY,
    event_type  text NOT NULL REFERENCES retailflow.event_type (name),
    model       text NOT NULL,
    record_id   integer,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id()
);
COMMENT ON TABLE retailflow.outbox IS 'Transactional outbox: one row per committed business event';
CREATE INDEX outbox_record_idx ON retailflow.outbox (model, record_id, id);
CREATE INDEX outbox_created_idx ON retailflow.outbox (created_at);

-- Which events are captured: a row with enabled = false switches an event
-- type off (capture triggers and emit() then write nothing for it).
CREATE TABLE retailflow.subscription (
    event_type  text PRIMARY KEY REFERENCES retailflow.event_type (name) ON DELETE CASCADE,
    enabled     boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE retailflow.subscription IS
  'Captured event types: enabled = false stops capture of that type (no row means enabled)';

-- Sets the "events committed" flag the commit callback turns into a worker wake-up.
CREATE FUNCTION retailflow.wake_workers_at_commit()
RETURNS void
AS 'MODULE_PATHNAME', 'rf_wake_workers_at_commit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION retailflow.emit(event_type text, model text, record_id integer, data jsonb DEFAULT '{}'::jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    size   integer;
BEGIN
    IF event_type IS NULL OR model IS NULL THEN
        RAISE EXCEPTION 'event_type and model must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Every event names its type (for example sale.order.confirmed) and its Odoo model.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retailflow.event_type t WHERE t.name = emit.event_type) THEN
        RAISE EXCEPTION 'unknown event type "%"', event_type
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Event types must be registered in retailflow.event_type before they are emitted.',
                  HINT = 'SELECT name FROM retailflow.event_type lists the known types.';
    END IF;
    IF data IS NOT NULL AND jsonb_typeof(data) <> 'object' THEN
        RAISE EXCEPTION 'event data must be a json object, not %', jsonb_typeof(data)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The data becomes the "data" member of the webhook payload.';
    END IF;
    size := octet_length(coalesce(data, '{}'::jsonb)::text);
    IF size > 16384 THEN
        RAISE EXCEPTION 'event data too large: % bytes', size
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = 'Event data is limited to 16384 bytes of JSON so that every webhook body stays under 20 kB.',
                  HINT = 'Send identifiers and key fields; receivers fetch the rest from Odoo.';
    END IF;
    IF EXISTS (SELECT 1 FROM retailflow.subscription s
               WHERE s.event_type = emit.event_type AND NOT s.enabled) THEN
        RETURN NULL;
    END IF;
    INSERT INTO retailflow.outbox (event_type, model, record_id, data)
    VALUES (event_type, model, record_id, coalesce(data, '{}'::jsonb))
    RETURNING id INTO new_id;
    INSERT INTO retailflow.delivery (event_id, endpoint_id, model, record_id)
    SELECT new_id, e.id, emit.model, emit.record_id
    FROM retailflow.endpoint e
    WHERE e.active AND retailflow.filter_match(e.event_filters, emit.event_type);
    IF FOUND THEN
        PERFORM retailflow.wake_workers_at_commit();
    END IF;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION retailflow.emit(text, text, integer, jsonb) IS
  'Writes one event to the transactional outbox; it is delivered only if the transaction commits';

REVOKE ALL ON TABLE retailflow.outbox FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.event_type FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.subscription FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.emit(text, text, integer, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.wake_workers_at_commit() FROM PUBLIC;

-- >>> sql/install/10_availability.sql
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
    sch   text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    prods integer[];
    qtys  numeric[];
    found_order boolean;
BEGIN
    IF sale_order_id IS NULL THEN
        RAISE EXCEPTION 'sale_order_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass(format('%I.sale_order_line', sch)) IS NULL THEN
        RAISE EXCEPTION 'odoo table "%.sale_order_line" was not found', sch
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'fulfilment_options(sale_order_id) reads sale orders.',
                  HINT = 'Install Odoo''s sale_stock module, or pass products and quantities instead.';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.sale_order WHERE id = $1)', sch)
        INTO found_order USING sale_order_id;
    IF NOT found_order THEN
        RAISE EXCEPTION 'sale order % does not exist', sale_order_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('There is no row with id %s in sale_order.', sale_order_id);
    END IF;
    -- remaining quantity per line, converted from the line's UoM to the product's
    -- (uom._compute_quantity: qty / from.factor * to.factor)
    EXECUTE format($q$
        SELECT array_agg(x.product_id ORDER BY x.product_id), array_agg(x.qty ORDER BY x.product_id)
        FROM (
            SELECT l.product_id,
                   sum(CASE WHEN lu.id IS NULL OR lu.id = pu.id
                            THEN l.product_uom_qty - coalesce(l.qty_delivered, 0)
                            ELSE (l.product_uom_qty - coalesce(l.qty_delivered, 0)) / lu.factor * pu.factor
                       END) AS qty
            FROM %1$I.sale_order_line l
            JOIN %1$I.product_product pp ON pp.id = l.product_id
            JOIN %1$I.product_template pt ON pt.id = pp.product_tmpl_id
            LEFT JOIN %1$I.uom_uom lu ON lu.id = l.product_uom
            LEFT JOIN %1$I.uom_uom pu ON pu.id = pt.uom_id
            WHERE l.order_id = $1 AND l.display_type IS NULL AND pt.type <> 'service'
            GROUP BY l.product_id
        ) x WHERE x.qty > 0$q$, sch)
        INTO prods, qtys USING sale_order_id;
    IF prods IS NULL THEN
        RETURN;                 -- nothing left to deliver
    END IF;
    RETURN QUERY SELECT * FROM retailflow.fulfilment_options(prods, qtys, warehouse_ids);
END
$$;
COMMENT ON FUNCTION retailflow.fulfilment_options(integer, integer[]) IS
  'fulfilment_options() for the quantities a sale order still has to deliver';

-- >>> sql/install/20_conflicts.sql
-- 20_conflicts.sql: reservation conflict detection and oversell prevention.
-- The general exception log (later the operator's exception queue), the
-- conflict scan retailflow.reservation_conflicts() (C) and its plain-SQL
-- twin, the statement triggers on stock_quant / stock_move_line (C, GUC
-- retailflow.conflict_action = off | log | block), the per (product,
-- location) guard rows that make concurrent reservations conflict, and
-- retailflow.repair_reservations() (Odoo 18's _clean_reservations).

INSERT INTO retailflow.event_type (name, description) VALUES
  ('stock.conflict', 'A reservation conflict (oversell, broken reservation) was detected and logged'),
  ('stock.reservation_repaired', 'repair_reservations() changed the reserved quantity of a quant');

-- One row per exception retailflow noticed, whatever the concern.
CREATE TABLE retailflow.exception_log (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    model       text NOT NULL,
    record_id   integer,
    product_id  integer,
    location_id integer,
    keys        jsonb NOT NULL DEFAULT '{}'::jsonb,
    expected    numeric,
    actual      numeric,
    detail      text NOT NULL,
    source      text NOT NULL CHECK (source IN ('trigger', 'repair', 'scan', 'manual')),
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    role        name NOT NULL DEFAULT session_user,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE retailflow.exception_log IS
  'Exceptions retailflow noticed (reservation conflicts, repairs, ...): what, when, which transaction and role';
CREATE INDEX exception_log_kind_idx ON retailflow.exception_log (kind, occurred_at);
CREATE INDEX exception_log_product_idx ON retailflow.exception_log (product_id, location_id);
CREATE INDEX exception_log_occurred_idx ON retailflow.exception_log (occurred_at);
REVOKE ALL ON TABLE retailflow.exception_log FROM PUBLIC;

-- Guard rows: in block mode every statement that leaves a reservation (or a
-- negative quantity) on a (product, location) bumps its row, so two
-- REPEATABLE READ transactions reserving there conflict (40001) instead of
-- both passing a check on their own snapshot.
CREATE TABLE retailflow.reservation_guard (
    product_id  integer NOT NULL,
    location_id integer NOT NULL,
    bumps       bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (product_id, location_id)
);
COMMENT ON TABLE retailflow.reservation_guard IS
  'One row per (product, location) reserved under conflict_action = block; updated to serialize reservations';
REVOKE ALL ON TABLE retailflow.reservation_guard FROM PUBLIC;

-- Writes one exception row and its stock.conflict event (called by the C triggers).
CREATE FUNCTION retailflow.log_exception(
    p_kind text, p_severity text, p_model text, p_record_id integer,
    p_product_id integer, p_location_id integer, p_keys jsonb,
    p_expected numeric, p_actual numeric, p_detail text, p_source text,
    p_role name DEFAULT NULL, p_event text DEFAULT 'stock.conflict')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO retailflow.exception_log (kind, severity, model, record_id, product_id, location_id,
                                          keys, expected, actual, detail, source, role)
    VALUES (p_kind, p_severity, p_model, p_record_id, p_product_id, p_location_id,
            coalesce(p_keys, '{}'::jsonb), p_expected, p_actual, p_detail, p_source,
            coalesce(p_role, session_user))
    RETURNING id INTO new_id;
    PERFORM retailflow.emit(p_event, p_model, p_record_id,
        jsonb_build_object('exception_id', new_id, 'kind', p_kind, 'severity', p_severity,
                           'product_id', p_product_id, 'location_id', p_location_id,
                           'expected', p_expected, 'actual', p_actual, 'detail', p_detail)
        || coalesce(p_keys, '{}'::jsonb));
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION retailflow.log_exception(text, text, text, integer, integer, integer, jsonb,
                                                numeric, numeric, text, text, name, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Conflict scan.  Both functions return the same rows; the C one reads the
-- heap directly with hash aggregates, the SQL one is the reference (tests and
-- the benchmark baseline).
-- ---------------------------------------------------------------------------
CREATE FUNCTION retailflow.reservation_conflicts(
    OUT kind text, OUT severity text, OUT product_id integer, OUT location_id integer,
    OUT lot_id integer, OUT package_id integer, OUT owner_id integer, OUT warehouse_id integer,
    OUT record_id integer, OUT expected numeric, OUT actual numeric, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_reservation_conflicts'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.reservation_conflicts() IS
  'One row per reservation conflict (Odoo stock invariants broken, oversell risk) in the Odoo database';

CREATE FUNCTION retailflow.reservation_conflicts_sql(
    OUT kind text, OUT severity text, OUT product_id integer, OUT location_id integer,
    OUT lot_id integer, OUT package_id integer, OUT owner_id integer, OUT warehouse_id integer,
    OUT record_id integer, OUT expected numeric, OUT actual numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch      text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    v        integer := retailflow.odoo_version();
    storable text;
    bypass   text;
    dest     text;
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'odoo stock tables were not found in schema "%"', sch
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'Reservation conflicts are computed on stock_quant, stock_move_line and stock_move.',
                  HINT = 'Set retailflow.odoo_schema to the schema of Odoo''s tables.';
    ELSIF v < 17 THEN
        RAISE EXCEPTION 'odoo % is not supported', v
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'retailflow supports the stock models of Odoo 17 and 18.';
    END IF;
    storable := CASE WHEN v >= 18 THEN 'coalesce(pt.is_storable, false)' ELSE 'pt.type = ''product''' END;
    bypass := '(l.usage IN (''supplier'', ''customer'', ''inventory'', ''production'') OR coalesce(l.scrap_location, false)'
              || CASE WHEN v = 17 THEN ' OR (l.usage = ''transit'' AND l.company_id IS NULL))' ELSE ')' END;
    dest := CASE WHEN v >= 18 THEN 'coalesce(m.location_final_id, m.location_dest_id)' ELSE 'm.location_dest_id' END;
    RETURN QUERY EXECUTE format($q$
    WITH loc AS (
        SELECT l.id, l.usage::text AS usage, %2$s AS bypass, l.warehouse_id FROM %1$I.stock_location l
    ), prod AS (
        SELECT pp.id, %3$s AS storable, pt.tracking::text AS tracking, coalesce(u.rounding, 0.01) AS r
        FROM %1$I.product_product pp JOIN %1$I.product_template pt ON pt.id = pp.product_tmpl_id
        LEFT JOIN %1$I.uom_uom u ON u.id = pt.uom_id
    ), qk AS (
        SELECT q.product_id, q.location_id, coalesce(q.lot_id, 0) AS lot, coalesce(q.package_id, 0) AS pkg,
               coalesce(q.owner_id, 0) AS own, sum(q.quantity) AS qty, sum(q.reserved_quantity) AS res,
               count(*) AS n, min(q.id) AS qid
        FROM %1$I.stock_quant q GROUP BY 1, 2, 3, 4, 5
    ), mk AS (
        SELECT ml.product_id, ml.location_id, coalesce(ml.lot_id, 0) AS lot, coalesce(ml.package_id, 0) AS pkg,
               coalesce(ml.owner_id, 0) AS own, sum(coalesce(ml.quantity_product_uom, 0)) AS res, min(ml.id) AS mlid
        FROM %1$I.stock_move_line ml
        WHERE ml.state IS NULL OR ml.state NOT IN ('done', 'cancel')
        GROUP BY 1, 2, 3, 4, 5
    ), keys AS (
        SELECT coalesce(qk.product_id, mk.product_id) AS product_id, coalesce(qk.location_id, mk.location_id) AS location_id,
               coalesce(qk.lot, mk.lot) AS lot, coalesce(qk.pkg, mk.pkg) AS pkg, coalesce(qk.own, mk.own) AS own,
               qk.qty, qk.res, qk.n, qk.qid, mk.res AS mlres, mk.mlid
        FROM qk FULL JOIN mk ON mk.product_id = qk.product_id AND mk.location_id = qk.location_id
                            AND mk.lot = qk.lot AND mk.pkg = qk.pkg AND mk.own = qk.own
    ), kk AS (
        SELECT k.*, l.bypass, l.usage, l.warehouse_id, p.storable, p.r, p.tracking
        FROM keys k JOIN loc l ON l.id = k.location_id JOIN prod p ON p.id = k.product_id
    ), wh AS (
        SELECT w.id AS wid, vl.parent_path AS pp FROM %1$I.stock_warehouse w
        JOIN %1$I.stock_location vl ON vl.id = w.view_location_id WHERE w.active
    ), locwh AS (
        SELECT l.id AS loc_id, wh.wid FROM %1$I.stock_location l JOIN wh ON l.parent_path LIKE wh.pp || '%%'
    ), onhand AS (
        SELECT lw.wid, q.product_id, sum(q.quantity) AS qty
        FROM %1$I.stock_quant q JOIN locwh lw ON lw.loc_id = q.location_id GROUP BY 1, 2
    ), mv AS (
        SELECT m.product_id, m.product_qty, m.location_id AS src, %4$s AS dst
        FROM %1$I.stock_move m WHERE m.state IN ('waiting', 'confirmed', 'assigned', 'partially_available')
    ), outg AS (
        SELECT lw.wid, mv.product_id, sum(mv.product_qty) AS qty FROM mv JOIN locwh lw ON lw.loc_id = mv.src
        WHERE NOT EXISTS (SELECT 1 FROM locwh d WHERE d.loc_id = mv.dst AND d.wid = lw.wid) GROUP BY 1, 2
    ), inc AS (
        SELECT lw.wid, mv.product_id, sum(mv.product_qty) AS qty FROM mv JOIN locwh lw ON lw.loc_id = mv.dst
        WHERE NOT EXISTS (SELECT 1 FROM locwh s WHERE s.loc_id = mv.src AND s.wid = lw.wid) GROUP BY 1, 2
    ), mlm AS (
        SELECT ml.move_id, sum(CASE WHEN ml.product_uom_id IS NULL OR ml.product_uom_id = m.product_uom
                                    THEN coalesce(ml.quantity, 0)
                                    ELSE coalesce(ml.quantity, 0) / mlu.factor * mu.factor END) AS qty
        FROM %1$I.stock_move_line ml JOIN %1$I.stock_move m ON m.id = ml.move_id
        LEFT JOIN %1$I.uom_uom mlu ON mlu.id = ml.product_uom_id LEFT JOIN %1$I.uom_uom mu ON mu.id = m.product_uom
        WHERE m.state NOT IN ('done', 'cancel') GROUP BY 1
    ), allc(kind, severity, product_id, location_id, lot, pkg, own, warehouse_id, record_id, expected, actual, detail) AS (
    -- 1. quants' reserved sum differs from the open move lines' sum
    SELECT 'reservation_mismatch', 'error', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, coalesce(kk.mlres, 0), kk.res,
           format('quants reserve %%s but open move lines reserve %%s', kk.res::float8, coalesce(kk.mlres, 0)::float8)
    FROM kk WHERE kk.qid IS NOT NULL AND NOT kk.bypass AND kk.storable
      AND round(kk.res / kk.r) <> round(coalesce(kk.mlres, 0) / kk.r)
    UNION ALL
    -- 3. open move lines reserve a key that has no quant at all
    SELECT 'reservation_without_quant', 'error', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.mlid, kk.mlres, 0::numeric,
           format('open move lines reserve %%s but no quant exists for this key', kk.mlres::float8)
    FROM kk WHERE kk.qid IS NULL AND NOT kk.bypass AND kk.storable AND round(kk.mlres / kk.r) > 0
    UNION ALL
    -- 4. more reserved than on hand on a key
    SELECT 'over_reservation', 'error', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, kk.qty, kk.res,
           format('%%s reserved but only %%s on hand', kk.res::float8, kk.qty::float8)
    FROM kk WHERE kk.qid IS NOT NULL AND NOT kk.bypass AND round(kk.res / kk.r) > round(kk.qty / kk.r)
      AND round(kk.res / kk.r) > 0
    UNION ALL
    -- 5. negative on-hand in an internal location
    SELECT 'negative_stock', 'error', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, 0::numeric, kk.qty, format('%%s on hand in an internal location', kk.qty::float8)
    FROM kk WHERE kk.qid IS NOT NULL AND kk.usage = 'internal' AND round(kk.qty / kk.r) < 0
    UNION ALL
    -- 6. more than one quant for one key
    SELECT 'duplicate_quant', 'warning', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, 1::numeric, kk.n::numeric, format('%%s quants share this key', kk.n)
    FROM kk WHERE kk.n > 1
    UNION ALL
    -- 2 and 4b. per quant: reserved in a bypass location, negative reserved
    SELECT CASE WHEN l.bypass THEN 'reserved_in_bypass_location' ELSE 'negative_reservation' END, 'error',
           q.product_id, q.location_id, coalesce(q.lot_id, 0), coalesce(q.package_id, 0), coalesce(q.owner_id, 0),
           l.warehouse_id, q.id, 0::numeric, q.reserved_quantity,
           CASE WHEN l.bypass THEN format('%%s reserved in a %%s location, where Odoo never reserves',
                                          q.reserved_quantity::float8, l.usage)
                ELSE format('negative reserved quantity %%s', q.reserved_quantity::float8) END
    FROM %1$I.stock_quant q JOIN loc l ON l.id = q.location_id JOIN prod p ON p.id = q.product_id
    WHERE (l.bypass AND round(q.reserved_quantity / p.r) <> 0) OR (NOT l.bypass AND round(q.reserved_quantity / p.r) < 0)
    UNION ALL
    -- 7. serial numbers: more than one unit, or more than one internal quant
    SELECT x.k, x.sev, x.product_id, x.loc, x.lot_id, 0, 0, NULL::integer, x.lot_id, 1::numeric, x.v,
           CASE WHEN x.k = 'serial_overstock' THEN format('serial number holds %%s units in internal locations', x.v::float8)
                ELSE format('serial number is in %%s internal quants', x.v) END
    FROM (SELECT q.product_id, q.lot_id, CASE WHEN count(DISTINCT q.location_id) = 1 THEN min(q.location_id) END AS loc,
                 sum(q.quantity) AS qty, count(*) FILTER (WHERE round(q.quantity / p.r) <> 0) AS n, min(p.r) AS r
          FROM %1$I.stock_quant q JOIN loc l ON l.id = q.location_id JOIN prod p ON p.id = q.product_id
          WHERE p.tracking = 'serial' AND q.lot_id IS NOT NULL AND l.usage = 'internal'
          GROUP BY 1, 2) s
    CROSS JOIN LATERAL (VALUES ('serial_overstock', 'error', s.product_id, s.loc, s.lot_id, s.qty, round(s.qty / s.r) > round(1 / s.r)),
                               ('serial_duplicated', 'warning', s.product_id, s.loc, s.lot_id, s.n::numeric, s.n > 1))
         AS x(k, sev, product_id, loc, lot_id, v, hit)
    WHERE x.hit
    UNION ALL
    -- 8. open outgoing demand above on hand plus incoming, per warehouse
    SELECT 'oversell_risk', 'warning', o.product_id, vl.view_location_id, 0, 0, 0, o.wid, NULL::integer,
           o.qty, coalesce(h.qty, 0) + coalesce(i.qty, 0),
           format('open outgoing demand %%s exceeds on hand %%s plus incoming %%s',
                  o.qty::float8, coalesce(h.qty, 0)::float8, coalesce(i.qty, 0)::float8)
    FROM outg o JOIN prod p ON p.id = o.product_id AND p.storable
    JOIN %1$I.stock_warehouse vl ON vl.id = o.wid
    LEFT JOIN onhand h ON h.wid = o.wid AND h.product_id = o.product_id
    LEFT JOIN inc i ON i.wid = o.wid AND i.product_id = o.product_id
    WHERE round((coalesce(h.qty, 0) + coalesce(i.qty, 0) - o.qty) / p.r) < 0
    UNION ALL
    -- 9. a move's quantity differs from the sum of its move lines
    SELECT 'move_quantity_mismatch', 'error', m.product_id, m.location_id, 0, 0, 0, l.warehouse_id, m.id,
           coalesce(mlm.qty, 0), coalesce(m.quantity, 0),
           format('move quantity %%s but its move lines sum to %%s', coalesce(m.quantity, 0)::float8, coalesce(mlm.qty, 0)::float8)
    FROM %1$I.stock_move m LEFT JOIN mlm ON mlm.move_id = m.id
    JOIN loc l ON l.id = m.location_id
    LEFT JOIN %1$I.uom_uom mu ON mu.id = m.product_uom
    WHERE m.state NOT IN ('done', 'cancel')
      AND round(coalesce(m.quantity, 0) / coalesce(mu.rounding, 0.01)) <> round(coalesce(mlm.qty, 0) / coalesce(mu.rounding, 0.01))
    )
    SELECT c.kind, c.severity, c.product_id, c.location_id, nullif(c.lot, 0), nullif(c.pkg, 0), nullif(c.own, 0),
           c.warehouse_id, c.record_id, c.expected, c.actual, c.detail
    FROM allc c$q$, sch, bypass, storable, dest);
END
$$;
COMMENT ON FUNCTION retailflow.reservation_conflicts_sql() IS
  'Plain-SQL reference implementation of reservation_conflicts() (same rows, slower)';

-- ---------------------------------------------------------------------------
-- Triggers: statement level, transition tables, C.
-- ---------------------------------------------------------------------------
CREATE FUNCTION retailflow.conflict_check_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_conflict_check_trigger'
LANGUAGE C;

INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('stock_quant', 'retailflow_conflict_ins', 'reservation conflicts',
   'AFTER INSERT ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_quant', 'retailflow_conflict_upd', 'reservation conflicts',
   'AFTER UPDATE ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_move_line', 'retailflow_conflict_ins', 'reservation conflicts',
   'AFTER INSERT ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_move_line', 'retailflow_conflict_upd', 'reservation conflicts',
   'AFTER UPDATE ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()');

-- ---------------------------------------------------------------------------
-- Repair: Odoo 18 stock.quant._clean_reservations, for 17 and 18.
-- ---------------------------------------------------------------------------
CREATE FUNCTION retailflow.repair_reservations(
    dry_run boolean DEFAULT true,
    OUT action text, OUT product_id integer, OUT location_id integer, OUT lot_id integer,
    OUT package_id integer, OUT owner_id integer, OUT quant_id integer,
    OUT old_reserved numeric, OUT new_reserved numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET retailflow.conflict_action = 'off'
AS $$
DECLARE
    sch      text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    v        integer := retailflow.odoo_version();
    storable text;
    bypass   text;
    k        record;
    q        record;
    delta    numeric;
    take     numeric;
BEGIN
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Pass true to list the changes, false to apply them.';
    END IF;
    IF v IS NULL OR to_regclass(format('%I.stock_move_line', sch)) IS NULL THEN
        RAISE EXCEPTION 'odoo stock tables were not found in schema "%"', sch
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'repair_reservations() recomputes stock_quant.reserved_quantity from stock_move_line.',
                  HINT = 'Set retailflow.odoo_schema to the schema of Odoo''s tables.';
    ELSIF v < 17 THEN
        RAISE EXCEPTION 'odoo % is not supported', v USING ERRCODE = 'feature_not_supported';
    END IF;
    storable := CASE WHEN v >= 18 THEN 'coalesce(pt.is_storable, false)' ELSE 'pt.type = ''product''' END;
    bypass := '(l.usage IN (''supplier'', ''customer'', ''inventory'', ''production'') OR coalesce(l.scrap_location, false)'
              || CASE WHEN v = 17 THEN ' OR (l.usage = ''transit'' AND l.company_id IS NULL))' ELSE ')' END;
    IF NOT dry_run THEN
        -- no reservation may change under us while we recompute
        EXECUTE format('LOCK TABLE %1$I.stock_quant IN SHARE ROW EXCLUSIVE MODE', sch);
        EXECUTE format('LOCK TABLE %1$I.stock_move_line IN SHARE MODE', sch);
    END IF;
    FOR k IN EXECUTE format($q$
        WITH a AS (
            SELECT q.product_id, q.location_id, q.lot_id, q.package_id, q.owner_id, sum(q.reserved_quantity) AS res
            FROM %1$I.stock_quant q WHERE q.reserved_quantity <> 0 GROUP BY 1, 2, 3, 4, 5
        ), b AS (
            SELECT ml.product_id, ml.location_id, ml.lot_id, ml.package_id, ml.owner_id, sum(ml.quantity_product_uom) AS res
            FROM %1$I.stock_move_line ml JOIN %1$I.product_product pp ON pp.id = ml.product_id
            JOIN %1$I.product_template pt ON pt.id = pp.product_tmpl_id
            WHERE ml.state IN ('assigned', 'partially_available', 'waiting', 'confirmed')
              AND ml.quantity_product_uom <> 0 AND %3$s
            GROUP BY 1, 2, 3, 4, 5
        )
        SELECT coalesce(a.product_id, b.product_id) AS product_id, coalesce(a.location_id, b.location_id) AS location_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.lot_id ELSE b.lot_id END AS lot_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.package_id ELSE b.package_id END AS package_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.owner_id ELSE b.owner_id END AS owner_id,
               coalesce(a.res, 0) AS quant_res, coalesce(b.res, 0) AS ml_res, %2$s AS bypass,
               coalesce(u.rounding, 0.01) AS r, l.company_id
        FROM a FULL JOIN b ON b.product_id = a.product_id AND b.location_id = a.location_id
             AND b.lot_id IS NOT DISTINCT FROM a.lot_id AND b.package_id IS NOT DISTINCT FROM a.package_id
             AND b.owner_id IS NOT DISTINCT FROM a.owner_id
        JOIN %1$I.stock_location l ON l.id = coalesce(a.location_id, b.location_id)
        JOIN %1$I.product_product pp ON pp.id = coalesce(a.product_id, b.product_id)
        JOIN %1$I.product_template pt ON pt.id = pp.product_tmpl_id
        LEFT JOIN %1$I.uom_uom u ON u.id = pt.uom_id
        ORDER BY 1, 2, 3 NULLS FIRST, 4 NULLS FIRST, 5 NULLS FIRST$q$, sch, bypass, storable)
    LOOP
        IF k.bypass THEN
            IF k.quant_res = 0 THEN
                CONTINUE;       -- step 2: nothing reserved in a bypass location, nothing to do
            END IF;
            delta := -k.quant_res;
        ELSIF round(k.quant_res / k.r) = round(k.ml_res / k.r) THEN
            CONTINUE;
        ELSE
            delta := k.ml_res - k.quant_res;
        END IF;
        product_id := k.product_id; location_id := k.location_id; lot_id := k.lot_id;
        package_id := k.package_id; owner_id := k.owner_id;
        -- The delta lands on the key's quants in Odoo's strict-gather order (lot
        -- first, then id); a quant never goes below zero, the rest carries over.
        FOR q IN EXECUTE format($q$
            SELECT q.id, q.reserved_quantity FROM %1$I.stock_quant q
            WHERE q.product_id = $1 AND q.location_id = $2 AND q.lot_id IS NOT DISTINCT FROM $3
              AND q.package_id IS NOT DISTINCT FROM $4 AND q.owner_id IS NOT DISTINCT FROM $5
            ORDER BY (CASE WHEN $6 < 0 THEN q.reserved_quantity = 0 ELSE false END), q.lot_id, q.id
            %2$s$q$, sch, CASE WHEN dry_run THEN '' ELSE 'FOR UPDATE' END)
            USING k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id, delta
        LOOP
            EXIT WHEN delta = 0;
            take := CASE WHEN delta > 0 THEN delta ELSE greatest(delta, -greatest(q.reserved_quantity, 0)) END;
            IF take = 0 THEN
                CONTINUE;
            END IF;
            quant_id := q.id; old_reserved := q.reserved_quantity; new_reserved := q.reserved_quantity + take;
            delta := delta - take;
            action := CASE WHEN k.bypass THEN 'unreserve_bypass' ELSE 'adjust' END;
            detail := format('key reserved %s on quants, %s on open move lines%s', k.quant_res::float8, k.ml_res::float8,
                             CASE WHEN k.bypass THEN ' (location never reserves)' ELSE '' END);
            IF NOT dry_run THEN
                EXECUTE format('UPDATE %I.stock_quant SET reserved_quantity = $1 WHERE id = $2', sch)
                    USING new_reserved, quant_id;
                PERFORM retailflow.log_exception('reservation_repaired', 'info', 'stock.quant', quant_id,
                    product_id, location_id,
                    jsonb_build_object('lot_id', lot_id, 'package_id', package_id, 'owner_id', owner_id),
                    new_reserved, old_reserved, detail, 'repair', session_user, 'stock.reservation_repaired');
            END IF;
            RETURN NEXT;
        END LOOP;
        IF delta < 0 THEN
            -- negative reservations left on the key: set them to zero
            FOR q IN EXECUTE format($q$
                SELECT q.id, q.reserved_quantity FROM %1$I.stock_quant q
                WHERE q.product_id = $1 AND q.location_id = $2 AND q.lot_id IS NOT DISTINCT FROM $3
                  AND q.package_id IS NOT DISTINCT FROM $4 AND q.owner_id IS NOT DISTINCT FROM $5
                  AND q.reserved_quantity < 0 ORDER BY q.id$q$, sch)
                USING k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id
            LOOP
                quant_id := q.id; old_reserved := q.reserved_quantity; new_reserved := 0;
                action := 'clear_negative';
                detail := format('negative reservation %s cleared', q.reserved_quantity::float8);
                IF NOT dry_run THEN
                    EXECUTE format('UPDATE %I.stock_quant SET reserved_quantity = 0 WHERE id = $1', sch) USING quant_id;
                    PERFORM retailflow.log_exception('reservation_repaired', 'info', 'stock.quant', quant_id,
                        product_id, location_id,
                        jsonb_build_object('lot_id', lot_id, 'package_id', package_id, 'owner_id', owner_id),
                        0, old_reserved, detail, 'repair', session_user, 'stock.reservation_repaired');
                END IF;
                RETURN NEXT;
            END LOOP;
        ELSIF delta > 0 THEN
            -- step 2: no quant for the key: Odoo creates a (0, qty) quant
            quant_id := NULL; old_reserved := 0; new_reserved := delta;
            action := 'create_quant';
            detail := format('open move lines reserve %s and no quant exists', k.ml_res::float8);
            IF NOT dry_run THEN
                EXECUTE format($q$INSERT INTO %I.stock_quant (product_id, location_id, lot_id, package_id, owner_id,
                                   company_id, quantity, reserved_quantity, in_date, create_date, write_date)
                                  VALUES ($1, $2, $3, $4, $5, $6, 0, $7, now() AT TIME ZONE 'UTC',
                                          now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC') RETURNING id$q$, sch)
                    INTO quant_id
                    USING k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id, k.company_id, delta;
                PERFORM retailflow.log_exception('reservation_repaired', 'info', 'stock.quant', quant_id,
                    product_id, location_id,
                    jsonb_build_object('lot_id', lot_id, 'package_id', package_id, 'owner_id', owner_id),
                    new_reserved, 0, detail, 'repair', session_user, 'stock.reservation_repaired');
            END IF;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.repair_reservations(boolean) IS
  'Recomputes stock_quant.reserved_quantity from open move lines (Odoo 18 _clean_reservations); dry run by default';
REVOKE ALL ON FUNCTION retailflow.repair_reservations(boolean) FROM PUBLIC;

-- >>> sql/install/30_webhooks.sql
-- 30_webhooks.sql: webhook delivery.  Endpoints (URL, secrets, filters),
-- one delivery row per (event, endpoint) with its retry state, per-endpoint
-- health (circuit breaker), capture triggers on Odoo tables (C, in
-- outbox_capture.c), redeliver(), the webhook_stats view and retention.
-- Background workers (worker.c) deliver pending rows over HTTP.

INSERT INTO retailflow.event_type (name, description) VALUES
  ('sale.order.draft',        'A sale order went back to quotation (state draft)'),
  ('sale.order.sent',         'A quotation was sent (state sent)'),
  ('sale.order.confirmed',    'A sale order was confirmed (state sale)'),
  ('sale.order.cancelled',    'A sale order was cancelled (state cancel)'),
  ('sale.order.done',         'A sale order was locked/done (state done, Odoo 16 and older)'),
  ('stock.picking.draft',     'A transfer went to draft'),
  ('stock.picking.waiting',   'A transfer waits for another operation'),
  ('stock.picking.confirmed', 'A transfer is waiting for availability'),
  ('stock.picking.assigned',  'A transfer is ready (stock reserved)'),
  ('stock.picking.done',      'A transfer was validated'),
  ('stock.picking.cancelled', 'A transfer was cancelled'),
  ('purchase.order.draft',    'A purchase order went back to RFQ'),
  ('purchase.order.sent',     'An RFQ was sent'),
  ('purchase.order.to_approve', 'A purchase order waits for approval'),
  ('purchase.order.confirmed', 'A purchase order was confirmed (state purchase)'),
  ('purchase.order.done',     'A purchase order was locked (state done)'),
  ('purchase.order.cancelled', 'A purchase order was cancelled'),
  ('account.move.refund_posted', 'A credit note (customer or vendor refund) was posted'),
  ('stock.low',               'Free quantity of a product in a warehouse fell below its reordering rule minimum'),
  ('retailflow.test',         'A test event sent by retailflow.send_test_event()');

-- Event-type filter match: a pattern's "*" matches any run of characters.
CREATE FUNCTION retailflow.filter_match(patterns text[], event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM unnest(patterns) p
               WHERE event_type LIKE replace(replace(replace(p, '\', '\\'), '_', '\_'), '*', '%'));

CREATE TABLE retailflow.endpoint (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    url           text NOT NULL,
    secret        text NOT NULL,
    old_secrets   text[] NOT NULL DEFAULT '{}',
    event_filters text[] NOT NULL DEFAULT '{*}',
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    timeout_ms    integer NOT NULL DEFAULT 5000,
    tls_verify    boolean NOT NULL DEFAULT true,
    active        boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE retailflow.endpoint IS
  'Webhook receivers: URL, whsec_ secret(s), event-type filters, headers, timeout; secrets readable by the owner only';

-- Validates an endpoint row with clear errors (URL, filters, headers, secrets, timeout).
CREATE FUNCTION retailflow.endpoint_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
    k text;
    v jsonb;
    host text;
    allow text := coalesce(current_setting('retailflow.webhook_allowed_hosts', true), '');
BEGIN
    IF NEW.url IS NULL OR NEW.url !~ '^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?([/?][^[:space:]]*)?$' THEN
        RAISE EXCEPTION 'invalid webhook url "%"', NEW.url
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Webhook URLs use the http or https scheme, a host name or IPv4 address, an optional port and path, and no spaces or credentials.',
                  HINT = 'For example https://hooks.example.com/odoo.';
    END IF;
    host := lower(substring(NEW.url from '^https?://([A-Za-z0-9.\-]+)'));
    IF allow <> '' AND NOT EXISTS (
        SELECT 1 FROM unnest(string_to_array(replace(allow, ' ', ''), ',')) a
        WHERE a <> '' AND (host = lower(a) OR (a LIKE '.%' AND host LIKE '%' || lower(a)))) THEN
        RAISE EXCEPTION 'webhook host "%" is not allowed', host
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('retailflow.webhook_allowed_hosts is "%s".', allow),
                  HINT = 'A superuser adds the host to retailflow.webhook_allowed_hosts.';
    END IF;
    FOREACH s IN ARRAY array_prepend(NEW.secret, NEW.old_secrets) LOOP
        IF s IS NULL OR s !~ '^whsec_[A-Za-z0-9+/]+={0,2}$'
           OR length(s) % 4 <> 2
           OR octet_length(decode(substr(s, 7), 'base64')) NOT BETWEEN 24 AND 64 THEN
            RAISE EXCEPTION 'invalid webhook secret'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Secrets have the form whsec_ followed by the base64 encoding of 24 to 64 random bytes.',
                      HINT = 'SELECT retailflow.generate_secret() makes one.';
        END IF;
    END LOOP;
    IF NEW.event_filters IS NULL OR cardinality(NEW.event_filters) = 0 OR EXISTS (
        SELECT 1 FROM unnest(NEW.event_filters) p
        WHERE p IS NULL OR p !~ '^(\*|[a-z][a-z0-9_]*)(\.(\*|[a-z][a-z0-9_]*))*$') THEN
        RAISE EXCEPTION 'invalid event filter in %', NEW.event_filters
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Filters are event-type patterns such as sale.order.* or *; "*" matches any run of characters.';
    END IF;
    IF NEW.headers IS NULL OR jsonb_typeof(NEW.headers) <> 'object' THEN
        RAISE EXCEPTION 'webhook headers must be a json object'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Headers are given as {"Header-Name": "value", ...}.';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(NEW.headers) LOOP
        IF jsonb_typeof(v) <> 'string' OR k !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]+$'
           OR (v #>> '{}') ~ '[\r\n]' THEN
            RAISE EXCEPTION 'invalid webhook header "%"', k
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Header names are HTTP tokens and values are strings without line breaks.';
        END IF;
        IF lower(k) IN ('webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length', 'host') THEN
            RAISE EXCEPTION 'header "%" is set by retailflow', k
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Signature, content type, length and host headers cannot be overridden.';
        END IF;
    END LOOP;
    IF NEW.timeout_ms IS NULL OR NEW.timeout_ms NOT BETWEEN 100 AND 300000 THEN
        RAISE EXCEPTION 'webhook timeout % ms is out of range', NEW.timeout_ms
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The timeout is between 100 and 300000 milliseconds.';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.active AND NOT OLD.active THEN
        NEW.disabled_reason := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER endpoint_validate BEFORE INSERT OR UPDATE ON retailflow.endpoint
    FOR EACH ROW EXECUTE FUNCTION retailflow.endpoint_validate();

-- A fresh whsec_ secret (32 random bytes).
CREATE FUNCTION retailflow.generate_secret()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
RETURN 'whsec_' || encode(decode(md5(random()::text || clock_timestamp()::text)
                                 || md5(random()::text || pg_backend_pid()::text), 'hex'), 'base64');

-- Endpoints without their secrets, for everyone.
CREATE VIEW retailflow.endpoint_public AS
SELECT id, name, url, event_filters, timeout_ms, tls_verify, active, disabled_reason, created_at
FROM retailflow.endpoint;
COMMENT ON VIEW retailflow.endpoint_public IS 'retailflow.endpoint without secrets and headers';

-- One row per (event, endpoint): the delivery and its retry state.
CREATE TABLE retailflow.delivery (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL,
    endpoint_id     integer NOT NULL REFERENCES retailflow.endpoint (id) ON DELETE CASCADE,
    model           text NOT NULL,
    record_id       integer,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    lease_until     timestamptz,
    lease_owner     smallint,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    latency_ms      double precision,
    last_status     integer,
    last_error      text
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
COMMENT ON TABLE retailflow.delivery IS
  'One row per (event, endpoint): pending (maybe retrying or leased by a worker), delivered or dead';
CREATE INDEX delivery_pending_idx ON retailflow.delivery (endpoint_id, id) WHERE state = 'pending';
CREATE INDEX delivery_record_idx ON retailflow.delivery (endpoint_id, model, record_id, id) WHERE state = 'pending';
CREATE INDEX delivery_event_idx ON retailflow.delivery (event_id);
CREATE INDEX delivery_done_idx ON retailflow.delivery (delivered_at) WHERE state = 'delivered';
CREATE INDEX delivery_dead_idx ON retailflow.delivery (endpoint_id, id) WHERE state = 'dead';

-- Circuit breaker and last error per endpoint (written by the workers).
CREATE TABLE retailflow.endpoint_health (
    endpoint_id          integer PRIMARY KEY REFERENCES retailflow.endpoint (id) ON DELETE CASCADE,
    consecutive_failures integer NOT NULL DEFAULT 0,
    circuit_open_until   timestamptz,
    last_status          integer,
    last_error           text,
    last_error_at        timestamptz,
    last_success_at      timestamptz
);
COMMENT ON TABLE retailflow.endpoint_health IS 'Per-endpoint circuit breaker state and last error';

-- Sends dead (or delivered) deliveries again, with the same webhook-id.
CREATE FUNCTION retailflow.redeliver(delivery_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF delivery_id IS NULL THEN
        RAISE EXCEPTION 'delivery_id must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Give the id of a row of retailflow.delivery.';
    END IF;
    UPDATE retailflow.delivery d
       SET state = 'pending', attempts = 0, next_attempt_at = '-infinity', lease_until = NULL,
           delivered_at = NULL, latency_ms = NULL
     WHERE d.id = redeliver.delivery_id AND d.state <> 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND NOT EXISTS (SELECT 1 FROM retailflow.delivery d WHERE d.id = redeliver.delivery_id) THEN
        RAISE EXCEPTION 'delivery % does not exist', delivery_id USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Delivered rows are removed after retailflow.webhook_retention.';
    END IF;
    IF n > 0 THEN PERFORM retailflow.wake_workers_at_commit(); END IF;
    RETURN n;
END
$$;

-- Sends every dead delivery of one endpoint (or of all endpoints) again.
CREATE FUNCTION retailflow.redeliver_dead(endpoint_id integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE retailflow.delivery d
       SET state = 'pending', attempts = 0, next_attempt_at = '-infinity', lease_until = NULL
     WHERE d.state = 'dead' AND (redeliver_dead.endpoint_id IS NULL OR d.endpoint_id = redeliver_dead.endpoint_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN PERFORM retailflow.wake_workers_at_commit(); END IF;
    RETURN n;
END
$$;

-- Emits a retailflow.test event (to endpoints whose filters match it).
CREATE FUNCTION retailflow.send_test_event(message text DEFAULT 'hello')
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN retailflow.emit('retailflow.test', 'retailflow', NULL, jsonb_build_object('message', message));

-- Removes delivered rows and finished events older than the retention, in small batches.
CREATE FUNCTION retailflow.purge(batch integer DEFAULT 5000)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep interval := make_interval(secs => (SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name = 'retailflow.webhook_retention'));
    n bigint;
    m bigint;
BEGIN
    DELETE FROM retailflow.delivery d
     WHERE d.id IN (SELECT x.id FROM retailflow.delivery x
                    WHERE x.state = 'delivered' AND x.delivered_at < now() - keep
                    ORDER BY x.delivered_at LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM retailflow.outbox o
     WHERE o.id IN (SELECT x.id FROM retailflow.outbox x
                    WHERE x.created_at < now() - keep
                      AND NOT EXISTS (SELECT 1 FROM retailflow.delivery d WHERE d.event_id = x.id)
                    ORDER BY x.created_at LIMIT batch);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;

CREATE VIEW retailflow.webhook_stats AS
SELECT e.id AS endpoint_id, e.name, e.url, e.active,
       count(d.id) FILTER (WHERE d.state = 'pending' AND d.attempts = 0
                           AND (d.lease_until IS NULL OR d.lease_until < now())) AS pending,
       count(d.id) FILTER (WHERE d.state = 'pending' AND d.lease_until >= now()) AS in_flight,
       count(d.id) FILTER (WHERE d.state = 'delivered') AS delivered,
       count(d.id) FILTER (WHERE d.state = 'pending' AND d.attempts > 0
                           AND (d.lease_until IS NULL OR d.lease_until < now())) AS retrying,
       count(d.id) FILTER (WHERE d.state = 'dead') AS dead,
       h.last_status, h.last_error, h.last_error_at,
       round((percentile_cont(0.50) WITHIN GROUP (ORDER BY d.latency_ms))::numeric, 2) AS latency_p50_ms,
       round((percentile_cont(0.95) WITHIN GROUP (ORDER BY d.latency_ms))::numeric, 2) AS latency_p95_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d.latency_ms))::numeric, 2) AS latency_p99_ms,
       CASE WHEN h.circuit_open_until > now() THEN 'open'
            WHEN coalesce(h.consecutive_failures, 0) >= current_setting('retailflow.webhook_circuit_failures')::integer
                 THEN 'half-open'
            ELSE 'closed' END AS circuit
FROM retailflow.endpoint e
LEFT JOIN retailflow.delivery d ON d.endpoint_id = e.id
LEFT JOIN retailflow.endpoint_health h ON h.endpoint_id = e.id
GROUP BY e.id, e.name, e.url, e.active, h.last_status, h.last_error, h.last_error_at,
         h.circuit_open_until, h.consecutive_failures;
COMMENT ON VIEW retailflow.webhook_stats IS
  'Per endpoint: pending, in flight, delivered, retrying, dead, last error, commit-to-2xx latency percentiles, circuit state';

-- Capture triggers on Odoo tables (C, outbox_capture.c); the argument says what to capture.
CREATE FUNCTION retailflow.capture_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_capture_trigger'
LANGUAGE C;

INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('sale_order', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''sale.order'')'),
  ('stock_picking', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''stock.picking'')'),
  ('purchase_order', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''purchase.order'')'),
  ('account_move', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state = ''posted'' AND NEW.move_type IN (''out_refund'', ''in_refund'')) EXECUTE FUNCTION retailflow.capture_trigger(''refund'', ''account.move'')'),
  ('stock_quant', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE OF quantity, reserved_quantity ON %s FOR EACH ROW WHEN ((NEW.quantity - NEW.reserved_quantity) < (OLD.quantity - OLD.reserved_quantity)) EXECUTE FUNCTION retailflow.capture_trigger(''low'', ''stock.quant'')');

REVOKE ALL ON TABLE retailflow.endpoint FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.delivery FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.endpoint_health FROM PUBLIC;
REVOKE ALL ON SEQUENCE retailflow.endpoint_id_seq FROM PUBLIC;
REVOKE ALL ON SEQUENCE retailflow.delivery_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.redeliver(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.redeliver_dead(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.purge(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.send_test_event(text) FROM PUBLIC;
GRANT SELECT ON retailflow.endpoint_public TO PUBLIC;
REVOKE ALL ON retailflow.webhook_stats FROM PUBLIC;

-- >>> sql/install/40_approvals.sql
-- 40_approvals.sql: approval policy for Odoo documents.
--   retailflow.approval_rule        who must approve which document, in what order, within what time
--   retailflow.required_approvals() the rules a document (or a what-if set of facts) matches (C)
--   retailflow.approval_request     one row per approval a document needs
--   retailflow.approve() / reject() decisions with segregation of duties
--   retailflow.request_approvals()  creates the pending requests a document needs
--   enforcement triggers on sale_order, purchase_order, account_move, stock_quant
--   retailflow.escalate_overdue()   SLA escalation
-- Decisions, rule changes and enforcement go to retailflow.audit() (45_audit.sql);
-- events go to the outbox through retailflow.emit().

INSERT INTO retailflow.event_type (name, description) VALUES
  ('approval.requested', 'A document needs an approval: a pending approval request was created'),
  ('approval.approved', 'An approval request was approved'),
  ('approval.rejected', 'An approval request was rejected'),
  ('approval.escalated', 'A pending approval request passed its SLA and was escalated'),
  ('approval.enforcement_refused', 'A document state change went through without its approvals (log mode) or was refused');

CREATE TABLE retailflow.approval_rule (
    id                   serial PRIMARY KEY,
    name                 text NOT NULL,
    document_type        text NOT NULL,
    company_id           integer,            -- NULL: every company
    amount_min           numeric,            -- matches amount >= amount_min (company currency)
    amount_max           numeric,            -- matches amount <  amount_max
    max_discount         numeric,            -- matches a line discount >  max_discount (percent)
    min_margin           numeric,            -- matches a margin        <  min_margin   (percent)
    product_category_id  integer,            -- matches a product in this category or its children
    partner_category_ids integer[],          -- matches a partner with any of these tags
    min_risk_score       numeric,            -- matches risk score >= min_risk_score
    group_id             integer NOT NULL,   -- res_groups id of the approvers
    level                integer NOT NULL DEFAULT 1,
    sequence             integer NOT NULL DEFAULT 10,
    sla                  interval,
    active               boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE retailflow.approval_rule IS
  'Approval rules: document type, company, conditions, approver group, level, SLA';

-- BEFORE INSERT/UPDATE: validates a rule with clear errors.
CREATE FUNCTION retailflow.approval_rule_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    ok boolean;
    missing integer;
BEGIN
    IF NEW.name IS NULL OR btrim(NEW.name) = '' THEN
        RAISE EXCEPTION 'approval rule name must not be empty'
            USING ERRCODE = 'null_value_not_allowed', DETAIL = 'Every rule has a name shown to approvers.';
    END IF;
    IF NEW.document_type IS NULL OR NEW.document_type NOT IN
       ('sale.order', 'sale.order.line', 'purchase.order', 'account.move', 'stock.quant') THEN
        RAISE EXCEPTION 'unknown approval document type "%"', NEW.document_type
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Rules apply to sale.order, sale.order.line (price overrides), purchase.order, account.move (refunds) or stock.quant (inventory adjustments).';
    END IF;
    IF NEW.amount_min < 0 OR NEW.amount_max < 0 THEN
        RAISE EXCEPTION 'approval rule amounts must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('amount_min is %s and amount_max is %s.', NEW.amount_min, NEW.amount_max),
                  HINT = 'Amounts are absolute values in company currency; refunds are compared by their size.';
    END IF;
    IF NEW.amount_min >= NEW.amount_max THEN
        RAISE EXCEPTION 'inverted amount range: amount_min % is not below amount_max %', NEW.amount_min, NEW.amount_max
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A rule matches amounts >= amount_min and < amount_max, so this rule could never match.';
    END IF;
    IF NEW.max_discount < 0 OR NEW.max_discount > 100 THEN
        RAISE EXCEPTION 'max_discount must be a percentage between 0 and 100, not %', NEW.max_discount
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The rule matches documents with a line discount above this percentage.';
    END IF;
    IF NEW.min_margin < 0 OR NEW.min_margin > 100 THEN
        RAISE EXCEPTION 'min_margin must be a percentage between 0 and 100, not %', NEW.min_margin
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The rule matches documents whose margin is below this percentage.';
    END IF;
    IF NEW.min_risk_score < 0 THEN
        RAISE EXCEPTION 'min_risk_score must not be negative, not %', NEW.min_risk_score
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.level IS NULL OR NEW.level < 1 THEN
        RAISE EXCEPTION 'approval level must be 1 or more, not %', NEW.level
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Level 1 is decided first, then level 2, and so on.';
    END IF;
    IF NEW.sla <= interval '0' THEN
        RAISE EXCEPTION 'approval SLA must be positive, not %', NEW.sla
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave sla NULL for no deadline.';
    END IF;
    IF (NEW.min_margin IS NOT NULL AND NEW.document_type NOT IN ('sale.order', 'sale.order.line'))
       OR (NEW.max_discount IS NOT NULL AND NEW.document_type NOT IN ('sale.order', 'sale.order.line', 'purchase.order'))
       OR (NEW.product_category_id IS NOT NULL AND NEW.document_type = 'account.move') THEN
        RAISE EXCEPTION 'this condition does not apply to % documents', NEW.document_type
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Margins apply to sale orders and lines, discounts to sale and purchase orders, product categories to everything but refunds.';
    END IF;
    IF to_regclass(format('%I.res_groups', sch)) IS NULL THEN
        RAISE EXCEPTION 'odoo table "%.res_groups" was not found', sch
            USING ERRCODE = 'undefined_table', DETAIL = 'Approval rules name Odoo user groups.';
    END IF;
    IF NEW.group_id IS NULL THEN
        RAISE EXCEPTION 'approval rule group_id must not be null'
            USING ERRCODE = 'null_value_not_allowed', DETAIL = 'Every rule names the Odoo group (res_groups.id) whose members approve.';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.res_groups WHERE id = $1)', sch) INTO ok USING NEW.group_id;
    IF NOT ok THEN
        RAISE EXCEPTION 'res_groups % does not exist', NEW.group_id
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'The approver group must be an Odoo group (res_groups.id).',
                  HINT = 'Resolve groups by XML id: SELECT res_id FROM ir_model_data WHERE model = ''res.groups'' AND module = ''purchase'' AND name = ''group_purchase_manager''.';
    END IF;
    IF NEW.company_id IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.res_company WHERE id = $1)', sch) INTO ok USING NEW.company_id;
        IF NOT ok THEN
            RAISE EXCEPTION 'res_company % does not exist', NEW.company_id
                USING ERRCODE = 'foreign_key_violation', HINT = 'Leave company_id NULL for a rule of every company.';
        END IF;
    END IF;
    IF NEW.product_category_id IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.product_category WHERE id = $1)', sch) INTO ok USING NEW.product_category_id;
        IF NOT ok THEN
            RAISE EXCEPTION 'product_category % does not exist', NEW.product_category_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF NEW.partner_category_ids IS NOT NULL THEN
        IF cardinality(NEW.partner_category_ids) = 0 OR array_position(NEW.partner_category_ids, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'partner_category_ids must be NULL or a non-empty array without NULLs'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        EXECUTE format('SELECT min(t) FROM unnest($1) t WHERE NOT EXISTS (SELECT 1 FROM %I.res_partner_category c WHERE c.id = t)', sch)
            INTO missing USING NEW.partner_category_ids;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'res_partner_category % does not exist', missing
                USING ERRCODE = 'foreign_key_violation', DETAIL = 'Customer segments are Odoo partner tags.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- AFTER row: every rule change goes to the audit log.
CREATE FUNCTION retailflow.approval_rule_audit()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.audit('approval_rule.' || lower(TG_OP), 'retailflow.approval_rule',
                             CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
                             CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                             CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER approval_rule_validate BEFORE INSERT OR UPDATE ON retailflow.approval_rule
    FOR EACH ROW EXECUTE FUNCTION retailflow.approval_rule_validate();
CREATE TRIGGER approval_rule_audit AFTER INSERT OR UPDATE OR DELETE ON retailflow.approval_rule
    FOR EACH ROW EXECUTE FUNCTION retailflow.approval_rule_audit();
-- Every backend's cached rules are invalidated when the rules change.
CREATE TRIGGER approval_rule_cache_inval AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retailflow.approval_rule
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger();
-- ... and when the category tree, the partner tags the cached rules name, or product
-- costs (ir_property in Odoo 17; product_product already has a trigger) change.
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition)
SELECT t, 'retailflow_approval_cache_inval', 'approvals rule cache',
       'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()'
FROM unnest(ARRAY['product_category', 'res_partner_category', 'ir_property']) AS t;

-- A named row type rather than OUT parameters: the parser and the function
-- get it from the type cache instead of rebuilding it from pg_proc per call.
CREATE TYPE retailflow.approval_requirement AS (
    rule_id integer, rule_name text, level integer, sequence integer,
    group_id integer, sla interval, reason text);
COMMENT ON TYPE retailflow.approval_requirement IS
  'One approval a document needs: the rule, its level and order, the approver group, the SLA and the reason in words';

CREATE FUNCTION retailflow.required_approvals(document_type text, record_id integer)
RETURNS SETOF retailflow.approval_requirement
AS 'MODULE_PATHNAME', 'rf_required_approvals'
LANGUAGE C STABLE ROWS 5;
COMMENT ON FUNCTION retailflow.required_approvals(text, integer) IS
  'Every active approval rule the Odoo document matches, with the reason in words, in approval order';

CREATE FUNCTION retailflow.required_approvals(document_type text, facts jsonb)
RETURNS SETOF retailflow.approval_requirement
AS 'MODULE_PATHNAME', 'rf_required_approvals_facts'
LANGUAGE C STABLE ROWS 5;
COMMENT ON FUNCTION retailflow.required_approvals(text, jsonb) IS
  'What-if: the rules a document with these facts would match (keys: company_id, amount, discount, margin, product_category_ids, partner_category_ids, risk_score)';

CREATE FUNCTION retailflow.approval_active_rules(document_type text)
RETURNS integer
AS 'MODULE_PATHNAME', 'rf_approval_active_rules'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.approval_active_rules(text) IS
  'How many active approval rules a document type has (from the per-backend rule cache)';

CREATE TABLE retailflow.approval_request (
    id             bigserial PRIMARY KEY,
    document_type  text NOT NULL,
    record_id      integer NOT NULL,
    rule_id        integer NOT NULL REFERENCES retailflow.approval_rule (id) ON DELETE RESTRICT,
    level          integer NOT NULL,
    group_id       integer NOT NULL,
    reason         text NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'approved', 'rejected', 'escalated', 'cancelled')),
    requested_by   integer,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    due_at         timestamptz,
    decided_by     integer,
    decided_at     timestamptz,
    comment        text
);
COMMENT ON TABLE retailflow.approval_request IS
  'Approvals documents need: pending, approved, rejected, escalated or cancelled';
-- at most one open or approved request per document and rule
CREATE UNIQUE INDEX approval_request_live_idx ON retailflow.approval_request (document_type, record_id, rule_id)
    WHERE state IN ('pending', 'escalated', 'approved');
CREATE INDEX approval_request_doc_idx ON retailflow.approval_request (document_type, record_id, level);
CREATE INDEX approval_request_due_idx ON retailflow.approval_request (due_at) WHERE state = 'pending';

-- The acting Odoo user: the explicit argument, else retailflow.odoo_user_id, else fallback.
CREATE FUNCTION retailflow.acting_user(explicit integer, fallback integer DEFAULT NULL)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(explicit, nullif(nullif(current_setting('retailflow.odoo_user_id', true), ''), '0')::integer, fallback)
$$;

-- Creates the pending requests a document needs (one per matching rule
-- without a live request); returns the requests created.
CREATE FUNCTION retailflow.request_approvals(document_type text, record_id integer, requested_by integer DEFAULT NULL)
RETURNS SETOF retailflow.approval_request
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m record;
    r retailflow.approval_request;
    uid integer := retailflow.acting_user(requested_by);
BEGIN
    FOR m IN SELECT * FROM retailflow.required_approvals(request_approvals.document_type, request_approvals.record_id) LOOP
        INSERT INTO retailflow.approval_request (document_type, record_id, rule_id, level, group_id, reason,
                                                 requested_by, due_at)
        VALUES (request_approvals.document_type, request_approvals.record_id, m.rule_id, m.level, m.group_id,
                m.reason, uid, now() + m.sla)
        ON CONFLICT (document_type, record_id, rule_id) WHERE state IN ('pending', 'escalated', 'approved') DO NOTHING
        RETURNING * INTO r;
        IF r.id IS NOT NULL THEN
            PERFORM retailflow.emit('approval.requested', r.document_type, r.record_id,
                jsonb_build_object('request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                                   'group_id', r.group_id, 'reason', r.reason, 'due_at', r.due_at));
            PERFORM retailflow.audit('approval.requested', 'retailflow.approval_request', r.id, NULL, to_jsonb(r), uid);
            RETURN NEXT r;
            r := NULL;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.request_approvals(text, integer, integer) IS
  'Creates a pending approval request for every rule the document matches that has none yet';

-- approve() and reject(): one decision with segregation of duties.
CREATE FUNCTION retailflow.decide(request_id bigint, user_id integer, comment text, approve boolean)
RETURNS retailflow.approval_request
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    req retailflow.approval_request;
    before_row retailflow.approval_request;
    user_ok boolean;
    in_group boolean;
    creator integer;
    blocking text;
    tbl text;
BEGIN
    IF request_id IS NULL OR user_id IS NULL THEN
        RAISE EXCEPTION 'request_id and user_id must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'A decision names the request and the Odoo user (res_users.id) who takes it.';
    END IF;
    -- Lock the request: a second approver deciding the same request waits, then sees the decision.
    SELECT * INTO req FROM retailflow.approval_request r WHERE r.id = decide.request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'approval request % does not exist', request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    before_row := req;
    IF req.state NOT IN ('pending', 'escalated') THEN
        RAISE EXCEPTION 'approval request % is already %', request_id, req.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It was %s by user %s.', req.state, coalesce(req.decided_by::text, 'nobody')),
                  HINT = 'Only pending or escalated requests can be decided.';
    END IF;
    EXECUTE format('SELECT coalesce(bool_or(active), false) FROM %I.res_users WHERE id = $1', sch) INTO user_ok USING user_id;
    IF NOT user_ok THEN
        RAISE EXCEPTION 'user % is not an active odoo user', user_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Approvers must be active res_users.';
    END IF;
    IF user_id = req.requested_by THEN
        RAISE EXCEPTION 'user % requested this approval and cannot decide it', user_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Segregation of duties: the requester of an approval never decides it.';
    END IF;
    tbl := CASE req.document_type WHEN 'sale.order.line' THEN 'sale_order_line'
                                  ELSE replace(req.document_type, '.', '_') END;
    EXECUTE format('SELECT create_uid FROM %I.%I WHERE id = $1', sch, tbl) INTO creator USING req.record_id;
    IF user_id = creator THEN
        RAISE EXCEPTION 'user % created % % and cannot approve it', user_id, req.document_type, req.record_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Segregation of duties: the creator of a document never decides its approvals.';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.res_groups_users_rel WHERE gid = $1 AND uid = $2)', sch)
        INTO in_group USING req.group_id, user_id;
    IF NOT in_group THEN
        RAISE EXCEPTION 'user % is not in approver group %', user_id, req.group_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Request %s needs a member of res_groups %s (%s).', req.id, req.group_id, req.reason);
    END IF;
    SELECT string_agg(format('request %s (level %s, %s)', r.id, r.level, r.state), ', ' ORDER BY r.level, r.id)
      INTO blocking
      FROM retailflow.approval_request r
     WHERE r.document_type = req.document_type AND r.record_id = req.record_id
       AND r.level < req.level AND r.state IN ('pending', 'escalated', 'rejected');
    IF blocking IS NOT NULL THEN
        RAISE EXCEPTION 'level % of % % cannot be decided before the levels below it', req.level, req.document_type, req.record_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Still undecided or rejected: %s.', blocking),
                  HINT = 'Levels are decided in order, lowest first.';
    END IF;
    UPDATE retailflow.approval_request r
       SET state = CASE WHEN approve THEN 'approved' ELSE 'rejected' END,
           decided_by = user_id, decided_at = now(), comment = decide.comment
     WHERE r.id = req.id
    RETURNING * INTO req;
    PERFORM retailflow.audit(CASE WHEN approve THEN 'approval.approved' ELSE 'approval.rejected' END,
                             'retailflow.approval_request', req.id, to_jsonb(before_row), to_jsonb(req), user_id);
    PERFORM retailflow.emit(CASE WHEN approve THEN 'approval.approved' ELSE 'approval.rejected' END,
                            req.document_type, req.record_id,
                            jsonb_build_object('request_id', req.id, 'rule_id', req.rule_id, 'level', req.level,
                                               'decided_by', user_id, 'comment', req.comment));
    RETURN req;
END
$$;

CREATE FUNCTION retailflow.approve(request_id bigint, user_id integer, comment text DEFAULT NULL)
RETURNS retailflow.approval_request
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT retailflow.decide(request_id, user_id, comment, true) $$;
COMMENT ON FUNCTION retailflow.approve(bigint, integer, text) IS
  'Approves a request; the user must be active, in the rule''s group, not the requester or document creator, and lower levels must be approved';

CREATE FUNCTION retailflow.reject(request_id bigint, user_id integer, comment text DEFAULT NULL)
RETURNS retailflow.approval_request
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT retailflow.decide(request_id, user_id, comment, false) $$;
COMMENT ON FUNCTION retailflow.reject(bigint, integer, text) IS
  'Rejects a request, with the same segregation-of-duties checks as approve()';

-- The approvals a document still lacks: the rules it matches without an approved request.
CREATE FUNCTION retailflow.missing_approvals(document_type text, record_id integer)
RETURNS TABLE (rule_id integer, level integer, group_id integer, reason text, request_id bigint, request_state text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.rule_id, m.level, m.group_id, m.reason, q.id, q.state
      FROM retailflow.required_approvals(document_type, record_id) m
      LEFT JOIN LATERAL (SELECT r.id, r.state FROM retailflow.approval_request r
                          WHERE r.document_type = missing_approvals.document_type
                            AND r.record_id = missing_approvals.record_id AND r.rule_id = m.rule_id
                          ORDER BY r.state = 'approved' DESC, r.id DESC LIMIT 1) q ON true
     WHERE q.state IS DISTINCT FROM 'approved'
     ORDER BY m.level, m.sequence, m.rule_id
$$;

-- Enforcement: AFTER UPDATE trigger on Odoo tables when the state really
-- changes to the watched value (BEFORE for stock_quant, whose facts are the
-- pending inventory difference that the apply resets).  TG_ARGV[0] is the
-- document type.  A sale order's confirmation also checks the price
-- override rules (sale.order.line) of its lines, when any is active.
CREATE FUNCTION retailflow.approval_enforce()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_approval_enforce'
LANGUAGE C;
COMMENT ON FUNCTION retailflow.approval_enforce() IS
  'Enforcement trigger: checks in C that every approval a document needs is granted; the rest goes to approval_enforce_missing()';

-- The slow path of the enforcement trigger, for a document that lacks an
-- approval (or whose lines have price-override rules): names what is missing,
-- then blocks (recording the refusal through the worker, since the refusing
-- transaction rolls back) or logs and creates the pending requests.  The C
-- trigger calls it as the extension's owner; nobody else may.
CREATE FUNCTION retailflow.approval_enforce_missing(tdoc text, rec_id integer, write_uid integer, new_state text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    mode text := coalesce(current_setting('retailflow.approval_enforcement', true), 'log');
    sch text;
    has_lines boolean;
    line_ids integer[];
    missing text;
    uid integer;
BEGIN
    has_lines := tdoc = 'sale.order' AND retailflow.approval_active_rules('sale.order.line') > 0;
    IF has_lines THEN
        sch := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
        EXECUTE format('SELECT array_agg(l.id ORDER BY l.id) FROM %I.sale_order_line l '
                       'WHERE l.order_id = $1 AND l.display_type IS NULL '
                       'AND EXISTS (SELECT 1 FROM retailflow.required_approvals(''sale.order.line'', l.id))', sch)
            INTO line_ids USING rec_id;
    END IF;
    -- Wait for in-flight decisions on these requests, then read them committed.
    PERFORM 1 FROM retailflow.approval_request r
     WHERE r.document_type = tdoc AND r.record_id = rec_id FOR SHARE;
    IF line_ids IS NOT NULL THEN
        PERFORM 1 FROM retailflow.approval_request r
         WHERE r.document_type = 'sale.order.line' AND r.record_id = ANY (line_ids) FOR SHARE;
    END IF;
    SELECT string_agg(format('%slevel %s: %s (group %s, %s)',
                             CASE WHEN m.doc <> tdoc THEN m.doc || ' ' || m.rid || ' ' ELSE '' END,
                             m.level, m.reason, m.group_id,
                             coalesce((SELECT 'request ' || r.id || ' ' || r.state FROM retailflow.approval_request r
                                        WHERE r.document_type = m.doc AND r.record_id = m.rid AND r.rule_id = m.rule_id
                                        ORDER BY r.id DESC LIMIT 1), 'not requested')),
                      '; ' ORDER BY m.doc <> tdoc, m.rid, m.level, m.sequence, m.rule_id)
      INTO missing
      FROM (SELECT tdoc AS doc, rec_id AS rid, a.* FROM retailflow.required_approvals(tdoc, rec_id) a
            UNION ALL
            SELECT 'sale.order.line', lid, a.* FROM unnest(line_ids) lid,
                   LATERAL retailflow.required_approvals('sale.order.line', lid) a) m
     WHERE NOT EXISTS (SELECT 1 FROM retailflow.approval_request r
                        WHERE r.document_type = m.doc AND r.record_id = m.rid AND r.rule_id = m.rule_id
                          AND r.state = 'approved');
    IF missing IS NULL THEN
        RETURN;
    END IF;
    uid := retailflow.acting_user(NULL, write_uid);
    IF mode = 'block' THEN
        RAISE LOG 'retailflow: refused % % state change: approvals missing: %', tdoc, rec_id, missing;
        -- this transaction rolls back: the worker appends the audit row
        PERFORM retailflow.audit_after_rollback('approval.enforcement_refused', tdoc, rec_id, uid,
                                                jsonb_build_object('state', new_state, 'missing', missing,
                                                                   'mode', mode));
        RAISE EXCEPTION '% % cannot be %: approvals are missing', tdoc, rec_id,
                        CASE tdoc WHEN 'account.move' THEN 'posted' WHEN 'stock.quant' THEN 'applied' ELSE 'confirmed' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Missing approvals: %s.', missing),
                  HINT = format('Create the requests with SELECT * FROM retailflow.request_approvals(%L, %s) and have them approved, or set retailflow.approval_enforcement to log.', tdoc, rec_id);
    END IF;
    -- log mode: let it through, create the missing requests, record it.
    PERFORM retailflow.request_approvals(tdoc, rec_id, uid);
    IF line_ids IS NOT NULL THEN
        PERFORM retailflow.request_approvals('sale.order.line', lid, uid) FROM unnest(line_ids) lid;
    END IF;
    PERFORM retailflow.audit('approval.enforcement_logged', tdoc, rec_id, NULL,
                             jsonb_build_object('state', new_state, 'missing', missing), uid);
    PERFORM retailflow.emit('approval.enforcement_refused', tdoc, rec_id,
                            jsonb_build_object('mode', mode, 'missing', missing));
END
$$;
REVOKE ALL ON FUNCTION retailflow.approval_enforce_missing(text, integer, integer, text) FROM PUBLIC;
COMMENT ON FUNCTION retailflow.approval_enforce_missing(text, integer, integer, text) IS
  'Slow path of the enforcement trigger: names the missing approvals, then blocks or logs (called by approval_enforce() only)';

INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('sale_order', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (NEW.state = ''sale'' AND OLD.state IS DISTINCT FROM ''sale'') EXECUTE FUNCTION retailflow.approval_enforce(''sale.order'')'),
  ('purchase_order', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (NEW.state = ''purchase'' AND OLD.state IS DISTINCT FROM ''purchase'') EXECUTE FUNCTION retailflow.approval_enforce(''purchase.order'')'),
  ('account_move', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE OF state ON %s FOR EACH ROW WHEN (NEW.state = ''posted'' AND OLD.state IS DISTINCT FROM ''posted'' AND NEW.move_type IN (''out_refund'', ''in_refund'')) EXECUTE FUNCTION retailflow.approval_enforce(''account.move'')'),
  ('stock_quant', 'retailflow_approval_enforce', 'approvals enforcement',
   'BEFORE UPDATE OF inventory_quantity_set, inventory_diff_quantity ON %s FOR EACH ROW WHEN (OLD.inventory_quantity_set AND OLD.inventory_diff_quantity <> 0 AND NEW.inventory_diff_quantity = 0) EXECUTE FUNCTION retailflow.approval_enforce(''stock.quant'')');

-- SLA escalation: pending requests past due become escalated.
CREATE FUNCTION retailflow.escalate_overdue(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r retailflow.approval_request;
    n integer := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR r IN UPDATE retailflow.approval_request q SET state = 'escalated'
              WHERE q.id IN (SELECT x.id FROM retailflow.approval_request x
                              WHERE x.state = 'pending' AND x.due_at <= as_of
                              ORDER BY x.id FOR UPDATE SKIP LOCKED)
             RETURNING q.*
    LOOP
        n := n + 1;
        PERFORM retailflow.audit('approval.escalated', 'retailflow.approval_request', r.id,
                                 jsonb_build_object('state', 'pending'), to_jsonb(r));
        PERFORM retailflow.emit('approval.escalated', r.document_type, r.record_id,
                                jsonb_build_object('request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                                                   'group_id', r.group_id, 'due_at', r.due_at));
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION retailflow.escalate_overdue(timestamptz) IS
  'Moves pending approval requests past their SLA to escalated and emits approval.escalated; returns how many';

REVOKE ALL ON TABLE retailflow.approval_rule FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.approval_request FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.request_approvals(text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.decide(bigint, integer, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.approve(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.reject(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.escalate_overdue(timestamptz) FROM PUBLIC;

-- >>> sql/install/45_audit.sql
-- 45_audit.sql: the tamper-evident, append-only audit trail.
--   retailflow.audit_log        one row per approval decision, rule change,
--                               enforcement event and corrective change
--   retailflow.audit(...)       the one entry point other concerns call
--   retailflow.verify_audit_log()  recomputes the SHA-256 chain, reports the
--                               first broken link
-- Each row's hash is sha256(prev_hash || canonical content); the chain head
-- (last id and hash) lives in the one-row table audit_head, which every append
-- updates first: that row lock serializes appends, and the hash is computed
-- inside the appending transaction from the head it locked.

CREATE TABLE retailflow.audit_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id    bigint NOT NULL DEFAULT 0,
    last_hash  bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex')
);
INSERT INTO retailflow.audit_head DEFAULT VALUES;
COMMENT ON TABLE retailflow.audit_head IS
  'Head of the audit hash chain (one row); its row lock serializes appends to audit_log';

CREATE TABLE retailflow.audit_log (
    id            bigint PRIMARY KEY,
    logged_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    action        text NOT NULL CHECK (action <> ''),
    entity        text NOT NULL CHECK (entity <> ''),
    entity_id     bigint,
    odoo_user_id  integer,
    db_role       name NOT NULL DEFAULT session_user,
    before        jsonb,
    after         jsonb,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL
);
COMMENT ON TABLE retailflow.audit_log IS
  'Append-only, SHA-256 hash-chained audit trail (verify with retailflow.verify_audit_log())';
CREATE INDEX audit_log_entity_idx ON retailflow.audit_log (entity, entity_id, id);

-- The canonical text a row's hash covers (independent of TimeZone/DateStyle).
CREATE FUNCTION retailflow.audit_content(id bigint, logged_at timestamptz, action text, entity text,
                                         entity_id bigint, odoo_user_id integer, db_role name,
                                         before jsonb, after jsonb)
RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT convert_to(jsonb_build_array(id, extract(epoch FROM logged_at), action, entity, entity_id,
                                        odoo_user_id, db_role::text, before, after)::text, 'UTF8')
$$;

-- BEFORE INSERT: assigns id, prev_hash and hash from the chain head it locks.
CREATE FUNCTION retailflow.audit_log_chain()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h retailflow.audit_head;
BEGIN
    NEW.logged_at := clock_timestamp();
    NEW.db_role := session_user;
    -- The UPDATE locks the head; in READ COMMITTED a waiting appender re-reads
    -- the head committed by the one it waited for, so the chain never forks.
    UPDATE retailflow.audit_head SET last_id = last_id + 1 WHERE singleton RETURNING * INTO h;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain head is missing'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retailflow.audit_head must hold exactly one row.';
    END IF;
    NEW.id := h.last_id;
    NEW.prev_hash := h.last_hash;
    NEW.hash := sha256(h.last_hash || retailflow.audit_content(NEW.id, NEW.logged_at, NEW.action, NEW.entity,
                       NEW.entity_id, NEW.odoo_user_id, NEW.db_role, NEW.before, NEW.after));
    UPDATE retailflow.audit_head SET last_hash = NEW.hash WHERE singleton;
    RETURN NEW;
END
$$;

-- BEFORE UPDATE/DELETE/TRUNCATE: the log is append-only for everyone.
CREATE FUNCTION retailflow.audit_log_refuse()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'retailflow.audit_log is append-only: % is not allowed', lower(TG_OP)
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Audit rows can only be appended; they are never updated, deleted or truncated.',
              HINT = 'Append a correcting row with retailflow.audit() instead.';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON retailflow.audit_log
    FOR EACH ROW EXECUTE FUNCTION retailflow.audit_log_chain();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON retailflow.audit_log
    FOR EACH ROW EXECUTE FUNCTION retailflow.audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON retailflow.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.audit_log_refuse();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON retailflow.audit_head
    FOR EACH ROW EXECUTE FUNCTION retailflow.audit_log_refuse();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON retailflow.audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.audit_log_refuse();

-- The entry point: appends one audit row and returns its id.
CREATE FUNCTION retailflow.audit(action text, entity text, entity_id bigint,
                                 before jsonb DEFAULT NULL, after jsonb DEFAULT NULL,
                                 odoo_user_id integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    uid integer := odoo_user_id;
BEGIN
    IF action IS NULL OR entity IS NULL OR action = '' OR entity = '' THEN
        RAISE EXCEPTION 'audit action and entity must not be null or empty'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Every audit row says what was done (action) to what (entity).',
                  HINT = 'For example retailflow.audit(''reservation.repair'', ''stock.quant'', 42, before, after).';
    END IF;
    IF uid IS NULL THEN
        uid := nullif(current_setting('retailflow.odoo_user_id', true), '')::integer;
        IF uid = 0 THEN uid := NULL; END IF;
    END IF;
    INSERT INTO retailflow.audit_log (action, entity, entity_id, odoo_user_id, before, after,
                                      prev_hash, hash)
    VALUES (audit.action, audit.entity, audit.entity_id, uid, audit.before, audit.after, '', '')
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION retailflow.audit(text, text, bigint, jsonb, jsonb, integer) IS
  'Appends one row to the hash-chained audit log; odoo_user_id defaults to the retailflow.odoo_user_id setting';

-- Queues an audit row in shared memory for webhook worker 0 to append: for a
-- refusal, which is an error and rolls back everything its transaction wrote.
CREATE FUNCTION retailflow.audit_after_rollback(action text, entity text, entity_id bigint,
                                                odoo_user_id integer, after jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rf_audit_after_rollback'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION retailflow.audit_after_rollback(text, text, bigint, integer, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION retailflow.audit_after_rollback(text, text, bigint, integer, jsonb) IS
  'Queues an audit row that survives this transaction''s rollback (appended by webhook worker 0); false if it cannot be queued';

-- Recomputes the chain in id order and reports the first broken link.
CREATE FUNCTION retailflow.verify_audit_log(
    OUT ok boolean, OUT rows_checked bigint, OUT first_broken_id bigint, OUT detail text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    prev bytea := decode(repeat('00', 32), 'hex');
    last_id bigint := 0;
    h retailflow.audit_head;
BEGIN
    ok := true;
    rows_checked := 0;
    FOR r IN SELECT * FROM retailflow.audit_log ORDER BY id LOOP
        rows_checked := rows_checked + 1;
        IF r.prev_hash IS DISTINCT FROM prev THEN
            ok := false; first_broken_id := r.id;
            detail := format('Row %s does not link to the row before it (%s): a row was removed, inserted or rehashed.',
                             r.id, CASE WHEN last_id = 0 THEN 'the start of the chain' ELSE 'row ' || last_id END);
            RETURN;
        END IF;
        IF r.hash IS DISTINCT FROM sha256(prev || retailflow.audit_content(r.id, r.logged_at, r.action, r.entity,
                                          r.entity_id, r.odoo_user_id, r.db_role, r.before, r.after)) THEN
            ok := false; first_broken_id := r.id;
            detail := format('Row %s was modified: its content no longer matches its hash.', r.id);
            RETURN;
        END IF;
        prev := r.hash;
        last_id := r.id;
    END LOOP;
    SELECT * INTO h FROM retailflow.audit_head WHERE singleton;
    IF h.last_id IS DISTINCT FROM last_id OR h.last_hash IS DISTINCT FROM prev THEN
        ok := false; first_broken_id := last_id + 1;
        detail := format('The chain head names row %s but the log ends at row %s: rows at the end were removed.',
                         h.last_id, last_id);
        RETURN;
    END IF;
    detail := format('%s rows, chain intact.', rows_checked);
END
$$;
COMMENT ON FUNCTION retailflow.verify_audit_log() IS
  'Recomputes the audit log''s SHA-256 chain; ok is false and first_broken_id names the first bad row when it was tampered with';

REVOKE ALL ON TABLE retailflow.audit_log FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.audit_head FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.audit(text, text, bigint, jsonb, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.verify_audit_log() FROM PUBLIC;

-- >>> sql/install/60_exceptions.sql
-- 60_exceptions.sql: the exception queue.  Every kind of exception is a
-- registered check (retailflow.exception_check: kind, severity, suggested
-- action and the SQL text returning the open items); run_checks() and
-- run_due_checks() evaluate them, open new exceptions, close those that
-- disappeared, keep the history for KPIs and emit exception.opened /
-- exception.resolved through the outbox.  Thresholds and intervals are GUCs
-- (src/exceptions.c); "now" is retailflow.now(), overridable for tests.

INSERT INTO retailflow.event_type (name, description) VALUES
  ('exception.opened', 'A scheduled check found a new exception (a process that needs a human)'),
  ('exception.resolved', 'An exception closed: it disappeared from the data or a user resolved it');

-- The clock of checks, KPIs and risk scores: retailflow.now_override when set.
CREATE FUNCTION retailflow.now()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('retailflow.now_override', true), '')::timestamptz, now())
$$;
COMMENT ON FUNCTION retailflow.now() IS
  'now(), or retailflow.now_override when it is set (deterministic tests)';

-- An interval-valued GUC of ours, validated by its check hook in C.
CREATE FUNCTION retailflow.setting_interval(name text)
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_setting(name)::interval
$$;

CREATE TABLE retailflow.exception_check (
    kind             text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    severity         text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    suggested_action text NOT NULL,
    description      text NOT NULL,
    -- SQL returning the open items; $1 is the as-of timestamptz.  Columns by
    -- name: model, record_id, reference, since, user_id, team_id,
    -- company_id, warehouse_id, reason, data (jsonb), severity (NULL = the
    -- check's).  Unqualified names resolve in the Odoo schema.
    query            text NOT NULL,
    -- relations that must exist for the check to run ("name" = Odoo table,
    -- "schema.name" as is); a missing one makes the run "skipped"
    requires         text[] NOT NULL DEFAULT '{}',
    enabled          boolean NOT NULL DEFAULT true,
    last_run_at      timestamptz,
    last_status      text CHECK (last_status IN ('ok', 'error', 'skipped')),
    last_error       text,
    last_duration_ms double precision,
    last_open        integer
);
COMMENT ON TABLE retailflow.exception_check IS
  'Registry of exception kinds: each row is a check whose SQL returns the currently open items';

CREATE TABLE retailflow.exception (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL REFERENCES retailflow.exception_check (kind) ON UPDATE CASCADE,
    model            text NOT NULL,
    record_id        integer NOT NULL,
    reference        text,
    severity         text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    since            timestamptz,
    user_id          integer,
    team_id          integer,
    company_id       integer,
    warehouse_id     integer,
    reason           text NOT NULL,
    suggested_action text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at        timestamptz NOT NULL,
    closed_at        timestamptz,
    close_reason     text CHECK (close_reason IN ('disappeared', 'resolved')),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    assigned_user_id integer,
    resolved_by      text,
    note             text,
    CHECK ((closed_at IS NULL) = (close_reason IS NULL))
);
COMMENT ON TABLE retailflow.exception IS
  'Every exception ever opened (open ones have closed_at NULL); the history feeds the KPIs';
CREATE UNIQUE INDEX exception_open_key ON retailflow.exception (kind, model, record_id)
    WHERE closed_at IS NULL;
CREATE INDEX exception_opened_idx ON retailflow.exception (opened_at);
-- retention removes the oldest closed exceptions first
CREATE INDEX exception_closed_idx ON retailflow.exception (closed_at) WHERE closed_at IS NOT NULL;

CREATE VIEW retailflow.exceptions AS
SELECT e.id, e.kind, e.severity, e.model, e.record_id, e.reference, e.since,
       e.user_id, e.team_id, e.company_id, e.warehouse_id, e.reason, e.suggested_action,
       e.data, e.opened_at, e.acknowledged_at, e.acknowledged_by, e.assigned_user_id, e.note
FROM retailflow.exception e
WHERE e.closed_at IS NULL;
COMMENT ON VIEW retailflow.exceptions IS
  'One row per open exception: what needs a human, where in Odoo, since when, why and what to do';

CREATE VIEW retailflow.exception_summary AS
SELECT e.kind, e.severity, count(*) AS open,
       count(*) FILTER (WHERE e.acknowledged_at IS NULL) AS unacknowledged,
       count(*) FILTER (WHERE e.assigned_user_id IS NOT NULL) AS assigned,
       min(e.since) AS oldest_since, min(e.opened_at) AS oldest_opened_at
FROM retailflow.exception e
WHERE e.closed_at IS NULL
GROUP BY e.kind, e.severity;
COMMENT ON VIEW retailflow.exception_summary IS
  'Open exceptions counted per kind and severity, with how many are unacknowledged or assigned';

REVOKE ALL ON TABLE retailflow.exception_check, retailflow.exception, retailflow.exceptions,
    retailflow.exception_summary FROM PUBLIC;

-- Whether every relation a check requires exists.
CREATE FUNCTION retailflow.check_requirements_met(requires text[])
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(bool_and(
             CASE WHEN r LIKE '%.%' THEN to_regclass(r)
                  ELSE to_regclass(format('%I.%I',
                         coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public'), r))
             END IS NOT NULL), true)
    FROM unnest(requires) AS r
$$;

-- The interval of one check: retailflow.check_intervals entry or the default.
CREATE FUNCTION retailflow.check_interval(kind text)
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    item text;
    k text;
    v text;
BEGIN
    FOREACH item IN ARRAY string_to_array(coalesce(current_setting('retailflow.check_intervals', true), ''), ',')
    LOOP
        CONTINUE WHEN btrim(item) = '';
        k := btrim(split_part(item, '=', 1));
        v := btrim(substr(item, strpos(item, '=') + 1));
        IF strpos(item, '=') = 0 OR k = '' OR v = '' THEN
            RAISE EXCEPTION 'malformed entry "%" in retailflow.check_intervals', btrim(item)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Each entry is kind=interval, entries are separated by commas.',
                      HINT = 'For example: SET retailflow.check_intervals = ''replenishment=5 min, late_picking=10 min''.';
        END IF;
        IF k = check_interval.kind THEN
            BEGIN
                RETURN v::interval;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
                RAISE EXCEPTION 'invalid interval "%" for check "%" in retailflow.check_intervals', v, k
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = 'The value after "=" must be a PostgreSQL interval.';
            END;
        END IF;
    END LOOP;
    RETURN retailflow.setting_interval('retailflow.check_interval');
END
$$;

-- Binary-image equality of two jsonb values: the checks' cheap change test.
CREATE FUNCTION retailflow.jsonb_identical(a jsonb, b jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rf_jsonb_identical'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.jsonb_identical(jsonb, jsonb) IS
  'Internal: true if two jsonb values have the same binary image (the exception checks'' change test)';

-- Runs one check against the current data and reconciles its open exceptions.
CREATE FUNCTION retailflow.run_check(p_kind text, as_of timestamptz,
                                     OUT status text, OUT opened integer, OUT resolved integer, OUT open integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c        retailflow.exception_check;
    sch      text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    t0       timestamptz := clock_timestamp();
    err      text;
BEGIN
    SELECT * INTO c FROM retailflow.exception_check WHERE kind = p_kind FOR UPDATE;
    opened := 0; resolved := 0; open := NULL;
    IF NOT retailflow.check_requirements_met(c.requires) THEN
        status := 'skipped';
    ELSE
        BEGIN
            PERFORM set_config('search_path', format('pg_catalog, %I, pg_temp', sch), true);
            EXECUTE format($q$
                WITH cur AS (
                    SELECT DISTINCT ON (i.model, i.record_id)
                           i.model::text AS model, i.record_id::integer AS record_id,
                           i.reference::text AS reference, i.since::timestamptz AS since,
                           i.user_id::integer AS user_id, i.team_id::integer AS team_id,
                           i.company_id::integer AS company_id, i.warehouse_id::integer AS warehouse_id,
                           i.reason::text AS reason, coalesce(i.data::jsonb, '{}') AS data,
                           coalesce(i.severity::text, $2) AS severity
                    FROM (%s) AS i
                    WHERE i.model IS NOT NULL AND i.record_id IS NOT NULL
                    ORDER BY i.model, i.record_id
                ),
                old AS (
                    SELECT e.id, e.model, e.record_id, e.reference, e.since, e.user_id, e.team_id,
                           e.company_id, e.warehouse_id, e.reason, e.data, e.severity
                    FROM retailflow.exception e
                    WHERE e.kind = $3 AND e.closed_at IS NULL
                ),
                -- one join of the current items with the open exceptions: new, gone or changed
                diff AS MATERIALIZED (
                    SELECT c.*, o.id AS old_id, c.model IS NULL AS is_gone, o.id IS NULL AS is_new,
                           ((o.reference, o.since, o.user_id, o.team_id, o.company_id, o.warehouse_id,
                             o.reason, o.severity)
                            IS DISTINCT FROM
                            (c.reference, c.since, c.user_id, c.team_id, c.company_id, c.warehouse_id,
                             c.reason, c.severity)
                            OR NOT retailflow.jsonb_identical(coalesce(o.data, '{}'), coalesce(c.data, '{}')))
                           AS is_changed
                    FROM cur c FULL JOIN old o ON o.model = c.model AND o.record_id = c.record_id
                ),
                changed AS (
                    UPDATE retailflow.exception e
                    SET reference = c.reference, since = c.since, user_id = c.user_id, team_id = c.team_id,
                        company_id = c.company_id, warehouse_id = c.warehouse_id, reason = c.reason,
                        data = c.data, severity = c.severity
                    FROM diff c
                    WHERE e.id = c.old_id AND e.closed_at IS NULL
                      AND NOT c.is_gone AND NOT c.is_new AND c.is_changed
                    RETURNING e.id
                ),
                gone AS (
                    UPDATE retailflow.exception e
                    SET closed_at = $1, close_reason = 'disappeared'
                    FROM diff o
                    WHERE e.id = o.old_id AND o.is_gone
                    RETURNING e.*
                ),
                new AS (
                    INSERT INTO retailflow.exception
                        (kind, model, record_id, reference, severity, since, user_id, team_id, company_id,
                         warehouse_id, reason, suggested_action, data, opened_at)
                    SELECT $3, c.model, c.record_id, c.reference, c.severity, c.since, c.user_id, c.team_id,
                           c.company_id, c.warehouse_id, c.reason, $4, c.data, $1
                    FROM diff c
                    WHERE c.is_new
                    ORDER BY c.model, c.record_id
                    RETURNING *
                ),
                ev_new AS (
                    SELECT retailflow.emit('exception.opened', n.model, n.record_id,
                             jsonb_build_object('exception_id', n.id, 'kind', n.kind, 'severity', n.severity,
                                                'reference', n.reference, 'since', n.since, 'reason', n.reason,
                                                'suggested_action', n.suggested_action, 'company_id', n.company_id,
                                                'warehouse_id', n.warehouse_id, 'team_id', n.team_id,
                                                'user_id', n.user_id, 'data', n.data)) AS ev
                    FROM (SELECT * FROM new ORDER BY id) n
                ),
                ev_gone AS (
                    SELECT retailflow.emit('exception.resolved', g.model, g.record_id,
                             jsonb_build_object('exception_id', g.id, 'kind', g.kind, 'reference', g.reference,
                                                'how', 'disappeared', 'opened_at', g.opened_at,
                                                'closed_at', g.closed_at)) AS ev
                    FROM (SELECT * FROM gone ORDER BY id) g
                )
                SELECT (SELECT count(*) FROM ev_new)::integer, (SELECT count(*) FROM ev_gone)::integer,
                       (SELECT count(*) FROM diff WHERE NOT is_gone)::integer, (SELECT count(*) FROM changed)::integer
            $q$, c.query)
            INTO opened, resolved, open
            USING as_of, c.severity, c.kind, c.suggested_action;
            PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
            status := 'ok';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            status := 'error';
            opened := 0; resolved := 0; open := NULL;
        END;
        PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    END IF;
    UPDATE retailflow.exception_check
    SET last_run_at = as_of, last_status = status, last_error = err,
        last_duration_ms = extract(epoch FROM clock_timestamp() - t0) * 1000,
        last_open = CASE WHEN status = 'ok' THEN run_check.open END
    WHERE kind = p_kind;
    IF status = 'error' THEN
        RAISE WARNING 'retailflow exception check "%" failed: %', p_kind, err;
    END IF;
END
$$;

-- Runs the given checks (NULL = every enabled check) now or as of a time.
CREATE FUNCTION retailflow.run_checks(kinds text[] DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (kind text, status text, opened integer, resolved integer, open integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    t timestamptz := coalesce(as_of, retailflow.now());
BEGIN
    IF kinds IS NOT NULL THEN
        SELECT u.k INTO k FROM unnest(kinds) AS u(k)
        WHERE u.k IS NULL OR NOT EXISTS (SELECT 1 FROM retailflow.exception_check c WHERE c.kind = u.k)
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'unknown exception check "%"', coalesce(k, 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Checks are the rows of retailflow.exception_check.',
                      HINT = 'SELECT kind FROM retailflow.exception_check lists them.';
        END IF;
    END IF;
    FOR k IN SELECT c.kind FROM retailflow.exception_check c
             WHERE (kinds IS NULL AND c.enabled) OR c.kind = ANY (kinds)
             ORDER BY c.kind
    LOOP
        kind := k;
        SELECT r.status, r.opened, r.resolved, r.open INTO status, opened, resolved, open
        FROM retailflow.run_check(k, t) r;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.run_checks(text[], timestamptz) IS
  'Runs exception checks (NULL = all enabled), opens new exceptions, closes vanished ones, emits events';

-- Runs the enabled checks whose interval has elapsed (for the background worker).
CREATE FUNCTION retailflow.run_due_checks(as_of timestamptz DEFAULT NULL)
RETURNS TABLE (kind text, status text, opened integer, resolved integer, open integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    t timestamptz := coalesce(as_of, retailflow.now());
BEGIN
    FOR k IN SELECT c.kind FROM retailflow.exception_check c
             WHERE c.enabled
               AND (c.last_run_at IS NULL OR c.last_run_at + retailflow.check_interval(c.kind) <= t)
             ORDER BY c.kind
             FOR UPDATE SKIP LOCKED
    LOOP
        kind := k;
        SELECT r.status, r.opened, r.resolved, r.open INTO status, opened, resolved, open
        FROM retailflow.run_check(k, t) r;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.run_due_checks(timestamptz) IS
  'Runs the enabled exception checks whose interval (retailflow.check_interval / check_intervals) has elapsed';

-- Acknowledge, assign, annotate, resolve or reopen one exception.
CREATE FUNCTION retailflow.exception_ack(exception_id bigint, action text DEFAULT 'acknowledge',
                                         assign_to integer DEFAULT NULL, note text DEFAULT NULL)
RETURNS retailflow.exception
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e retailflow.exception;
    t timestamptz := retailflow.now();
BEGIN
    IF exception_id IS NULL OR action IS NULL THEN
        RAISE EXCEPTION 'exception_id and action must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'exception_ack() needs the id of a row of retailflow.exceptions and an action.';
    END IF;
    IF action NOT IN ('acknowledge', 'assign', 'unassign', 'note', 'resolve') THEN
        RAISE EXCEPTION 'unknown action "%"', action
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The actions are acknowledge, assign, unassign, note and resolve.';
    END IF;
    IF action = 'assign' AND assign_to IS NULL THEN
        RAISE EXCEPTION 'assign needs assign_to'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'assign_to is the res_users id of the person who takes the exception.';
    END IF;
    SELECT * INTO e FROM retailflow.exception x WHERE x.id = exception_ack.exception_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'exception % does not exist', exception_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Open exceptions are listed in retailflow.exceptions.';
    END IF;
    IF e.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'exception % is already closed', exception_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('It closed at %s (%s).', e.closed_at, e.close_reason),
                  HINT = 'If the problem is still in the data, the next check run opens a new exception.';
    END IF;
    UPDATE retailflow.exception x
    SET acknowledged_at = CASE WHEN x.acknowledged_at IS NULL AND action IN ('acknowledge', 'assign', 'resolve')
                               THEN t ELSE x.acknowledged_at END,
        acknowledged_by = CASE WHEN x.acknowledged_at IS NULL AND action IN ('acknowledge', 'assign', 'resolve')
                               THEN session_user::text ELSE x.acknowledged_by END,
        assigned_user_id = CASE action WHEN 'assign' THEN assign_to WHEN 'unassign' THEN NULL
                                ELSE x.assigned_user_id END,
        note = coalesce(exception_ack.note, x.note),
        closed_at = CASE WHEN action = 'resolve' THEN t END,
        close_reason = CASE WHEN action = 'resolve' THEN 'resolved' END,
        resolved_by = CASE WHEN action = 'resolve' THEN session_user::text END
    WHERE x.id = e.id
    RETURNING * INTO e;
    IF action = 'resolve' THEN
        PERFORM retailflow.emit('exception.resolved', e.model, e.record_id,
                  jsonb_build_object('exception_id', e.id, 'kind', e.kind, 'reference', e.reference,
                                     'how', 'resolved', 'opened_at', e.opened_at, 'closed_at', e.closed_at,
                                     'note', e.note));
    END IF;
    RETURN e;
END
$$;
COMMENT ON FUNCTION retailflow.exception_ack(bigint, text, integer, text) IS
  'Acknowledges, assigns (assign_to = res_users id), unassigns, annotates or resolves an open exception';

REVOKE ALL ON FUNCTION retailflow.run_check(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.run_checks(text[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.run_due_checks(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.exception_ack(bigint, text, integer, text) FROM PUBLIC;

-- Removes closed exceptions and exception_log rows older than the retention
-- (retailflow.exception_retention, or older_than), at most batch rows of each.
CREATE FUNCTION retailflow.purge_exceptions(batch integer DEFAULT 5000, older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep   interval;
    cutoff timestamptz;
    n      bigint;
    m      bigint;
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'batch must be a positive number of rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('The batch given was %s.', coalesce(batch::text, 'NULL')),
            HINT = 'Worker 0 uses batches of 5000 rows.';
    END IF;
    IF older_than IS NOT NULL AND older_than <= interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('The interval given was %s.', older_than),
            HINT = 'Give NULL to use retailflow.exception_retention.';
    END IF;
    keep := coalesce(older_than, nullif(current_setting('retailflow.exception_retention'), '')::interval);
    IF keep IS NULL THEN
        RETURN 0;               -- retention off: history is kept forever
    END IF;
    cutoff := retailflow.now() - keep;
    DELETE FROM retailflow.exception e
     WHERE e.id IN (SELECT x.id FROM retailflow.exception x
                    WHERE x.closed_at < cutoff ORDER BY x.closed_at LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM retailflow.exception_log l
     WHERE l.id IN (SELECT x.id FROM retailflow.exception_log x
                    WHERE x.occurred_at < cutoff ORDER BY x.occurred_at LIMIT batch);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
COMMENT ON FUNCTION retailflow.purge_exceptions(integer, interval) IS
  'Removes up to batch closed exceptions and up to batch exception_log rows older than retailflow.exception_retention (or older_than); returns how many';
REVOKE ALL ON FUNCTION retailflow.purge_exceptions(integer, interval) FROM PUBLIC;

-- SQL text with {odoo} replaced by the quoted schema of Odoo's tables.
CREATE FUNCTION retailflow.odoo_sql(sql text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(sql, '{odoo}',
                   quote_ident(coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public')))
$$;

-- The storable-product predicate on product_template alias "pt" (17: type, 18: is_storable).
CREATE FUNCTION retailflow.storable_sql()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN coalesce(retailflow.odoo_version(), 17) >= 18
                THEN '(pt.type = ''consu'' AND coalesce(pt.is_storable, false))'
                ELSE 'pt.type = ''product''' END
$$;

-- Reordering rules whose free or forecast quantity (Odoo product quantities at
-- the rule's location subtree) is below the minimum, with Odoo's quantity to
-- order rounded to the rule's multiple (docs/odoo-semantics.md section 5).
-- C (src/availability.c): the rules are read with one query, their own
-- (product, location) pairs go through the product_quantities matrix, and the
-- arithmetic is numeric, as Odoo's columns are.
CREATE FUNCTION retailflow.replenishment_needs(as_of timestamptz DEFAULT NULL)
RETURNS TABLE (orderpoint_id integer, reference text, product_id integer, product_ref text,
               location_id integer, warehouse_id integer, company_id integer,
               free_qty numeric, forecast_qty numeric, min_qty numeric, max_qty numeric,
               qty_multiple numeric, qty_to_order numeric)
AS 'MODULE_PATHNAME', 'rf_replenishment_needs'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION retailflow.replenishment_needs(timestamptz) IS
  'Reordering rules below their minimum (free or forecast) with the quantity to order rounded to the multiple';

-- The same rules as the replenishment check's items, with the reason and the
-- data built in C (each number goes into the jsonb as a numeric, without the
-- text round trip of jsonb_build_object).
CREATE FUNCTION retailflow.replenishment_items(as_of timestamptz DEFAULT NULL)
RETURNS TABLE (model text, record_id integer, reference text, since timestamptz, user_id integer,
               team_id integer, company_id integer, warehouse_id integer, reason text, data jsonb,
               severity text)
AS 'MODULE_PATHNAME', 'rf_replenishment_items'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION retailflow.replenishment_items(timestamptz) IS
  'Internal: replenishment_needs() as the items of the replenishment exception check (reason and data built)';

-- Posted customer refunds of a return (picking): see docs/exceptions.md for the linking rule.
CREATE FUNCTION retailflow.return_refunds(return_picking_id integer)
RETURNS TABLE (move_id integer, name text, posted_at timestamptz, amount_total numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE retailflow.odoo_sql($q$
        WITH ret AS (
            SELECT so.name AS so_name, orig.origin AS orig_origin
            FROM {odoo}.stock_picking sp
            LEFT JOIN {odoo}.stock_picking orig ON orig.id = sp.return_id
            LEFT JOIN {odoo}.sale_order so ON so.id = coalesce(sp.sale_id, orig.sale_id)
            WHERE sp.id = $1
        ),
        keys AS (
            SELECT v.k FROM ret, LATERAL (VALUES (ret.so_name::text), (ret.orig_origin::text)) v(k)
            WHERE v.k IS NOT NULL
        )
        SELECT am.id, am.name::text, am.create_date AT TIME ZONE 'UTC', am.amount_total
        FROM {odoo}.account_move am
        WHERE am.move_type = 'out_refund' AND am.state = 'posted'
          AND (am.invoice_origin IN (SELECT k FROM keys)
               OR am.reversed_entry_id IN (SELECT inv.id FROM {odoo}.account_move inv
                                           WHERE inv.move_type = 'out_invoice'
                                             AND inv.invoice_origin IN (SELECT k FROM keys)))
        ORDER BY am.id
    $q$) USING return_picking_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Built-in checks over Odoo's own tables.  Odoo stores UTC in timestamp
-- without time zone: "AT TIME ZONE 'UTC'" turns it into timestamptz.
-- ---------------------------------------------------------------------------

INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('stuck_order', 'high',
 'Find what blocks the delivery (stock, picking, carrier) and ship or inform the customer',
 'Confirmed sale orders with a delivery not done within retailflow.order_sla of confirmation',
 '{sale_order,stock_picking,stock_picking_type}',
 $q$
 SELECT 'sale.order' AS model, so.id AS record_id, so.name AS reference,
        (so.date_order AT TIME ZONE 'UTC') + retailflow.setting_interval('retailflow.order_sla') AS since,
        so.user_id, so.team_id, so.company_id, so.warehouse_id,
        format('confirmed %s UTC, %s of %s deliveries not done within %s',
               to_char(so.date_order, 'YYYY-MM-DD HH24:MI'),
               p.open_pickings, p.pickings, current_setting('retailflow.order_sla')) AS reason,
        jsonb_build_object('open_pickings', p.open_pickings, 'amount_total', so.amount_total) AS data,
        NULL AS severity
 FROM sale_order so
 JOIN (SELECT sp.sale_id, count(*) AS pickings,
              count(*) FILTER (WHERE sp.state NOT IN ('done', 'cancel')) AS open_pickings
       FROM stock_picking sp
       JOIN stock_picking_type pt ON pt.id = sp.picking_type_id
       WHERE sp.sale_id IS NOT NULL AND pt.code = 'outgoing'
       GROUP BY sp.sale_id) p ON p.sale_id = so.id
 WHERE so.state = 'sale'
   AND so.date_order < ($1 - retailflow.setting_interval('retailflow.order_sla')) AT TIME ZONE 'UTC'
   AND p.open_pickings > 0
 $q$),
('late_picking', 'medium',
 'Process the transfer or reschedule it',
 'Transfers whose scheduled date has passed and that are not done or cancelled',
 '{stock_picking,stock_picking_type}',
 $q$
 SELECT 'stock.picking' AS model, sp.id AS record_id, sp.name AS reference,
        sp.scheduled_date AT TIME ZONE 'UTC' AS since,
        sp.user_id, so.team_id, sp.company_id, pt.warehouse_id,
        format('%s scheduled %s UTC is not done (state %s)', pt.code,
               to_char(sp.scheduled_date, 'YYYY-MM-DD HH24:MI'), sp.state) AS reason,
        jsonb_build_object('picking_type', pt.code, 'state', sp.state, 'origin', sp.origin) AS data,
        CASE WHEN sp.date_deadline IS NOT NULL AND sp.date_deadline < $1 AT TIME ZONE 'UTC'
             THEN 'high' END AS severity
 FROM stock_picking sp
 JOIN stock_picking_type pt ON pt.id = sp.picking_type_id
 LEFT JOIN sale_order so ON so.id = sp.sale_id
 WHERE sp.state IN ('waiting', 'confirmed', 'assigned')
   AND sp.scheduled_date < $1 AT TIME ZONE 'UTC'
 $q$),
('partial_delivery', 'medium',
 'Ship what is available (backorder) or find the missing stock',
 'Deliveries partially available for longer than retailflow.partial_delivery_age',
 '{stock_picking,stock_picking_type,stock_move}',
 $q$
 SELECT 'stock.picking' AS model, sp.id AS record_id, sp.name AS reference,
        sp.create_date AT TIME ZONE 'UTC' AS since,
        sp.user_id, so.team_id, sp.company_id, pt.warehouse_id,
        format('%s of %s moves not fully reserved; delivery created %s UTC', m.short_moves, m.moves,
               to_char(sp.create_date, 'YYYY-MM-DD HH24:MI')) AS reason,
        jsonb_build_object('moves', m.moves, 'short_moves', m.short_moves,
                           'demand', m.demand, 'reserved', m.reserved) AS data,
        NULL AS severity
 FROM stock_picking sp
 JOIN stock_picking_type pt ON pt.id = sp.picking_type_id
 LEFT JOIN sale_order so ON so.id = sp.sale_id
 JOIN (SELECT sm.picking_id, count(*) AS moves,
              count(*) FILTER (WHERE sm.state IN ('partially_available', 'confirmed', 'waiting')) AS short_moves,
              count(*) FILTER (WHERE sm.state IN ('partially_available', 'assigned')) AS some_reserved,
              sum(sm.product_qty) AS demand, sum(sm.quantity) AS reserved
       FROM stock_move sm
       WHERE sm.picking_id IS NOT NULL AND sm.state IN ('waiting', 'confirmed', 'partially_available', 'assigned')
       GROUP BY sm.picking_id) m ON m.picking_id = sp.id
 WHERE pt.code = 'outgoing'
   AND sp.state IN ('confirmed', 'assigned', 'waiting')
   AND sp.create_date < ($1 - retailflow.setting_interval('retailflow.partial_delivery_age')) AT TIME ZONE 'UTC'
   AND m.short_moves > 0 AND m.some_reserved > 0
 $q$),
('replenishment', 'high',
 'Replenish: order the suggested quantity (purchase or transfer) or run the reordering rule',
 'Reordering rules whose free or forecast quantity is below the minimum',
 '{stock_warehouse_orderpoint,product_product,product_template,uom_uom}',
 $q$
 SELECT * FROM retailflow.replenishment_items()
 $q$),
('stalled_return', 'medium',
 'Post the customer refund (credit note) or record why none is due',
 'Returns received more than retailflow.return_stall ago without a posted customer refund',
 '{stock_picking,stock_picking_type,sale_order,account_move}',
 $q$
 SELECT 'stock.picking' AS model, sp.id AS record_id, sp.name AS reference,
        (sp.date_done AT TIME ZONE 'UTC') + retailflow.setting_interval('retailflow.return_stall') AS since,
        coalesce(so.user_id, sp.user_id) AS user_id, so.team_id, sp.company_id, pt.warehouse_id,
        format('return of %s received %s UTC, no posted refund within %s',
               coalesce(so.name, sp.origin), to_char(sp.date_done, 'YYYY-MM-DD HH24:MI'),
               current_setting('retailflow.return_stall')) AS reason,
        jsonb_build_object('sale_order_id', so.id, 'returned_picking_id', sp.return_id) AS data,
        NULL AS severity
 FROM stock_picking sp
 JOIN stock_picking_type pt ON pt.id = sp.picking_type_id
 LEFT JOIN stock_picking orig ON orig.id = sp.return_id
 LEFT JOIN sale_order so ON so.id = coalesce(sp.sale_id, orig.sale_id)
 WHERE (sp.return_id IS NOT NULL OR (pt.code = 'incoming' AND sp.origin LIKE 'Return of %'))
   AND sp.state = 'done'
   AND sp.date_done < ($1 - retailflow.setting_interval('retailflow.return_stall')) AT TIME ZONE 'UTC'
   AND NOT EXISTS (SELECT 1 FROM retailflow.return_refunds(sp.id) rr WHERE rr.posted_at <= $1)
 $q$);

-- Checks over other concerns' tables (approvals, webhooks): registered now,
-- "skipped" until those tables exist.
INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('approval_overdue', 'high',
 'Decide the approval request (approve or reject) or escalate it',
 'Pending approval requests past their due time (the rule''s SLA)',
 '{retailflow.approval_request}',
 $q$
 SELECT DISTINCT ON (r.document_type, r.record_id)
        r.document_type AS model, r.record_id, NULL::text AS reference, r.due_at AS since,
        NULL::integer AS user_id, NULL::integer AS team_id, NULL::integer AS company_id,
        NULL::integer AS warehouse_id,
        format('approval request %s (rule %s, level %s) pending since %s, due %s',
               r.id, r.rule_id, r.level, r.requested_at, r.due_at) AS reason,
        jsonb_build_object('approval_request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                           'group_id', r.group_id) AS data,
        NULL::text AS severity
 FROM retailflow.approval_request r
 WHERE r.state = 'pending' AND r.due_at < $1
 ORDER BY r.document_type, r.record_id, r.due_at, r.id
 $q$),
('approval_escalated', 'high',
 'The request was escalated: the next approver level must decide',
 'Escalated approval requests',
 '{retailflow.approval_request}',
 $q$
 SELECT DISTINCT ON (r.document_type, r.record_id)
        r.document_type AS model, r.record_id, NULL::text AS reference, r.requested_at AS since,
        NULL::integer AS user_id, NULL::integer AS team_id, NULL::integer AS company_id,
        NULL::integer AS warehouse_id,
        format('approval request %s (rule %s, level %s) escalated', r.id, r.rule_id, r.level) AS reason,
        jsonb_build_object('approval_request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                           'group_id', r.group_id) AS data,
        NULL::text AS severity
 FROM retailflow.approval_request r
 WHERE r.state = 'escalated'
 ORDER BY r.document_type, r.record_id, r.id
 $q$),
('webhook_dead_letter', 'high',
 'Fix the receiving endpoint, then redeliver the dead deliveries (retailflow.redeliver)',
 'Webhook endpoints with dead-lettered deliveries',
 '{retailflow.delivery,retailflow.endpoint}',
 $q$
 SELECT 'retailflow.endpoint' AS model, d.endpoint_id AS record_id, min(ep.name) AS reference,
        min(d.created_at) AS since, NULL::integer AS user_id, NULL::integer AS team_id,
        NULL::integer AS company_id, NULL::integer AS warehouse_id,
        format('%s dead-lettered deliveries to %s', count(*), min(ep.name)) AS reason,
        jsonb_build_object('dead', count(*), 'last_error', (array_agg(d.last_error ORDER BY d.id DESC))[1]) AS data,
        NULL::text AS severity
 FROM retailflow.delivery d
 JOIN retailflow.endpoint ep ON ep.id = d.endpoint_id
 WHERE d.state = 'dead'
 GROUP BY d.endpoint_id
 $q$),
('webhook_circuit_open', 'critical',
 'The endpoint keeps failing: check it; deliveries resume when the circuit closes',
 'Webhook endpoints whose circuit breaker is open',
 '{retailflow.endpoint_health,retailflow.endpoint}',
 $q$
 SELECT 'retailflow.endpoint' AS model, h.endpoint_id AS record_id, ep.name AS reference,
        h.last_error_at AS since, NULL::integer AS user_id, NULL::integer AS team_id,
        NULL::integer AS company_id, NULL::integer AS warehouse_id,
        format('circuit open after %s consecutive failures: %s', h.consecutive_failures,
               coalesce(h.last_error, 'HTTP ' || h.last_status)) AS reason,
        jsonb_build_object('consecutive_failures', h.consecutive_failures) AS data,
        NULL::text AS severity
 FROM retailflow.endpoint_health h
 JOIN retailflow.endpoint ep ON ep.id = h.endpoint_id
 WHERE h.circuit_open_until > $1
 $q$);

-- >>> sql/install/65_kpis.sql
-- 65_kpis.sql: operational KPIs over a chosen period, per company /
-- warehouse / channel (sale order team) where Odoo records it: order
-- release time, fulfilment latency, return cycle time, stock accuracy,
-- exception rate and time to resolve, approval turnaround and webhook
-- delivery.  Durations come as p50/p90/p99 intervals (rounded to seconds).
-- The approval and webhook KPIs read other concerns' tables and return no
-- rows while those tables do not exist.

-- p50, p90, p99 and mean of durations in seconds, as intervals.
CREATE FUNCTION retailflow.kpi_interval(secs double precision)
RETURNS interval
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT make_interval(secs => round(secs::numeric)::double precision)
$$;

-- Raises when a KPI period is malformed.
CREATE FUNCTION retailflow.kpi_check_period(date_from timestamptz, date_to timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF date_from IS NULL OR date_to IS NULL THEN
        RAISE EXCEPTION 'the period bounds must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'KPIs cover [date_from, date_to).';
    END IF;
    IF date_from >= date_to THEN
        RAISE EXCEPTION 'date_from must be before date_to'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The period [%s, %s) is empty.', date_from, date_to);
    END IF;
END
$$;

-- Raises 42P01 when an Odoo table a KPI needs is missing.
CREATE FUNCTION retailflow.kpi_require(tables text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        IF to_regclass(retailflow.odoo_sql('{odoo}.' || quote_ident(t))) IS NULL THEN
            RAISE EXCEPTION 'Odoo table % not found', t
                USING ERRCODE = 'undefined_table',
                      DETAIL = 'This KPI reads Odoo''s own tables.',
                      HINT = 'Check retailflow.odoo_schema and that the Odoo module is installed.';
        END IF;
    END LOOP;
END
$$;

-- Order release time: sale order creation to confirmation (date_order), confirmed in the period.
CREATE FUNCTION retailflow.kpi_order_release(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (company_id integer, team_id integer, orders bigint,
               p50 interval, p90 interval, p99 interval, mean interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    PERFORM retailflow.kpi_require('{sale_order}');
    RETURN QUERY EXECUTE retailflow.odoo_sql($q$
        SELECT so.company_id, so.team_id, count(*),
               retailflow.kpi_interval(percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.9) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.99) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(avg(d.s))
        FROM {odoo}.sale_order so
        CROSS JOIN LATERAL (SELECT greatest(extract(epoch FROM so.date_order - so.create_date), 0)::double precision AS s) d
        WHERE so.state = 'sale' AND so.create_date IS NOT NULL
          AND so.date_order >= $1 AT TIME ZONE 'UTC' AND so.date_order < $2 AT TIME ZONE 'UTC'
        GROUP BY so.company_id, so.team_id
        ORDER BY so.company_id, so.team_id NULLS LAST $q$)
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_order_release(timestamptz, timestamptz) IS
  'Order release time (creation to confirmation) per company and sales team, orders confirmed in [date_from, date_to)';

-- Fulfilment latency: confirmation to the last outgoing picking done, completed in the period.
CREATE FUNCTION retailflow.kpi_fulfilment_latency(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (company_id integer, warehouse_id integer, team_id integer, orders bigint,
               p50 interval, p90 interval, p99 interval, mean interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    PERFORM retailflow.kpi_require('{sale_order,stock_picking,stock_picking_type}');
    RETURN QUERY EXECUTE retailflow.odoo_sql($q$
        WITH done AS (
            SELECT sp.sale_id, max(sp.date_done) AS done_at
            FROM {odoo}.stock_picking sp
            JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
            WHERE sp.sale_id IS NOT NULL AND pt.code = 'outgoing' AND sp.state <> 'cancel'
            GROUP BY sp.sale_id
            HAVING bool_and(sp.state = 'done')
        )
        SELECT so.company_id, so.warehouse_id, so.team_id, count(*),
               retailflow.kpi_interval(percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.9) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.99) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(avg(d.s))
        FROM done
        JOIN {odoo}.sale_order so ON so.id = done.sale_id
        CROSS JOIN LATERAL (SELECT greatest(extract(epoch FROM done.done_at - so.date_order), 0)::double precision AS s) d
        WHERE so.state = 'sale'
          AND done.done_at >= $1 AT TIME ZONE 'UTC' AND done.done_at < $2 AT TIME ZONE 'UTC'
        GROUP BY so.company_id, so.warehouse_id, so.team_id
        ORDER BY so.company_id, so.warehouse_id NULLS LAST, so.team_id NULLS LAST $q$)
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_fulfilment_latency(timestamptz, timestamptz) IS
  'Fulfilment latency (confirmation to last delivery done) per company, warehouse and team, completed in the period';

-- Return cycle time: return receipt done to first posted customer refund, returns received in the period.
CREATE FUNCTION retailflow.kpi_return_cycle(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (company_id integer, warehouse_id integer, team_id integer, returns bigint, refunded bigint,
               p50 interval, p90 interval, p99 interval, mean interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    PERFORM retailflow.kpi_require('{sale_order,stock_picking,stock_picking_type,account_move}');
    RETURN QUERY EXECUTE retailflow.odoo_sql($q$
        WITH ret AS (
            SELECT sp.id, sp.company_id, pt.warehouse_id, so.team_id,
                   sp.date_done AT TIME ZONE 'UTC' AS received_at,
                   (SELECT min(rr.posted_at) FROM retailflow.return_refunds(sp.id) rr) AS refunded_at
            FROM {odoo}.stock_picking sp
            JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
            LEFT JOIN {odoo}.stock_picking orig ON orig.id = sp.return_id
            LEFT JOIN {odoo}.sale_order so ON so.id = coalesce(sp.sale_id, orig.sale_id)
            WHERE (sp.return_id IS NOT NULL OR (pt.code = 'incoming' AND sp.origin LIKE 'Return of %'))
              AND sp.state = 'done'
              AND sp.date_done >= $1 AT TIME ZONE 'UTC' AND sp.date_done < $2 AT TIME ZONE 'UTC'
        )
        SELECT r.company_id, r.warehouse_id, r.team_id, count(*), count(d.s),
               retailflow.kpi_interval(percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.9) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.99) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(avg(d.s))
        FROM ret r
        CROSS JOIN LATERAL (SELECT CASE WHEN r.refunded_at IS NOT NULL
                                        THEN greatest(extract(epoch FROM r.refunded_at - r.received_at), 0)::double precision END AS s) d
        GROUP BY r.company_id, r.warehouse_id, r.team_id
        ORDER BY r.company_id, r.warehouse_id NULLS LAST, r.team_id NULLS LAST $q$)
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_return_cycle(timestamptz, timestamptz) IS
  'Return cycle time (return received to refund posted) per company, warehouse and team, returns received in the period';

-- Stock accuracy: inventory adjustment differences relative to on-hand, per company and warehouse.
CREATE FUNCTION retailflow.kpi_stock_accuracy(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (company_id integer, warehouse_id integer, counted_lines bigint, lines_with_difference bigint,
               line_accuracy numeric, abs_difference numeric, on_hand numeric, relative_difference numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    PERFORM retailflow.kpi_require('{stock_move,stock_location,stock_quant}');
    RETURN QUERY EXECUTE retailflow.odoo_sql($q$
        WITH adj AS (
            SELECT sm.company_id, il.id AS location_id, il.warehouse_id, sm.product_id,
                   CASE WHEN src.usage = 'inventory' THEN sm.quantity ELSE -sm.quantity END AS diff
            FROM {odoo}.stock_move sm
            JOIN {odoo}.stock_location src ON src.id = sm.location_id
            JOIN {odoo}.stock_location dst ON dst.id = sm.location_dest_id
            JOIN {odoo}.stock_location il ON il.id = CASE WHEN src.usage = 'inventory' THEN dst.id ELSE src.id END
            WHERE sm.is_inventory AND sm.state = 'done'
              AND sm.date >= $1 AT TIME ZONE 'UTC' AND sm.date < $2 AT TIME ZONE 'UTC'
        ),
        oh AS (
            SELECT k.company_id, k.warehouse_id, coalesce(sum(sq.quantity), 0) AS qty
            FROM (SELECT DISTINCT adj.company_id, adj.warehouse_id, adj.location_id, adj.product_id FROM adj) k
            LEFT JOIN {odoo}.stock_quant sq ON sq.product_id = k.product_id AND sq.location_id + 0 = k.location_id
            GROUP BY k.company_id, k.warehouse_id
        )
        SELECT a.company_id, a.warehouse_id, count(*), count(*) FILTER (WHERE a.diff <> 0),
               round(1 - (count(*) FILTER (WHERE a.diff <> 0))::numeric / count(*), 4),
               sum(abs(a.diff)), min(oh.qty),
               round(sum(abs(a.diff)) / nullif(min(oh.qty), 0), 4)
        FROM adj a
        LEFT JOIN oh ON oh.company_id IS NOT DISTINCT FROM a.company_id
                    AND oh.warehouse_id IS NOT DISTINCT FROM a.warehouse_id
        GROUP BY a.company_id, a.warehouse_id
        ORDER BY a.company_id, a.warehouse_id NULLS LAST $q$)
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_stock_accuracy(timestamptz, timestamptz) IS
  'Inventory adjustments in the period per company and warehouse: lines, lines with a difference, |difference| relative to current on-hand';

-- Exception rate and time to resolve by kind (from retailflow.exception's history).
CREATE FUNCTION retailflow.kpi_exceptions(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (kind text, company_id integer, opened bigint, closed bigint, resolved_by_user bigint,
               open_at_end bigint, opened_per_day numeric,
               p50 interval, p90 interval, p99 interval, mean interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    RETURN QUERY
        SELECT e.kind, e.company_id,
               count(*) FILTER (WHERE e.opened_at >= date_from AND e.opened_at < date_to),
               count(*) FILTER (WHERE e.closed_at >= date_from AND e.closed_at < date_to),
               count(*) FILTER (WHERE e.closed_at >= date_from AND e.closed_at < date_to
                                  AND e.close_reason = 'resolved'),
               count(*) FILTER (WHERE e.opened_at < date_to AND (e.closed_at IS NULL OR e.closed_at >= date_to)),
               round((count(*) FILTER (WHERE e.opened_at >= date_from AND e.opened_at < date_to))::numeric
                     / (extract(epoch FROM date_to - date_from) / 86400), 2),
               retailflow.kpi_interval(percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.9) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.99) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(avg(d.s))
        FROM retailflow.exception e
        CROSS JOIN LATERAL (SELECT CASE WHEN e.closed_at >= date_from AND e.closed_at < date_to
                                        THEN extract(epoch FROM e.closed_at - e.opened_at)::double precision
                                   END AS s) d
        WHERE e.opened_at < date_to AND (e.closed_at IS NULL OR e.closed_at >= date_from)
        GROUP BY e.kind, e.company_id
        ORDER BY e.kind, e.company_id NULLS LAST;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_exceptions(timestamptz, timestamptz) IS
  'Per exception kind and company: opened, closed, still open at the end, rate per day and time to close (p50/p90/p99)';

-- Approval turnaround by rule and level; no rows while retailflow.approval_request does not exist.
CREATE FUNCTION retailflow.kpi_approval_turnaround(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (rule_id integer, level integer, decided bigint, approved bigint, rejected bigint,
               over_sla bigint, p50 interval, p90 interval, p99 interval, mean interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    IF to_regclass('retailflow.approval_request') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT r.rule_id::integer, r.level::integer, count(*),
               count(*) FILTER (WHERE r.state = 'approved'), count(*) FILTER (WHERE r.state = 'rejected'),
               count(*) FILTER (WHERE r.due_at IS NOT NULL AND r.decided_at > r.due_at),
               retailflow.kpi_interval(percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.9) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(percentile_cont(0.99) WITHIN GROUP (ORDER BY d.s)),
               retailflow.kpi_interval(avg(d.s))
        FROM retailflow.approval_request r
        CROSS JOIN LATERAL (SELECT extract(epoch FROM r.decided_at - r.requested_at)::double precision AS s) d
        WHERE r.state IN ('approved', 'rejected') AND r.decided_at >= $1 AND r.decided_at < $2
        GROUP BY r.rule_id, r.level
        ORDER BY r.rule_id, r.level $q$
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_approval_turnaround(timestamptz, timestamptz) IS
  'Approval turnaround (request to decision) by rule and level; no rows until the approvals tables exist';

-- Webhook delivery latency percentiles and failure rate per endpoint; no rows without the webhook tables.
CREATE FUNCTION retailflow.kpi_webhook_delivery(date_from timestamptz, date_to timestamptz)
RETURNS TABLE (endpoint_id integer, deliveries bigint, delivered bigint, dead bigint, pending bigint,
               failure_rate numeric, p50_ms double precision, p90_ms double precision, p99_ms double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.kpi_check_period(date_from, date_to);
    IF to_regclass('retailflow.delivery') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT d.endpoint_id::integer, count(*), count(*) FILTER (WHERE d.state = 'delivered'),
               count(*) FILTER (WHERE d.state = 'dead'), count(*) FILTER (WHERE d.state = 'pending'),
               round((count(*) FILTER (WHERE d.state = 'dead'))::numeric / count(*), 4),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY d.latency_ms),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY d.latency_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY d.latency_ms)
        FROM retailflow.delivery d
        WHERE d.created_at >= $1 AND d.created_at < $2
        GROUP BY d.endpoint_id
        ORDER BY d.endpoint_id $q$
    USING date_from, date_to;
END
$$;
COMMENT ON FUNCTION retailflow.kpi_webhook_delivery(timestamptz, timestamptz) IS
  'Webhook deliveries created in the period per endpoint: latency percentiles (ms) and dead-letter rate; no rows until the webhook tables exist';

REVOKE ALL ON FUNCTION retailflow.kpi_exceptions(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.kpi_approval_turnaround(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.kpi_webhook_delivery(timestamptz, timestamptz) FROM PUBLIC;

-- >>> sql/install/70_risk.sql
-- 70_risk.sql: explainable risk scoring.  order_risk() scores one sale order
-- 0-100 from robust statistics (median, MAD) of the customer's and the
-- channel's own history, with every reason spelled out; stockout_risk()
-- gives days of cover per product and warehouse against the supplier lead
-- time.  All parameters live in retailflow.risk_parameter.  Scores
-- recommend; approval rules decide.

CREATE TABLE retailflow.risk_parameter (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    value       numeric NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE retailflow.risk_parameter IS
  'Parameters of order_risk() and stockout_risk(); edit the values to tune the scores';
REVOKE ALL ON TABLE retailflow.risk_parameter FROM PUBLIC;
-- not secret, and order_risk() (SECURITY INVOKER) reads it for any caller
GRANT SELECT ON TABLE retailflow.risk_parameter TO PUBLIC;

INSERT INTO retailflow.risk_parameter (name, value, description) VALUES
  ('robust_z', 3.5, 'Robust z-score (|x - median| / (1.4826 * MAD)) above which an amount or discount is unusual'),
  ('mad_floor_ratio', 0.1, 'Lower bound of the robust scale as a fraction of the median (when MAD is 0 or tiny)'),
  ('customer_min_orders', 3, 'Confirmed orders of the customer needed before its own history is used'),
  ('customer_amount_points', 30, 'Points when the amount is far above the customer''s own orders'),
  ('channel_sample', 200, 'Latest confirmed orders of the channel (sales team) used as its typical order'),
  ('discount_sample', 100, 'Latest confirmed orders of the channel whose line discounts give its normal discount'),
  ('channel_min_orders', 10, 'Orders the channel sample needs before it is used'),
  ('channel_amount_points', 20, 'Points when the amount is far above the channel''s typical order'),
  ('first_order_factor', 3, 'A first order is high value above this multiple of the channel median'),
  ('first_order_points', 20, 'Points for a first order with a high value'),
  ('new_customer_max_orders', 1, 'A customer with fewer confirmed orders than this is new'),
  ('address_mismatch_points', 15, 'Points when a new customer ships to another address than the invoice address'),
  ('velocity_days', 30, 'Days of done deliveries that give a product''s sales velocity'),
  ('quantity_velocity_days', 7, 'A line is unusual above this many days of the product''s sales velocity'),
  ('quantity_min', 10, 'A line quantity at or below this is never unusual'),
  ('quantity_points', 15, 'Points for an unusual quantity of one product'),
  ('burst_hours', 24, 'Window (hours before the order) for counting orders of one customer or address'),
  ('burst_orders', 3, 'Orders in the window (this one included) from one customer or address that make a burst'),
  ('burst_points', 15, 'Points for many orders from one customer or address in a short time'),
  ('discount_min', 10, 'A line discount (percent) at or below this is never unusual'),
  ('discount_points', 15, 'Points for a discount far above the channel''s normal discount'),
  ('review_threshold', 50, 'Quotations scoring at least this are high-risk orders awaiting review'),
  ('review_window_days', 30, 'Only quotations created within this many days are reviewed by the check'),
  ('stockout_window_days', 30, 'Days of done outgoing moves that give the trailing sales velocity'),
  ('stockout_default_lead_days', 7, 'Lead time when the product has no supplier info with a delay'),
  ('stockout_safety_days', 3, 'Safety margin added to the lead time');

-- All risk parameters as one jsonb object (name -> value).
CREATE FUNCTION retailflow.risk_parameters()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(name, value), '{}'::jsonb) FROM retailflow.risk_parameter
$$;

CREATE TYPE retailflow.robust_stats AS (median numeric, mad numeric, n integer);

-- Median, MAD (median absolute deviation) and count of an array of numbers.
CREATE FUNCTION retailflow.median_mad(xs numeric[])
RETURNS retailflow.robust_stats
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH x AS (SELECT v FROM unnest(xs) v WHERE v IS NOT NULL),
         m AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric AS med, count(*)::integer AS n FROM x)
    SELECT ROW(m.med,
               (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(x.v - m.med))::numeric FROM x),
               m.n)::retailflow.robust_stats
    FROM m
$$;

-- Risk score 0-100 of one sale order and the reasons that make it up.
CREATE FUNCTION retailflow.order_risk(sale_order_id integer, OUT score integer, OUT reasons jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p        jsonb := retailflow.risk_parameters();
    o        record;
    hist     record;
    chan     record;
    r        jsonb := '[]'::jsonb;
    z        numeric;
    scale    numeric;
    cnt      integer;
    x        record;
    as_of_ts timestamp;
BEGIN
    IF sale_order_id IS NULL THEN
        RAISE EXCEPTION 'sale_order_id must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'order_risk() scores one sale_order row.';
    END IF;
    IF to_regclass(retailflow.odoo_sql('{odoo}.sale_order')) IS NULL
       OR to_regclass(retailflow.odoo_sql('{odoo}.sale_order_line')) IS NULL THEN
        RAISE EXCEPTION 'Odoo table sale_order not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'order_risk() needs the Odoo sale module (sale_order, sale_order_line).',
                  HINT = 'Check retailflow.odoo_schema and that the sale module is installed.';
    END IF;
    EXECUTE retailflow.odoo_sql($q$
        SELECT so.id, so.name, so.partner_id, so.partner_invoice_id, so.partner_shipping_id, so.team_id,
               so.amount_total, coalesce(so.date_order, so.create_date) AS d, so.state,
               coalesce(pc.commercial_partner_id, so.partner_id) AS commercial_id,
               (pi.street, pi.street2, pi.zip, pi.city, pi.country_id) IS DISTINCT FROM
               (ps.street, ps.street2, ps.zip, ps.city, ps.country_id) AS other_address
        FROM {odoo}.sale_order so
        LEFT JOIN {odoo}.res_partner pc ON pc.id = so.partner_id
        LEFT JOIN {odoo}.res_partner pi ON pi.id = so.partner_invoice_id
        LEFT JOIN {odoo}.res_partner ps ON ps.id = so.partner_shipping_id
        WHERE so.id = $1 $q$)
    INTO o USING sale_order_id;
    IF o.id IS NULL THEN
        RAISE EXCEPTION 'sale order % does not exist', sale_order_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'order_risk() takes a sale_order id.';
    END IF;
    as_of_ts := o.d;

    -- the customer's own confirmed orders before this one
    EXECUTE retailflow.odoo_sql($q$
        SELECT (m).median, (m).mad, (m).n
        FROM (SELECT retailflow.median_mad(array_agg(so.amount_total)) AS m
              FROM {odoo}.sale_order so
              WHERE so.partner_id = $1 AND so.state = 'sale' AND so.id <> $2
                AND coalesce(so.date_order, so.create_date) <= $3 OFFSET 0) x $q$)
    INTO hist USING o.partner_id, o.id, as_of_ts;

    -- the channel's latest confirmed orders before this one
    EXECUTE retailflow.odoo_sql($q$
        SELECT (x.m).median, (x.m).mad, (x.m).n, (x.d).median AS disc_median, (x.d).mad AS disc_mad
        FROM (SELECT retailflow.median_mad(array_agg(s.amount_total)) AS m,
                     (SELECT retailflow.median_mad(array_agg(l.discount))
                      FROM {odoo}.sale_order_line l
                      WHERE l.order_id = ANY ((array_agg(s.id ORDER BY s.date_order DESC, s.id DESC))[1:$5])) AS d
              FROM (SELECT so.id, so.amount_total, so.date_order
                    FROM {odoo}.sale_order so
                    WHERE so.team_id IS NOT DISTINCT FROM $1 AND so.state = 'sale' AND so.id <> $2
                      AND so.date_order <= $3
                    ORDER BY so.date_order DESC, so.id DESC
                    LIMIT $4) s
              OFFSET 0) x $q$)
    INTO chan USING o.team_id, o.id, as_of_ts, (p->>'channel_sample')::integer,
                    (p->>'discount_sample')::integer;

    -- 1. amount far above the customer's own history
    IF hist.n >= (p->>'customer_min_orders')::numeric THEN
        scale := greatest(1.4826 * hist.mad, hist.median * (p->>'mad_floor_ratio')::numeric, 0.01);
        z := (o.amount_total - hist.median) / scale;
        IF z > (p->>'robust_z')::numeric THEN
            r := r || jsonb_build_object('code', 'amount_above_customer_history',
                        'points', (p->>'customer_amount_points')::numeric,
                        'detail', format('amount %s is %s robust deviations above the customer''s median %s over %s orders',
                                         o.amount_total, round(z, 1), round(hist.median, 2), hist.n));
        END IF;
    END IF;
    -- 2. amount far above the channel's typical order
    IF chan.n >= (p->>'channel_min_orders')::numeric THEN
        scale := greatest(1.4826 * chan.mad, chan.median * (p->>'mad_floor_ratio')::numeric, 0.01);
        z := (o.amount_total - chan.median) / scale;
        IF z > (p->>'robust_z')::numeric THEN
            r := r || jsonb_build_object('code', 'amount_above_channel',
                        'points', (p->>'channel_amount_points')::numeric,
                        'detail', format('amount %s is %s robust deviations above the channel''s median %s over %s orders',
                                         o.amount_total, round(z, 1), round(chan.median, 2), chan.n));
        END IF;
    END IF;
    -- 3. first order with a high value
    IF coalesce(hist.n, 0) = 0 AND chan.n >= (p->>'channel_min_orders')::numeric
       AND o.amount_total > chan.median * (p->>'first_order_factor')::numeric THEN
        r := r || jsonb_build_object('code', 'first_order_high_value',
                    'points', (p->>'first_order_points')::numeric,
                    'detail', format('first order of the customer, amount %s is above %s x the channel median %s',
                                     o.amount_total, p->>'first_order_factor', round(chan.median, 2)));
    END IF;
    -- 4. new customer shipping elsewhere than the invoice address
    IF coalesce(hist.n, 0) < (p->>'new_customer_max_orders')::numeric
       AND o.partner_shipping_id IS DISTINCT FROM o.partner_invoice_id AND o.other_address THEN
        r := r || jsonb_build_object('code', 'new_customer_other_shipping_address',
                    'points', (p->>'address_mismatch_points')::numeric,
                    'detail', format('new customer (%s earlier orders) ships to partner %s, invoiced to partner %s at another address',
                                     coalesce(hist.n, 0), o.partner_shipping_id, o.partner_invoice_id));
    END IF;
    -- 5. unusual quantity of one product against its sales velocity
    FOR x IN EXECUTE retailflow.odoo_sql($q$
        SELECT l.product_id, coalesce(pp.default_code, pp.id::text) AS ref, sum(l.product_uom_qty) AS qty,
               coalesce((SELECT sum(sm.quantity)
                         FROM {odoo}.stock_move sm
                         JOIN {odoo}.stock_location dl ON dl.id = sm.location_dest_id
                         WHERE sm.product_id = l.product_id AND sm.state = 'done' AND dl.usage = 'customer'
                           AND sm.date > $2 - make_interval(days => $3) AND sm.date <= $2), 0) / $3 AS per_day
        FROM {odoo}.sale_order_line l
        JOIN {odoo}.product_product pp ON pp.id = l.product_id
        WHERE l.order_id = $1 AND l.product_id IS NOT NULL AND coalesce(l.display_type, '') = ''
        GROUP BY l.product_id, pp.default_code, pp.id
        ORDER BY l.product_id $q$)
        USING o.id, as_of_ts, (p->>'velocity_days')::integer
    LOOP
        IF x.qty > (p->>'quantity_min')::numeric
           AND x.qty > x.per_day * (p->>'quantity_velocity_days')::numeric THEN
            r := r || jsonb_build_object('code', 'unusual_quantity',
                        'points', (p->>'quantity_points')::numeric,
                        'detail', format('%s x %s is more than %s days of its sales velocity (%s per day over %s days)',
                                         x.qty, x.ref, p->>'quantity_velocity_days', round(x.per_day, 2),
                                         p->>'velocity_days'));
            EXIT;
        END IF;
    END LOOP;
    -- 6. many orders from one customer or one shipping address in a short time
    EXECUTE retailflow.odoo_sql($q$
        SELECT greatest(count(*) FILTER (WHERE so.partner_id = $1),
                        count(*) FILTER (WHERE so.partner_shipping_id = $2))
        FROM {odoo}.sale_order so
        WHERE (so.partner_id = $1 OR so.partner_shipping_id = $2) AND so.state <> 'cancel'
          AND coalesce(so.date_order, so.create_date) > $3 - make_interval(hours => $4)
          AND coalesce(so.date_order, so.create_date) <= $3 $q$)
    INTO cnt USING o.partner_id, o.partner_shipping_id, as_of_ts, (p->>'burst_hours')::integer;
    IF cnt >= (p->>'burst_orders')::numeric THEN
        r := r || jsonb_build_object('code', 'order_burst',
                    'points', (p->>'burst_points')::numeric,
                    'detail', format('%s orders from this customer or address within %s hours',
                                     cnt, p->>'burst_hours'));
    END IF;
    -- 7. discount far above the channel's normal discount
    EXECUTE retailflow.odoo_sql($q$
        SELECT max(coalesce(l.discount, 0)) FROM {odoo}.sale_order_line l WHERE l.order_id = $1 $q$)
    INTO z USING o.id;
    IF z > (p->>'discount_min')::numeric THEN
        scale := greatest(1.4826 * coalesce(chan.disc_mad, 0), coalesce(chan.disc_median, 0) * (p->>'mad_floor_ratio')::numeric, 1);
        IF (z - coalesce(chan.disc_median, 0)) / scale > (p->>'robust_z')::numeric THEN
            r := r || jsonb_build_object('code', 'discount_above_normal',
                        'points', (p->>'discount_points')::numeric,
                        'detail', format('discount %s%% against a channel median of %s%%',
                                         round(z, 2), round(coalesce(chan.disc_median, 0), 2)));
        END IF;
    END IF;

    score := least(100, greatest(0, round(coalesce((SELECT sum((e->>'points')::numeric)
                                                    FROM jsonb_array_elements(r) e), 0))))::integer;
    reasons := r;
END
$$;
COMMENT ON FUNCTION retailflow.order_risk(integer) IS
  'Risk score 0-100 of a sale order with its reasons (code, points, detail); parameters in retailflow.risk_parameter';

-- Days of cover per product and warehouse from free stock and trailing sales velocity.
CREATE FUNCTION retailflow.stockout_risk(warehouse_ids integer[] DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (product_id integer, warehouse_id integer, free_qty numeric, sold_qty numeric,
               daily_velocity numeric, days_of_cover numeric, lead_time_days numeric,
               safety_days numeric, at_risk boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb := retailflow.risk_parameters();
BEGIN
    IF to_regclass(retailflow.odoo_sql('{odoo}.stock_move')) IS NULL THEN
        RAISE EXCEPTION 'Odoo table stock_move not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'stockout_risk() needs the Odoo stock module.',
                  HINT = 'Check retailflow.odoo_schema and that the stock module is installed.';
    END IF;
    IF warehouse_ids IS NOT NULL AND array_position(warehouse_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'warehouse_ids must not contain null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Pass NULL for every active warehouse, or an array of stock_warehouse ids.';
    END IF;
    RETURN QUERY EXECUTE retailflow.odoo_sql(format($q$
        WITH sold AS MATERIALIZED (
            SELECT sm.product_id, sl.warehouse_id, sum(sm.product_qty) AS qty
            FROM {odoo}.stock_move sm
            JOIN {odoo}.stock_location sl ON sl.id = sm.location_id
            JOIN {odoo}.stock_location dl ON dl.id = sm.location_dest_id
            JOIN {odoo}.stock_warehouse w ON w.id = sl.warehouse_id
            JOIN {odoo}.product_product pp ON pp.id = sm.product_id
            JOIN {odoo}.product_template pt ON pt.id = pp.product_tmpl_id
            WHERE sm.state = 'done' AND dl.usage = 'customer' AND %s
              AND sm.date > ($1 AT TIME ZONE 'UTC') - make_interval(days => $2)
              AND sm.date <= $1 AT TIME ZONE 'UTC'
              AND ($3::integer[] IS NULL AND w.active OR w.id = ANY ($3))
            GROUP BY sm.product_id, sl.warehouse_id
        ),
        q AS (
            SELECT pq.product_id, pq.warehouse_id, pq.free_qty
            FROM retailflow.product_quantities((SELECT array_agg(DISTINCT s.product_id) FROM sold s),
                                               (SELECT array_agg(DISTINCT s.warehouse_id) FROM sold s),
                                               NULL, false) pq
        ),
        lead AS (
            SELECT s.product_id, min(si.delay) AS delay
            FROM (SELECT DISTINCT sold.product_id FROM sold) s
            JOIN {odoo}.product_product pp ON pp.id = s.product_id
            JOIN {odoo}.product_supplierinfo si
              ON si.product_tmpl_id = pp.product_tmpl_id AND (si.product_id IS NULL OR si.product_id = s.product_id)
            WHERE si.delay IS NOT NULL
            GROUP BY s.product_id
        )
        SELECT s.product_id, s.warehouse_id, round(coalesce(q.free_qty, 0)::numeric, 4),
               s.qty, round(s.qty / $2, 4),
               round(coalesce(q.free_qty, 0)::numeric / (s.qty / $2), 2),
               coalesce(l.delay, $4)::numeric, $5::numeric,
               coalesce(q.free_qty, 0)::numeric / (s.qty / $2) < coalesce(l.delay, $4) + $5
        FROM sold s
        LEFT JOIN q ON q.product_id = s.product_id AND q.warehouse_id = s.warehouse_id
        LEFT JOIN lead l ON l.product_id = s.product_id
        WHERE s.qty > 0
        ORDER BY s.product_id, s.warehouse_id $q$, retailflow.storable_sql()))
    USING coalesce(as_of, retailflow.now()), (p->>'stockout_window_days')::integer, warehouse_ids,
          (p->>'stockout_default_lead_days')::numeric, (p->>'stockout_safety_days')::numeric;
END
$$;
COMMENT ON FUNCTION retailflow.stockout_risk(integer[], timestamptz) IS
  'Per product and warehouse: free stock, trailing sales velocity, days of cover; at_risk when cover < lead time + safety';

INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('high_risk_order', 'high',
 'Review the order (customer, addresses, amounts) before confirming it',
 'Quotations whose order_risk() score reaches the review_threshold risk parameter',
 '{sale_order,sale_order_line,res_partner,stock_move,stock_location,product_product}',
 $q$
 SELECT 'sale.order' AS model, so.id AS record_id, so.name AS reference,
        so.create_date AT TIME ZONE 'UTC' AS since, so.user_id, so.team_id, so.company_id, so.warehouse_id,
        format('risk score %s: %s', r.score,
               (SELECT string_agg(e->>'code', ', ') FROM jsonb_array_elements(r.reasons) e)) AS reason,
        jsonb_build_object('score', r.score, 'reasons', r.reasons, 'amount_total', so.amount_total) AS data,
        CASE WHEN r.score >= 80 THEN 'critical' END AS severity
 FROM sale_order so
 CROSS JOIN LATERAL retailflow.order_risk(so.id) r
 WHERE so.state IN ('draft', 'sent')
   AND so.create_date > ($1 - make_interval(days => (SELECT value::integer FROM retailflow.risk_parameter
                                                      WHERE name = 'review_window_days'))) AT TIME ZONE 'UTC'
   AND r.score >= (SELECT value FROM retailflow.risk_parameter WHERE name = 'review_threshold')
 $q$),
('stockout_risk', 'medium',
 'Replenish before the stock runs out: free stock covers less than the supplier lead time',
 'Products whose free stock in a warehouse covers fewer days than the supplier lead time plus the safety margin',
 '{stock_move,stock_location,stock_warehouse,product_product,product_template,product_supplierinfo}',
 $q$
 SELECT 'product.product' AS model, s.product_id AS record_id,
        coalesce(pp.default_code, pp.id::text) AS reference, NULL::timestamptz AS since,
        NULL::integer AS user_id, NULL::integer AS team_id, NULL::integer AS company_id,
        CASE WHEN count(*) = 1 THEN min(s.warehouse_id) END AS warehouse_id,
        format('cover below lead time + safety in %s warehouse(s): %s', count(*),
               string_agg(format('%s %s days (lead %s)', w.code, s.days_of_cover, s.lead_time_days),
                          ', ' ORDER BY s.days_of_cover, w.code)) AS reason,
        jsonb_build_object('warehouses', jsonb_agg(jsonb_build_object(
            'warehouse_id', s.warehouse_id, 'free_qty', s.free_qty, 'daily_velocity', s.daily_velocity,
            'days_of_cover', s.days_of_cover, 'lead_time_days', s.lead_time_days) ORDER BY s.warehouse_id)) AS data,
        CASE WHEN min(s.free_qty) <= 0 THEN 'high' END AS severity
 FROM retailflow.stockout_risk(NULL, $1) s
 JOIN product_product pp ON pp.id = s.product_id
 JOIN stock_warehouse w ON w.id = s.warehouse_id
 WHERE s.at_risk
 GROUP BY s.product_id, pp.default_code, pp.id
 $q$);

-- >>> sql/install/80_integration.sql
-- 80_integration.sql: wiring between capabilities that were built apart:
-- every reservation-conflict kind is an exception kind (one conflict scan per
-- run_checks() shared by all of them), and pg_dump includes retailflow's
-- configuration and state tables.

-- The conflict scan, materialized once per transaction so that the conflict
-- kinds of one run_checks() share a single scan of quants, moves and lines.
CREATE FUNCTION retailflow.conflicts_for_checks()
RETURNS TABLE (kind text, severity text, product_id integer, location_id integer, lot_id integer,
               package_id integer, owner_id integer, warehouse_id integer, record_id integer,
               expected numeric, actual numeric, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fresh boolean := false;
BEGIN
    IF to_regclass('pg_temp.rf_conflicts_tx_meta') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_temp.rf_conflicts_tx_meta WHERE txid = pg_current_xact_id())'
            INTO fresh;
    END IF;
    IF NOT fresh THEN
        IF to_regclass('pg_temp.rf_conflicts_tx') IS NOT NULL THEN
            DROP TABLE pg_temp.rf_conflicts_tx;
        END IF;
        IF to_regclass('pg_temp.rf_conflicts_tx_meta') IS NOT NULL THEN
            DROP TABLE pg_temp.rf_conflicts_tx_meta;
        END IF;
        CREATE TEMP TABLE rf_conflicts_tx ON COMMIT DROP AS SELECT * FROM retailflow.reservation_conflicts();
        CREATE TEMP TABLE rf_conflicts_tx_meta ON COMMIT DROP AS SELECT pg_current_xact_id() AS txid;
    END IF;
    RETURN QUERY EXECUTE 'SELECT c.kind, c.severity, c.product_id, c.location_id, c.lot_id, c.package_id,
                                 c.owner_id, c.warehouse_id, c.record_id, c.expected, c.actual, c.detail
                          FROM pg_temp.rf_conflicts_tx c';
END
$$;
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

-- >>> sql/install/90_comments.sql
-- 90_comments.sql: descriptions of the remaining functions, so that
-- docs/sql-reference.md (generated from the catalog) describes every object.
COMMENT ON FUNCTION retailflow.acting_user(integer, integer) IS
  'Internal: the Odoo user acting (explicit id, else retailflow.odoo_user_id, else the fallback)';
COMMENT ON FUNCTION retailflow.audit_content(bigint, timestamptz, text, text, bigint, integer, name, jsonb, jsonb) IS
  'Internal: the canonical text an audit row''s chain hash covers';
COMMENT ON FUNCTION retailflow.check_interval(text) IS
  'Internal: the interval after which a scheduled exception check is due again';
COMMENT ON FUNCTION retailflow.check_requirements_met(text[]) IS
  'Internal: whether the relations a check needs exist';
COMMENT ON FUNCTION retailflow.conflicts_for_checks() IS
  'Internal: the reservation-conflict scan, materialized once per transaction for the exception checks';
COMMENT ON FUNCTION retailflow.decide(bigint, integer, text, boolean) IS
  'Internal: common body of approve() and reject()';
COMMENT ON FUNCTION retailflow.filter_match(text[], text) IS
  'Whether an event type matches an endpoint''s filter patterns (sale.order.* style)';
COMMENT ON FUNCTION retailflow.generate_secret() IS
  'A new random webhook secret in whsec_<base64> form';
COMMENT ON FUNCTION retailflow.kpi_check_period(timestamptz, timestamptz) IS
  'Internal: validates a KPI period';
COMMENT ON FUNCTION retailflow.kpi_interval(double precision) IS
  'Internal: seconds to interval for KPI percentiles';
COMMENT ON FUNCTION retailflow.kpi_require(text[]) IS
  'Internal: whether the tables a KPI reads exist';
COMMENT ON FUNCTION retailflow.log_exception(text, text, text, integer, integer, integer, jsonb, numeric, numeric, text, text, name, text) IS
  'Records one exception in retailflow.exception_log and emits its event';
COMMENT ON FUNCTION retailflow.median_mad(numeric[]) IS
  'Median and median absolute deviation of a sample (robust statistics for order_risk)';
COMMENT ON FUNCTION retailflow.missing_approvals(text, integer) IS
  'Approvals a document still needs (rules matched and not yet approved), in approval order';
COMMENT ON FUNCTION retailflow.odoo_sql(text) IS
  'Internal: a query with Odoo''s schema substituted';
COMMENT ON FUNCTION retailflow.purge(integer) IS
  'Removes up to n delivered events past retailflow.webhook_retention; returns how many';
COMMENT ON FUNCTION retailflow.redeliver(bigint) IS
  'Sends a dead-lettered or failed delivery again (same webhook-id)';
COMMENT ON FUNCTION retailflow.redeliver_dead(integer) IS
  'Sends every dead-lettered delivery of an endpoint again';
COMMENT ON FUNCTION retailflow.return_refunds(integer) IS
  'Posted customer refunds linked to a return picking';
COMMENT ON FUNCTION retailflow.risk_parameters() IS
  'Internal: the risk parameters as one record';
COMMENT ON FUNCTION retailflow.run_check(text, timestamptz) IS
  'Runs one exception check: opens new exceptions, closes vanished ones, emits their events';
COMMENT ON FUNCTION retailflow.send_test_event(text) IS
  'Emits a webhook.test event to every matching endpoint';
COMMENT ON FUNCTION retailflow.setting_interval(text) IS
  'Internal: an interval-valued retailflow setting';
COMMENT ON FUNCTION retailflow.storable_sql() IS
  'Internal: the storable-product predicate for the detected Odoo version';
COMMENT ON FUNCTION retailflow.wake_workers_at_commit() IS
  'Internal: asks the transaction to wake the webhook workers when it commits';

-- >>> sql/install/99_attach.sql
-- 99_attach.sql: runs last; attaches every registered trigger to the Odoo
-- tables present at CREATE EXTENSION time.  Tables Odoo creates later are
-- picked up by SELECT retailflow.attach().
SELECT count(*) FILTER (WHERE action = 'created') AS triggers_attached FROM retailflow.attach();
