-- 40_approvals.sql: approval policy for Odoo documents.
--   retailflow.approval_rule        who must approve which document, in what order, within what time
--   retailflow.required_approvals() the rules a document (or a what-if set of facts) matches (C)
--   retailflow.approval_request     one row per approval a document needs
--   retailflow.approve() / reject() decisions with segregation of duties
--   retailflow.request_approvals()  creates the pending requests a document needs
--   enforcement triggers on sale_order, purchase_order, account_move, stock_quant
--   retailflow.escalate_overdue()   SLA escalation
-- Decisions, rule changes and enforcement go to retailflow.audit() (45_audit.sql);
-- events go to the outbox through retailflow.emit().

INSERT INTO retailflow.event_type (name, description) VALUES
  ('approval.requested', 'A document needs an approval: a pending approval request was created'),
  ('approval.approved', 'An approval request was approved'),
  ('approval.rejected', 'An approval request was rejected'),
  ('approval.escalated', 'A pending approval request passed its SLA and was escalated'),
  ('approval.enforcement_refused', 'A document state change went through without its approvals (log mode) or was refused');

CREATE TABLE retailflow.approval_rule (
    id                   serial PRIMARY KEY,
    name                 text NOT NULL,
    document_type        text NOT NULL,
    company_id           integer,            -- NULL: every company
    amount_min           numeric,            -- matches amount >= amount_min (company currency)
    amount_max           numeric,            -- matches amount <  amount_max
    max_discount         numeric,            -- matches a line discount >  max_discount (percent)
    min_margin           numeric,            -- matches a margin        <  min_margin   (percent)
    product_category_id  integer,            -- matches a product in this category or its children
    partner_category_ids integer[],          -- matches a partner with any of these tags
    min_risk_score       numeric,            -- matches risk score >= min_risk_score
    group_id             integer NOT NULL,   -- res_groups id of the approvers
    level                integer NOT NULL DEFAULT 1,
    sequence             integer NOT NULL DEFAULT 10,
    sla                  interval,
    active               boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE retailflow.approval_rule IS
  'Approval rules: document type, company, conditions, approver group, level, SLA';

-- BEFORE INSERT/UPDATE: validates a rule with clear errors.  SECURITY
-- DEFINER so that an approval administrator need not read Odoo's tables; it
-- reads them through odoo_query(), as the owner of Odoo's tables.
CREATE FUNCTION retailflow.approval_rule_validate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ok boolean;
    missing integer;
BEGIN
    IF NEW.name IS NULL OR btrim(NEW.name) = '' THEN
        RAISE EXCEPTION 'approval rule name must not be empty'
            USING ERRCODE = 'null_value_not_allowed', DETAIL = 'Every rule has a name shown to approvers.';
    END IF;
    IF NEW.document_type IS NULL OR NEW.document_type NOT IN
       ('sale.order', 'sale.order.line', 'purchase.order', 'account.move', 'stock.quant') THEN
        RAISE EXCEPTION 'unknown approval document type "%"', NEW.document_type
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Rules apply to sale.order, sale.order.line (price overrides), purchase.order, account.move (refunds) or stock.quant (inventory adjustments).';
    END IF;
    IF NEW.amount_min < 0 OR NEW.amount_max < 0 THEN
        RAISE EXCEPTION 'approval rule amounts must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('amount_min is %s and amount_max is %s.', NEW.amount_min, NEW.amount_max),
                  HINT = 'Amounts are absolute values in company currency; refunds are compared by their size.';
    END IF;
    IF NEW.amount_min >= NEW.amount_max THEN
        RAISE EXCEPTION 'inverted amount range: amount_min % is not below amount_max %', NEW.amount_min, NEW.amount_max
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A rule matches amounts >= amount_min and < amount_max, so this rule could never match.';
    END IF;
    IF NEW.max_discount < 0 OR NEW.max_discount > 100 THEN
        RAISE EXCEPTION 'max_discount must be a percentage between 0 and 100, not %', NEW.max_discount
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The rule matches documents with a line discount above this percentage.';
    END IF;
    IF NEW.min_margin < 0 OR NEW.min_margin > 100 THEN
        RAISE EXCEPTION 'min_margin must be a percentage between 0 and 100, not %', NEW.min_margin
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The rule matches documents whose margin is below this percentage.';
    END IF;
    IF NEW.min_risk_score < 0 THEN
        RAISE EXCEPTION 'min_risk_score must not be negative, not %', NEW.min_risk_score
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.level IS NULL OR NEW.level < 1 THEN
        RAISE EXCEPTION 'approval level must be 1 or more, not %', NEW.level
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Level 1 is decided first, then level 2, and so on.';
    END IF;
    IF NEW.sla <= interval '0' THEN
        RAISE EXCEPTION 'approval SLA must be positive, not %', NEW.sla
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave sla NULL for no deadline.';
    END IF;
    IF (NEW.min_margin IS NOT NULL AND NEW.document_type NOT IN ('sale.order', 'sale.order.line'))
       OR (NEW.max_discount IS NOT NULL AND NEW.document_type NOT IN ('sale.order', 'sale.order.line', 'purchase.order'))
       OR (NEW.product_category_id IS NOT NULL AND NEW.document_type = 'account.move') THEN
        RAISE EXCEPTION 'this condition does not apply to % documents', NEW.document_type
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Margins apply to sale orders and lines, discounts to sale and purchase orders, product categories to everything but refunds.';
    END IF;
    IF NOT retailflow.odoo_tables_exist('{res_groups}') THEN
        RAISE EXCEPTION 'odoo table "res_groups" was not found'
            USING ERRCODE = 'undefined_table', DETAIL = 'Approval rules name Odoo user groups.',
                  HINT = 'Check retailflow.odoo_schema (SELECT * FROM retailflow.status()).';
    END IF;
    IF NEW.group_id IS NULL THEN
        RAISE EXCEPTION 'approval rule group_id must not be null'
            USING ERRCODE = 'null_value_not_allowed', DETAIL = 'Every rule names the Odoo group (res_groups.id) whose members approve.';
    END IF;
    SELECT t.ok INTO ok
      FROM retailflow.odoo_query('SELECT EXISTS (SELECT 1 FROM {odoo}.res_groups WHERE id = $1)', NEW.group_id) AS t(ok boolean);
    IF NOT ok THEN
        RAISE EXCEPTION 'res_groups % does not exist', NEW.group_id
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'The approver group must be an Odoo group (res_groups.id).',
                  HINT = 'Resolve groups by XML id: SELECT res_id FROM ir_model_data WHERE model = ''res.groups'' AND module = ''purchase'' AND name = ''group_purchase_manager''.';
    END IF;
    IF NEW.company_id IS NOT NULL THEN
        SELECT t.ok INTO ok
          FROM retailflow.odoo_query('SELECT EXISTS (SELECT 1 FROM {odoo}.res_company WHERE id = $1)', NEW.company_id) AS t(ok boolean);
        IF NOT ok THEN
            RAISE EXCEPTION 'res_company % does not exist', NEW.company_id
                USING ERRCODE = 'foreign_key_violation', HINT = 'Leave company_id NULL for a rule of every company.';
        END IF;
    END IF;
    IF NEW.product_category_id IS NOT NULL THEN
        SELECT t.ok INTO ok
          FROM retailflow.odoo_query('SELECT EXISTS (SELECT 1 FROM {odoo}.product_category WHERE id = $1)',
                                     NEW.product_category_id) AS t(ok boolean);
        IF NOT ok THEN
            RAISE EXCEPTION 'product_category % does not exist', NEW.product_category_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF NEW.partner_category_ids IS NOT NULL THEN
        IF cardinality(NEW.partner_category_ids) = 0 OR array_position(NEW.partner_category_ids, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'partner_category_ids must be NULL or a non-empty array without NULLs'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT t.id INTO missing
          FROM retailflow.odoo_query('SELECT min(t) FROM unnest($1) t WHERE NOT EXISTS (SELECT 1 FROM {odoo}.res_partner_category c WHERE c.id = t)',
                                     NEW.partner_category_ids) AS t(id integer);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'res_partner_category % does not exist', missing
                USING ERRCODE = 'foreign_key_violation', DETAIL = 'Customer segments are Odoo partner tags.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- AFTER row: every rule change goes to the audit log (SECURITY DEFINER: the
-- administrator who changes a rule may not write the log).
CREATE FUNCTION retailflow.approval_rule_audit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retailflow.audit('approval_rule.' || lower(TG_OP), 'retailflow.approval_rule',
                             CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
                             CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                             CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER approval_rule_validate BEFORE INSERT OR UPDATE ON retailflow.approval_rule
    FOR EACH ROW EXECUTE FUNCTION retailflow.approval_rule_validate();
CREATE TRIGGER approval_rule_audit AFTER INSERT OR UPDATE OR DELETE ON retailflow.approval_rule
    FOR EACH ROW EXECUTE FUNCTION retailflow.approval_rule_audit();
-- Every backend's cached rules are invalidated when the rules change.
CREATE TRIGGER approval_rule_cache_inval AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retailflow.approval_rule
    FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger();
-- ... and when the category tree, the partner tags the cached rules name, or product
-- costs (ir_property in Odoo 17; product_product already has a trigger) change.
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition)
SELECT t, 'retailflow_approval_cache_inval', 'approvals rule cache',
       'AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()'
FROM unnest(ARRAY['product_category', 'res_partner_category', 'ir_property']) AS t;

-- A named row type rather than OUT parameters: the parser and the function
-- get it from the type cache instead of rebuilding it from pg_proc per call.
CREATE TYPE retailflow.approval_requirement AS (
    rule_id integer, rule_name text, level integer, sequence integer,
    group_id integer, sla interval, reason text);
COMMENT ON TYPE retailflow.approval_requirement IS
  'One approval a document needs: the rule, its level and order, the approver group, the SLA and the reason in words';

CREATE FUNCTION retailflow.required_approvals(document_type text, record_id integer)
RETURNS SETOF retailflow.approval_requirement
AS 'MODULE_PATHNAME', 'rf_required_approvals'
LANGUAGE C STABLE ROWS 5;
COMMENT ON FUNCTION retailflow.required_approvals(text, integer) IS
  'Every active approval rule the Odoo document matches, with the reason in words, in approval order';

CREATE FUNCTION retailflow.required_approvals(document_type text, facts jsonb)
RETURNS SETOF retailflow.approval_requirement
AS 'MODULE_PATHNAME', 'rf_required_approvals_facts'
LANGUAGE C STABLE ROWS 5;
COMMENT ON FUNCTION retailflow.required_approvals(text, jsonb) IS
  'What-if: the rules a document with these facts would match (keys: company_id, amount, discount, margin, product_category_ids, partner_category_ids, risk_score)';

CREATE FUNCTION retailflow.approval_active_rules(document_type text)
RETURNS integer
AS 'MODULE_PATHNAME', 'rf_approval_active_rules'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.approval_active_rules(text) IS
  'How many active approval rules a document type has (from the per-backend rule cache)';

CREATE TABLE retailflow.approval_request (
    id             bigserial PRIMARY KEY,
    document_type  text NOT NULL,
    record_id      integer NOT NULL,
    rule_id        integer NOT NULL REFERENCES retailflow.approval_rule (id) ON DELETE RESTRICT,
    level          integer NOT NULL,
    group_id       integer NOT NULL,
    reason         text NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'approved', 'rejected', 'escalated', 'cancelled')),
    requested_by   integer,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    due_at         timestamptz,
    decided_by     integer,
    decided_at     timestamptz,
    comment        text,
    -- stock.quant: when an approved count was applied (an approval is used
    -- once); any type: when a request for a larger amount superseded it
    consumed_at    timestamptz,
    -- the document's amount when requested: the approval covers no more
    amount         numeric
);
COMMENT ON TABLE retailflow.approval_request IS
  'Approvals documents need: pending, approved, rejected, escalated or cancelled';
COMMENT ON COLUMN retailflow.approval_request.consumed_at IS
  'When an inventory adjustment used this approval (stock.quant), or a request for a larger amount superseded it; it approves nothing after that';
COMMENT ON COLUMN retailflow.approval_request.amount IS
  'The document''s amount (company currency) when the approval was requested: the approval does not cover a larger amount';
-- at most one open or unused approved request per document and rule
CREATE UNIQUE INDEX approval_request_live_idx ON retailflow.approval_request (document_type, record_id, rule_id)
    WHERE state IN ('pending', 'escalated') OR state = 'approved' AND consumed_at IS NULL;
CREATE INDEX approval_request_doc_idx ON retailflow.approval_request (document_type, record_id, level);
CREATE INDEX approval_request_due_idx ON retailflow.approval_request (due_at) WHERE state = 'pending';

-- The acting Odoo user: the explicit argument, else retailflow.odoo_user_id, else fallback.
CREATE FUNCTION retailflow.acting_user(explicit integer, fallback integer DEFAULT NULL)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(explicit, nullif(nullif(current_setting('retailflow.odoo_user_id', true), ''), '0')::integer, fallback)
$$;

-- Creates the pending requests a document needs (one per matching rule
-- without a live request); returns the requests created.
CREATE FUNCTION retailflow.approval_document_amount(document_type text, record_id integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'rf_approval_document_amount'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.approval_document_amount(text, integer) IS
  'The amount approval rules compare for a document (company currency); NULL when its type has none';

-- Whether an approval granted for `approved` still covers the document's
-- amount now (NULL on either side: amounts play no part).  No SET clause, so
-- that it is inlined; every name is schema-qualified.
CREATE FUNCTION retailflow.approval_covers(approved numeric, amount_now double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN approved IS NULL OR amount_now IS NULL
       OR pg_catalog.round(amount_now::numeric, 2) OPERATOR(pg_catalog.<=) approved;
COMMENT ON FUNCTION retailflow.approval_covers(numeric, double precision) IS
  'Internal: whether an approval granted for an amount covers the document''s amount now';

CREATE FUNCTION retailflow.request_approvals(document_type text, record_id integer, requested_by integer DEFAULT NULL)
RETURNS SETOF retailflow.approval_request
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m record;
    r retailflow.approval_request;
    uid integer := retailflow.acting_user(requested_by);
    amt numeric := round(retailflow.approval_document_amount(request_approvals.document_type,
                                                             request_approvals.record_id)::numeric, 2);
BEGIN
    FOR m IN SELECT * FROM retailflow.required_approvals(request_approvals.document_type, request_approvals.record_id) LOOP
        -- an approval granted for less than the document's amount now is superseded by a new request
        FOR r IN UPDATE retailflow.approval_request q SET consumed_at = now()
                  WHERE q.document_type = request_approvals.document_type AND q.record_id = request_approvals.record_id
                    AND q.rule_id = m.rule_id AND q.state = 'approved' AND q.consumed_at IS NULL
                    AND NOT retailflow.approval_covers(q.amount, amt)
                 RETURNING q.*
        LOOP
            PERFORM retailflow.audit('approval.superseded', 'retailflow.approval_request', r.id, NULL,
                                     jsonb_build_object('approved_amount', r.amount, 'amount', amt), uid);
        END LOOP;
        r := NULL;
        INSERT INTO retailflow.approval_request (document_type, record_id, rule_id, level, group_id, reason,
                                                 requested_by, due_at, amount)
        VALUES (request_approvals.document_type, request_approvals.record_id, m.rule_id, m.level, m.group_id,
                m.reason, uid, now() + m.sla, amt)
        ON CONFLICT (document_type, record_id, rule_id)
            WHERE state IN ('pending', 'escalated') OR state = 'approved' AND consumed_at IS NULL DO NOTHING
        RETURNING * INTO r;
        IF r.id IS NOT NULL THEN
            PERFORM retailflow.emit('approval.requested', r.document_type, r.record_id,
                jsonb_build_object('request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                                   'group_id', r.group_id, 'reason', r.reason, 'due_at', r.due_at));
            PERFORM retailflow.audit('approval.requested', 'retailflow.approval_request', r.id, NULL, to_jsonb(r), uid);
            RETURN NEXT r;
            r := NULL;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.request_approvals(text, integer, integer) IS
  'Creates a pending approval request for every rule the document matches that has none yet';

-- Creates pending requests for rules the enforcement trigger matched itself
-- (inventory adjustments: the facts are the move's); returns how many.
CREATE FUNCTION retailflow.request_matched(document_type text, record_id integer, requested_by integer, matched jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m record;
    r retailflow.approval_request;
    n integer := 0;
BEGIN
    FOR m IN SELECT * FROM jsonb_to_recordset(matched) AS j(rule_id integer, level integer, group_id integer,
                                                            sla text, reason text, amount numeric) LOOP
        INSERT INTO retailflow.approval_request (document_type, record_id, rule_id, level, group_id, reason,
                                                 requested_by, due_at, amount)
        VALUES (request_matched.document_type, request_matched.record_id, m.rule_id, m.level, m.group_id,
                m.reason, requested_by, now() + m.sla::interval, m.amount)
        ON CONFLICT (document_type, record_id, rule_id)
            WHERE state IN ('pending', 'escalated') OR state = 'approved' AND consumed_at IS NULL DO NOTHING
        RETURNING * INTO r;
        IF r.id IS NOT NULL THEN
            n := n + 1;
            PERFORM retailflow.emit('approval.requested', r.document_type, r.record_id,
                jsonb_build_object('request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                                   'group_id', r.group_id, 'reason', r.reason, 'due_at', r.due_at));
            PERFORM retailflow.audit('approval.requested', 'retailflow.approval_request', r.id, NULL, to_jsonb(r), requested_by);
            r := NULL;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION retailflow.request_matched(text, integer, integer, jsonb) IS
  'Internal: pending requests for the rules the enforcement trigger matched (called by approval_enforce_missing)';
REVOKE ALL ON FUNCTION retailflow.request_matched(text, integer, integer, jsonb) FROM PUBLIC;

-- An inventory adjustment applied on approvals uses them: the next count of
-- the quant needs its own.  Called by the enforcement trigger (as the
-- extension's owner) once the approved requests let the move through.
CREATE FUNCTION retailflow.approval_consume(document_type text, record_id integer, rule_ids integer[],
                                            move_id integer, odoo_user_id integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r retailflow.approval_request;
    n integer := 0;
BEGIN
    FOR r IN UPDATE retailflow.approval_request q SET consumed_at = now()
              WHERE q.document_type = approval_consume.document_type AND q.record_id = approval_consume.record_id
                AND q.rule_id = ANY (rule_ids) AND q.state = 'approved' AND q.consumed_at IS NULL
             RETURNING q.*
    LOOP
        n := n + 1;
        PERFORM retailflow.audit('approval.consumed', 'retailflow.approval_request', r.id, NULL,
                                 jsonb_build_object('document_type', r.document_type, 'record_id', r.record_id,
                                                    'rule_id', r.rule_id, 'level', r.level, 'move_id', move_id),
                                 retailflow.acting_user(NULL, approval_consume.odoo_user_id));
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION retailflow.approval_consume(text, integer, integer[], integer, integer) IS
  'Internal: marks the approvals an applied inventory adjustment used (approval_request.consumed_at), audited';
REVOKE ALL ON FUNCTION retailflow.approval_consume(text, integer, integer[], integer, integer) FROM PUBLIC;

-- approve() and reject(): one decision with segregation of duties.
CREATE FUNCTION retailflow.decide(request_id bigint, user_id integer, comment text, approve boolean)
RETURNS retailflow.approval_request
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    req retailflow.approval_request;
    before_row retailflow.approval_request;
    user_ok boolean;
    in_group boolean;
    creator integer;
    blocking text;
    tbl text;
BEGIN
    IF request_id IS NULL OR user_id IS NULL THEN
        RAISE EXCEPTION 'request_id and user_id must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'A decision names the request and the Odoo user (res_users.id) who takes it.';
    END IF;
    -- Lock the request: a second approver deciding the same request waits, then sees the decision.
    SELECT * INTO req FROM retailflow.approval_request r WHERE r.id = decide.request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'approval request % does not exist', request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    before_row := req;
    IF req.state NOT IN ('pending', 'escalated') THEN
        RAISE EXCEPTION 'approval request % is already %', request_id, req.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It was %s by user %s.', req.state, coalesce(req.decided_by::text, 'nobody')),
                  HINT = 'Only pending or escalated requests can be decided.';
    END IF;
    -- Odoo's tables are read through odoo_query(): as the owner of Odoo's tables, never as this function's owner
    SELECT t.ok INTO user_ok
      FROM retailflow.odoo_query('SELECT coalesce(bool_or(active), false) FROM {odoo}.res_users WHERE id = $1', user_id) AS t(ok boolean);
    IF NOT user_ok THEN
        RAISE EXCEPTION 'user % is not an active odoo user', user_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Approvers must be active res_users.';
    END IF;
    IF user_id = req.requested_by THEN
        RAISE EXCEPTION 'user % requested this approval and cannot decide it', user_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Segregation of duties: the requester of an approval never decides it.';
    END IF;
    tbl := CASE req.document_type WHEN 'sale.order.line' THEN 'sale_order_line'
                                  ELSE replace(req.document_type, '.', '_') END;
    SELECT t.uid INTO creator
      FROM retailflow.odoo_query(format('SELECT create_uid FROM {odoo}.%I WHERE id = $1', tbl), req.record_id) AS t(uid integer);
    IF user_id = creator THEN
        RAISE EXCEPTION 'user % created % % and cannot approve it', user_id, req.document_type, req.record_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Segregation of duties: the creator of a document never decides its approvals.';
    END IF;
    SELECT t.ok INTO in_group
      FROM retailflow.odoo_query('SELECT EXISTS (SELECT 1 FROM {odoo}.res_groups_users_rel WHERE gid = $1 AND uid = $2)',
                                 req.group_id, user_id) AS t(ok boolean);
    IF NOT in_group THEN
        RAISE EXCEPTION 'user % is not in approver group %', user_id, req.group_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Request %s needs a member of res_groups %s (%s).', req.id, req.group_id, req.reason);
    END IF;
    SELECT string_agg(format('request %s (level %s, %s)', r.id, r.level, r.state), ', ' ORDER BY r.level, r.id)
      INTO blocking
      FROM retailflow.approval_request r
     WHERE r.document_type = req.document_type AND r.record_id = req.record_id
       AND r.level < req.level AND r.state IN ('pending', 'escalated', 'rejected');
    IF blocking IS NOT NULL THEN
        RAISE EXCEPTION 'level % of % % cannot be decided before the levels below it', req.level, req.document_type, req.record_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Still undecided or rejected: %s.', blocking),
                  HINT = 'Levels are decided in order, lowest first.';
    END IF;
    UPDATE retailflow.approval_request r
       SET state = CASE WHEN approve THEN 'approved' ELSE 'rejected' END,
           decided_by = user_id, decided_at = now(), comment = decide.comment
     WHERE r.id = req.id
    RETURNING * INTO req;
    PERFORM retailflow.audit(CASE WHEN approve THEN 'approval.approved' ELSE 'approval.rejected' END,
                             'retailflow.approval_request', req.id, to_jsonb(before_row), to_jsonb(req), user_id);
    PERFORM retailflow.emit(CASE WHEN approve THEN 'approval.approved' ELSE 'approval.rejected' END,
                            req.document_type, req.record_id,
                            jsonb_build_object('request_id', req.id, 'rule_id', req.rule_id, 'level', req.level,
                                               'decided_by', user_id, 'comment', req.comment));
    RETURN req;
END
$$;

CREATE FUNCTION retailflow.approve(request_id bigint, user_id integer, comment text DEFAULT NULL)
RETURNS retailflow.approval_request
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT retailflow.decide(request_id, user_id, comment, true) $$;
COMMENT ON FUNCTION retailflow.approve(bigint, integer, text) IS
  'Approves a request; the user must be active, in the rule''s group, not the requester or document creator, and lower levels must be approved';

CREATE FUNCTION retailflow.reject(request_id bigint, user_id integer, comment text DEFAULT NULL)
RETURNS retailflow.approval_request
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT retailflow.decide(request_id, user_id, comment, false) $$;
COMMENT ON FUNCTION retailflow.reject(bigint, integer, text) IS
  'Rejects a request, with the same segregation-of-duties checks as approve()';

-- The approvals a document still lacks: the rules it matches without an approved request.
CREATE FUNCTION retailflow.missing_approvals(document_type text, record_id integer)
RETURNS TABLE (rule_id integer, level integer, group_id integer, reason text, request_id bigint, request_state text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.rule_id, m.level, m.group_id, m.reason, q.id, q.state
      FROM retailflow.required_approvals(document_type, record_id) m
      CROSS JOIN (SELECT retailflow.approval_document_amount(document_type, record_id) AS now_amount) a
      LEFT JOIN LATERAL (SELECT r.id, CASE WHEN r.state = 'approved' AND NOT retailflow.approval_covers(r.amount, a.now_amount)
                                           THEN 'approved for less' ELSE r.state END AS state
                           FROM retailflow.approval_request r
                          WHERE r.document_type = missing_approvals.document_type
                            AND r.record_id = missing_approvals.record_id AND r.rule_id = m.rule_id
                            AND r.consumed_at IS NULL
                          ORDER BY r.state = 'approved' DESC, r.id DESC LIMIT 1) q ON true
     WHERE q.state IS DISTINCT FROM 'approved'
     ORDER BY m.level, m.sequence, m.rule_id
$$;

-- Enforcement: AFTER UPDATE trigger on Odoo tables when the state really
-- changes to the watched value (BEFORE for stock_quant, whose facts are the
-- pending inventory difference that the apply resets).  TG_ARGV[0] is the
-- document type.  A sale order's confirmation also checks the price
-- override rules (sale.order.line) of its lines, when any is active.
CREATE FUNCTION retailflow.approval_enforce()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_approval_enforce'
LANGUAGE C;
COMMENT ON FUNCTION retailflow.approval_enforce() IS
  'Enforcement trigger: checks in C that every approval a document needs is granted; the rest goes to approval_enforce_missing()';

-- The slow path of the enforcement trigger, for a document that lacks an
-- approval (or whose lines have price-override rules): names what is missing,
-- then blocks (recording the refusal through the worker, since the refusing
-- transaction rolls back) or logs and creates the pending requests.  The C
-- trigger calls it as the extension's owner; nobody else may.  matched, when
-- given, is the rules the trigger matched (an inventory adjustment's facts
-- are its move's, not the quant's, which Odoo resets while applying);
-- otherwise required_approvals() says.  rec_id may be NULL (an adjustment
-- whose quant was not found): refused or logged, with nothing to request.
CREATE FUNCTION retailflow.approval_enforce_missing(tdoc text, rec_id integer, write_uid integer, new_state text,
                                                    matched jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    mode text := coalesce(current_setting('retailflow.approval_enforcement', true), 'log');
    has_lines boolean;
    line_ids integer[];
    missing text;
    uid integer;
BEGIN
    has_lines := tdoc = 'sale.order' AND retailflow.approval_active_rules('sale.order.line') > 0;
    IF has_lines THEN
        SELECT array_agg(t.id ORDER BY t.id) INTO line_ids
          FROM retailflow.odoo_query('SELECT l.id FROM {odoo}.sale_order_line l '
                                     'WHERE l.order_id = $1 AND l.display_type IS NULL', rec_id) AS t(id integer)
         WHERE EXISTS (SELECT 1 FROM retailflow.required_approvals('sale.order.line', t.id));
    END IF;
    -- Wait for in-flight decisions on these requests, then read them committed.
    PERFORM 1 FROM retailflow.approval_request r
     WHERE r.document_type = tdoc AND r.record_id = rec_id FOR SHARE;
    IF line_ids IS NOT NULL THEN
        PERFORM 1 FROM retailflow.approval_request r
         WHERE r.document_type = 'sale.order.line' AND r.record_id = ANY (line_ids) FOR SHARE;
    END IF;
    SELECT string_agg(format('%slevel %s: %s (group %s, %s)',
                             CASE WHEN m.doc <> tdoc THEN m.doc || ' ' || m.rid || ' ' ELSE '' END,
                             m.level, m.reason, m.group_id,
                             coalesce((SELECT 'request ' || r.id || ' ' ||
                                              CASE WHEN r.consumed_at IS NOT NULL AND tdoc = 'stock.quant'
                                                   THEN 'used by an earlier count'
                                                   WHEN r.consumed_at IS NOT NULL THEN 'superseded'
                                                   WHEN r.state = 'approved' AND NOT retailflow.approval_covers(r.amount, m.amount_now)
                                                   THEN format('approved for %s, now %s', to_char(r.amount, 'FM999,999,999,990.00'),
                                                               to_char(m.amount_now, 'FM999,999,999,990.00'))
                                                   ELSE r.state END
                                         FROM retailflow.approval_request r
                                        WHERE r.document_type = m.doc AND r.record_id = m.rid AND r.rule_id = m.rule_id
                                        ORDER BY r.id DESC LIMIT 1), 'not requested')),
                      '; ' ORDER BY m.doc <> tdoc, m.rid, m.level, m.sequence, m.rule_id)
      INTO missing
      FROM (SELECT tdoc AS doc, rec_id AS rid, a.*, retailflow.approval_document_amount(tdoc, rec_id) AS amount_now
              FROM retailflow.required_approvals(tdoc, rec_id) a
            WHERE matched IS NULL
            UNION ALL
            SELECT tdoc, rec_id, j.rule_id, r.name, j.level, j.sequence, j.group_id, j.sla::interval, j.reason,
                   j.amount::double precision
              FROM jsonb_to_recordset(matched) AS j(rule_id integer, level integer, sequence integer, group_id integer,
                                                    sla text, reason text, amount numeric)
              JOIN retailflow.approval_rule r ON r.id = j.rule_id
            UNION ALL
            SELECT 'sale.order.line', lid, a.*, retailflow.approval_document_amount('sale.order.line', lid)
              FROM unnest(line_ids) lid,
                   LATERAL retailflow.required_approvals('sale.order.line', lid) a) m
     WHERE NOT EXISTS (SELECT 1 FROM retailflow.approval_request r
                        WHERE r.document_type = m.doc AND r.record_id = m.rid AND r.rule_id = m.rule_id
                          AND r.state = 'approved' AND r.consumed_at IS NULL
                          AND retailflow.approval_covers(r.amount, m.amount_now));
    IF missing IS NULL THEN
        RETURN;
    END IF;
    uid := retailflow.acting_user(NULL, write_uid);
    IF mode = 'block' THEN
        RAISE LOG 'retailflow: refused % % state change: approvals missing: %', tdoc, rec_id, missing;
        -- this transaction rolls back: the worker appends the audit row
        PERFORM retailflow.audit_after_rollback('approval.enforcement_refused', tdoc, rec_id, uid,
                                                jsonb_build_object('state', new_state, 'missing', missing,
                                                                   'mode', mode));
        RAISE EXCEPTION '% % cannot be %: approvals are missing', tdoc, coalesce(rec_id::text, '(no quant found)'),
                        CASE tdoc WHEN 'account.move' THEN 'posted' WHEN 'stock.quant' THEN 'applied' ELSE 'confirmed' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Missing approvals: %s.', missing),
                  HINT = CASE WHEN rec_id IS NULL THEN 'Count the quant first (set its inventory quantity), request its approvals, then apply.'
                              ELSE format('Create the requests with SELECT * FROM retailflow.request_approvals(%L, %s) and have them approved; a superuser may set retailflow.approval_enforcement to log.', tdoc, rec_id) END;
    END IF;
    -- log mode: let it through, create the missing requests, record it.
    IF matched IS NULL THEN
        PERFORM retailflow.request_approvals(tdoc, rec_id, uid);
    ELSIF rec_id IS NOT NULL THEN
        PERFORM retailflow.request_matched(tdoc, rec_id, uid, matched);
    END IF;
    IF line_ids IS NOT NULL THEN
        PERFORM retailflow.request_approvals('sale.order.line', lid, uid) FROM unnest(line_ids) lid;
    END IF;
    PERFORM retailflow.audit('approval.enforcement_logged', tdoc, rec_id, NULL,
                             jsonb_build_object('state', new_state, 'missing', missing), uid);
    PERFORM retailflow.emit('approval.enforcement_refused', tdoc, rec_id,
                            jsonb_build_object('mode', mode, 'missing', missing));
END
$$;
REVOKE ALL ON FUNCTION retailflow.approval_enforce_missing(text, integer, integer, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION retailflow.approval_enforce_missing(text, integer, integer, text, jsonb) IS
  'Slow path of the enforcement trigger: names the missing approvals, then blocks or logs (called by approval_enforce() only)';

-- No WHEN clause or column list (see 00_core.sql): the C function returns at
-- once unless the document reaches the guarded state.
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition) VALUES
  ('sale_order', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.approval_enforce(''sale.order'')'),
  ('purchase_order', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.approval_enforce(''purchase.order'')'),
  ('account_move', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.approval_enforce(''account.move'')'),
  ('stock_move', 'retailflow_approval_enforce', 'approvals enforcement',
   'AFTER INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION retailflow.approval_enforce(''stock.quant'')');

-- SLA escalation: pending requests past due become escalated.
CREATE FUNCTION retailflow.escalate_overdue(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r retailflow.approval_request;
    n integer := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR r IN UPDATE retailflow.approval_request q SET state = 'escalated'
              WHERE q.id IN (SELECT x.id FROM retailflow.approval_request x
                              WHERE x.state = 'pending' AND x.due_at <= as_of
                              ORDER BY x.id FOR UPDATE SKIP LOCKED)
             RETURNING q.*
    LOOP
        n := n + 1;
        PERFORM retailflow.audit('approval.escalated', 'retailflow.approval_request', r.id,
                                 jsonb_build_object('state', 'pending'), to_jsonb(r));
        PERFORM retailflow.emit('approval.escalated', r.document_type, r.record_id,
                                jsonb_build_object('request_id', r.id, 'rule_id', r.rule_id, 'level', r.level,
                                                   'group_id', r.group_id, 'due_at', r.due_at));
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION retailflow.escalate_overdue(timestamptz) IS
  'Moves pending approval requests past their SLA to escalated and emits approval.escalated; returns how many';

REVOKE ALL ON TABLE retailflow.approval_rule FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.approval_request FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.request_approvals(text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.decide(bigint, integer, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.approve(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.reject(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.escalate_overdue(timestamptz) FROM PUBLIC;
