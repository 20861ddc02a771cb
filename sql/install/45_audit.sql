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
                       NEW.entity_id, NEW.odoo_user_id, NEW.db_role, NEW.before, NEW.after,
                       NEW.application_name, NEW.backend_pid));
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
                                          r.entity_id, r.odoo_user_id, r.db_role, r.before, r.after,
                                          r.application_name, r.backend_pid)) THEN
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
