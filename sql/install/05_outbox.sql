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

-- Refuses (22023) event data a webhook could not carry: not an object,
-- nested deeper than 32 levels, numbers jansson cannot hold (payload.c).
CREATE FUNCTION retailflow.validate_event_data(data jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'rf_validate_event_data'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retailflow.validate_event_data(jsonb) IS
  'Refuses (22023) event data a webhook cannot carry: not a JSON object, nested deeper than 32 levels, numbers outside 64-bit integers and finite doubles';

-- SECURITY DEFINER: Odoo's role emits events without being able to write
-- the outbox directly; the function touches retailflow's tables only.
-- Input limits (docs/webhooks.md): event type and model names up to 128
-- bytes, data a JSON object of at most 16384 bytes that validate_event_data()
-- accepts, so that every event emitted can be sent.
CREATE FUNCTION retailflow.emit(event_type text, model text, record_id integer, data jsonb DEFAULT '{}'::jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
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
    IF octet_length(event_type) > 128 OR octet_length(model) > 128 THEN
        RAISE EXCEPTION 'event % name is too long: % bytes',
                        CASE WHEN octet_length(event_type) > 128 THEN 'type' ELSE 'model' END,
                        greatest(octet_length(event_type), octet_length(model))
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Event type and model names are limited to 128 bytes.',
                  HINT = CASE WHEN octet_length(event_type) > 128
                              THEN 'SELECT name FROM retailflow.event_type lists the known types.'
                              ELSE 'The model is the Odoo model name, for example sale.order.' END;
    END IF;
    IF model = '' OR model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid event model %', to_json(model)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The model is a non-empty name without control characters.',
                  HINT = 'The model is the Odoo model name, for example sale.order.';
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
    PERFORM retailflow.validate_event_data(coalesce(data, '{}'::jsonb));
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
