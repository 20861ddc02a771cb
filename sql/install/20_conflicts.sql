-- 20_conflicts.sql: reservation conflict detection and oversell prevention.
-- The general exception log (later the operator's exception queue), the
-- conflict scan retailflow.reservation_conflicts() (C) and its plain-SQL
-- twin, the statement triggers on stock_quant / stock_move_line that collect
-- each statement's changes and the deferred constraint trigger that judges
-- them at commit (C, GUC retailflow.conflict_action = off | log | block, set
-- by a superuser only), the per (product, location) guard rows that make
-- concurrent reservations conflict, and retailflow.repair_reservations()
-- (Odoo 18's _clean_reservations).

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

-- Guard rows: in block mode every quant statement that changes a reservation
-- or lowers a quantity on a (product, location) bumps its row, so two
-- REPEATABLE READ transactions reserving there conflict (40001) instead of
-- both passing a check on their own snapshot.  One row per (product,
-- location) ever guarded: bounded by Odoo's own quant keys, updated in place.
CREATE TABLE retailflow.reservation_guard (
    product_id  integer NOT NULL,
    location_id integer NOT NULL,
    bumps       bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (product_id, location_id)
);
COMMENT ON TABLE retailflow.reservation_guard IS
  'One row per (product, location) whose reservation or stock changed under conflict_action = block; updated to serialize reservations';
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query(format($q$
    WITH loc AS (
        SELECT l.id, l.usage::text AS usage, %2$s AS bypass, l.warehouse_id FROM %1$I.stock_location l
    ), prod AS (
        SELECT pp.id, %3$s AS storable, pt.tracking::text AS tracking, coalesce(u.rounding, 0.01) AS r
        FROM %1$I.product_product pp JOIN %1$I.product_template pt ON pt.id = pp.product_tmpl_id
        LEFT JOIN %1$I.uom_uom u ON u.id = pt.uom_id
    ), qk AS (
        SELECT q.product_id, q.location_id, coalesce(q.lot_id, 0) AS lot, coalesce(q.package_id, 0) AS pkg,
               coalesce(q.owner_id, 0) AS own, sum(coalesce(q.quantity, 0)) AS qty, sum(coalesce(q.reserved_quantity, 0)) AS res,
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
        -- mres/mmlres: the key's lots together (Odoo reserves a lot's line on a quant without lot too)
        SELECT k.*, l.bypass, l.usage, l.warehouse_id, p.storable, p.r, p.tracking,
               sum(coalesce(k.res, 0)) OVER w AS mres, sum(coalesce(k.mlres, 0)) OVER w AS mmlres
        FROM keys k JOIN loc l ON l.id = k.location_id JOIN prod p ON p.id = k.product_id
        WINDOW w AS (PARTITION BY k.product_id, k.location_id, k.pkg, k.own)
    ), wh AS (
        SELECT w.id AS wid, vl.parent_path AS pp FROM %1$I.stock_warehouse w
        JOIN %1$I.stock_location vl ON vl.id = w.view_location_id WHERE w.active
    ), locwh AS (
        SELECT l.id AS loc_id, wh.wid FROM %1$I.stock_location l JOIN wh ON l.parent_path LIKE wh.pp || '%%'
    ), onhand AS (
        SELECT lw.wid, q.product_id, sum(coalesce(q.quantity, 0)) AS qty
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
      AND round(kk.mres / kk.r) <> round(kk.mmlres / kk.r)
    UNION ALL
    -- 3. open move lines reserve a key that has no quant at all
    SELECT 'reservation_without_quant', 'error', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.mlid, kk.mlres, 0::numeric,
           format('open move lines reserve %%s but no quant exists for this key', kk.mlres::float8)
    FROM kk WHERE kk.qid IS NULL AND NOT kk.bypass AND kk.storable AND round(kk.mlres / kk.r) > 0
      AND round(kk.mres / kk.r) <> round(kk.mmlres / kk.r)
    UNION ALL
    -- 4. more reserved than on hand on a key
    SELECT 'over_reservation', 'warning', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, kk.qty, kk.res,
           format('%%s reserved but only %%s on hand', kk.res::float8, kk.qty::float8)
    FROM kk WHERE kk.qid IS NOT NULL AND NOT kk.bypass AND round(kk.res / kk.r) > round(kk.qty / kk.r)
      AND round(kk.res / kk.r) > 0
    UNION ALL
    -- 5. negative on-hand in an internal location
    SELECT 'negative_stock', 'warning', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, 0::numeric, kk.qty, format('%%s on hand in an internal location', kk.qty::float8)
    FROM kk WHERE kk.qid IS NOT NULL AND kk.usage = 'internal' AND round(kk.qty / kk.r) < 0
    UNION ALL
    -- 6. more than one quant for one key
    SELECT 'duplicate_quant', 'warning', kk.product_id, kk.location_id, kk.lot, kk.pkg, kk.own, kk.warehouse_id,
           kk.qid, 1::numeric, kk.n::numeric, format('%%s quants share this key', kk.n)
    FROM kk WHERE kk.n > 1
    UNION ALL
    -- 2 and 4b. per quant: reserved in a bypass location, negative reserved
    SELECT CASE WHEN l.bypass THEN 'reserved_in_bypass_location' ELSE 'negative_reservation' END,
           CASE WHEN l.bypass THEN 'error' ELSE 'warning' END,
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
                 sum(coalesce(q.quantity, 0)) AS qty, count(*) FILTER (WHERE round(q.quantity / p.r) <> 0) AS n, min(p.r) AS r
          FROM %1$I.stock_quant q JOIN loc l ON l.id = q.location_id JOIN prod p ON p.id = q.product_id
          WHERE p.tracking = 'serial' AND q.lot_id IS NOT NULL AND l.usage = 'internal'
          GROUP BY 1, 2) s
    CROSS JOIN LATERAL (VALUES ('serial_overstock', 'warning', s.product_id, s.loc, s.lot_id, s.qty, round(s.qty / s.r) > round(1 / s.r)),
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
    FROM allc c$q$, sch, bypass, storable, dest))
      AS t(kind text, severity text, product_id integer, location_id integer, lot_id integer, package_id integer,
           owner_id integer, warehouse_id integer, record_id integer, expected numeric, actual numeric, detail text);
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

-- Judges at commit what the statement triggers collected (deferred constraint triggers).
CREATE FUNCTION retailflow.conflict_commit_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_conflict_commit_trigger'
LANGUAGE C;

-- Statement triggers sum what each statement changes per quant key; the
-- deferred row triggers judge the transaction's net effect at commit (the
-- first event judges everything pending, the others find nothing).
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('stock_quant', 'retailflow_conflict_ins', 'reservation conflicts',
   'AFTER INSERT ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_quant', 'retailflow_conflict_upd', 'reservation conflicts',
   'AFTER UPDATE ON %s REFERENCING OLD TABLE AS rf_old NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_quant', 'retailflow_conflict_del', 'reservation conflicts',
   'AFTER DELETE ON %s REFERENCING OLD TABLE AS rf_old FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_move_line', 'retailflow_conflict_ins', 'reservation conflicts',
   'AFTER INSERT ON %s REFERENCING NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_move_line', 'retailflow_conflict_upd', 'reservation conflicts',
   'AFTER UPDATE ON %s REFERENCING OLD TABLE AS rf_old NEW TABLE AS rf_new FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()'),
  ('stock_move_line', 'retailflow_conflict_del', 'reservation conflicts',
   'AFTER DELETE ON %s REFERENCING OLD TABLE AS rf_old FOR EACH STATEMENT EXECUTE FUNCTION retailflow.conflict_check_trigger()');
-- No WHEN clause: a trigger's WHEN makes it depend on the columns it names,
-- and Odoo must stay free to alter its columns in a module upgrade.
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, constraint_trigger, definition) VALUES
  ('stock_quant', 'retailflow_conflict_commit', 'reservation conflicts', true,
   'AFTER INSERT OR DELETE OR UPDATE ON %s DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retailflow.conflict_commit_trigger()'),
  ('stock_move_line', 'retailflow_conflict_commit', 'reservation conflicts', true,
   'AFTER INSERT OR DELETE OR UPDATE ON %s DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retailflow.conflict_commit_trigger()');

-- ---------------------------------------------------------------------------
-- Repair: Odoo 18 stock.quant._clean_reservations, for 17 and 18.
-- ---------------------------------------------------------------------------
-- Records one change of repair_reservations() (exception_log, event, audit
-- row): SECURITY DEFINER, since the caller may not write retailflow's tables.
CREATE FUNCTION retailflow.record_repair(quant_id integer, product_id integer, location_id integer,
                                         keys jsonb, new_reserved numeric, old_reserved numeric, detail text)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN retailflow.log_exception('reservation_repaired', 'info', 'stock.quant', quant_id, product_id, location_id,
                                keys, new_reserved, old_reserved, detail, 'repair', retailflow.acting_role(),
                                'stock.reservation_repaired');
COMMENT ON FUNCTION retailflow.record_repair(integer, integer, integer, jsonb, numeric, numeric, text) IS
  'Internal: records one change of repair_reservations() in the exception log, the outbox and the audit trail';
REVOKE ALL ON FUNCTION retailflow.record_repair(integer, integer, integer, jsonb, numeric, numeric, text) FROM PUBLIC;

-- SECURITY INVOKER: it writes Odoo's stock_quant, which only Odoo's role (or
-- a role it granted) may do; a superuser is refused, since Odoo's triggers
-- would then run with a superuser's rights (SET ROLE to Odoo's role first).
CREATE FUNCTION retailflow.repair_reservations(
    dry_run boolean DEFAULT true,
    OUT action text, OUT product_id integer, OUT location_id integer, OUT lot_id integer,
    OUT package_id integer, OUT owner_id integer, OUT quant_id integer,
    OUT old_reserved numeric, OUT new_reserved numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v        integer := retailflow.odoo_version();
    storable text;
    bypass   text;
    k        record;
    q        record;
    delta    numeric;
    take     numeric;
    keys     jsonb;
BEGIN
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Pass true to list the changes, false to apply them.';
    END IF;
    IF v IS NULL OR NOT retailflow.odoo_tables_exist('{stock_quant,stock_move_line}') THEN
        RAISE EXCEPTION 'odoo stock tables were not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'repair_reservations() recomputes stock_quant.reserved_quantity from stock_move_line.',
                  HINT = 'Check retailflow.odoo_schema (SELECT * FROM retailflow.status()).';
    ELSIF v < 17 THEN
        RAISE EXCEPTION 'odoo % is not supported', v USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT dry_run AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'repair_reservations() does not write Odoo''s tables as a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A superuser''s write would run the triggers Odoo''s role put on stock_quant with a superuser''s rights.',
                  HINT = 'Run it as Odoo''s role: SET ROLE to the owner of stock_quant, then call it again.';
    END IF;
    storable := CASE WHEN v >= 18 THEN 'coalesce(pt.is_storable, false)' ELSE 'pt.type = ''product''' END;
    bypass := '(l.usage IN (''supplier'', ''customer'', ''inventory'', ''production'') OR coalesce(l.scrap_location, false)'
              || CASE WHEN v = 17 THEN ' OR (l.usage = ''transit'' AND l.company_id IS NULL))' ELSE ')' END;
    IF NOT dry_run THEN
        -- no reservation may change under us while we recompute
        PERFORM retailflow.odoo_exec('LOCK TABLE {odoo}.stock_quant IN SHARE ROW EXCLUSIVE MODE');
        PERFORM retailflow.odoo_exec('LOCK TABLE {odoo}.stock_move_line IN SHARE MODE');
    END IF;
    FOR k IN SELECT * FROM retailflow.odoo_query(format($q$
        WITH a AS (
            SELECT q.product_id, q.location_id, q.lot_id, q.package_id, q.owner_id, sum(q.reserved_quantity) AS res
            FROM {odoo}.stock_quant q WHERE q.reserved_quantity <> 0 GROUP BY 1, 2, 3, 4, 5
        ), b AS (
            SELECT ml.product_id, ml.location_id, ml.lot_id, ml.package_id, ml.owner_id, sum(ml.quantity_product_uom) AS res
            FROM {odoo}.stock_move_line ml JOIN {odoo}.product_product pp ON pp.id = ml.product_id
            JOIN {odoo}.product_template pt ON pt.id = pp.product_tmpl_id
            WHERE ml.state IN ('assigned', 'partially_available', 'waiting', 'confirmed')
              AND ml.quantity_product_uom <> 0 AND %2$s
            GROUP BY 1, 2, 3, 4, 5
        )
        SELECT coalesce(a.product_id, b.product_id) AS product_id, coalesce(a.location_id, b.location_id) AS location_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.lot_id ELSE b.lot_id END AS lot_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.package_id ELSE b.package_id END AS package_id,
               CASE WHEN a.product_id IS NOT NULL THEN a.owner_id ELSE b.owner_id END AS owner_id,
               coalesce(a.res, 0)::numeric AS quant_res, coalesce(b.res, 0)::numeric AS ml_res, %1$s AS bypass,
               coalesce(u.rounding, 0.01)::numeric AS r, l.company_id
        FROM a FULL JOIN b ON b.product_id = a.product_id AND b.location_id = a.location_id
             AND b.lot_id IS NOT DISTINCT FROM a.lot_id AND b.package_id IS NOT DISTINCT FROM a.package_id
             AND b.owner_id IS NOT DISTINCT FROM a.owner_id
        JOIN {odoo}.stock_location l ON l.id = coalesce(a.location_id, b.location_id)
        JOIN {odoo}.product_product pp ON pp.id = coalesce(a.product_id, b.product_id)
        JOIN {odoo}.product_template pt ON pt.id = pp.product_tmpl_id
        LEFT JOIN {odoo}.uom_uom u ON u.id = pt.uom_id
        ORDER BY 1, 2, 3 NULLS FIRST, 4 NULLS FIRST, 5 NULLS FIRST$q$, bypass, storable))
        AS t(product_id integer, location_id integer, lot_id integer, package_id integer, owner_id integer,
             quant_res numeric, ml_res numeric, bypass boolean, r numeric, company_id integer)
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
        keys := jsonb_build_object('lot_id', lot_id, 'package_id', package_id, 'owner_id', owner_id);
        -- The delta lands on the key's quants in Odoo's strict-gather order (lot
        -- first, then id); a quant never goes below zero, the rest carries over.
        FOR q IN SELECT * FROM retailflow.odoo_query(format($q$
            SELECT q.id, q.reserved_quantity::numeric FROM {odoo}.stock_quant q
            WHERE q.product_id = $1 AND q.location_id = $2 AND q.lot_id IS NOT DISTINCT FROM $3
              AND q.package_id IS NOT DISTINCT FROM $4 AND q.owner_id IS NOT DISTINCT FROM $5
            ORDER BY (CASE WHEN $6 < 0 THEN q.reserved_quantity = 0 ELSE false END), q.lot_id, q.id
            %s$q$, CASE WHEN dry_run THEN '' ELSE 'FOR UPDATE' END),
            k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id, delta)
            AS t(id integer, reserved_quantity numeric)
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
                PERFORM retailflow.odoo_exec('UPDATE {odoo}.stock_quant SET reserved_quantity = $1 WHERE id = $2',
                                             new_reserved, quant_id);
                PERFORM retailflow.record_repair(quant_id, product_id, location_id, keys, new_reserved, old_reserved, detail);
            END IF;
            RETURN NEXT;
        END LOOP;
        IF delta < 0 THEN
            -- negative reservations left on the key: set them to zero
            FOR q IN SELECT * FROM retailflow.odoo_query($q$
                SELECT q.id, q.reserved_quantity::numeric FROM {odoo}.stock_quant q
                WHERE q.product_id = $1 AND q.location_id = $2 AND q.lot_id IS NOT DISTINCT FROM $3
                  AND q.package_id IS NOT DISTINCT FROM $4 AND q.owner_id IS NOT DISTINCT FROM $5
                  AND q.reserved_quantity < 0 ORDER BY q.id$q$,
                k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id)
                AS t(id integer, reserved_quantity numeric)
            LOOP
                quant_id := q.id; old_reserved := q.reserved_quantity; new_reserved := 0;
                action := 'clear_negative';
                detail := format('negative reservation %s cleared', q.reserved_quantity::float8);
                IF NOT dry_run THEN
                    PERFORM retailflow.odoo_exec('UPDATE {odoo}.stock_quant SET reserved_quantity = 0 WHERE id = $1',
                                                 quant_id);
                    PERFORM retailflow.record_repair(quant_id, product_id, location_id, keys, 0, old_reserved, detail);
                END IF;
                RETURN NEXT;
            END LOOP;
        ELSIF delta > 0 THEN
            -- step 2: no quant for the key: Odoo creates a (0, qty) quant
            quant_id := NULL; old_reserved := 0; new_reserved := delta;
            action := 'create_quant';
            detail := format('open move lines reserve %s and no quant exists', k.ml_res::float8);
            IF NOT dry_run THEN
                SELECT t.id INTO quant_id FROM retailflow.odoo_query($q$
                    INSERT INTO {odoo}.stock_quant (product_id, location_id, lot_id, package_id, owner_id,
                                                    company_id, quantity, reserved_quantity, in_date, create_date, write_date)
                    VALUES ($1, $2, $3, $4, $5, $6, 0, $7, now() AT TIME ZONE 'UTC',
                            now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC') RETURNING id$q$,
                    k.product_id, k.location_id, k.lot_id, k.package_id, k.owner_id, k.company_id, delta)
                    AS t(id integer);
                PERFORM retailflow.record_repair(quant_id, product_id, location_id, keys, new_reserved, 0, detail);
            END IF;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.repair_reservations(boolean) IS
  'Recomputes stock_quant.reserved_quantity from open move lines (Odoo 18 _clean_reservations); dry run by default';
REVOKE ALL ON FUNCTION retailflow.repair_reservations(boolean) FROM PUBLIC;
