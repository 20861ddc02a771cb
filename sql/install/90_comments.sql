-- 90_comments.sql: descriptions of the remaining functions, so that
-- docs/sql-reference.md (generated from the catalog) describes every object.
COMMENT ON FUNCTION retailflow.acting_user(integer, integer) IS
  'Internal: the Odoo user acting (explicit id, else retailflow.odoo_user_id, else the fallback)';
COMMENT ON FUNCTION retailflow.audit_content(bigint, timestamptz, text, text, bigint, integer, name, jsonb, jsonb, text, integer) IS
  'Internal: the canonical text an audit row''s chain hash covers';
COMMENT ON FUNCTION retailflow.check_interval(text) IS
  'Internal: the interval after which a scheduled exception check is due again';
COMMENT ON FUNCTION retailflow.check_missing_relations(text[]) IS
  'Internal: the relations a check needs that do not exist';
COMMENT ON FUNCTION retailflow.conflicts_for_checks() IS
  'Internal: the reservation-conflict scan, materialized once per transaction for the exception checks';
COMMENT ON FUNCTION retailflow.decide(bigint, integer, text, boolean) IS
  'Internal: common body of approve() and reject()';
COMMENT ON FUNCTION retailflow.filter_match(text[], text) IS
  'Whether an event type matches an endpoint''s filter patterns (sale.order.* style)';
COMMENT ON FUNCTION retailflow.generate_secret() IS
  'A new random webhook secret in whsec_<base64> form';
COMMENT ON FUNCTION retailflow.kpi_check_period(timestamptz, timestamptz) IS
  'Internal: validates a KPI period';
COMMENT ON FUNCTION retailflow.kpi_interval(double precision) IS
  'Internal: seconds to interval for KPI percentiles';
COMMENT ON FUNCTION retailflow.kpi_require(text[]) IS
  'Internal: whether the tables a KPI reads exist';
COMMENT ON FUNCTION retailflow.log_exception(text, text, text, integer, integer, integer, jsonb, numeric, numeric, text, text, name, text) IS
  'Records one exception in retailflow.exception_log and emits its event';
COMMENT ON FUNCTION retailflow.median_mad(numeric[]) IS
  'Median and median absolute deviation of a sample (robust statistics for order_risk)';
COMMENT ON FUNCTION retailflow.missing_approvals(text, integer) IS
  'Approvals a document still needs (rules matched and not yet approved), in approval order';
COMMENT ON FUNCTION retailflow.purge(integer) IS
  'Removes up to n delivered events past retailflow.webhook_retention; returns how many';
COMMENT ON FUNCTION retailflow.redeliver(bigint) IS
  'Sends a dead-lettered or failed delivery again (same webhook-id)';
COMMENT ON FUNCTION retailflow.redeliver_dead(integer) IS
  'Sends every dead-lettered delivery of an endpoint again';
COMMENT ON FUNCTION retailflow.return_refunds(integer) IS
  'Posted customer refunds linked to a return picking';
COMMENT ON FUNCTION retailflow.risk_parameters() IS
  'Internal: the risk parameters as one record';
COMMENT ON FUNCTION retailflow.run_check(text, timestamptz) IS
  'Runs one exception check: opens new exceptions, closes vanished ones, emits their events';
COMMENT ON FUNCTION retailflow.send_test_event(text) IS
  'Emits a webhook.test event to every matching endpoint';
COMMENT ON FUNCTION retailflow.setting_interval(text) IS
  'Internal: an interval-valued retailflow setting';
COMMENT ON FUNCTION retailflow.storable_sql() IS
  'Internal: the storable-product predicate for the detected Odoo version';
COMMENT ON FUNCTION retailflow.wake_workers_at_commit() IS
  'Internal: asks the transaction to wake the webhook workers when it commits';
