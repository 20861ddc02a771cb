-- 95_grants.sql: the deployment model's privileges, in one place
-- (docs/security.md explains each role).  Every table and every function
-- that changes state was revoked from PUBLIC where it was created; here the
-- three group roles get exactly what they need:
--   retailflow_reader  read: views, history, rules, requests, audit, KPIs
--   retailflow_odoo    Odoo's role: reader + emit events, request and decide
--                      approvals, acknowledge exceptions, attach triggers to
--                      its own tables, repair its own reservations
--   retailflow_admin   webhook and approval administrator: reader + manage
--                      endpoints (secrets write-only), subscriptions, approval
--                      rules, risk parameters, checks; redeliver, run checks,
--                      take an audit checkpoint
-- Nothing here lets a role write retailflow's tables directly except the
-- administrator's configuration tables, or read a webhook secret.

GRANT USAGE ON SCHEMA retailflow TO retailflow_reader;

-- reader
GRANT SELECT ON retailflow.exceptions, retailflow.exception_summary, retailflow.webhook_stats,
                retailflow.endpoint_public
    TO retailflow_reader;
GRANT SELECT ON retailflow.exception, retailflow.exception_check, retailflow.exception_log,
                retailflow.approval_rule, retailflow.approval_request, retailflow.audit_log,
                retailflow.audit_head, retailflow.event_type, retailflow.subscription,
                retailflow.managed_trigger, retailflow.delivery, retailflow.endpoint_health,
                retailflow.outbox, retailflow.audit_checkpoint
    TO retailflow_reader;
GRANT SELECT (id, name, url, event_filters, timeout_ms, tls_verify, active, disabled_reason, created_at)
    ON retailflow.endpoint TO retailflow_reader;
GRANT EXECUTE ON FUNCTION
    retailflow.kpi_exceptions(timestamptz, timestamptz),
    retailflow.kpi_approval_turnaround(timestamptz, timestamptz),
    retailflow.kpi_webhook_delivery(timestamptz, timestamptz),
    retailflow.conflicts_for_checks(),
    retailflow.verify_audit_log(jsonb)
    TO retailflow_reader;

-- Odoo's role
GRANT EXECUTE ON FUNCTION
    retailflow.emit(text, text, integer, jsonb),
    retailflow.send_test_event(text),
    retailflow.request_approvals(text, integer, integer),
    retailflow.approve(bigint, integer, text),
    retailflow.reject(bigint, integer, text),
    retailflow.exception_ack(bigint, text, integer, text),
    retailflow.attach(),
    retailflow.attach_triggers(),
    retailflow.repair_reservations(boolean),
    retailflow.record_repair(integer, integer, integer, jsonb, numeric, numeric, text)
    TO retailflow_odoo;

-- webhook and approval administrator
GRANT INSERT, UPDATE, DELETE ON retailflow.endpoint, retailflow.subscription, retailflow.approval_rule
    TO retailflow_admin;
GRANT USAGE ON SEQUENCE retailflow.endpoint_id_seq, retailflow.approval_rule_id_seq TO retailflow_admin;
GRANT UPDATE (value) ON retailflow.risk_parameter TO retailflow_admin;
GRANT UPDATE (enabled) ON retailflow.exception_check TO retailflow_admin;
GRANT EXECUTE ON FUNCTION
    retailflow.send_test_event(text),
    retailflow.redeliver(bigint),
    retailflow.redeliver_dead(integer),
    retailflow.run_checks(text[], timestamptz),
    retailflow.run_due_checks(timestamptz),
    retailflow.exception_ack(bigint, text, integer, text),
    retailflow.escalate_overdue(timestamptz),
    retailflow.purge(integer),
    retailflow.purge_exceptions(integer, interval),
    retailflow.audit_checkpoint(interval)
    TO retailflow_admin;
