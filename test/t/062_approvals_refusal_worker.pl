# 062_approvals_refusal_worker: a refusal in block mode is an error, so its own
# transaction rolls back; the audit row still lands, appended by webhook
# worker 0 from the shared-memory queue, with the refusing role, the Odoo user
# and the missing approvals, and the hash chain stays valid.
# Roles as deployed (docs/security.md): Odoo's role "odoo" (not a superuser,
# the tables' owner) confirms the orders and is the refusing role; the rule is
# the administrator's ("integrator"); block mode is the DBA's, set with ALTER
# ROLE odoo IN DATABASE by the superuser.  Before the least-privilege model the
# refusing role was an extra role "odoo_app" with SELECT, UPDATE on sale_order
# and sale_order_line only: retailflow now reads the order's facts with the
# caller's rights, so such a role fails closed with 42501 on product_product
# (sql/approvals.sql covers that) and the refusal is Odoo's own role's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RfTest;

my $node = rf_node('apw', conf => qq{
retailflow.database = 'odoo'
retailflow.webhook_workers = 1
retailflow.scheduler_tick = 0
retailflow.webhook_poll_interval = 5s
});
$node->start;
rf_odoo_db($node, 'odoo', '3, 30, 300, 100');
rf_admin_role($node);
# as Odoo's role
sub sq { return rf_odoo_psql($node, 'odoo', $_[0]); }

my $group = sq('SELECT min(id) FROM res_groups');
rf_admin_psql($node, 'odoo', qq{
	INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id, sla)
	VALUES ('every sale order', 'sale.order', 0, $group, '1 hour')});
sq(q{UPDATE sale_order SET state = 'draft' WHERE id IN (SELECT id FROM sale_order ORDER BY id LIMIT 3)});
$node->safe_psql('postgres', 'ALTER ROLE odoo IN DATABASE odoo SET retailflow.approval_enforcement = block');
is(sq('SHOW retailflow.approval_enforcement'), 'block', "block mode applies to Odoo's sessions");
my @orders = split /\n/, sq("SELECT id FROM sale_order ORDER BY id LIMIT 3");
my $before = sq("SELECT count(*) FROM retailflow.audit_log");

# the worker sleeps up to 5 s between polls: the queue wakes it
my $t0 = time();
for my $so (@orders)
{
	my ($rc, $out, $err) = rf_psql_as($node, 'odoo', 'odoo',
		"SET retailflow.odoo_user_id = 2; UPDATE sale_order SET state = 'sale' WHERE id = $so");
	like($err, qr/sale\.order $so cannot be confirmed: approvals are missing/, "order $so refused");
}
is(sq("SELECT count(*) FROM sale_order WHERE state = 'sale' AND id IN (" . join(',', @orders) . ")"),
	'0', 'no order was confirmed');
ok($node->poll_query_until('odoo',
	"SELECT count(*) = 3 FROM retailflow.audit_log WHERE action = 'approval.enforcement_refused'"),
	'the worker appended one audit row per refusal');
SKIP:
{
	skip 'durations are not judged under valgrind (test/valgrind)', 1 if $ENV{RF_UNDER_VALGRIND};
	cmp_ok(time() - $t0, '<', 5 + 3, 'without waiting for a poll per row');
}
is(sq("SELECT string_agg(entity_id::text, ',' ORDER BY id) FROM retailflow.audit_log
	   WHERE action = 'approval.enforcement_refused'"), join(',', @orders), 'in the order they were refused');
# the refusing session's role, application and backend are columns of the row (they were
# after ->> 'db_role' before the least-privilege model), not the worker's that appended it
is(sq("SELECT entity || '|' || odoo_user_id || '|' || db_role || '|' || (after ->> 'state') || '|' ||
	          (after ->> 'mode') || '|' || (after ->> 'missing' LIKE 'level 1: sale order % above 0.00 (group %, not requested)')
	          || '|' || application_name || '|' || (backend_pid IS NOT NULL)
	   FROM retailflow.audit_log WHERE action = 'approval.enforcement_refused' ORDER BY id LIMIT 1"),
	'sale.order|2|odoo|sale|block|true|062_approvals_refusal_worker.pl|true',
	'the row names the document, the Odoo user, the refusing role, its session and what was missing');
is(sq("SELECT ok FROM retailflow.verify_audit_log()"), 't', 'the audit chain is intact');
cmp_ok(sq("SELECT count(*) FROM retailflow.audit_log") - $before, '==', 3, 'nothing else was written');

# a restart in between: queued rows are drained after the worker comes back
$node->restart;
my ($rc, $out, $err) = rf_psql_as($node, 'odoo', 'odoo', "UPDATE sale_order SET state = 'sale' WHERE id = $orders[0]");
like($err, qr/approvals are missing/, 'refused again after a restart');
ok($node->poll_query_until('odoo',
	"SELECT count(*) = 4 FROM retailflow.audit_log WHERE action = 'approval.enforcement_refused'"),
	'and recorded again');
unlike(slurp_file($node->logfile), qr/could not append the queued audit rows/, 'no append failed');

$node->stop;
done_testing();
