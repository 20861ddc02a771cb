# 010_approvals_odoo_real: approvals on the real Odoo 17 and 18 demo databases
# in ../shared/odoo: Odoo's purchase double validation expressed as a rule
# (the group resolved through ir_model_data, never hard-coded), enforced in
# block mode on a real 'sent' purchase order, with segregation of duties
# against the demo users; margin/category/discount rules evaluated on every
# real sale order (product cost from ir_property in 17, from the jsonb
# product_product.standard_price in 18).  Skipped without ../shared/odoo.
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

# Loads a real Odoo dump into a new database with retailflow (RfTest).
sub load_dump { return rf_load_dump($node, @_); }

# The checks, the same on 17 and 18.
sub check_demo
{
	my ($db, $v) = @_;
	is($node->safe_psql($db, 'SELECT retailflow.odoo_version()'), $v, "$db is Odoo $v");

	# purchase double validation: threshold from res_company, group from its XML id
	$node->safe_psql($db, q{
		INSERT INTO retailflow.approval_rule (name, document_type, company_id, amount_min, group_id)
		SELECT 'PO double validation', 'purchase.order', c.id, c.po_double_validation_amount, d.res_id
		  FROM res_company c, ir_model_data d
		 WHERE d.module = 'purchase' AND d.name = 'group_purchase_manager' AND d.model = 'res.groups'});
	my ($po, $amount) = split /\|/, $node->safe_psql($db, q{
		SELECT id, amount_total FROM purchase_order WHERE state IN ('draft', 'sent')
		 ORDER BY amount_total DESC, id LIMIT 1});
	my $threshold = $node->safe_psql($db, 'SELECT po_double_validation_amount FROM res_company WHERE id = 1');
	cmp_ok($amount, '>=', $threshold, "$db: PO $po ($amount) is above the double validation amount $threshold");
	like($node->safe_psql($db, "SELECT reason FROM retailflow.required_approvals('purchase.order', $po)"),
		qr/^purchase order [0-9,]+\.[0-9]{2} above [0-9,]+\.00 \(company 1\)$/, "$db: PO $po needs the purchase manager");
	is($node->safe_psql($db, q{
		SELECT count(*) FROM purchase_order p, LATERAL retailflow.required_approvals('purchase.order', p.id)
		 WHERE p.amount_total < (SELECT po_double_validation_amount FROM res_company WHERE id = 1)}),
		'0', "$db: POs below the threshold need nothing");

	# block mode refuses the real transition, naming the missing approval
	my ($ret, $out, $err) = $node->psql($db,
		"SET retailflow.approval_enforcement = block; UPDATE purchase_order SET state = 'purchase' WHERE id = $po");
	like($err, qr/purchase\.order $po cannot be confirmed: approvals are missing/, "$db: block refuses the confirmation");
	like($err, qr/DETAIL:  Missing approvals: level 1: purchase order/, "$db: the detail names the missing approval");

	# the demo user requests; the creator (and the requester) may not approve; a manager may
	my $demo = $node->safe_psql($db, "SELECT id FROM res_users WHERE login = 'demo'");
	my $creator = $node->safe_psql($db, "SELECT create_uid FROM purchase_order WHERE id = $po");
	my $req = $node->safe_psql($db,
		"SELECT id FROM retailflow.request_approvals('purchase.order', $po, $demo)");
	like($req, qr/^\d+$/, "$db: request created");
	($ret, $out, $err) = $node->psql($db, "SELECT retailflow.approve($req, $demo)");
	like($err, qr/requested this approval and cannot decide it/, "$db: the requester cannot approve");
	my $manager = $node->safe_psql($db, qq{
		SELECT min(r.uid) FROM res_groups_users_rel r JOIN res_users u ON u.id = r.uid AND u.active
		 WHERE r.gid = (SELECT min(group_id) FROM retailflow.approval_rule WHERE name = 'PO double validation')
		   AND r.uid NOT IN ($demo, coalesce($creator, 0))});
	like($manager, qr/^\d+$/, "$db: a purchase manager other than the creator exists ($manager)");
	is($node->safe_psql($db, "SELECT state FROM retailflow.approve($req, $manager, 'ok')"), 'approved',
		"$db: the purchase manager approves");
	($ret, $out, $err) = $node->psql($db,
		"SET retailflow.approval_enforcement = block; UPDATE purchase_order SET state = 'purchase' WHERE id = $po");
	is($ret, 0, "$db: the approved PO is confirmed in block mode") or diag($err);

	# sale order rules on every real order: margin (real product costs), discounts, categories
	$node->safe_psql($db, q{
		INSERT INTO retailflow.approval_rule (name, document_type, min_margin, group_id)
		SELECT 'low margin', 'sale.order', 99.99, res_id FROM ir_model_data
		 WHERE module = 'sales_team' AND name = 'group_sale_manager';
		INSERT INTO retailflow.approval_rule (name, document_type, product_category_id, group_id)
		SELECT 'all products', 'sale.order', (SELECT min(id) FROM product_category WHERE parent_id IS NULL), res_id
		  FROM ir_model_data WHERE module = 'sales_team' AND name = 'group_sale_manager'});
	# reference: orders with priced product lines, and the margin from an independent query
	my $cost = $v == 18
		? "(pp.standard_price ->> so.company_id::text)::numeric"
		: "(SELECT ip.value_float::numeric FROM ir_property ip WHERE ip.name = 'standard_price'
		     AND ip.res_id = 'product.product,' || pp.id AND ip.company_id = so.company_id)";
	my $ref = $node->safe_psql($db, qq{
		SELECT string_agg(so.id::text, ',' ORDER BY so.id) FROM sale_order so
		 WHERE (SELECT sum(l.price_subtotal) FROM sale_order_line l WHERE l.order_id = so.id AND l.display_type IS NULL) > 0
		   AND (SELECT (sum(l.price_subtotal) - sum(l.product_uom_qty * coalesce($cost, 0))) / sum(l.price_subtotal) * 100
		          FROM sale_order_line l JOIN product_product pp ON pp.id = l.product_id
		         WHERE l.order_id = so.id AND l.display_type IS NULL) < 99.99});
	my $got = $node->safe_psql($db, q{
		SELECT string_agg(s.id::text, ',' ORDER BY s.id) FROM sale_order s
		 WHERE EXISTS (SELECT 1 FROM retailflow.required_approvals('sale.order', s.id) r WHERE r.rule_name = 'low margin')});
	is($got, $ref, "$db: margin rule matches the orders an independent query finds");
	isnt($got, '', "$db: some real orders have a margin below 99.99%");
	is($node->safe_psql($db, q{
		SELECT count(*) FROM sale_order s
		 WHERE EXISTS (SELECT 1 FROM sale_order_line l WHERE l.order_id = s.id AND l.product_id IS NOT NULL)
		   AND NOT EXISTS (SELECT 1 FROM retailflow.required_approvals('sale.order', s.id) r WHERE r.rule_name = 'all products')}),
		'0', "$db: the root category rule matches every order with products (category children)");

	# the audit trail of it all verifies
	is($node->safe_psql($db, 'SELECT ok FROM retailflow.verify_audit_log()'), 't', "$db: audit chain intact");
	return;
}

load_dump('demo17', 'odoo17_demo_full.sql.gz');
check_demo('demo17', 17);
SKIP:
{
	skip 'odoo18_demo_full.sql.gz not present', 1 unless -f "$shared/odoo18_demo_full.sql.gz";
	load_dump('demo18', 'odoo18_demo_full.sql.gz');
	check_demo('demo18', 18);
}

$node->stop;
done_testing();
