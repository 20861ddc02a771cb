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
-- No SET clause, so that it is inlined where it is called; every name is
-- schema-qualified instead, so the caller's search_path cannot change it.
CREATE FUNCTION retailflow.filter_match(patterns text[], event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT 1 FROM pg_catalog.unnest(patterns) p
               WHERE event_type OPERATOR(pg_catalog.~~)
                     pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(p, '\', '\\'), '_', '\_'), '*', '%'));

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

-- The address a URL host denotes when it is an address literal, in any
-- spelling curl accepts (127.1, 2130706433, 0x7f000001, 0177.0.0.1,
-- [::ffff:127.0.0.1]); NULL for a host name (egress.c).
CREATE FUNCTION retailflow.webhook_host_address(host text)
RETURNS inet
AS 'MODULE_PATHNAME', 'rf_webhook_host_address'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.webhook_host_address(text) IS
  'The address a webhook URL host denotes when it is an IP literal in any spelling curl accepts (dotted, decimal, hex, octal, shortened, bracketed IPv6); NULL for a host name';

-- The network of retailflow.webhook_denied_networks that contains an
-- address (IPv4-mapped and NAT64 IPv6 also as their IPv4 address), or NULL.
-- The workers run the same check on every address libcurl resolves.
CREATE FUNCTION retailflow.webhook_address_denied(address inet)
RETURNS cidr
AS 'MODULE_PATHNAME', 'rf_webhook_address_denied'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.webhook_address_denied(inet) IS
  'The network of retailflow.webhook_denied_networks that contains the address, or NULL when webhooks may connect to it';

-- Validates an endpoint row with clear errors (URL, filters, headers, secrets,
-- timeout).  The URL (length, form, address literal, allowlist) is checked
-- when it is set: an update that keeps the URL never re-checks the host, so a
-- narrowed policy never stops an administrator disabling an old endpoint.
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
    addr inet;
    net cidr;
    allow text := coalesce(current_setting('retailflow.webhook_allowed_hosts', true), '');
BEGIN
    IF TG_OP = 'INSERT' OR NEW.url IS DISTINCT FROM OLD.url THEN
        IF length(NEW.url) > 2048 THEN
            RAISE EXCEPTION 'webhook url is too long: % characters', length(NEW.url)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Webhook URLs are limited to 2048 characters.',
                      HINT = 'Put long parameters in the event data or in the endpoint''s headers, not in the URL.';
        END IF;
        IF NEW.url IS NULL
           OR NEW.url !~ '^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?([/?][^[:space:][:cntrl:]]*)?$' THEN
            RAISE EXCEPTION 'invalid webhook url "%"', NEW.url
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Webhook URLs use the http or https scheme, a host name, an IPv4 address or a bracketed IPv6 address, an optional port and path, and no spaces, control characters or credentials.',
                      HINT = 'For example https://hooks.example.com/odoo.';
        END IF;
        host := lower(substring(NEW.url from '^https?://(\[[^]]*\]|[A-Za-z0-9.\-]+)'));
        addr := retailflow.webhook_host_address(host);
        IF addr IS NULL AND host ~ '^\[' THEN
            RAISE EXCEPTION 'invalid webhook url "%"', NEW.url
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('%s is not an IPv6 address.', host),
                      HINT = 'Write IPv6 addresses in brackets without a zone, for example http://[2001:db8::1]/hook.';
        END IF;
        IF addr IS NULL AND host ~ '(^|\.)(0x[0-9a-f]*|[0-9]+)\.?$' THEN
            RAISE EXCEPTION 'webhook host "%" is neither an IPv4 address nor a host name', host
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A host name''s last label is never numeric, and the numbers do not form an IPv4 address.',
                      HINT = 'Write IPv4 addresses as four decimal numbers from 0 to 255, for example 192.0.2.10.';
        END IF;
        IF addr IS NOT NULL THEN
            net := retailflow.webhook_address_denied(addr);
            IF net IS NOT NULL THEN
                RAISE EXCEPTION 'webhook address % is denied by policy', host(addr)
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = format('%s is in %s, one of the networks of retailflow.webhook_denied_networks.', host(addr), net),
                          HINT = 'Only a superuser changes retailflow.webhook_denied_networks; link-local (cloud metadata), multicast, broadcast and unspecified addresses are denied by default.';
            END IF;
            IF host !~ '^\[' AND host <> host(addr) THEN
                RAISE EXCEPTION 'webhook host "%" is an IPv4 address in a non-standard spelling', host
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = 'Decimal, hexadecimal, octal and shortened IPv4 forms are refused so that every check reads the address the same way.',
                          HINT = format('Write it as %s.', host(addr));
            END IF;
        END IF;
        IF allow <> '' AND NOT EXISTS (
            SELECT 1 FROM unnest(string_to_array(replace(allow, ' ', ''), ',')) a
            WHERE a <> '' AND (host = lower(a) OR (a LIKE '.%' AND host LIKE '%' || lower(a)))) THEN
            RAISE EXCEPTION 'webhook host "%" is not allowed', host
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('retailflow.webhook_allowed_hosts is "%s".', allow),
                      HINT = 'A superuser adds the host to retailflow.webhook_allowed_hosts.';
        END IF;
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
SECURITY DEFINER
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
SECURITY DEFINER
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
-- SECURITY DEFINER: the administrator may send this one event type without
-- being granted emit() (which would let it emit any type).
CREATE FUNCTION retailflow.send_test_event(message text DEFAULT 'hello')
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN retailflow.emit('retailflow.test', 'retailflow', NULL, jsonb_build_object('message', message));

-- Removes delivered rows and finished events older than the retention, in small batches.
CREATE FUNCTION retailflow.purge(batch integer DEFAULT 5000)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
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

-- No WHEN clause or column list (see 00_core.sql): the C function returns at
-- once unless the state changed (a credit note posted, for refund) or the
-- quant's free quantity went down (low).
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('sale_order', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''sale.order'')'),
  ('stock_picking', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''stock.picking'')'),
  ('purchase_order', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger(''state'', ''purchase.order'')'),
  ('account_move', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger(''refund'', ''account.move'')'),
  ('stock_quant', 'retailflow_capture', 'webhooks capture',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger(''low'', ''stock.quant'')');
-- stock.low looks only at products with a reordering rule (a per-backend set, refreshed on change)
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('stock_warehouse_orderpoint', 'retailflow_cache_inval', 'webhooks capture',
   'AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()');

-- The capture triggers keep, per backend, which event types an active
-- endpoint receives: a change nobody receives costs no query and writes no
-- event.  Any change of endpoints, subscriptions or event types refreshes it.
-- @since 1.1
CREATE TRIGGER retailflow_cache_inval AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON retailflow.endpoint
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger();
-- @since 1.1
CREATE TRIGGER retailflow_cache_inval AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON retailflow.subscription
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger();
-- @since 1.1
CREATE TRIGGER retailflow_cache_inval AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON retailflow.event_type
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger();

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
