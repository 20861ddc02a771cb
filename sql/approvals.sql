-- approvals: rule validation, required_approvals() for every condition
-- (category children, segments, company scoping, level order), the what-if
-- form, Odoo purchase double validation and OCA tier validation equivalents,
-- requests and segregation of duties, enforcement modes on Odoo-shaped state
-- transitions, SLA escalation, events, the audit chain and tampering, bad input.
-- Odoo's writes, requests and decisions by Odoo's role (rf_odoo); rules by the
-- approval administrator (rf_admin); enforcement modes and tampering by the DBA.
CREATE DATABASE rf_t_approvals TEMPLATE rf_tiny OWNER rf_odoo;
\c rf_t_approvals rf_odoo
SET client_min_messages = warning;
-- fixture users: 2 admin (every group), 3 stock.manager (1,3,4), 4 sales.web (1,5),
-- 5 sales.store (1,3,5), 6 buyer (1,3,7), 7 portal.  Groups: 4 Inventory Administrator,
-- 6 Sales Administrator, 8 Purchase Administrator.  Partner tags 1 VIP, 2 Wholesale, 3 New.
-- A second sales and purchase manager, an archived manager, a second company.
INSERT INTO res_groups_users_rel (gid, uid) VALUES (6, 3), (8, 3), (6, 5);
INSERT INTO res_users (id, company_id, partner_id, active, login, share, notification_type)
VALUES (8, 1, 8, false, 'former.manager', false, 'email');
INSERT INTO res_groups_users_rel (gid, uid) VALUES (1, 8), (6, 8);
INSERT INTO res_company (id, name, partner_id, currency_id, layout_background, fiscalyear_last_day,
                         fiscalyear_last_month, account_opening_date, po_lead, security_lead, active)
VALUES (2, 'Second Co', 1, 1, 'Blank', 31, '12', '2024-01-01', 0, 0, true);
-- partner 40 is VIP and New; product 6 is in Electronics (1/2/6/), 1 in Household (1/2/5/)
INSERT INTO res_partner_res_partner_category_rel (category_id, partner_id) VALUES (1, 40), (3, 40);
-- a child category under Electronics, and a product in it
INSERT INTO product_category (id, parent_id, name, complete_name, parent_path)
VALUES (9, 6, 'Phones', 'All / Saleable / Electronics / Phones', '1/2/6/9/');
UPDATE product_template SET categ_id = 9 WHERE id = 7;

-- builders: a draft sale order from [product, qty, price, discount] lines
CREATE FUNCTION t_so(p_creator integer, p_partner integer, p_lines numeric[], p_company integer DEFAULT 1)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE so integer; i integer; total numeric := 0;
BEGIN
    INSERT INTO sale_order (company_id, partner_id, partner_invoice_id, partner_shipping_id, name, state,
                            date_order, warehouse_id, picking_policy, currency_id, currency_rate,
                            create_uid, write_uid)
    VALUES (p_company, p_partner, p_partner, p_partner, 'T', 'draft', '2024-06-01', 1, 'direct', 1, 1.0,
            p_creator, p_creator)
    RETURNING id INTO so;
    FOR i IN 1 .. array_length(p_lines, 1) LOOP
        INSERT INTO sale_order_line (order_id, company_id, product_id, product_uom, name, state,
                                     product_uom_qty, price_unit, discount, price_subtotal, customer_lead,
                                     create_uid, write_uid)
        VALUES (so, p_company, p_lines[i][1], 1, 'line', 'draft', p_lines[i][2], p_lines[i][3], p_lines[i][4],
                round(p_lines[i][2] * p_lines[i][3] * (1 - p_lines[i][4] / 100), 2), 0, p_creator, p_creator);
        total := total + round(p_lines[i][2] * p_lines[i][3] * (1 - p_lines[i][4] / 100), 2);
    END LOOP;
    UPDATE sale_order SET amount_untaxed = total, amount_total = total WHERE id = so;
    RETURN so;
END $$;
-- a draft purchase order of that total
CREATE FUNCTION t_po(p_creator integer, p_total numeric) RETURNS integer LANGUAGE sql AS $$
    INSERT INTO purchase_order (partner_id, currency_id, company_id, name, state, date_order, picking_type_id,
                                amount_untaxed, amount_total, currency_rate, create_uid, write_uid)
    VALUES (11, 1, 1, 'PO-T', 'draft', '2024-06-01', 1, p_total, p_total, 1.0, p_creator, p_creator)
    RETURNING id $$;
-- a draft customer credit note of that total
CREATE FUNCTION t_refund(p_creator integer, p_total numeric, p_partner integer DEFAULT 36) RETURNS integer LANGUAGE sql AS $$
    INSERT INTO account_move (journal_id, company_id, partner_id, currency_id, state, move_type, auto_post, date,
                              amount_total, amount_total_signed, create_uid, write_uid)
    VALUES (1, 1, p_partner, 1, 'draft', 'out_refund', 'no', '2024-06-01', p_total, -p_total, p_creator, p_creator)
    RETURNING id $$;
-- the rules a document matches, compactly
CREATE FUNCTION t_req(p_doc text, p_id integer) RETURNS TABLE (rule text, level integer, reason text)
LANGUAGE sql AS $$
    SELECT rule_name, level, reason FROM retailflow.required_approvals(p_doc, p_id) $$;
CREATE FUNCTION t_whatif(p_doc text, p_facts jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(rule_name || ': ' || reason, '; '), '(none)')
    FROM retailflow.required_approvals(p_doc, p_facts) $$;

-- ---------------------------------------------------------------- rule validation
-- Odoo's role may read the rules, not write them
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.order', 6)$$);
SELECT po_double_validation_amount AS po_limit_amount FROM res_company WHERE id = 1 \gset
\c - rf_admin
SET client_min_messages = warning;
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.quote', 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('', 'sale.order', 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, amount_min, amount_max, group_id) VALUES ('x', 'sale.order', 500, 100, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, amount_min, amount_max, group_id) VALUES ('x', 'sale.order', 100, 100, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id) VALUES ('x', 'sale.order', -1, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, max_discount, group_id) VALUES ('x', 'sale.order', -5, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, max_discount, group_id) VALUES ('x', 'sale.order', 120, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, min_margin, group_id) VALUES ('x', 'sale.order', -10, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, min_risk_score, group_id) VALUES ('x', 'sale.order', -1, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.order', 999)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.order', NULL)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, company_id, group_id) VALUES ('x', 'sale.order', 77, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, product_category_id, group_id) VALUES ('x', 'sale.order', 77, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, partner_category_ids, group_id) VALUES ('x', 'sale.order', '{1,77}', 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, partner_category_ids, group_id) VALUES ('x', 'sale.order', '{}', 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, level, group_id) VALUES ('x', 'sale.order', 0, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, sla, group_id) VALUES ('x', 'sale.order', '-1 hour', 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, min_margin, group_id) VALUES ('x', 'account.move', 10, 6)$$);
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, product_category_id, group_id) VALUES ('x', 'account.move', 6, 6)$$);
SELECT count(*) AS rules_after_bad_input FROM retailflow.approval_rule;

-- ---------------------------------------------------------------- matching, one condition at a time
INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, amount_max, max_discount,
                                      min_margin, product_category_id, partner_category_ids, min_risk_score,
                                      group_id, level, sequence, sla)
VALUES ('SO 1k-5k',        'sale.order', NULL, 1000, 5000, NULL, NULL, NULL, NULL,  NULL, 6, 1, 10, '4 hours'),
       ('SO 5k+',          'sale.order', NULL, 5000, NULL, NULL, NULL, NULL, NULL,  NULL, 6, 2, 10, '1 day'),
       ('SO discount>10',  'sale.order', NULL, NULL, NULL, 10,   NULL, NULL, NULL,  NULL, 6, 1, 20, NULL),
       ('SO margin<20',    'sale.order', NULL, NULL, NULL, NULL, 20,   NULL, NULL,  NULL, 6, 1, 30, NULL),
       ('SO electronics',  'sale.order', NULL, NULL, NULL, NULL, NULL, 6,    NULL,  NULL, 4, 1, 40, NULL),
       ('SO VIP/Wholesale','sale.order', NULL, NULL, NULL, NULL, NULL, NULL, '{2,1}', NULL, 6, 1, 50, NULL),
       ('SO risky',        'sale.order', NULL, NULL, NULL, NULL, NULL, NULL, NULL,  70,   6, 3, 10, NULL),
       ('SO company 2',    'sale.order', 2,    NULL, NULL, NULL, NULL, NULL, NULL,  NULL, 6, 1, 60, NULL),
       ('SO archived',     'sale.order', NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL, 6, 1, 70, NULL);
UPDATE retailflow.approval_rule SET active = false WHERE name = 'SO archived';
\c - rf_odoo
SET client_min_messages = warning;
-- a: 10 x product 1 at list price (25.88, cost 10.73): 258.80, margin 58.54%, Household, partner 36 untagged
SELECT t_so(4, 36, ARRAY[[1, 10, 25.88, 0]]) AS so_a \gset
SELECT * FROM t_req('sale.order', :so_a);
-- b: 100 x product 1 = 2,588.00 (amount band 1k-5k, level 1)
SELECT t_so(4, 36, ARRAY[[1, 100, 25.88, 0]]) AS so_b \gset
SELECT * FROM t_req('sale.order', :so_b);
-- c: 250 x product 1 + 1 x product 2 at 15% off = 6,478.73 (5k+ is level 2)
SELECT t_so(4, 36, ARRAY[[1, 250, 25.88, 0], [2, 1, 10.27, 15]]) AS so_c \gset
SELECT * FROM t_req('sale.order', :so_c);
-- d: product 2 priced below list (10.27 -> 8.00 = 22.10% below) and low margin (cost 4.92: 38.5%) -> discount only
SELECT t_so(4, 36, ARRAY[[2, 1, 8.00, 0]]) AS so_d \gset
SELECT * FROM t_req('sale.order', :so_d);
-- e: product 3 sold near cost (15.79 list, cost 6.88, price 8.00 -> margin 14%, 49.34% below list)
SELECT t_so(4, 36, ARRAY[[3, 1, 8.00, 0]]) AS so_e \gset
SELECT * FROM t_req('sale.order', :so_e);
-- f: product 7 is in Phones, a child of Electronics; g: product 6 directly in Electronics
SELECT t_so(4, 36, ARRAY[[7, 1, 78.45, 0]]) AS so_f \gset
SELECT * FROM t_req('sale.order', :so_f);
SELECT t_so(4, 36, ARRAY[[6, 1, 38.33, 0]]) AS so_g \gset
SELECT * FROM t_req('sale.order', :so_g);
-- h: partner 40 tagged VIP (and New); partner 30 tagged Wholesale
SELECT t_so(4, 40, ARRAY[[1, 1, 25.88, 0]]) AS so_h \gset
SELECT * FROM t_req('sale.order', :so_h);
SELECT t_so(4, 30, ARRAY[[1, 1, 25.88, 0]]) AS so_h2 \gset
SELECT * FROM t_req('sale.order', :so_h2);
-- i: company 2 sees its own rule and the all-company ones
SELECT t_so(4, 36, ARRAY[[1, 1, 25.88, 0]], 2) AS so_i \gset
SELECT * FROM t_req('sale.order', :so_i);
-- the category tree and partner tags are cached: renaming and moving them is seen
UPDATE product_category SET complete_name = 'All / Saleable / Tech' WHERE id = 6;
SELECT * FROM t_req('sale.order', :so_f);
UPDATE product_category SET parent_path = '1/2/5/9/' WHERE id = 9;
SELECT count(*) AS phones_moved_out_of_electronics FROM t_req('sale.order', :so_f) WHERE rule = 'SO electronics';
UPDATE product_category SET parent_path = '1/2/6/9/' WHERE id = 9;
-- product costs (ir_property) and list prices are cached too: changes are seen
UPDATE ir_property SET value_float = 1.00 WHERE name = 'standard_price' AND res_id = 'product.product,3';
SELECT * FROM t_req('sale.order', :so_e);
UPDATE product_template SET list_price = 8.00 WHERE id = 3;
SELECT * FROM t_req('sale.order', :so_e);
UPDATE ir_property SET value_float = 6.88 WHERE name = 'standard_price' AND res_id = 'product.product,3';
UPDATE product_template SET list_price = 15.79 WHERE id = 3;
SELECT count(*) AS restored FROM t_req('sale.order', :so_e);
-- rule changes are seen at once (statement trigger -> relcache invalidation)
\c - rf_admin
UPDATE retailflow.approval_rule SET amount_min = 100 WHERE name = 'SO 1k-5k';
\c - rf_odoo
SELECT * FROM t_req('sale.order', :so_a);
\c - rf_admin
UPDATE retailflow.approval_rule SET amount_min = 1000 WHERE name = 'SO 1k-5k';
\c - rf_odoo
SET client_min_messages = warning;
SELECT count(*) AS after_revert FROM t_req('sale.order', :so_a);
-- what-if facts, every condition
SELECT t_whatif('sale.order', '{}');
SELECT t_whatif('sale.order', '{"amount": 1000}');
SELECT t_whatif('sale.order', '{"amount": 4999.99, "discount": 10}');
SELECT t_whatif('sale.order', '{"amount": 5000, "discount": 10.5}');
SELECT t_whatif('sale.order', '{"margin": 19.99, "product_category_ids": [9]}');
SELECT t_whatif('sale.order', '{"partner_category_ids": [3]}');
SELECT t_whatif('sale.order', '{"partner_category_ids": [3, 2]}');
SELECT t_whatif('sale.order', '{"risk_score": 69.9}');
SELECT t_whatif('sale.order', '{"risk_score": 70, "company_id": 2}');
SELECT t_whatif('sale.order', '{"company_id": 1}');

-- ---------------------------------------------------------------- price overrides (sale.order.line)
\c - rf_admin
INSERT INTO retailflow.approval_rule (name, document_type, max_discount, group_id)
VALUES ('line discount>20', 'sale.order.line', 20, 6),
       ('any price override', 'sale.order.line', NULL, 5);
\c - rf_odoo
SET client_min_messages = warning;
SELECT l.id - (SELECT min(id) FROM sale_order_line WHERE order_id = :so_c) AS line, r.*
FROM sale_order_line l, LATERAL t_req('sale.order.line', l.id) r
WHERE l.order_id IN (:so_c, :so_d, :so_e) ORDER BY 1, 2;

-- ---------------------------------------------------------------- Odoo purchase double validation
-- res_company.po_double_validation = 'two_step', po_double_validation_amount = 5000: a PO needs
-- purchase.group_purchase_manager when amount_total >= 5000 (Odoo allows it when amount_total < 5000).
UPDATE res_company SET po_double_validation = 'two_step', po_double_validation_amount = 5000 WHERE id = 1;
SELECT id AS po_company, po_double_validation_amount AS po_amount FROM res_company
 WHERE po_double_validation = 'two_step' \gset
\c - rf_admin
INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, group_id)
VALUES ('PO double validation', 'purchase.order', :po_company, :po_amount, 8);
\c - rf_odoo
SET client_min_messages = warning;
SELECT t_po(6, 4999.99) AS po_small, t_po(6, 5000) AS po_limit, t_po(6, 12000) AS po_big \gset
SELECT * FROM t_req('purchase.order', :po_small);
SELECT * FROM t_req('purchase.order', :po_limit);
SELECT * FROM t_req('purchase.order', :po_big);

-- ---------------------------------------------------------------- OCA base_tier_validation
-- tier.definition(model 'sale.order', review_type 'group', sequence, definition_domain):
--   tier 1 sequence 10: [('amount_total', '>=', 20000)]                 -> Sales Administrator
--   tier 2 sequence 20: [('partner_id.category_id', 'in', [VIP])]       -> Inventory Administrator
--   tier 3 sequence 30: [('amount_total', '>=', 20000)], after tier 1   -> Purchase Administrator
-- OCA approves tiers in sequence order; here sequence becomes level.
\c - rf_admin
INSERT INTO retailflow.approval_rule (name, document_type, amount_min, partner_category_ids, group_id, level, sequence)
VALUES ('tier 1 big', 'sale.order', 20000, NULL, 6, 10, 10),
       ('tier 2 VIP', 'sale.order', NULL, '{1}', 4, 20, 20),
       ('tier 3 big', 'sale.order', 20000, NULL, 8, 30, 30);
\c - rf_odoo
SET client_min_messages = warning;
SELECT t_so(4, 40, ARRAY[[1, 1000, 25.88, 0]]) AS so_tier \gset
SELECT * FROM t_req('sale.order', :so_tier);

-- ---------------------------------------------------------------- requests and segregation of duties
-- created by user 5 (a Sales Administrator too), requested by user 4
SELECT t_so(5, 36, ARRAY[[1, 250, 25.88, 0], [2, 1, 10.27, 15]]) AS so_sod \gset
SELECT count(*) AS created FROM retailflow.request_approvals('sale.order', :so_sod, 4);
SELECT count(*) AS created_again FROM retailflow.request_approvals('sale.order', :so_sod, 4);
CREATE VIEW t_requests AS
SELECT r.id - (SELECT min(id) FROM retailflow.approval_request) + 1 AS n, r.document_type, ru.name AS rule,
       r.level, r.state, r.requested_by, r.decided_by, r.comment, r.reason
FROM retailflow.approval_request r JOIN retailflow.approval_rule ru ON ru.id = r.rule_id;
SELECT * FROM t_requests WHERE document_type = 'sale.order' ORDER BY n;
SELECT max(id) FILTER (WHERE level = 2) AS lvl2, min(id) FILTER (WHERE level = 1) AS lvl1
  FROM retailflow.approval_request WHERE document_type = 'sale.order' AND record_id = :so_sod \gset
SELECT rft.err(format('SELECT retailflow.approve(%s, 4)', :lvl1));         -- the requester
SELECT rft.err(format('SELECT retailflow.approve(%s, 5)', :lvl1));         -- the document's creator
SELECT rft.err(format('SELECT retailflow.approve(%s, 6)', :lvl1));         -- not a Sales Administrator
SELECT rft.err(format('SELECT retailflow.approve(%s, 8)', :lvl1));         -- archived user
SELECT rft.err(format('SELECT retailflow.approve(%s, 99)', :lvl1));        -- no such user
SELECT rft.err(format('SELECT retailflow.approve(%s, 3)', :lvl2));         -- level 2 first
SELECT rft.err('SELECT retailflow.approve(NULL, 3)');
SELECT rft.err('SELECT retailflow.approve(1, NULL)');
SELECT rft.err('SELECT retailflow.approve(987654, 3)');
SELECT state, decided_by, comment FROM retailflow.approve(:lvl1, 3, 'ok for this customer');
SELECT rft.err(format('SELECT retailflow.approve(%s, 2)', :lvl1));         -- decided already
SELECT rft.err(format('SELECT retailflow.reject(%s, 2)', :lvl1));
SELECT n, rule, level, state, decided_by FROM t_requests WHERE document_type = 'sale.order' ORDER BY n;
-- level 2 can now be decided
SELECT state, decided_by FROM retailflow.reject(:lvl2, 3, 'too big');
SELECT * FROM retailflow.missing_approvals('sale.order', :so_sod);

-- ---------------------------------------------------------------- enforcement on Odoo state changes
SHOW retailflow.approval_enforcement;
-- the mode is the DBA's: Odoo's role cannot change it
SELECT rft.err('SET retailflow.approval_enforcement = off');
\c - postgres
SELECT rft.err('SET retailflow.approval_enforcement = maybe');
-- block: the confirmation is refused, naming the missing approvals
ALTER DATABASE rf_t_approvals SET retailflow.approval_enforcement = block;
\c - rf_odoo
SET client_min_messages = warning;
SHOW retailflow.approval_enforcement;
SELECT rft.err(format($$UPDATE sale_order SET state = 'sale' WHERE id = %s$$, :so_b));
SELECT state FROM sale_order WHERE id = :so_b;
-- the refusal rolls back its own transaction: its audit row is queued for the
-- webhook worker, which serves another database here (test/t/062 covers it);
-- neither the queue nor the slow path is open to Odoo's role
SELECT rft.err($$SELECT retailflow.approval_enforce_missing('sale.order', 1, 1, 'sale')$$);
SELECT rft.err($$SELECT retailflow.audit_after_rollback('x', 'sale.order', 1, NULL, NULL)$$);
\c - postgres
SELECT retailflow.audit_after_rollback('approval.enforcement_refused', 'sale.order', 1, NULL, '{}') AS queued;
SELECT rft.err($$SELECT retailflow.audit_after_rollback(NULL, 'sale.order', 1, NULL, NULL)$$);
SELECT rft.err($$SELECT retailflow.audit_after_rollback('x', '', 1, NULL, NULL)$$);
SELECT rft.err(format('SELECT retailflow.audit_after_rollback(%L, %L, 1, NULL, NULL)', repeat('a', 64), 'sale.order'));
SELECT rft.err(format('SELECT retailflow.audit_after_rollback(%L, %L, 1, NULL, %L)', 'x', 'sale.order',
                      jsonb_build_object('missing', repeat('m', 3000))));
\c - rf_odoo
SET client_min_messages = warning;
-- another role Odoo lets update its orders (no retailflow grant): the rules
-- still apply to it, and the facts are read with its own rights, so without
-- SELECT on the product tables its confirmation fails closed (42501)
\c - postgres
CREATE ROLE rf_approvals_etl;
\c - rf_odoo
GRANT SELECT, UPDATE ON sale_order, sale_order_line TO rf_approvals_etl;
\c - postgres
SET ROLE rf_approvals_etl;
SELECT rft.err(format($$UPDATE sale_order SET state = 'sale' WHERE id = %s$$, :so_b));
RESET ROLE;
\c - rf_odoo
GRANT SELECT ON ALL TABLES IN SCHEMA public TO rf_approvals_etl;
\c - postgres
SET ROLE rf_approvals_etl;
SELECT rft.err(format($$UPDATE sale_order SET state = 'sale' WHERE id = %s$$, :so_b));
RESET ROLE;
\c - rf_odoo
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM rf_approvals_etl;
\c - postgres
DROP ROLE rf_approvals_etl;
\c - rf_odoo
SET client_min_messages = warning;
-- the trigger function is only a trigger
SELECT rft.err('SELECT retailflow.approval_enforce()');
-- a document no rule matches goes through
UPDATE sale_order SET state = 'sale' WHERE id = :so_a;
-- approved documents go through
SELECT count(*) FROM retailflow.request_approvals('sale.order', :so_b, 4);
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 3) a
WHERE r.record_id = :so_b AND r.document_type = 'sale.order';
SELECT count(*) AS lines_to_confirm FROM sale_order_line WHERE order_id = :so_b;
UPDATE sale_order SET state = 'sale' WHERE id = :so_b;
UPDATE sale_order_line SET state = 'sale' WHERE order_id = :so_b;
SELECT state FROM sale_order WHERE id = :so_b;
-- an approval covers the amount it was requested for: the order grown after the approval
-- is refused, naming both amounts; a new request supersedes the old approval
SELECT t_so(4, 36, ARRAY[[1, 50, 25.88, 0]]) AS so_grow \gset
SELECT count(*) FROM retailflow.request_approvals('sale.order', :so_grow, 4);
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 3) a
WHERE r.record_id = :so_grow AND r.document_type = 'sale.order';
UPDATE sale_order_line SET product_uom_qty = 150, price_subtotal = 3882 WHERE order_id = :so_grow;
UPDATE sale_order SET amount_untaxed = 3882, amount_total = 3882 WHERE id = :so_grow;
SELECT rule_id IS NOT NULL AS rule, request_state FROM retailflow.missing_approvals('sale.order', :so_grow);
SELECT rft.err(format($$UPDATE sale_order SET state = 'sale' WHERE id = %s$$, :so_grow));
SELECT count(*) AS requested FROM retailflow.request_approvals('sale.order', :so_grow, 4);
SELECT state, amount, consumed_at IS NOT NULL AS superseded FROM retailflow.approval_request
WHERE document_type = 'sale.order' AND record_id = :so_grow ORDER BY id;
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 3) a
WHERE r.record_id = :so_grow AND r.document_type = 'sale.order' AND r.state = 'pending';
UPDATE sale_order SET state = 'sale' WHERE id = :so_grow;
SELECT state FROM sale_order WHERE id = :so_grow;
-- a rejected level blocks
SELECT rft.err(format($$UPDATE sale_order SET state = 'sale' WHERE id = %s$$, :so_sod));
-- re-saving a confirmed order does not re-check (the state does not change)
UPDATE sale_order SET state = 'sale', note = 'x' WHERE id = :so_b;
-- purchase double validation: draft -> to approve is free; to approve -> purchase needs the manager
UPDATE purchase_order SET state = 'to approve' WHERE id = :po_big;
SELECT rft.err(format($$UPDATE purchase_order SET state = 'purchase' WHERE id = %s$$, :po_big));
UPDATE purchase_order SET state = 'purchase' WHERE id = :po_small;
SELECT count(*) FROM retailflow.request_approvals('purchase.order', :po_big, 6);
SELECT rft.err(format($$SELECT retailflow.approve(id, 6) FROM retailflow.approval_request WHERE record_id = %s AND document_type = 'purchase.order'$$, :po_big));
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 3, 'double validation') a
WHERE r.record_id = :po_big AND r.document_type = 'purchase.order';
UPDATE purchase_order SET state = 'purchase' WHERE id = :po_big;
-- refunds: posting a credit note above 1,000 needs an accounting approval; invoices are never checked
\c - rf_admin
INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id, sla)
VALUES ('refund 1k', 'account.move', 1000, 6, '2 hours');
\c - rf_odoo
SET client_min_messages = warning;
SELECT t_refund(4, 1250) AS refund_big, t_refund(4, 999) AS refund_small \gset
SELECT * FROM t_req('account.move', :refund_big);
SELECT rft.err(format($$UPDATE account_move SET state = 'posted' WHERE id = %s$$, :refund_big));
UPDATE account_move SET state = 'posted' WHERE id = :refund_small;
UPDATE account_move SET state = 'draft' WHERE id = 2;
UPDATE account_move SET state = 'posted', amount_total = 99999 WHERE id = 2;
-- inventory adjustments: applying a counted difference worth 100 or more needs the stock manager
\c - rf_admin
INSERT INTO retailflow.approval_rule (name, document_type, amount_min, product_category_id, group_id)
VALUES ('count adjustment', 'stock.quant', 100, 2, 4);
\c - rf_odoo
SET client_min_messages = warning;
SELECT id AS quant FROM stock_quant WHERE product_id = 1 AND quantity > 20 ORDER BY id LIMIT 1 \gset
UPDATE stock_quant SET inventory_quantity = quantity - 20, inventory_diff_quantity = -20, inventory_quantity_set = true
WHERE id = :quant;
SELECT * FROM t_req('stock.quant', :quant);
-- Odoo's apply (stock.quant._apply_inventory): an is_inventory move with its line from
-- the counted quant to the inventory loss location, validated; the move is judged
SELECT location_id AS qloc FROM stock_quant WHERE id = :quant \gset
INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, name, procure_method,
                        product_uom_qty, product_qty, quantity, state, date, is_inventory, write_uid)
VALUES (1, 1, 1, :qloc, (SELECT id FROM stock_location WHERE usage = 'inventory' ORDER BY id LIMIT 1),
        'Product Quantity Updated', 'make_to_stock', 20, 20, 20, 'confirmed', '2024-06-01', true, 3)
RETURNING id AS inv_move \gset
INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id,
                             quantity, quantity_product_uom, state, date)
SELECT id, company_id, product_id, product_uom, location_id, location_dest_id, 20, 20, 'confirmed', date
FROM stock_move WHERE id = :inv_move;
SELECT rft.err(format($$UPDATE stock_move SET state = 'done' WHERE id = %s$$, :inv_move));
-- the same count written on the quant alone changes nothing Odoo applies: not judged
UPDATE stock_quant SET inventory_quantity = 0, inventory_diff_quantity = 0, inventory_quantity_set = false WHERE id = :quant;
-- log: the change goes through, the missing approvals are requested and recorded
\c - postgres
ALTER DATABASE rf_t_approvals SET retailflow.approval_enforcement = log;
\c - rf_odoo
SET client_min_messages = warning;
SET retailflow.odoo_user_id = 5;
UPDATE stock_move SET state = 'done' WHERE id = :inv_move;
UPDATE account_move SET state = 'posted' WHERE id = :refund_big;
RESET retailflow.odoo_user_id;
UPDATE sale_order SET state = 'sale' WHERE id = :so_sod;
SELECT document_type, rule, level, state, requested_by, reason FROM t_requests
WHERE document_type IN ('stock.quant', 'account.move') ORDER BY n;
SELECT action, entity, odoo_user_id, after ->> 'missing' AS missing FROM retailflow.audit_log
WHERE action = 'approval.enforcement_logged' ORDER BY id;
-- the stock manager approves the count; in block mode the next apply of that quant goes through
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 3, 'recount checked') a
WHERE r.record_id = :quant AND r.document_type = 'stock.quant';
\c - postgres
ALTER DATABASE rf_t_approvals SET retailflow.approval_enforcement = block;
\c - rf_odoo
SET client_min_messages = warning;
INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, name, procure_method,
                        product_uom_qty, product_qty, quantity, state, date, is_inventory, write_uid)
VALUES (1, 1, 1, :qloc, (SELECT id FROM stock_location WHERE usage = 'inventory' ORDER BY id LIMIT 1),
        'Product Quantity Updated', 'make_to_stock', 20, 20, 20, 'confirmed', '2024-06-02', true, 3)
RETURNING id AS inv_move2 \gset
INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id,
                             quantity, quantity_product_uom, state, date)
SELECT id, company_id, product_id, product_uom, location_id, location_dest_id, 20, 20, 'confirmed', date
FROM stock_move WHERE id = :inv_move2;
UPDATE stock_move SET state = 'done' WHERE id = :inv_move2;
SELECT state FROM stock_move WHERE id = :inv_move2;
-- the count used the approval: the next count of the same quant needs its own
SELECT rule_id, state, consumed_at IS NOT NULL AS used FROM retailflow.approval_request
WHERE document_type = 'stock.quant' AND record_id = :quant ORDER BY id;
SELECT action, after->>'move_id' = :'inv_move2' AS this_move FROM retailflow.audit_log
WHERE action = 'approval.consumed';
INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, name, procure_method,
                        product_uom_qty, product_qty, quantity, state, date, is_inventory, write_uid)
VALUES (1, 1, 1, :qloc, (SELECT id FROM stock_location WHERE usage = 'inventory' ORDER BY id LIMIT 1),
        'Product Quantity Updated', 'make_to_stock', 20, 20, 20, 'confirmed', '2024-06-03', true, 3)
RETURNING id AS inv_move3 \gset
INSERT INTO stock_move_line (move_id, company_id, product_id, product_uom_id, location_id, location_dest_id,
                             quantity, quantity_product_uom, state, date)
SELECT id, company_id, product_id, product_uom, location_id, location_dest_id, 20, 20, 'confirmed', date
FROM stock_move WHERE id = :inv_move3;
SELECT rft.err(format($$UPDATE stock_move SET state = 'done' WHERE id = %s$$, :inv_move3));
-- the new count, once set on the quant, gets a request of its own
UPDATE stock_quant SET inventory_quantity = quantity - 20, inventory_diff_quantity = -20, inventory_quantity_set = true
WHERE id = :quant;
SELECT count(*) AS requested FROM retailflow.request_approvals('stock.quant', :quant, 5);
-- off: nothing is checked or recorded
\c - postgres
ALTER DATABASE rf_t_approvals SET retailflow.approval_enforcement = off;
\c - rf_odoo
SET client_min_messages = warning;
SELECT t_so(4, 36, ARRAY[[1, 100, 25.88, 0]]) AS so_off \gset
UPDATE sale_order SET state = 'sale' WHERE id = :so_off;
SELECT count(*) AS requests_for_off FROM retailflow.approval_request WHERE document_type = 'sale.order' AND record_id = :so_off;
\c - postgres
ALTER DATABASE rf_t_approvals RESET retailflow.approval_enforcement;
\c - rf_odoo
SET client_min_messages = warning;

-- ---------------------------------------------------------------- SLA escalation
-- (the background worker's job; the administrator may run it)
\c - rf_admin
SELECT retailflow.escalate_overdue(now() + interval '1 hour') AS escalated_after_1h;
SELECT retailflow.escalate_overdue(now() + interval '3 hours') AS escalated_after_3h;
SELECT retailflow.escalate_overdue(now() + interval '3 hours') AS escalated_again;
SELECT rft.err('SELECT retailflow.escalate_overdue(NULL)');
\c - rf_odoo
SET client_min_messages = warning;
SELECT document_type, rule, state FROM t_requests WHERE state = 'escalated' ORDER BY n;
-- escalated requests can still be decided
SELECT a.state FROM retailflow.approval_request r, LATERAL retailflow.approve(r.id, 2) a
WHERE r.document_type = 'account.move' AND r.state = 'escalated';

-- ---------------------------------------------------------------- events
SELECT event_type, model, count(*) FROM retailflow.outbox WHERE event_type LIKE 'approval.%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT data - 'request_id' - 'due_at' - 'rule_id' AS data FROM retailflow.outbox
WHERE event_type = 'approval.escalated' ORDER BY id LIMIT 1;

-- ---------------------------------------------------------------- audit trail
SELECT action, count(*) FROM retailflow.audit_log GROUP BY 1 ORDER BY 1;
SELECT action, entity, odoo_user_id, db_role, before ->> 'state' AS before, after ->> 'state' AS after, after ->> 'comment' AS comment
FROM retailflow.audit_log WHERE action IN ('approval.approved', 'approval.rejected') ORDER BY id LIMIT 3;
SELECT ok, first_broken_id IS NULL AS no_broken_link FROM retailflow.verify_audit_log();
-- each row names the session that wrote it
SELECT count(*) AS rows, count(*) FILTER (WHERE db_role = 'rf_odoo') AS by_odoo_role,
       count(*) FILTER (WHERE application_name = 'pg_regress/approvals') AS by_this_app,
       count(*) FILTER (WHERE backend_pid IS NULL) AS without_pid
FROM retailflow.audit_log;
-- Odoo's role cannot append or change rows
SELECT rft.err($$SELECT retailflow.audit('x', 'y', 1)$$);
SELECT rft.err('UPDATE retailflow.audit_log SET action = ''x'' WHERE id = 1');
SELECT rft.err('UPDATE retailflow.audit_head SET last_id = 0');
-- append-only, even for the owner
\c - postgres
SELECT rft.err('UPDATE retailflow.audit_log SET action = ''x'' WHERE id = 1');
SELECT rft.err('DELETE FROM retailflow.audit_log WHERE id = 1');
SELECT rft.err('TRUNCATE retailflow.audit_log');
SELECT rft.err('DELETE FROM retailflow.audit_head');
SELECT rft.err($$SELECT retailflow.audit(NULL, 'x', 1)$$);
SELECT rft.err($$SELECT retailflow.audit('x', '', 1)$$);
-- other concerns append with retailflow.audit(); inserting directly is chained too
SELECT retailflow.audit('reservation.repair', 'stock.quant', 42, '{"reserved_quantity": 5}', '{"reserved_quantity": 3}', 2) > 0 AS appended;
INSERT INTO retailflow.audit_log (action, entity, entity_id, prev_hash, hash) VALUES ('manual', 'note', NULL, '\x00', '\x00');
SELECT ok FROM retailflow.verify_audit_log();
-- tampering: a superuser disables the triggers and rewrites a row
SELECT min(id) AS tampered, encode(hash, 'hex') AS orig_hash, after::text AS orig_after
FROM retailflow.audit_log WHERE id = (SELECT min(id) FROM retailflow.audit_log WHERE action = 'approval.approved') GROUP BY id, hash, after \gset
ALTER TABLE retailflow.audit_log DISABLE TRIGGER USER;
UPDATE retailflow.audit_log SET after = jsonb_set(after, '{comment}', '"changed"') WHERE id = :tampered;
SELECT ok, first_broken_id = :tampered AS names_the_row, detail LIKE '%was modified%' AS says_modified
FROM retailflow.verify_audit_log();
-- ... or rehashes it so that its own hash fits: the next row's link breaks
UPDATE retailflow.audit_log a SET hash = sha256(a.prev_hash || retailflow.audit_content(a.id, a.logged_at, a.action,
       a.entity, a.entity_id, a.odoo_user_id, a.db_role, a.before, a.after, a.application_name, a.backend_pid))
 WHERE id = :tampered;
SELECT ok, first_broken_id = :tampered + 1 AS names_next_row, detail LIKE '%does not link%' AS says_link
FROM retailflow.verify_audit_log();
-- restored, the chain verifies again
UPDATE retailflow.audit_log SET after = :'orig_after'::jsonb, hash = decode(:'orig_hash', 'hex') WHERE id = :tampered;
SELECT ok FROM retailflow.verify_audit_log();
-- ... a row in the middle is deleted
CREATE TEMP TABLE saved AS SELECT * FROM retailflow.audit_log WHERE id = :tampered;
DELETE FROM retailflow.audit_log WHERE id = :tampered;
SELECT ok, first_broken_id = :tampered + 1 AS names_next_row, detail LIKE '%does not link%' AS says_link
FROM retailflow.verify_audit_log();
INSERT INTO retailflow.audit_log SELECT * FROM saved;
-- ... the newest rows are deleted: the chain head no longer matches
DELETE FROM retailflow.audit_log WHERE id = (SELECT max(id) FROM retailflow.audit_log);
SELECT ok, detail LIKE '%rows at the end were removed%' AS says_tail_removed FROM retailflow.verify_audit_log();
ALTER TABLE retailflow.audit_log ENABLE TRIGGER USER;

-- ---------------------------------------------------------------- bad input
\c - rf_odoo
SET client_min_messages = warning;
SELECT rft.err('SELECT * FROM retailflow.required_approvals(NULL, 1)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', NULL::integer)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.quote'', 1)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', 987654)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''stock.quant'', -1)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', NULL::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', ''[1]''::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', ''{"amont": 5}''::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', ''{"amount": "lots"}''::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', ''{"amount": -5}''::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', ''{"product_category_ids": [77]}''::jsonb)');
SELECT rft.err('SELECT * FROM retailflow.request_approvals(''sale.order'', 987654)');
-- an invoice is not a refund: no rule applies
SELECT count(*) AS invoice_rules FROM retailflow.required_approvals('account.move', 1);
-- rules in use cannot be deleted (deactivate them instead)
\c - rf_admin
SELECT rft.err($$DELETE FROM retailflow.approval_rule WHERE name = 'refund 1k'$$);

-- no Odoo tables
\c rf_empty rf_admin
SELECT rft.err('SELECT * FROM retailflow.required_approvals(''sale.order'', 1)');
SELECT rft.err($$INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.order', 1)$$);

\c rf_regression postgres
DROP DATABASE rf_t_approvals;
