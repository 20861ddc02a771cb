# 062_approvals_refusal_worker: a refusal in block mode is an error, so its own
# transaction rolls back; the audit row still lands, appended by webhook
# worker 0 from the shared-memory queue, with the refusing role, the Odoo user
# and the missing approvals, and the hash chain stays valid.
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
sub sq { return $node->safe_psql('odoo', $_[0]); }

sq(q{
	CREATE ROLE odoo_app LOGIN;
	GRANT SELECT, UPDATE ON sale_order, sale_order_line TO odoo_app;
	ALTER ROLE odoo_app SET retailflow.approval_enforcement = block;
	INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id, sla)
	SELECT 'every sale order', 'sale.order', 0, min(id), '1 hour' FROM res_groups;
	UPDATE sale_order SET state = 'draft' WHERE id IN (SELECT id FROM sale_order ORDER BY id LIMIT 3);
});
my @orders = split /\n/, sq("SELECT id FROM sale_order ORDER BY id LIMIT 3");
my $before = sq("SELECT count(*) FROM retailflow.audit_log");

# the worker sleeps up to 5 s between polls: the queue wakes it
my $t0 = time();
for my $so (@orders)
{
	my ($rc, $out, $err) = $node->psql('odoo',
		"SET retailflow.odoo_user_id = 2; UPDATE sale_order SET state = 'sale' WHERE id = $so",
		extra_params => [ '-U', 'odoo_app' ]);
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
is(sq("SELECT entity || '|' || odoo_user_id || '|' || (after ->> 'db_role') || '|' || (after ->> 'state') || '|' ||
	          (after ->> 'mode') || '|' || (after ->> 'missing' LIKE 'level 1: sale order % above 0.00 (group %, not requested)')
	   FROM retailflow.audit_log WHERE action = 'approval.enforcement_refused' ORDER BY id LIMIT 1"),
	'sale.order|2|odoo_app|sale|block|true', 'the row names the document, the Odoo user, the refusing role and what was missing');
is(sq("SELECT ok FROM retailflow.verify_audit_log()"), 't', 'the audit chain is intact');
cmp_ok(sq("SELECT count(*) FROM retailflow.audit_log") - $before, '==', 3, 'nothing else was written');

# a restart in between: queued rows are drained after the worker comes back
$node->restart;
my ($rc, $out, $err) = $node->psql('odoo', "UPDATE sale_order SET state = 'sale' WHERE id = $orders[0]",
	extra_params => [ '-U', 'odoo_app' ]);
like($err, qr/approvals are missing/, 'refused again after a restart');
ok($node->poll_query_until('odoo',
	"SELECT count(*) = 4 FROM retailflow.audit_log WHERE action = 'approval.enforcement_refused'"),
	'and recorded again');
unlike(slurp_file($node->logfile), qr/could not append the queued audit rows/, 'no append failed');

$node->stop;
done_testing();
