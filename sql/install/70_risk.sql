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
    IF NOT retailflow.odoo_tables_exist('{sale_order,sale_order_line}') THEN
        RAISE EXCEPTION 'odoo table "sale_order" was not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'order_risk() needs the Odoo sale module (sale_order, sale_order_line).',
                  HINT = 'Check retailflow.odoo_schema and that the sale module is installed.';
    END IF;
    SELECT * INTO o FROM retailflow.odoo_query($q$
        SELECT so.id, so.name::text, so.partner_id, so.partner_invoice_id, so.partner_shipping_id, so.team_id,
               so.amount_total::numeric, coalesce(so.date_order, so.create_date)::timestamp AS d, so.state::text,
               coalesce(pc.commercial_partner_id, so.partner_id)::integer AS commercial_id,
               (pi.street, pi.street2, pi.zip, pi.city, pi.country_id) IS DISTINCT FROM
               (ps.street, ps.street2, ps.zip, ps.city, ps.country_id) AS other_address
        FROM {odoo}.sale_order so
        LEFT JOIN {odoo}.res_partner pc ON pc.id = so.partner_id
        LEFT JOIN {odoo}.res_partner pi ON pi.id = so.partner_invoice_id
        LEFT JOIN {odoo}.res_partner ps ON ps.id = so.partner_shipping_id
        WHERE so.id = $1 $q$, sale_order_id)
      AS t(id integer, name text, partner_id integer, partner_invoice_id integer, partner_shipping_id integer,
           team_id integer, amount_total numeric, d timestamp, state text, commercial_id integer,
           other_address boolean);
    IF o.id IS NULL THEN
        RAISE EXCEPTION 'sale order % does not exist', sale_order_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'order_risk() takes a sale_order id.';
    END IF;
    as_of_ts := o.d;

    -- the customer's own confirmed orders before this one
    SELECT * INTO hist FROM retailflow.odoo_query($q$
        SELECT (m).median, (m).mad, (m).n
        FROM (SELECT retailflow.median_mad(array_agg(so.amount_total)) AS m
              FROM {odoo}.sale_order so
              WHERE so.partner_id = $1 AND so.state = 'sale' AND so.id <> $2
                AND coalesce(so.date_order, so.create_date) <= $3 OFFSET 0) x $q$, o.partner_id, o.id, as_of_ts)
      AS t(median numeric, mad numeric, n integer);

    -- the channel's latest confirmed orders before this one
    SELECT * INTO chan FROM retailflow.odoo_query($q$
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
              OFFSET 0) x $q$, o.team_id, o.id, as_of_ts, (p->>'channel_sample')::integer,
                               (p->>'discount_sample')::integer)
      AS t(median numeric, mad numeric, n integer, disc_median numeric, disc_mad numeric);

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
    FOR x IN SELECT * FROM retailflow.odoo_query($q$
        SELECT l.product_id, coalesce(pp.default_code, pp.id::text)::text AS ref, sum(l.product_uom_qty)::numeric AS qty,
               coalesce((SELECT sum(sm.quantity)
                         FROM {odoo}.stock_move sm
                         JOIN {odoo}.stock_location dl ON dl.id = sm.location_dest_id
                         WHERE sm.product_id = l.product_id AND sm.state = 'done' AND dl.usage = 'customer'
                           AND sm.date > $2 - make_interval(days => $3) AND sm.date <= $2), 0) / $3 AS per_day
        FROM {odoo}.sale_order_line l
        JOIN {odoo}.product_product pp ON pp.id = l.product_id
        WHERE l.order_id = $1 AND l.product_id IS NOT NULL AND coalesce(l.display_type, '') = ''
        GROUP BY l.product_id, pp.default_code, pp.id
        ORDER BY l.product_id $q$, o.id, as_of_ts, (p->>'velocity_days')::integer)
      AS t(product_id integer, ref text, qty numeric, per_day numeric)
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
    SELECT t.n INTO cnt FROM retailflow.odoo_query($q$
        SELECT greatest(count(*) FILTER (WHERE so.partner_id = $1),
                        count(*) FILTER (WHERE so.partner_shipping_id = $2))::integer
        FROM {odoo}.sale_order so
        WHERE (so.partner_id = $1 OR so.partner_shipping_id = $2) AND so.state <> 'cancel'
          AND coalesce(so.date_order, so.create_date) > $3 - make_interval(hours => $4)
          AND coalesce(so.date_order, so.create_date) <= $3 $q$,
        o.partner_id, o.partner_shipping_id, as_of_ts, (p->>'burst_hours')::integer) AS t(n integer);
    IF cnt >= (p->>'burst_orders')::numeric THEN
        r := r || jsonb_build_object('code', 'order_burst',
                    'points', (p->>'burst_points')::numeric,
                    'detail', format('%s orders from this customer or address within %s hours',
                                     cnt, p->>'burst_hours'));
    END IF;
    -- 7. discount far above the channel's normal discount
    SELECT t.d INTO z FROM retailflow.odoo_query($q$
        SELECT max(coalesce(l.discount, 0))::numeric FROM {odoo}.sale_order_line l WHERE l.order_id = $1 $q$, o.id)
      AS t(d numeric);
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
    IF NOT retailflow.odoo_tables_exist('{stock_move}') THEN
        RAISE EXCEPTION 'odoo table "stock_move" was not found'
            USING ERRCODE = 'undefined_table',
                  DETAIL = 'stockout_risk() needs the Odoo stock module.',
                  HINT = 'Check retailflow.odoo_schema and that the stock module is installed.';
    END IF;
    IF warehouse_ids IS NOT NULL AND array_position(warehouse_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'warehouse_ids must not contain null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'Pass NULL for every active warehouse, or an array of stock_warehouse ids.';
    END IF;
    RETURN QUERY SELECT * FROM retailflow.odoo_query(format($q$
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
        ORDER BY s.product_id, s.warehouse_id $q$, retailflow.storable_sql()),
        coalesce(as_of, retailflow.now()), (p->>'stockout_window_days')::integer, warehouse_ids,
        (p->>'stockout_default_lead_days')::numeric, (p->>'stockout_safety_days')::numeric)
      AS t(product_id integer, warehouse_id integer, free_qty numeric, sold_qty numeric,
           daily_velocity numeric, days_of_cover numeric, lead_time_days numeric,
           safety_days numeric, at_risk boolean);
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
 FROM {odoo}.sale_order so
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
 JOIN {odoo}.product_product pp ON pp.id = s.product_id
 JOIN {odoo}.stock_warehouse w ON w.id = s.warehouse_id
 WHERE s.at_risk
 GROUP BY s.product_id, pp.default_code, pp.id
 $q$);
