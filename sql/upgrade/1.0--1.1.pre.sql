-- 1.0 -> 1.1, before the functions are replaced: least privilege (group
-- roles, audit rows naming the session), conflicts judged at commit.

-- the triggers on Odoo's tables come off (1.0's detach()); the registry is
-- rebuilt with 1.1's definitions (no WHEN clauses, conflicts judged at
-- commit) and the post part attaches them again
SELECT count(*) AS triggers_detached FROM retailflow.detach();
DELETE FROM retailflow.managed_trigger;
ALTER TABLE retailflow.managed_trigger ADD COLUMN constraint_trigger boolean NOT NULL DEFAULT false;

-- audit rows name the session's application and backend; 1.0 rows keep their hash
ALTER TABLE retailflow.audit_log ADD COLUMN application_name text, ADD COLUMN backend_pid integer;
DROP FUNCTION retailflow.audit_content(bigint, timestamptz, text, text, bigint, integer, name, jsonb, jsonb);

-- replaced: odoo_sql() by odoo_query(); check_requirements_met() by check_missing_relations()
DROP FUNCTION retailflow.odoo_sql(text);
DROP FUNCTION retailflow.check_requirements_met(text[]);
-- the enforcement's slow path takes the rules the trigger matched
DROP FUNCTION retailflow.approval_enforce_missing(text, integer, integer, text);

-- an approval of an inventory adjustment is used once (approval_request.consumed_at)
ALTER TABLE retailflow.approval_request ADD COLUMN consumed_at timestamptz;
DROP INDEX retailflow.approval_request_live_idx;
CREATE UNIQUE INDEX approval_request_live_idx ON retailflow.approval_request (document_type, record_id, rule_id)
    WHERE state IN ('pending', 'escalated') OR state = 'approved' AND consumed_at IS NULL;
-- an approval covers the document's amount when it was requested, no more
ALTER TABLE retailflow.approval_request ADD COLUMN amount numeric;

-- issue 15: the audit chain head anchored outside the database.
-- verify_audit_log() takes checkpoints (a new signature: the old one goes)
DROP FUNCTION retailflow.verify_audit_log();
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
