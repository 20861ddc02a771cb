-- 05_outbox.sql: the transactional outbox every concern writes events to.
-- An event row exists if and only if the transaction that emitted it
-- committed; background workers (webhook delivery) read it after commit.
-- retailflow.emit() is the one entry point for events from SQL and C.

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

CREATE FUNCTION retailflow.emit(event_type text, model text, record_id integer, data jsonb DEFAULT '{}'::jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
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
    INSERT INTO retailflow.outbox (event_type, model, record_id, data)
    VALUES (event_type, model, record_id, coalesce(data, '{}'::jsonb))
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION retailflow.emit(text, text, integer, jsonb) IS
  'Writes one event to the transactional outbox; it is delivered only if the transaction commits';

REVOKE ALL ON TABLE retailflow.outbox FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.event_type FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.emit(text, text, integer, jsonb) FROM PUBLIC;
