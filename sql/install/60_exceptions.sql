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
-- @since 1.1
INSERT INTO retailflow.event_type (name, description) VALUES
  ('retailflow.trigger_changed', 'A trigger retailflow manages on an Odoo table was dropped, disabled, enabled or renamed outside attach()/detach()');

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
    -- check's).  Odoo's tables are named {odoo}.table (their schema).
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

-- The relations a check requires that do not exist (NULL when none is missing).
-- An entry is an Odoo table ("stock_picking"), an Odoo table's column
-- ("stock_picking(sale_id)", added by another module) or retailflow's own
-- table ("retailflow.approval_request").
CREATE FUNCTION retailflow.check_missing_relations(requires text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(r, ', ' ORDER BY r)
    FROM unnest(requires) AS r
    CROSS JOIN LATERAL (SELECT substring(r FROM '^([^(]+)') AS rel, substring(r FROM '\(([^)]+)\)$') AS col) p
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p.rel LIKE '%.%' THEN to_regclass(p.rel)
                    ELSE to_regclass(format('%I.%I',
                           coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public'), p.rel))
               END AS oid) o
    WHERE o.oid IS NULL
       OR p.col IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                            WHERE a.attrelid = o.oid AND a.attname = p.col AND NOT a.attisdropped)
$$;

-- The sales team of each picking made for a sale order (sale_stock), none
-- when sales are not installed: checks over pickings use it so that they
-- run on a stock-only database.
CREATE FUNCTION retailflow.picking_sale_teams(picking_ids integer[])
RETURNS TABLE (picking_id integer, team_id integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retailflow.check_missing_relations('{sale_order,stock_picking(sale_id)}') IS NOT NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
        SELECT sp.id, so.team_id FROM {odoo}.stock_picking sp JOIN {odoo}.sale_order so ON so.id = sp.sale_id
        WHERE sp.id = ANY ($1) $q$, picking_ids) AS t(picking_id integer, team_id integer);
END
$$;
COMMENT ON FUNCTION retailflow.picking_sale_teams(integer[]) IS
  'Internal: the sales team of each picking made for a sale order; none without the sale_stock module';

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
-- The check's own SQL (the items) runs through odoo_query() when it reads
-- Odoo's tables, so a superuser's run (the background worker, run_checks())
-- reads them as the owner of Odoo's tables inside a security-restricted
-- operation; a check over retailflow's tables only runs as is.  Reconciling
-- the open exceptions touches retailflow's tables only, with search_path
-- pinned to pg_catalog.
CREATE FUNCTION retailflow.run_check(p_kind text, as_of timestamptz,
                                     OUT status text, OUT opened integer, OUT resolved integer, OUT open integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c        retailflow.exception_check;
    t0       timestamptz := clock_timestamp();
    err      text;
    missing  text;
    items    text;
    odoo     boolean;
BEGIN
    SELECT * INTO c FROM retailflow.exception_check WHERE kind = p_kind FOR UPDATE;
    opened := 0; resolved := 0; open := NULL;
    missing := retailflow.check_missing_relations(c.requires);
    IF missing IS NOT NULL THEN
        status := 'skipped';
        err := format('Missing: %s.', missing);
    ELSE
        -- the items, typed by name; $1 is the as-of time, $2 the check's severity
        items := format($i$
            SELECT i.model::text AS model, i.record_id::integer AS record_id, i.reference::text AS reference,
                   i.since::timestamptz AS since, i.user_id::integer AS user_id, i.team_id::integer AS team_id,
                   i.company_id::integer AS company_id, i.warehouse_id::integer AS warehouse_id,
                   i.reason::text AS reason, coalesce(i.data::jsonb, '{}'::jsonb) AS data,
                   coalesce(i.severity::text, $2) AS severity
            FROM (%s) AS i
            WHERE i.model IS NOT NULL AND i.record_id IS NOT NULL $i$, c.query);
        odoo := EXISTS (SELECT 1 FROM unnest(c.requires) r WHERE r NOT LIKE 'retailflow.%');
        BEGIN
            EXECUTE format($q$
                WITH cur AS (
                    SELECT DISTINCT ON (i.model, i.record_id) i.*
                    FROM %s
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
            $q$, CASE WHEN odoo
                      THEN 'retailflow.odoo_query($5, $1, $2) AS i(model text, record_id integer, reference text, '
                           'since timestamptz, user_id integer, team_id integer, company_id integer, '
                           'warehouse_id integer, reason text, data jsonb, severity text)'
                      ELSE format('(%s) AS i', items) END)
            INTO opened, resolved, open
            USING as_of, c.severity, c.kind, c.suggested_action, items;
            status := 'ok';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            status := 'error';
            opened := 0; resolved := 0; open := NULL;
        END;
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
SECURITY DEFINER
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
SECURITY DEFINER
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
SECURITY DEFINER
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
                               THEN retailflow.acting_role()::text ELSE x.acknowledged_by END,
        assigned_user_id = CASE action WHEN 'assign' THEN assign_to WHEN 'unassign' THEN NULL
                                ELSE x.assigned_user_id END,
        note = coalesce(exception_ack.note, x.note),
        closed_at = CASE WHEN action = 'resolve' THEN t END,
        close_reason = CASE WHEN action = 'resolve' THEN 'resolved' END,
        resolved_by = CASE WHEN action = 'resolve' THEN retailflow.acting_role()::text END
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
SECURITY DEFINER
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
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
        SELECT am.id, am.name::text, am.create_date AT TIME ZONE 'UTC', am.amount_total::numeric
        FROM {odoo}.account_move am
        WHERE am.move_type = 'out_refund' AND am.state = 'posted'
          AND (am.invoice_origin IN (SELECT k FROM keys)
               OR am.reversed_entry_id IN (SELECT inv.id FROM {odoo}.account_move inv
                                           WHERE inv.move_type = 'out_invoice'
                                             AND inv.invoice_origin IN (SELECT k FROM keys)))
        ORDER BY am.id
    $q$, return_picking_id) AS t(move_id integer, name text, posted_at timestamptz, amount_total numeric);
END
$$;

-- ---------------------------------------------------------------------------
-- Built-in checks over Odoo's own tables ({odoo} is their schema; names are
-- never looked up through search_path).  Odoo stores UTC in timestamp
-- without time zone: "AT TIME ZONE 'UTC'" turns it into timestamptz.
-- ---------------------------------------------------------------------------

INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('stuck_order', 'high',
 'Find what blocks the delivery (stock, picking, carrier) and ship or inform the customer',
 'Confirmed sale orders with a delivery not done within retailflow.order_sla of confirmation',
 '{sale_order,stock_picking,stock_picking(sale_id),stock_picking_type}',
 $q$
 SELECT 'sale.order' AS model, so.id AS record_id, so.name AS reference,
        (so.date_order AT TIME ZONE 'UTC') + retailflow.setting_interval('retailflow.order_sla') AS since,
        so.user_id, so.team_id, so.company_id, so.warehouse_id,
        format('confirmed %s UTC, %s of %s deliveries not done within %s',
               to_char(so.date_order, 'YYYY-MM-DD HH24:MI'),
               p.open_pickings, p.pickings, current_setting('retailflow.order_sla')) AS reason,
        jsonb_build_object('open_pickings', p.open_pickings, 'amount_total', so.amount_total) AS data,
        NULL AS severity
 FROM {odoo}.sale_order so
 JOIN (SELECT sp.sale_id, count(*) AS pickings,
              count(*) FILTER (WHERE sp.state NOT IN ('done', 'cancel')) AS open_pickings
       FROM {odoo}.stock_picking sp
       JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
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
 WITH late AS MATERIALIZED (
     SELECT sp.id, sp.name, sp.scheduled_date, sp.date_deadline, sp.user_id, sp.company_id, sp.state, sp.origin,
            pt.code, pt.warehouse_id
     FROM {odoo}.stock_picking sp
     JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
     WHERE sp.state IN ('waiting', 'confirmed', 'assigned')
       AND sp.scheduled_date < $1 AT TIME ZONE 'UTC')
 SELECT 'stock.picking' AS model, l.id AS record_id, l.name AS reference,
        l.scheduled_date AT TIME ZONE 'UTC' AS since,
        l.user_id, st.team_id, l.company_id, l.warehouse_id,
        format('%s scheduled %s UTC is not done (state %s)', l.code,
               to_char(l.scheduled_date, 'YYYY-MM-DD HH24:MI'), l.state) AS reason,
        jsonb_build_object('picking_type', l.code, 'state', l.state, 'origin', l.origin) AS data,
        CASE WHEN l.date_deadline IS NOT NULL AND l.date_deadline < $1 AT TIME ZONE 'UTC'
             THEN 'high' END AS severity
 FROM late l
 LEFT JOIN retailflow.picking_sale_teams(ARRAY(SELECT id FROM late)) st ON st.picking_id = l.id
 $q$),
('partial_delivery', 'medium',
 'Ship what is available (backorder) or find the missing stock',
 'Deliveries partially available for longer than retailflow.partial_delivery_age',
 '{stock_picking,stock_picking_type,stock_move}',
 $q$
 WITH partial AS MATERIALIZED (
     SELECT sp.id, sp.name, sp.create_date, sp.user_id, sp.company_id, pt.warehouse_id,
            m.moves, m.short_moves, m.demand, m.reserved
     FROM {odoo}.stock_picking sp
     JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
     JOIN (SELECT sm.picking_id, count(*) AS moves,
                  count(*) FILTER (WHERE sm.state IN ('partially_available', 'confirmed', 'waiting')) AS short_moves,
                  count(*) FILTER (WHERE sm.state IN ('partially_available', 'assigned')) AS some_reserved,
                  sum(sm.product_qty) AS demand, sum(sm.quantity) AS reserved
           FROM {odoo}.stock_move sm
           WHERE sm.picking_id IS NOT NULL AND sm.state IN ('waiting', 'confirmed', 'partially_available', 'assigned')
           GROUP BY sm.picking_id) m ON m.picking_id = sp.id
     WHERE pt.code = 'outgoing'
       AND sp.state IN ('confirmed', 'assigned', 'waiting')
       AND sp.create_date < ($1 - retailflow.setting_interval('retailflow.partial_delivery_age')) AT TIME ZONE 'UTC'
       AND m.short_moves > 0 AND m.some_reserved > 0)
 SELECT 'stock.picking' AS model, p.id AS record_id, p.name AS reference,
        p.create_date AT TIME ZONE 'UTC' AS since,
        p.user_id, st.team_id, p.company_id, p.warehouse_id,
        format('%s of %s moves not fully reserved; delivery created %s UTC', p.short_moves, p.moves,
               to_char(p.create_date, 'YYYY-MM-DD HH24:MI')) AS reason,
        jsonb_build_object('moves', p.moves, 'short_moves', p.short_moves,
                           'demand', p.demand, 'reserved', p.reserved) AS data,
        NULL AS severity
 FROM partial p
 LEFT JOIN retailflow.picking_sale_teams(ARRAY(SELECT id FROM partial)) st ON st.picking_id = p.id
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
 '{stock_picking,stock_picking(sale_id),stock_picking_type,sale_order,account_move}',
 $q$
 SELECT 'stock.picking' AS model, sp.id AS record_id, sp.name AS reference,
        (sp.date_done AT TIME ZONE 'UTC') + retailflow.setting_interval('retailflow.return_stall') AS since,
        coalesce(so.user_id, sp.user_id) AS user_id, so.team_id, sp.company_id, pt.warehouse_id,
        format('return of %s received %s UTC, no posted refund within %s',
               coalesce(so.name, sp.origin), to_char(sp.date_done, 'YYYY-MM-DD HH24:MI'),
               current_setting('retailflow.return_stall')) AS reason,
        jsonb_build_object('sale_order_id', so.id, 'returned_picking_id', sp.return_id) AS data,
        NULL AS severity
 FROM {odoo}.stock_picking sp
 JOIN {odoo}.stock_picking_type pt ON pt.id = sp.picking_type_id
 LEFT JOIN {odoo}.stock_picking orig ON orig.id = sp.return_id
 LEFT JOIN {odoo}.sale_order so ON so.id = coalesce(sp.sale_id, orig.sale_id)
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

-- retailflow's own controls: every managed trigger present and enabled on
-- the Odoo tables that exist (a table owner can drop or disable them).
-- @since 1.1
INSERT INTO retailflow.exception_check (kind, severity, suggested_action, description, requires, query) VALUES
('managed_trigger', 'critical',
 'Run SELECT * FROM retailflow.attach() (as a superuser or Odoo''s role) and find out who changed the trigger (retailflow.audit_log)',
 'A trigger retailflow manages on an Odoo table is missing, disabled or replaced by another definition: its control (capture, conflicts, approvals) is off',
 '{retailflow.managed_trigger}',
 $q$
 SELECT 'retailflow.managed_trigger' AS model, hashtext(m.table_name || '.' || m.trigger_name) AS record_id,
        m.table_name || '.' || m.trigger_name AS reference, NULL::timestamptz AS since,
        NULL::integer AS user_id, NULL::integer AS team_id, NULL::integer AS company_id, NULL::integer AS warehouse_id,
        CASE WHEN t.oid IS NULL THEN format('trigger %s on %s is missing: %s is off', m.trigger_name, m.table_name, m.concern)
             WHEN t.tgenabled IN ('D', 'R') THEN
                  format('trigger %s on %s is %s: %s is off', m.trigger_name, m.table_name,
                         CASE t.tgenabled WHEN 'D' THEN 'disabled' ELSE 'enabled for replicas only' END,
                         m.concern)
             ELSE format('trigger %s on %s is not the one retailflow created: %s is not guaranteed',
                         m.trigger_name, m.table_name, m.concern) END AS reason,
        jsonb_build_object('table', m.table_name, 'trigger', m.trigger_name, 'concern', m.concern,
                           'state', CASE WHEN t.oid IS NULL THEN 'missing'
                                         WHEN t.tgenabled IN ('D', 'R') THEN t.tgenabled::text
                                         ELSE 'replaced' END,
                           'definition', pg_catalog.pg_get_triggerdef(t.oid)) AS data,
        NULL::text AS severity
 FROM retailflow.managed_trigger m
 JOIN pg_catalog.pg_class c
   ON c.relname = m.table_name
  AND c.relnamespace = to_regnamespace(coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public'))
 LEFT JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND t.tgname = m.trigger_name
 WHERE c.relkind IN ('r', 'p')
   AND (t.oid IS NULL OR t.tgenabled IN ('D', 'R')
        OR pg_catalog.pg_get_triggerdef(t.oid)
           IS DISTINCT FROM retailflow.managed_trigger_sql(m.constraint_trigger, m.trigger_name, m.definition, c.oid))
 $q$);
