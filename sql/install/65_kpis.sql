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
        IF NOT retailflow.odoo_tables_exist(ARRAY[t]) THEN
            RAISE EXCEPTION 'odoo table "%" was not found', t
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
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
        ORDER BY so.company_id, so.team_id NULLS LAST $q$,
        date_from, date_to) AS t(company_id integer, team_id integer, orders bigint, p50 interval, p90 interval, p99 interval, mean interval);
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
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
        ORDER BY so.company_id, so.warehouse_id NULLS LAST, so.team_id NULLS LAST $q$,
        date_from, date_to) AS t(company_id integer, warehouse_id integer, team_id integer, orders bigint, p50 interval, p90 interval, p99 interval, mean interval);
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
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
        ORDER BY r.company_id, r.warehouse_id NULLS LAST, r.team_id NULLS LAST $q$,
        date_from, date_to) AS t(company_id integer, warehouse_id integer, team_id integer, returns bigint, refunded bigint, p50 interval, p90 interval, p99 interval, mean interval);
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
    RETURN QUERY SELECT * FROM retailflow.odoo_query($q$
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
        ORDER BY a.company_id, a.warehouse_id NULLS LAST $q$,
        date_from, date_to) AS t(company_id integer, warehouse_id integer, counted_lines bigint, lines_with_difference bigint, line_accuracy numeric, abs_difference numeric, on_hand numeric, relative_difference numeric);
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
