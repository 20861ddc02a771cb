# 040_approvals_odoo_real: approvals on the real Odoo 17 and 18 demo databases
# in ../shared/odoo: Odoo's purchase double validation expressed as a rule
# (the group resolved through ir_model_data, never hard-coded), enforced in
# block mode on a real 'sent' purchase order, with segregation of duties
# against the demo users; margin/category/discount rules evaluated on every
# real sale order (product cost from ir_property in 17, from the jsonb
# product_product.standard_price in 18).  Skipped without ../shared/odoo.
# Roles as deployed (docs/security.md): Odoo's role "odoo" loads the dump, owns
# every table, confirms documents, requests and decides approvals and reads;
# the administrator "integrator" (retailflow_admin) writes the rules, with the
# values Odoo's role read (it has no right on Odoo's tables); the enforcement
# mode is the DBA's (ALTER DATABASE as the superuser) -- Odoo's role can no
# longer choose it with SET, which is now refused (asserted below).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RfTest;

my $shared = $ENV{RF_SHARED_ODOO} // '';
if ($shared eq '' || !-f "$shared/odoo17_demo_full.sql.gz")
{
	plan skip_all => 'skipped: ../shared/odoo (real Odoo databases) is not present';
}

my $node = rf_node('approvals');
$node->start;

# Loads a real Odoo dump into a new database with retailflow, and the administrator role (RfTest).
sub load_dump { rf_load_dump($node, @_); rf_admin_role($node); return; }
# Odoo's role, the administrator, and the DBA's enforcement mode for a database
sub oq { return rf_odoo_psql($node, @_); }
sub aq { return rf_admin_psql($node, @_); }
sub enforcement
{
	my ($db, $mode) = @_;
	$node->safe_psql('postgres', $mode eq 'default'
		? "ALTER DATABASE $db RESET retailflow.approval_enforcement"
		: "ALTER DATABASE $db SET retailflow.approval_enforcement = $mode");
	return;
}

# The checks, the same on 17 and 18.
sub check_demo
{
	my ($db, $v) = @_;
	my ($ret, $out, $err);
	is(oq($db, 'SELECT retailflow.odoo_version()'), $v, "$db is Odoo $v");

	# purchase double validation: threshold from res_company, group from its XML id
	# (read by Odoo's role; the administrator writes the rule, one per company)
	my $po_rules = oq($db, q{
		SELECT string_agg(format('(%L, %L, %L, %L, %L)', 'PO double validation', 'purchase.order',
		                         c.id, c.po_double_validation_amount, d.res_id), ', ' ORDER BY c.id)
		  FROM res_company c, ir_model_data d
		 WHERE d.module = 'purchase' AND d.name = 'group_purchase_manager' AND d.model = 'res.groups'});
	like($po_rules, qr/^\(.+\)$/, "$db: Odoo's role read the thresholds and the purchase manager group");
	($ret, $out, $err) = rf_psql_as($node, 'odoo', $db,
		"INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, group_id) VALUES $po_rules");
	like($err, qr/permission denied for table approval_rule/, "$db: Odoo's role may not write approval rules");
	aq($db, "INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, group_id) VALUES $po_rules");
	my ($po, $amount, $po_state) = split /\|/, oq($db, q{
		SELECT id, amount_total, state FROM purchase_order WHERE state IN ('draft', 'sent')
		 ORDER BY amount_total DESC, id LIMIT 1});
	my $threshold = oq($db, 'SELECT po_double_validation_amount FROM res_company WHERE id = 1');
	cmp_ok($amount, '>=', $threshold, "$db: PO $po ($amount) is above the double validation amount $threshold");
	like(oq($db, "SELECT reason FROM retailflow.required_approvals('purchase.order', $po)"),
		qr/^purchase order [0-9,]+\.[0-9]{2} above [0-9,]+\.00 \(company 1\)$/, "$db: PO $po needs the purchase manager");
	is(oq($db, q{
		SELECT count(*) FROM purchase_order p, LATERAL retailflow.required_approvals('purchase.order', p.id)
		 WHERE p.amount_total < (SELECT po_double_validation_amount FROM res_company WHERE id = 1)}),
		'0', "$db: POs below the threshold need nothing");

	# block mode (the DBA's setting) refuses Odoo's real transition, naming the missing approval
	enforcement($db, 'block');
	($ret, $out, $err) = rf_psql_as($node, 'odoo', $db, "UPDATE purchase_order SET state = 'purchase' WHERE id = $po");
	like($err, qr/purchase\.order $po cannot be confirmed: approvals are missing/, "$db: block refuses the confirmation");
	like($err, qr/DETAIL:  Missing approvals: level 1: purchase order/, "$db: the detail names the missing approval");
	# new in the least-privilege model: Odoo's role cannot lower the mode for its session
	($ret, $out, $err) = rf_psql_as($node, 'odoo', $db,
		"SET retailflow.approval_enforcement = off; UPDATE purchase_order SET state = 'purchase' WHERE id = $po");
	like($err, qr/permission denied to set parameter "retailflow\.approval_enforcement"/,
		"$db: Odoo's role may not turn enforcement off");
	is(oq($db, "SELECT state FROM purchase_order WHERE id = $po"), $po_state, "$db: the PO is still $po_state");

	# the demo user requests; the creator (and the requester) may not approve; a manager may
	my $demo = oq($db, "SELECT id FROM res_users WHERE login = 'demo'");
	my $creator = oq($db, "SELECT create_uid FROM purchase_order WHERE id = $po");
	my $req = oq($db, "SELECT id FROM retailflow.request_approvals('purchase.order', $po, $demo)");
	like($req, qr/^\d+$/, "$db: request created");
	($ret, $out, $err) = rf_psql_as($node, 'odoo', $db, "SELECT retailflow.approve($req, $demo)");
	like($err, qr/requested this approval and cannot decide it/, "$db: the requester cannot approve");
	my $manager = oq($db, qq{
		SELECT min(r.uid) FROM res_groups_users_rel r JOIN res_users u ON u.id = r.uid AND u.active
		 WHERE r.gid = (SELECT min(group_id) FROM retailflow.approval_rule WHERE name = 'PO double validation')
		   AND r.uid NOT IN ($demo, coalesce($creator, 0))});
	like($manager, qr/^\d+$/, "$db: a purchase manager other than the creator exists ($manager)");
	is(oq($db, "SELECT state FROM retailflow.approve($req, $manager, 'ok')"), 'approved',
		"$db: the purchase manager approves");
	($ret, $out, $err) = rf_psql_as($node, 'odoo', $db, "UPDATE purchase_order SET state = 'purchase' WHERE id = $po");
	is($ret, 0, "$db: the approved PO is confirmed in block mode") or diag($err);
	enforcement($db, 'default');

	# sale order rules on every real order: margin (real product costs), discounts, categories
	# (the group and the root category read by Odoo's role, the rules written by the administrator)
	my ($sale_mgr, $root_categ) = split /\|/, oq($db, q{
		SELECT (SELECT res_id FROM ir_model_data WHERE module = 'sales_team' AND name = 'group_sale_manager'),
		       (SELECT min(id) FROM product_category WHERE parent_id IS NULL)});
	like("$sale_mgr|$root_categ", qr/^\d+\|\d+$/, "$db: sales manager group $sale_mgr, root category $root_categ");
	aq($db, qq{
		INSERT INTO retailflow.approval_rule (name, document_type, min_margin, group_id)
		VALUES ('low margin', 'sale.order', 99.99, $sale_mgr);
		INSERT INTO retailflow.approval_rule (name, document_type, product_category_id, group_id)
		VALUES ('all products', 'sale.order', $root_categ, $sale_mgr)});
	# reference: orders with priced product lines, and the margin from an independent query
	my $cost = $v == 18
		? "(pp.standard_price ->> so.company_id::text)::numeric"
		: "(SELECT ip.value_float::numeric FROM ir_property ip WHERE ip.name = 'standard_price'
		     AND ip.res_id = 'product.product,' || pp.id AND ip.company_id = so.company_id)";
	my $ref = oq($db, qq{
		SELECT string_agg(so.id::text, ',' ORDER BY so.id) FROM sale_order so
		 WHERE (SELECT sum(l.price_subtotal) FROM sale_order_line l WHERE l.order_id = so.id AND l.display_type IS NULL) > 0
		   AND (SELECT (sum(l.price_subtotal) - sum(l.product_uom_qty * coalesce($cost, 0))) / sum(l.price_subtotal) * 100
		          FROM sale_order_line l JOIN product_product pp ON pp.id = l.product_id
		         WHERE l.order_id = so.id AND l.display_type IS NULL) < 99.99});
	my $got = oq($db, q{
		SELECT string_agg(s.id::text, ',' ORDER BY s.id) FROM sale_order s
		 WHERE EXISTS (SELECT 1 FROM retailflow.required_approvals('sale.order', s.id) r WHERE r.rule_name = 'low margin')});
	is($got, $ref, "$db: margin rule matches the orders an independent query finds");
	isnt($got, '', "$db: some real orders have a margin below 99.99%");
	is(oq($db, q{
		SELECT count(*) FROM sale_order s
		 WHERE EXISTS (SELECT 1 FROM sale_order_line l WHERE l.order_id = s.id AND l.product_id IS NOT NULL)
		   AND NOT EXISTS (SELECT 1 FROM retailflow.required_approvals('sale.order', s.id) r WHERE r.rule_name = 'all products')}),
		'0', "$db: the root category rule matches every order with products (category children)");

	# the audit trail of it all verifies, and names the role each session acted as
	is(oq($db, 'SELECT ok FROM retailflow.verify_audit_log()'), 't', "$db: audit chain intact");
	is(oq($db, q{SELECT string_agg(x, ',' ORDER BY x) FROM (SELECT DISTINCT action || ':' || db_role AS x
		FROM retailflow.audit_log WHERE action IN ('approval.requested', 'approval.approved') OR action LIKE 'approval_rule.%') s}),
		'approval.approved:odoo,approval.requested:odoo,approval_rule.insert:integrator',
		"$db: audit rows name Odoo's role for requests and decisions, the administrator for rules");
	return;
}

load_dump('demo17', 'odoo17_demo_full.sql.gz');
check_demo('demo17', 17);
SKIP:
{
	skip 'odoo18_demo_full.sql.gz not present', 22 unless -f "$shared/odoo18_demo_full.sql.gz";
	load_dump('demo18', 'odoo18_demo_full.sql.gz');
	check_demo('demo18', 18);
}

$node->stop;
done_testing();
