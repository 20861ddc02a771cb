-- webhooks: the transactional outbox and webhook configuration: capture
-- triggers on Odoo tables (only when the watched column changed, nothing for
-- rolled-back transactions), payloads, fan-out to endpoints by filter,
-- subscriptions, endpoint validation, secrets readable by no role but the
-- extension's owner, emit() and redeliver() bad input, webhook_stats, and
-- clean DROP EXTENSION.  Odoo's writes by rf_odoo, endpoints and
-- subscriptions by the administrator rf_admin.
CREATE DATABASE rf_t_webhooks TEMPLATE rf_tiny OWNER rf_odoo;
-- exact event lists: the conflict triggers' own events are tested in conflicts/integration
ALTER DATABASE rf_t_webhooks SET retailflow.conflict_action = off;
\c rf_t_webhooks rf_odoo
SET client_min_messages = warning;
-- capture triggers are attached to the five Odoo tables
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'retailflow_capture' ORDER BY 1;
-- endpoints: one for everything, one for sale orders only (Odoo's role may not add them)
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('x', 'http://127.0.0.1:9/x', retailflow.generate_secret())$$);
\c - rf_admin
INSERT INTO retailflow.endpoint (name, url, secret, event_filters)
VALUES ('all', 'http://127.0.0.1:9/all', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{*}'),
       ('sales', 'https://hooks.example.com/odoo?x=1', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{sale.order.*}');
\c - rf_odoo
SET client_min_messages = warning;
-- a sale order reset, confirmed then cancelled; unrelated changes emit nothing
SELECT min(id) AS so FROM sale_order WHERE state = 'sale' \gset
UPDATE sale_order SET state = 'draft' WHERE id = :so;
UPDATE sale_order SET note = 'changed' WHERE id = :so;
UPDATE sale_order SET state = 'draft' WHERE id = :so;
UPDATE sale_order SET state = 'sale' WHERE id = :so;
UPDATE sale_order SET state = 'cancel' WHERE id = :so;
-- a rolled-back change leaves no event
BEGIN;
UPDATE sale_order SET state = 'sale' WHERE id = :so;
ROLLBACK;
SELECT event_type, model, record_id = :so AS same_record,
       data->>'old_state' AS old_state, data->>'new_state' AS new_state,
       data ? 'name' AS has_name, data ? 'partner_id' AS has_partner, data ? 'amount_total' AS has_amount
FROM retailflow.outbox ORDER BY id;
-- pickings, purchase orders
SELECT min(id) AS pick FROM stock_picking WHERE state = 'assigned' \gset
UPDATE stock_picking SET state = 'done' WHERE id = :pick;
SELECT min(id) AS po FROM purchase_order WHERE state = 'purchase' \gset
UPDATE purchase_order SET state = 'draft' WHERE id = :po;
UPDATE purchase_order SET state = 'to approve' WHERE id = :po;
UPDATE purchase_order SET state = 'purchase' WHERE id = :po;
-- refunds: only a credit note moving to posted; invoices do not count
SELECT min(id) AS inv FROM account_move WHERE move_type = 'out_invoice' AND state = 'draft' \gset
SELECT min(id) AS refund FROM account_move WHERE move_type = 'out_refund' AND state = 'draft' \gset
UPDATE account_move SET state = 'posted' WHERE id = :inv;
UPDATE account_move SET state = 'cancel' WHERE id = :refund;
UPDATE account_move SET state = 'posted' WHERE id = :refund;
UPDATE account_move SET ref = 'again' WHERE id = :refund;
SELECT event_type, model, data->>'old_state' AS old_state, data->>'new_state' AS new_state, data->>'move_type' AS move_type
FROM retailflow.outbox WHERE model <> 'sale.order' ORDER BY id;
-- stock.low: the warehouse's free quantity of a product with an orderpoint falls below its minimum
SELECT op.id AS op, op.product_id AS product, op.warehouse_id AS wh, op.product_min_qty AS minq,
       (SELECT q.id FROM stock_quant q JOIN stock_location l ON l.id = q.location_id
        WHERE q.product_id = op.product_id AND l.usage = 'internal' AND l.parent_path LIKE vl.parent_path || '%'
        ORDER BY q.quantity DESC, q.id LIMIT 1) AS quant,
       (SELECT sum(q.quantity - q.reserved_quantity) FROM stock_quant q JOIN stock_location l ON l.id = q.location_id
        WHERE q.product_id = op.product_id AND l.usage = 'internal' AND l.parent_path LIKE vl.parent_path || '%') AS free
FROM stock_warehouse_orderpoint op
JOIN stock_warehouse w ON w.id = op.warehouse_id
JOIN stock_location vl ON vl.id = w.view_location_id
WHERE op.active AND op.product_min_qty > 0
  AND (SELECT sum(q.quantity - q.reserved_quantity) FROM stock_quant q JOIN stock_location l ON l.id = q.location_id
       WHERE q.product_id = op.product_id AND l.usage = 'internal' AND l.parent_path LIKE vl.parent_path || '%') > op.product_min_qty + 1
ORDER BY op.id LIMIT 1 \gset
-- raising stock or a drop that stays at or above the minimum emits nothing
UPDATE stock_quant SET quantity = quantity + 5 WHERE id = :quant;
UPDATE stock_quant SET quantity = quantity - 5 - (:free - :minq) WHERE id = :quant;
SELECT count(*) AS low_events FROM retailflow.outbox WHERE event_type = 'stock.low';
-- one more unit reserved crosses below the minimum; reserving more does not repeat it
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = :quant;
UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = :quant;
SELECT event_type, model, record_id = :product AS product_ok, (data->>'warehouse_id')::int = :wh AS wh_ok,
       (data->>'orderpoint_id')::int = :op AS op_ok, (data->>'free_qty')::numeric = :minq - 1 AS below,
       (data->>'previous_free_qty')::numeric = :minq AS was_at_min, data->>'model' AS data_model
FROM retailflow.outbox WHERE event_type = 'stock.low' ORDER BY id;
-- fan-out: "all" gets every event, "sales" only sale.order.*
SELECT e.name, count(d.id) AS deliveries, count(*) FILTER (WHERE d.state = 'pending') AS pending
FROM retailflow.endpoint e LEFT JOIN retailflow.delivery d ON d.endpoint_id = e.id GROUP BY e.name ORDER BY 1;
-- subscriptions switch an event type off
\c - rf_admin
INSERT INTO retailflow.subscription VALUES ('stock.picking.cancelled', false);
\c - rf_odoo
SET client_min_messages = warning;
UPDATE stock_picking SET state = 'cancel' WHERE id = :pick;
SELECT count(*) AS cancelled_pickings FROM retailflow.outbox WHERE event_type = 'stock.picking.cancelled';
SELECT retailflow.emit('stock.picking.cancelled', 'stock.picking', 1, '{}') IS NULL AS skipped;
-- a change no active endpoint receives costs nothing and writes nothing; in one session,
-- the endpoints' changes are seen by the next capture (per-backend cache, invalidated)
\c - postgres
SET client_min_messages = warning;
SET ROLE rf_odoo;
SELECT max(id) AS before FROM retailflow.outbox \gset
UPDATE purchase_order SET state = 'draft' WHERE id = :po;
RESET ROLE;
SET ROLE rf_admin;
UPDATE retailflow.endpoint SET active = false WHERE name = 'all';
RESET ROLE;
SET ROLE rf_odoo;
UPDATE purchase_order SET state = 'purchase' WHERE id = :po;
UPDATE sale_order SET state = 'draft' WHERE id = :so;
RESET ROLE;
SET ROLE rf_admin;
UPDATE retailflow.endpoint SET active = true WHERE name = 'all';
RESET ROLE;
SET ROLE rf_odoo;
UPDATE sale_order SET state = 'cancel' WHERE id = :so;
SELECT o.event_type, array_agg(e.name ORDER BY e.name) AS endpoints
FROM retailflow.outbox o JOIN retailflow.delivery d ON d.event_id = o.id JOIN retailflow.endpoint e ON e.id = d.endpoint_id
WHERE o.id > :before GROUP BY o.id, o.event_type ORDER BY o.id;
RESET ROLE;
\c - rf_odoo
SET client_min_messages = warning;
-- emit() from SQL, with its data object and defaults
SELECT retailflow.emit('retailflow.test', 'retailflow', NULL, '{"message": "hi"}') > 0 AS emitted;
SELECT event_type, model, record_id, data FROM retailflow.outbox WHERE event_type = 'retailflow.test';
-- bad input to emit()
SELECT rft.err($$SELECT retailflow.emit('no.such.type', 'x', 1, '{}')$$);
SELECT rft.err($$SELECT retailflow.emit(NULL, 'x', 1, '{}')$$);
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', 'x', 1, '[1, 2]')$$);
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', 'x', 1, jsonb_build_object('blob', repeat('x', 17000)))$$);
-- data a webhook could not carry is refused at emit(), not dead-lettered later
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', 'x', 1, '"text"')$$);
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', 'x', 1, '42')$$);
SELECT d AS data, rft.err(format('SELECT retailflow.emit(%L, %L, 1, %L)', 'retailflow.test', 'x', d))
FROM unnest(ARRAY['{"a": 1e400}', '{"a": -1e400}', '{"a": 1e-400}', '{"a": 1e-310}', '{"lines": [{"qty": 1}, {"qty": 9223372036854775808}]}',
                  '{"a": -9223372036854775809}', '{"a": 123456789012345678901234567890}', '{"a": 1e20}']) d;
-- numbers at the limits are accepted
SELECT retailflow.emit('retailflow.test', 'x', 1,
  '{"max": 9223372036854775807, "min": -9223372036854775808, "big": 123456789012345678901234567890.5, "small": 2.2250738585072014e-308,
    "wide": 12345678901234567890.5, "zero": 0.000, "amount": 1250.00}') > 0 AS limits_accepted;
-- nesting: 32 levels are accepted, 33 (or 5,000) are not
SELECT retailflow.emit('retailflow.test', 'x', 1, (repeat('{"a": ', 32) || '1' || repeat('}', 32))::jsonb) > 0 AS depth_32;
SELECT rft.err(format('SELECT retailflow.emit(%L, %L, 1, %L)', 'retailflow.test', 'x', repeat('{"a": ', 33) || '1' || repeat('}', 33)));
SELECT rft.err(format('SELECT retailflow.emit(%L, %L, 1, %L)', 'retailflow.test', 'x', '{"l": ' || repeat('[', 4999) || repeat(']', 4999) || '}'));
-- names: type and model up to 128 bytes, the model non-empty without control characters
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', repeat('m', 1000000), 1, '{}')$$);
SELECT rft.err($$SELECT retailflow.emit(repeat('t', 129), 'x', 1, '{}')$$);
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', '', 1, '{}')$$);
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', E'sale.order\n', 1, '{}')$$);
SELECT retailflow.emit('retailflow.test', repeat('m', 128), 1, '{}') > 0 AS model_128;
SELECT rft.err($$SELECT retailflow.validate_event_data('[1]')$$);
-- nothing of the refused calls was written
SELECT count(*) AS test_events FROM retailflow.outbox WHERE event_type = 'retailflow.test';
-- bad endpoints
\c - rf_admin
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'ftp://example.com/x', retailflow.generate_secret())$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://exa mple.com/x', retailflow.generate_secret())$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://user:pw@example.com/x', retailflow.generate_secret())$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://example.com/x', 'secret')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://example.com/x', 'whsec_c2hvcnQ=')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, event_filters) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), '{Sale.Order}')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, event_filters) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), '{}')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, headers) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), '["a"]')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, headers) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), '{"X-Team": 1}')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, headers) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), '{"webhook-id": "x"}')$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret, timeout_ms) VALUES ('e1', 'http://example.com/x', retailflow.generate_secret(), 10)$$);
SELECT rft.err($$SET retailflow.webhook_allowed_hosts = ''$$);
\c - postgres
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks SET retailflow.webhook_allowed_hosts = 'localhost, .example.com';
\c - rf_admin
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://evil.test/x', retailflow.generate_secret())$$);
INSERT INTO retailflow.endpoint (name, url, secret, headers) VALUES ('e2', 'https://a.example.com/x', retailflow.generate_secret(), '{"X-Team": "ops"}');
\c - postgres
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks RESET retailflow.webhook_allowed_hosts;
\c - rf_admin
-- egress policy by address: every spelling of an address literal curl accepts
-- is read as the address it denotes (host names are NULL: checked at connect time)
SELECT h AS host, retailflow.webhook_host_address(h) AS address
FROM unnest(ARRAY['127.0.0.1', '2130706433', '0x7f000001', '0x7F.1', '0177.0.0.1', '127.1', '127.0.1',
                  '169.254.169.254', '2852039166', '0xa9fea9fe', '0251.0376.0251.0376', '169.254.43518',
                  '0', '127.0.0.1.', '[::1]', '[::ffff:169.254.169.254]', '[::FFFF:a9fe:a9fe]', '[fe80::1]',
                  'localhost', 'hooks.example.com', '1.2.3.4.5', '08.1.1.1', '256.1.1.1', '4294967296',
                  '0x', '[fe80::1%25eth0]', '[example]']) h;
-- the default denied networks: link-local (cloud metadata), 0.0.0.0/8, the
-- unspecified address, multicast, broadcast; loopback and private stay allowed
SELECT a AS address, retailflow.webhook_address_denied(a::inet) AS denied_by
FROM unnest(ARRAY['169.254.169.254', 'fe80::1', '0.0.0.0', '0.1.2.3', '::', '224.0.0.1', '239.255.255.250',
                  'ff02::1', '255.255.255.255', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe',
                  'fd00:ec2::254', '100.100.100.200',
                  '127.0.0.1', '::1', '10.1.2.3', '172.16.0.1', '192.168.1.1', 'fc00::1', '::ffff:127.0.0.1',
                  '8.8.8.8', '2001:db8::1']) a;
-- denied at creation, in every spelling
SELECT u AS url, rft.err(format($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', %L, retailflow.generate_secret())$$, u))
FROM unnest(ARRAY['http://169.254.169.254/latest/meta-data', 'http://2852039166/', 'http://0xa9fea9fe/',
                  'http://0251.0376.0251.0376/', 'http://169.254.43518/', 'http://[::ffff:169.254.169.254]/',
                  'http://[::ffff:a9fe:a9fe]:80/', 'http://[fe80::a9fe:a9fe]/', 'http://0.0.0.0:5432/', 'http://0/',
                  'http://[::]/', 'http://224.0.0.1/', 'http://255.255.255.255/', 'http://[ff02::1]/',
                  'http://[64:ff9b::a9fe:a9fe]/', 'http://[fd00:ec2::254]/', 'http://100.100.100.200/']) u;
-- an allowed address in a non-standard spelling, or numbers that are no address, are refused
SELECT u AS url, rft.err(format($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', %L, retailflow.generate_secret())$$, u))
FROM unnest(ARRAY['http://2130706433:5432/', 'http://0x7f000001/', 'http://127.1/', 'http://0177.0.0.1/',
                  'http://127.0.0.1./', 'http://1.2.3.4.5/', 'http://08.1.1.1/', 'http://[fe80::1%25eth0]/',
                  'http://[example]/', E'http://example.com/a\x01b']) u;
-- loopback, private and public addresses and names are accepted
INSERT INTO retailflow.endpoint (name, url, secret, active)
SELECT 'ok' || i, u, retailflow.generate_secret(), false
FROM unnest(ARRAY['http://127.0.0.1:8080/hook', 'http://[::1]:8080/hook', 'http://10.1.2.3/hook',
                  'http://192.168.1.1/hook', 'http://[2001:db8::1]/hook', 'http://localhost/hook']) WITH ORDINALITY AS t(u, i);
SELECT name, url FROM retailflow.endpoint WHERE name LIKE 'ok%' ORDER BY name;
-- URLs are limited to 2,048 characters (the error does not echo the URL)
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://example.com/' || repeat('a', 1000004), retailflow.generate_secret())$$);
INSERT INTO retailflow.endpoint (name, url, secret, active)
VALUES ('long', 'http://example.com/' || repeat('a', 2048 - 19), retailflow.generate_secret(), false);
SELECT rft.err($$UPDATE retailflow.endpoint SET url = url || 'a' WHERE name = 'long'$$);
-- the DBA narrows the policy: loopback and an allowlist.  Endpoints created
-- before it can still be disabled, renamed or deleted (an update that keeps
-- the URL never re-checks the host); a changed URL is checked
\c - postgres
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks SET retailflow.webhook_denied_networks = 'default, loopback, private';
\c - rf_admin
SHOW retailflow.webhook_denied_networks;
SELECT retailflow.webhook_address_denied('127.0.0.1') AS loopback, retailflow.webhook_address_denied('::ffff:10.0.0.1') AS private;
UPDATE retailflow.endpoint SET active = true, name = 'ok1-renamed', timeout_ms = 2000 WHERE name = 'ok1';
UPDATE retailflow.endpoint SET active = false WHERE name = 'ok1-renamed';
SELECT rft.err($$UPDATE retailflow.endpoint SET url = 'http://127.0.0.1:8081/hook' WHERE name = 'ok1-renamed'$$);
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e1', 'http://10.0.0.8/', retailflow.generate_secret())$$);
\c - postgres
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks SET retailflow.webhook_allowed_hosts = '.example.com';
\c - rf_admin
UPDATE retailflow.endpoint SET active = false, event_filters = '{sale.*}' WHERE name = 'all';
SELECT rft.err($$UPDATE retailflow.endpoint SET url = 'http://127.0.0.1:9/all2' WHERE name = 'all'$$);
DELETE FROM retailflow.endpoint WHERE name = 'ok2';
\c - postgres
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks RESET retailflow.webhook_allowed_hosts;
ALTER ROLE rf_admin IN DATABASE rf_t_webhooks RESET retailflow.webhook_denied_networks;
-- the setting is the superuser's; bad values are refused with the entry named
SELECT rft.err($$SET retailflow.webhook_denied_networks = '10.0.0.0/33'$$);
SELECT rft.err($$SET retailflow.webhook_denied_networks = '10.1.0.0/8'$$);
SELECT rft.err($$SET retailflow.webhook_denied_networks = 'default, intranet'$$);
SET retailflow.webhook_denied_networks = '';
SELECT retailflow.webhook_address_denied('169.254.169.254') AS nothing_denied;
RESET retailflow.webhook_denied_networks;
\c - rf_admin
SELECT rft.err($$SET retailflow.webhook_denied_networks = ''$$);
UPDATE retailflow.endpoint SET active = true, event_filters = '{*}' WHERE name = 'all';
DELETE FROM retailflow.endpoint WHERE name ~ '^(ok|long)';
SELECT retailflow.generate_secret() ~ '^whsec_[A-Za-z0-9+/]{43}=$' AS secret_shape;
SELECT retailflow.filter_match('{sale.order.*}', 'sale.order.confirmed') AS m1,
       retailflow.filter_match('{sale.order.*}', 'sale.orderx') AS m2,
       retailflow.filter_match('{*.cancelled,stock.low}', 'stock.picking.cancelled') AS m3;
-- redeliver(): dead rows go back to pending; bad ids are errors
\c - postgres
UPDATE retailflow.delivery SET state = 'dead', attempts = 12, last_error = 'HTTP 500'
WHERE id = (SELECT min(id) FROM retailflow.delivery);
\c - rf_admin
SELECT retailflow.redeliver((SELECT min(id) FROM retailflow.delivery)) AS redelivered;
SELECT state, attempts FROM retailflow.delivery WHERE id = (SELECT min(id) FROM retailflow.delivery);
SELECT rft.err('SELECT retailflow.redeliver(NULL)');
SELECT rft.err('SELECT retailflow.redeliver(-1)');
SELECT retailflow.redeliver_dead() AS none_dead;
-- stats per endpoint
SELECT name, pending, in_flight, delivered, retrying, dead, circuit FROM retailflow.webhook_stats ORDER BY endpoint_id;
-- secrets: the administrator writes them and cannot read them back, nor can
-- Odoo's role or a reporting role; everyone with schema usage sees endpoint_public
SELECT rft.err('SELECT secret FROM retailflow.endpoint');
SELECT rft.err('SELECT old_secrets FROM retailflow.endpoint');
SELECT rft.err('SELECT headers FROM retailflow.endpoint');
SELECT rft.err($$INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('e3', 'http://127.0.0.1:9/x', retailflow.generate_secret()) RETURNING secret$$);
UPDATE retailflow.endpoint SET secret = retailflow.generate_secret(), old_secrets = '{}' WHERE name = 'e2';
SELECT name, url FROM retailflow.endpoint WHERE name = 'e2';
\c - rf_odoo
SELECT rft.err('SELECT secret FROM retailflow.endpoint');
SELECT rft.err('UPDATE retailflow.delivery SET state = $$delivered$$');
SELECT rft.err('INSERT INTO retailflow.outbox (event_type, model) VALUES ($$retailflow.test$$, $$x$$)');
SELECT rft.err('SELECT retailflow.redeliver_dead()');
\c - rf_reader
SELECT rft.err('SELECT secret FROM retailflow.endpoint');
SELECT rft.err($$SELECT retailflow.emit('retailflow.test', 'x', 1, '{}')$$);
SELECT count(*) > 0 AS stats_readable FROM retailflow.webhook_stats;
SELECT name, url, event_filters FROM retailflow.endpoint_public ORDER BY id;
-- a capture trigger attached by hand refuses to run as anything but an update row trigger
\c - rf_odoo
CREATE TABLE t_bad (id int, state text);
CREATE TRIGGER t_bad AFTER INSERT ON t_bad FOR EACH ROW EXECUTE FUNCTION retailflow.capture_trigger('state', 'x');
SELECT rft.err('INSERT INTO t_bad VALUES (1, $$a$$)');
DROP TABLE t_bad;
-- DROP EXTENSION leaves Odoo's tables clean; attach() restores capture
\c - postgres
DROP EXTENSION retailflow;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'retailflow%';
CREATE EXTENSION retailflow;
SELECT count(*) AS capture_triggers FROM pg_trigger WHERE tgname = 'retailflow_capture';
\c rf_regression postgres
DROP DATABASE rf_t_webhooks;
