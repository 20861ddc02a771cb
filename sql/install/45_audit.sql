-- 45_audit.sql: the tamper-evident, append-only audit trail.
--   retailflow.audit_log        one row per approval decision, rule change,
--                               enforcement event and corrective change
--   retailflow.audit(...)       the one entry point other concerns call
--   retailflow.verify_audit_log(checkpoint)  recomputes the SHA-256 chain,
--                               reports the first broken link, and a log that
--                               no longer extends a checkpoint
--   retailflow.audit_checkpoint()  the chain head anchored outside the
--                               database: a signed audit.checkpoint webhook
--                               (webhook worker 0 on a schedule, or on demand)
-- Each row's hash is sha256(prev_hash || canonical content); the chain head
-- (last id and hash) lives in the one-row table audit_head, which every append
-- locks first: that row lock serializes appends, and the hash is computed
-- inside the appending transaction from the head it locked.  The head moves
-- only forward, one row per append, from the log's insert trigger.

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
    hash          bytea NOT NULL,
    -- who wrote it, beside the Odoo user the application names: the session's
    -- application_name and backend pid (db_role is the role it acted as)
    application_name text,
    backend_pid   integer
);
COMMENT ON TABLE retailflow.audit_log IS
  'Append-only, SHA-256 hash-chained audit trail (verify with retailflow.verify_audit_log())';
CREATE INDEX audit_log_entity_idx ON retailflow.audit_log (entity, entity_id, id);

-- The canonical text a row's hash covers (independent of TimeZone/DateStyle).
-- Rows written before application_name and backend_pid were recorded (1.0)
-- have both NULL, and their content is what 1.0 hashed.
CREATE FUNCTION retailflow.audit_content(id bigint, logged_at timestamptz, action text, entity text,
                                         entity_id bigint, odoo_user_id integer, db_role name,
                                         before jsonb, after jsonb, application_name text, backend_pid integer)
RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT convert_to((jsonb_build_array(id, extract(epoch FROM logged_at), action, entity, entity_id,
                                         odoo_user_id, db_role::text, before, after)
                       || CASE WHEN application_name IS NULL AND backend_pid IS NULL THEN '[]'::jsonb
                               ELSE jsonb_build_array(application_name, backend_pid) END)::text, 'UTF8')
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
    -- the session that writes the row (the background worker passes the
    -- refusing session's, for rows queued past a rollback)
    IF NEW.backend_pid IS NULL THEN
        NEW.db_role := retailflow.acting_role();
        NEW.application_name := current_setting('application_name');
        NEW.backend_pid := pg_backend_pid();
    END IF;
    -- FOR UPDATE locks the head; in READ COMMITTED a waiting appender re-reads
    -- the head committed by the one it waited for, so the chain never forks.
    SELECT * INTO h FROM retailflow.audit_head WHERE singleton FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain head is missing'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retailflow.audit_head must hold exactly one row.';
    END IF;
    NEW.id := h.last_id + 1;
    NEW.prev_hash := h.last_hash;
    NEW.hash := sha256(h.last_hash || retailflow.audit_content(NEW.id, NEW.logged_at, NEW.action, NEW.entity,
                       NEW.entity_id, NEW.odoo_user_id, NEW.db_role, NEW.before, NEW.after,
                       NEW.application_name, NEW.backend_pid));
    -- one update per append: audit_head_guard() refuses any other
    UPDATE retailflow.audit_head SET last_id = NEW.id, last_hash = NEW.hash WHERE singleton;
    RETURN NEW;
END
$$;

-- BEFORE UPDATE/DELETE/TRUNCATE: the log (and its checkpoints) are
-- append-only for everyone; the head is never removed.
CREATE FUNCTION retailflow.audit_log_refuse()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'audit_head' THEN
        RAISE EXCEPTION 'retailflow.audit_head is maintained by the audit log: % is not allowed', lower(TG_OP)
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The chain head is one row that moves forward one row per append to retailflow.audit_log.',
                  HINT = 'Append rows with retailflow.audit(); the head cannot be removed or rewound.';
    END IF;
    RAISE EXCEPTION 'retailflow.% is append-only: % is not allowed', TG_TABLE_NAME, lower(TG_OP)
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Audit rows can only be appended; they are never updated, deleted or truncated.',
              HINT = 'Append a correcting row with retailflow.audit() instead.';
END
$$;

-- BEFORE UPDATE of the chain head: only the log's insert trigger moves it,
-- and only forward by one row (a superuser must disable the triggers to
-- rewind it, which the checkpoints held outside the database reveal).
CREATE FUNCTION retailflow.audit_head_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_trigger_depth() < 2 OR NEW.singleton IS DISTINCT FROM OLD.singleton
       OR NEW.last_id IS DISTINCT FROM OLD.last_id + 1 THEN
        RAISE EXCEPTION 'retailflow.audit_head is maintained by the audit log: update is not allowed'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The chain head moves forward one row per append to retailflow.audit_log, from the log''s insert trigger only.',
                  HINT = 'Append rows with retailflow.audit(); the head cannot be removed or rewound.';
    END IF;
    RETURN NEW;
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
-- @since 1.1
CREATE TRIGGER audit_head_guard BEFORE UPDATE ON retailflow.audit_head
    FOR EACH ROW EXECUTE FUNCTION retailflow.audit_head_guard();

-- Every checkpoint taken (audit_checkpoint()): what was anchored, when, and
-- the outbox event that carried it to the receivers.  Append-only.
CREATE TABLE retailflow.audit_checkpoint (
    id          bigserial PRIMARY KEY,
    taken_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    row_count   bigint NOT NULL,
    last_id     bigint NOT NULL,
    head_hash   bytea NOT NULL,
    scheduled   boolean NOT NULL,
    taken_by    name NOT NULL,
    event_id    bigint
);
COMMENT ON TABLE retailflow.audit_checkpoint IS
  'Audit chain heads anchored outside the database as signed audit.checkpoint webhooks (append-only)';
-- @since 1.1
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE OR DELETE ON retailflow.audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION retailflow.audit_log_refuse();
-- @since 1.1
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON retailflow.audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.audit_log_refuse();
-- @since 1.1
INSERT INTO retailflow.event_type (name, description) VALUES
  ('audit.checkpoint', 'The audit log''s chain head (row count, last id, head hash); receivers keep it to verify the log later');

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

-- Appends a row queued past a rollback, naming the session that queued it
-- (called by webhook worker 0 only).
CREATE FUNCTION retailflow.audit_queued(action text, entity text, entity_id bigint, after jsonb,
                                        odoo_user_id integer, db_role name, application_name text,
                                        backend_pid integer, queued_at timestamptz)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO retailflow.audit_log (action, entity, entity_id, odoo_user_id, db_role, before, after,
                                      application_name, backend_pid, prev_hash, hash)
    VALUES (action, entity, entity_id, odoo_user_id, db_role, NULL,
            coalesce(after, '{}'::jsonb) || jsonb_build_object('queued_at', queued_at),
            coalesce(application_name, ''), backend_pid, '', '')
    RETURNING id
$$;
REVOKE ALL ON FUNCTION retailflow.audit_queued(text, text, bigint, jsonb, integer, name, text, integer, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION retailflow.audit_queued(text, text, bigint, jsonb, integer, name, text, integer, timestamptz) IS
  'Internal: appends an audit row queued past a rollback, with the role, application and backend of the session that queued it';

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

-- Emits the chain head as a signed audit.checkpoint webhook, so that it
-- lives outside the database at every receiver that subscribes.  due_after
-- NULL: now (on demand); otherwise only when the last checkpoint is older
-- than due_after (webhook worker 0 passes retailflow.audit_checkpoint_interval).
CREATE FUNCTION retailflow.audit_checkpoint(due_after interval DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h retailflow.audit_head;
    n bigint;
    cp retailflow.audit_checkpoint;
    data jsonb;
BEGIN
    IF due_after IS NOT NULL THEN
        IF due_after <= interval '0' THEN
            RAISE EXCEPTION 'checkpoint interval must be positive'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'due_after is the age after which the last checkpoint is renewed.';
        END IF;
        -- not due: a recent checkpoint, or (none yet) a server started less than due_after ago
        IF EXISTS (SELECT 1 FROM retailflow.audit_checkpoint c
                   WHERE c.id = (SELECT max(c2.id) FROM retailflow.audit_checkpoint c2)
                     AND c.taken_at > clock_timestamp() - due_after)
           OR (NOT EXISTS (SELECT 1 FROM retailflow.audit_checkpoint)
               AND pg_postmaster_start_time() > clock_timestamp() - due_after) THEN
            RETURN NULL;
        END IF;
    END IF;
    -- the head's row lock keeps appenders out while the rows are counted
    SELECT * INTO h FROM retailflow.audit_head WHERE singleton FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain head is missing'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retailflow.audit_head must hold exactly one row.';
    END IF;
    SELECT count(*) INTO n FROM retailflow.audit_log a WHERE a.id <= h.last_id;
    cp.id := nextval('retailflow.audit_checkpoint_id_seq');
    cp.taken_at := clock_timestamp();
    data := jsonb_build_object('database', current_database(), 'checkpoint_id', cp.id,
                               'rows', n, 'last_id', h.last_id, 'head_hash', encode(h.last_hash, 'hex'),
                               'taken_at', to_char(cp.taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                               'scheduled', due_after IS NOT NULL);
    cp.event_id := retailflow.emit('audit.checkpoint', 'retailflow.audit_log', NULL, data);
    INSERT INTO retailflow.audit_checkpoint (id, taken_at, row_count, last_id, head_hash, scheduled, taken_by, event_id)
    VALUES (cp.id, cp.taken_at, n, h.last_id, h.last_hash, due_after IS NOT NULL, retailflow.acting_role(), cp.event_id);
    RETURN data || jsonb_build_object('event_id', cp.event_id);
END
$$;
COMMENT ON FUNCTION retailflow.audit_checkpoint(interval) IS
  'Emits the audit chain head (rows, last id, head hash) as a signed audit.checkpoint webhook and records it; with due_after, only when the last checkpoint is older';

-- The checkpoints given to verify_audit_log(): one object or an array, each
-- the event's data or the whole webhook body; in last_id order.
CREATE FUNCTION retailflow.audit_checkpoints(checkpoint jsonb)
RETURNS TABLE (last_id bigint, head_hash bytea, label text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb;
    d jsonb;
BEGIN
    FOR c IN SELECT CASE WHEN jsonb_typeof(checkpoint) = 'array' THEN e ELSE checkpoint END
             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(checkpoint) = 'array' THEN checkpoint
                                            ELSE jsonb_build_array(checkpoint) END) e LOOP
        d := CASE WHEN jsonb_typeof(c) = 'object' AND c ? 'data' AND c ->> 'type' = 'audit.checkpoint'
                  THEN c -> 'data' ELSE c END;
        IF jsonb_typeof(d) IS DISTINCT FROM 'object' OR jsonb_typeof(d -> 'last_id') IS DISTINCT FROM 'number'
           OR (d ->> 'last_id') !~ '^[0-9]{1,18}$' OR coalesce(d ->> 'head_hash', '') !~ '^[0-9a-f]{64}$' THEN
            RAISE EXCEPTION 'invalid audit checkpoint: %', left(c::text, 200)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A checkpoint is the data of an audit.checkpoint event (or the whole webhook body): {"last_id": N, "head_hash": "<64 hex digits>", ...}; several are given as a JSON array.',
                      HINT = 'Pass the checkpoints your receivers stored, after verifying their webhook signatures.';
        END IF;
        IF (d ->> 'last_id')::bigint = 0 AND d ->> 'head_hash' <> repeat('0', 64) THEN
            RAISE EXCEPTION 'invalid audit checkpoint: %', left(c::text, 200)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A checkpoint of the empty log (last_id 0) has the zero hash.';
        END IF;
        last_id := (d ->> 'last_id')::bigint;
        head_hash := decode(d ->> 'head_hash', 'hex');
        label := coalesce('the checkpoint taken at ' || (d ->> 'taken_at'), 'a checkpoint');
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.audit_checkpoints(jsonb) IS
  'Internal: the checkpoints given to verify_audit_log() (data or webhook bodies, one or an array), validated';

-- Recomputes the chain in id order and reports the first broken link; with
-- checkpoints (what the receivers of audit.checkpoint stored), also a log
-- that no longer extends one of them: rows removed at the end with the head
-- rewound, or the chain recomputed after a forged row.
CREATE FUNCTION retailflow.verify_audit_log(
    checkpoint jsonb DEFAULT NULL,
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
    cp_id bigint[] := '{}';      -- the checkpoints, in last_id order
    cp_hash bytea[];
    cp_label text[];
    k integer := 1;
    matched bigint := 0;
BEGIN
    ok := true;
    rows_checked := 0;
    IF checkpoint IS NOT NULL THEN
        SELECT coalesce(array_agg(c.last_id ORDER BY c.last_id), '{}'), array_agg(c.head_hash ORDER BY c.last_id),
               array_agg(c.label ORDER BY c.last_id)
          INTO cp_id, cp_hash, cp_label
        FROM retailflow.audit_checkpoints(checkpoint) c WHERE c.last_id > 0;
    END IF;
    FOR r IN SELECT * FROM retailflow.audit_log ORDER BY id LOOP
        rows_checked := rows_checked + 1;
        IF r.prev_hash IS DISTINCT FROM prev THEN
            ok := false; first_broken_id := r.id;
            detail := format('Row %s does not link to the row before it (%s): a row was removed, inserted or rehashed.',
                             r.id, CASE WHEN last_id = 0 THEN 'the start of the chain' ELSE 'row ' || last_id END);
            RETURN;
        END IF;
        IF r.hash IS DISTINCT FROM sha256(prev || retailflow.audit_content(r.id, r.logged_at, r.action, r.entity,
                                          r.entity_id, r.odoo_user_id, r.db_role, r.before, r.after,
                                          r.application_name, r.backend_pid)) THEN
            ok := false; first_broken_id := r.id;
            detail := format('Row %s was modified: its content no longer matches its hash.', r.id);
            RETURN;
        END IF;
        -- checkpoints passed without their row: rows were removed (and the chain relinked)
        IF k <= cardinality(cp_id) AND cp_id[k] < r.id THEN
            ok := false; first_broken_id := cp_id[k];
            detail := format('Row %s, which %s names, is missing: rows were removed and the chain recomputed around them.',
                             cp_id[k], cp_label[k]);
            RETURN;
        END IF;
        WHILE k <= cardinality(cp_id) AND cp_id[k] = r.id LOOP
            IF cp_hash[k] IS DISTINCT FROM r.hash THEN
                ok := false; first_broken_id := r.id;
                detail := format('Row %s differs from %s: the chain was recomputed after a row at or before it was changed%s.',
                                 r.id, cp_label[k],
                                 CASE WHEN matched > 0 THEN format(' (after row %s, which matches an earlier checkpoint)', matched)
                                      ELSE '' END);
                RETURN;
            END IF;
            matched := r.id;
            k := k + 1;
        END LOOP;
        prev := r.hash;
        last_id := r.id;
    END LOOP;
    IF k <= cardinality(cp_id) THEN
        ok := false; first_broken_id := last_id + 1;
        detail := format('The log ends at row %s, but %s names row %s: rows at the end were removed and the chain head rewound.',
                         last_id, cp_label[k], cp_id[k]);
        RETURN;
    END IF;
    SELECT * INTO h FROM retailflow.audit_head WHERE singleton;
    IF h.last_id IS DISTINCT FROM last_id OR h.last_hash IS DISTINCT FROM prev THEN
        ok := false; first_broken_id := last_id + 1;
        detail := format('The chain head names row %s but the log ends at row %s: rows at the end were removed.',
                         h.last_id, last_id);
        RETURN;
    END IF;
    detail := format('%s rows, chain intact%s.', rows_checked,
                     CASE WHEN cardinality(cp_id) > 0 THEN format(', extends %s checkpoint%s', cardinality(cp_id),
                                                               CASE WHEN cardinality(cp_id) > 1 THEN 's' ELSE '' END)
                          WHEN checkpoint IS NOT NULL THEN ', extends the checkpoint of the empty log'
                          ELSE '' END);
END
$$;
COMMENT ON FUNCTION retailflow.verify_audit_log(jsonb) IS
  'Recomputes the audit log''s SHA-256 chain and checks it extends the given audit.checkpoint(s); ok is false and first_broken_id names the first row that differs when it was tampered with';

REVOKE ALL ON TABLE retailflow.audit_log FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.audit_head FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.audit(text, text, bigint, jsonb, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.verify_audit_log(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.audit_checkpoint(interval) FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.audit_checkpoint FROM PUBLIC;
REVOKE ALL ON SEQUENCE retailflow.audit_checkpoint_id_seq FROM PUBLIC;
