-- audit: the audit chain head is protected like the log and anchored outside
-- the database.  audit_checkpoint() records the head and emits it as an
-- audit.checkpoint event (signed by the workers like every webhook);
-- verify_audit_log(checkpoint) reports a log that no longer extends a
-- checkpoint (rows removed at the end with the head rewound, a chain
-- recomputed after a forged row) and names the first row that differs.
-- The administrator takes checkpoints, a reader verifies, the superuser tampers.
CREATE DATABASE rf_t_audit TEMPLATE rf_empty OWNER rf_odoo;
\c rf_t_audit postgres
SET client_min_messages = warning;
SELECT count(retailflow.audit('note', 'test', g, NULL, jsonb_build_object('n', g))) AS appended FROM generate_series(1, 10) g;
-- the head moves only from the log's insert trigger, one row at a time, even for its owner
SELECT rft.err('UPDATE retailflow.audit_head SET last_id = 5');
SELECT rft.err($$UPDATE retailflow.audit_head SET last_hash = '\x00'$$);
SELECT rft.err('UPDATE retailflow.audit_head SET last_id = last_id + 1');
SELECT rft.err('DELETE FROM retailflow.audit_head');
SELECT rft.err('TRUNCATE retailflow.audit_head');
SELECT last_id FROM retailflow.audit_head;

-- a checkpoint on demand, by the administrator: recorded and emitted
\c - rf_admin
SELECT retailflow.audit_checkpoint() - 'taken_at' - 'head_hash' - 'event_id' - 'checkpoint_id' AS checkpoint;
SELECT c.row_count, c.last_id, c.head_hash = h.last_hash AS head, c.scheduled, c.taken_by, o.event_type, o.model,
       o.data ->> 'head_hash' = encode(c.head_hash, 'hex') AS event_carries_head
FROM retailflow.audit_checkpoint c JOIN retailflow.outbox o ON o.id = c.event_id, retailflow.audit_head h;
-- the worker's call: not due while the last checkpoint is recent
SELECT retailflow.audit_checkpoint(interval '1 hour') IS NULL AS not_due;
SELECT (retailflow.audit_checkpoint(interval '1 microsecond') ->> 'scheduled')::boolean AS due_and_scheduled;
SELECT rft.err($$SELECT retailflow.audit_checkpoint(interval '-1 s')$$);
-- checkpoints are append-only; Odoo's role and readers cannot take one
SELECT rft.err('DELETE FROM retailflow.audit_checkpoint');
\c - postgres
SELECT rft.err('UPDATE retailflow.audit_checkpoint SET last_id = 0');
SELECT rft.err('TRUNCATE retailflow.audit_checkpoint');
\c - rf_odoo
SELECT rft.err('SELECT retailflow.audit_checkpoint()');
SELECT count(*) AS checkpoints_readable FROM retailflow.audit_checkpoint;

-- what a receiver stored: the event's data, or the whole webhook body
\c - postgres
SELECT data AS cp10 FROM retailflow.outbox WHERE event_type = 'audit.checkpoint' ORDER BY id LIMIT 1 \gset
SELECT jsonb_build_object('type', 'audit.checkpoint', 'timestamp', '2026-01-01T00:00:00Z', 'data', :'cp10'::jsonb) AS body10 \gset
SELECT count(retailflow.audit('note', 'test', g, NULL, jsonb_build_object('n', g))) AS appended FROM generate_series(11, 15) g;
SELECT retailflow.audit_checkpoint() AS cp15 \gset
\c - rf_reader
SELECT * FROM retailflow.verify_audit_log();
SELECT * FROM retailflow.verify_audit_log(:'cp10');
SELECT * FROM retailflow.verify_audit_log(:'body10');
SELECT * FROM retailflow.verify_audit_log(jsonb_build_array(:'cp10'::jsonb, :'cp15'::jsonb));
SELECT * FROM retailflow.verify_audit_log('{"last_id": 0, "head_hash": "0000000000000000000000000000000000000000000000000000000000000000"}');
-- bad checkpoints are refused
SELECT rft.err($$SELECT * FROM retailflow.verify_audit_log('{"last_id": 3}')$$);
SELECT rft.err($$SELECT * FROM retailflow.verify_audit_log('[{"last_id": "3", "head_hash": "00"}]')$$);
SELECT rft.err($$SELECT * FROM retailflow.verify_audit_log('"checkpoint"')$$);
-- a checkpoint that does not match (another database's, or forged) is reported
SELECT ok, first_broken_id, regexp_replace(detail, 'taken at [0-9T:.-]+Z', 'taken at T') AS detail FROM retailflow.verify_audit_log(jsonb_set(:'cp10', '{head_hash}', to_jsonb(repeat('ab', 32))));

-- the superuser removes rows 13-15 and rewinds the head to row 12: the chain
-- alone verifies, the checkpoint of row 15 does not
\c - postgres
ALTER TABLE retailflow.audit_log DISABLE TRIGGER USER;
ALTER TABLE retailflow.audit_head DISABLE TRIGGER USER;
DELETE FROM retailflow.audit_log WHERE id > 12;
UPDATE retailflow.audit_head SET last_id = 12, last_hash = (SELECT hash FROM retailflow.audit_log WHERE id = 12);
\c - rf_reader
SELECT ok, rows_checked FROM retailflow.verify_audit_log();
SELECT ok, first_broken_id, regexp_replace(detail, 'taken at [0-9T:.-]+Z', 'taken at T') AS detail FROM retailflow.verify_audit_log(:'cp15');
SELECT ok FROM retailflow.verify_audit_log(:'cp10') AS earlier_checkpoint_still_extended;
-- ... then appends new rows past it: row 15 differs from the checkpoint
\c - postgres
ALTER TABLE retailflow.audit_log ENABLE TRIGGER USER;
ALTER TABLE retailflow.audit_head ENABLE TRIGGER USER;
SELECT count(retailflow.audit('note', 'rewritten', g)) AS appended FROM generate_series(13, 16) g;
\c - rf_reader
SELECT ok FROM retailflow.verify_audit_log() AS chain_alone;
SELECT ok, first_broken_id, regexp_replace(detail, 'taken at [0-9T:.-]+Z', 'taken at T') AS detail FROM retailflow.verify_audit_log(jsonb_build_array(:'cp10'::jsonb, :'cp15'::jsonb));

-- the superuser forges row 5 and recomputes every later hash and the head:
-- the chain alone verifies; row 10 (the earliest checkpoint) differs
\c - postgres
ALTER TABLE retailflow.audit_log DISABLE TRIGGER USER;
ALTER TABLE retailflow.audit_head DISABLE TRIGGER USER;
UPDATE retailflow.audit_log SET after = '{"n": 500}' WHERE id = 5;
DO $$
DECLARE
    r record;
    prev bytea := decode(repeat('00', 32), 'hex');
BEGIN
    FOR r IN SELECT * FROM retailflow.audit_log ORDER BY id LOOP
        prev := sha256(prev || retailflow.audit_content(r.id, r.logged_at, r.action, r.entity, r.entity_id,
                       r.odoo_user_id, r.db_role, r.before, r.after, r.application_name, r.backend_pid));
        UPDATE retailflow.audit_log SET prev_hash = coalesce((SELECT a.hash FROM retailflow.audit_log a WHERE a.id = r.id - 1),
                                                             decode(repeat('00', 32), 'hex')), hash = prev
         WHERE id = r.id;
    END LOOP;
    UPDATE retailflow.audit_head SET last_hash = prev;
END
$$;
ALTER TABLE retailflow.audit_log ENABLE TRIGGER USER;
ALTER TABLE retailflow.audit_head ENABLE TRIGGER USER;
\c - rf_reader
SELECT ok, rows_checked FROM retailflow.verify_audit_log();
SELECT ok, first_broken_id, regexp_replace(detail, 'taken at [0-9T:.-]+Z', 'taken at T') AS detail FROM retailflow.verify_audit_log(:'cp10');
\c rf_regression postgres
DROP DATABASE rf_t_audit;
