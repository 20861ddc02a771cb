# 003_upgrade: users have 1.0 installed.  The 1.0 install script shipped in
# sql/ is the one 1.0 was released with (rebuilt from the git history when it
# is there), the upgrade script is current (sql/upgrade/build.py), and a 1.0
# database with data in it, after ALTER EXTENSION retailflow UPDATE, is
# identical to a fresh 1.1 install object by object (functions with their
# bodies, security and settings, tables, columns, constraints, indexes,
# triggers, views, privileges, comments, the triggers on Odoo's tables, the
# event triggers, the group roles and the registry rows), keeps its data, and
# its audit chain still verifies, 1.0 rows and new rows alike.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RfTest;

my $src = rf_src();
my $root = $ENV{RF_ROOT} // '';
my $released = 'e2d9689';    # the commit 1.0 was released from

# the shipped 1.0 script is the released one
SKIP:
{
	skip 'no git history here (RF_ROOT unset or not a clone)', 1
	  unless $root ne '' && -d "$root/.git"
	  && system("git -c safe.directory='*' -C '$root' cat-file -e $released 2>/dev/null") == 0;
	my $files = `git -c safe.directory='*' -C '$root' ls-tree --name-only $released sql/install/`;
	my $rebuilt = "-- generated from sql/install/*.sql by make; do not edit\n"
	  . "\\echo Use \"CREATE EXTENSION retailflow\" to load this file. \\quit\n";
	for my $f (sort split /\n/, $files)
	{
		$rebuilt .= "\n-- >>> $f\n" . `git -c safe.directory='*' -C '$root' show $released:$f`;
	}
	is(slurp_file("$src/sql/retailflow--1.0.sql"), $rebuilt,
		"sql/retailflow--1.0.sql is 1.0 as released (commit $released)");
}

# the upgrade script is what sql/upgrade/build.py makes of the install script now
my $built = `cd '$src' && python3 sql/upgrade/build.py 1.0 1.1`;
is($?, 0, 'sql/upgrade/build.py runs');
ok($built eq slurp_file("$src/sql/retailflow--1.0--1.1.sql"),
	'sql/retailflow--1.0--1.1.sql is current (make upgrade-scripts)');

my $node = rf_node('upgrade', conf => "retailflow.scheduler_tick = 0\n");
$node->start;
rf_odoo_role($node);
my $fingerprint = slurp_file("$src/test/fixtures/schema_fingerprint.sql");

# two Odoo 17 databases with the same generated data, created and loaded by Odoo's role
for my $db ('old', 'fresh')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER odoo");
	for my $f ('odoo17_schema.sql', 'generate.sql', 'helpers.sql')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', 'odoo', '-d', $node->connstr($db),
				'-c', 'SET client_min_messages = warning', '-f', "$src/test/fixtures/$f" ], "load $f into $db");
	}
	rf_odoo_psql($node, $db, 'SELECT rf_fixture_generate(2, 10, 60, 20)');
}

# 1.0, used: rules, requests, decisions, audit rows, an endpoint and events
$node->safe_psql('old', "CREATE EXTENSION retailflow VERSION '1.0'");
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'retailflow'"), '1.0', 'installed 1.0');
$node->safe_psql('old', q{
	INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id)
	SELECT 'big orders', 'sale.order', 0, min(gid) FROM res_groups_users_rel;
	INSERT INTO retailflow.endpoint (name, url, secret) VALUES ('n8n', 'http://127.0.0.1:9/hook', retailflow.generate_secret());
	SELECT count(*) FROM retailflow.request_approvals('sale.order', (SELECT min(id) FROM sale_order), 2);
	UPDATE sale_order SET state = 'cancel' WHERE id = (SELECT max(id) FROM sale_order WHERE state = 'sale');
	SELECT retailflow.audit('note', 'test', 1, NULL, '{"written": "by 1.0"}');
});
my $before = $node->safe_psql('old', q{
	SELECT (SELECT count(*) FROM retailflow.audit_log) || ' audit, ' || (SELECT count(*) FROM retailflow.outbox)
	       || ' events, ' || (SELECT count(*) FROM retailflow.approval_request) || ' requests, '
	       || (SELECT count(*) FROM retailflow.endpoint) || ' endpoint'});
note("1.0 holds $before");
my $old_audit = $node->safe_psql('old', 'SELECT count(*) FROM retailflow.audit_log');
is($node->safe_psql('old', 'SELECT ok FROM retailflow.verify_audit_log()'), 't', '1.0 audit chain verifies');

# the upgrade, then a fresh 1.1 install
$node->safe_psql('old', 'ALTER EXTENSION retailflow UPDATE');
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'retailflow'"), '1.1', 'updated to 1.1');
$node->safe_psql('fresh', 'CREATE EXTENSION retailflow');
$node->safe_psql($_, 'GRANT retailflow_odoo TO odoo') for ('old', 'fresh');

my $fp_old = $node->safe_psql('old', $fingerprint);
my $fp_fresh = $node->safe_psql('fresh', $fingerprint);
my @old = split /\n/, $fp_old;
my @fresh = split /\n/, $fp_fresh;
my %in_old = map { $_ => 1 } @old;
my %in_fresh = map { $_ => 1 } @fresh;
my @only_old = grep { !$in_fresh{$_} } @old;
my @only_fresh = grep { !$in_old{$_} } @fresh;
ok(@old > 400, scalar(@old) . ' objects compared');
is(scalar(@only_old) + scalar(@only_fresh), 0, 'upgraded 1.0 is identical to a fresh 1.1 install')
  or diag(join("\n", (map { "only upgraded: $_" } @only_old), (map { "only fresh:    $_" } @only_fresh)));

# data kept, the chain goes on
is($node->safe_psql('old', q{
	SELECT (SELECT count(*) FROM retailflow.audit_log) || ' audit, ' || (SELECT count(*) FROM retailflow.outbox)
	       || ' events, ' || (SELECT count(*) FROM retailflow.approval_request) || ' requests, '
	       || (SELECT count(*) FROM retailflow.endpoint) || ' endpoint'}), $before, 'data kept');
rf_odoo_psql($node, 'old', "SELECT retailflow.emit('retailflow.test', 'test', 1, '{}')");
rf_odoo_psql($node, 'old',
	"SELECT count(*) FROM retailflow.request_approvals('sale.order', (SELECT max(id) FROM sale_order), 2)");
is($node->safe_psql('old', q{SELECT count(*) FILTER (WHERE backend_pid IS NULL) || '/' || count(*) FILTER (WHERE db_role = 'odoo')
	FROM retailflow.audit_log}), "$old_audit/1", '1.0 rows unchanged, new rows name Odoo\'s role and the backend');
is($node->safe_psql('old', 'SELECT ok FROM retailflow.verify_audit_log()'), 't',
	'the audit chain verifies across the upgrade');
# Odoo's role works on the upgraded database as on a fresh one
is(rf_odoo_psql($node, 'old', "SELECT name FROM retailflow.status() WHERE component = 'security' AND status = 'odoo'"),
	'odoo role', "status() names Odoo's role");
my ($ret, $out, $err) = $node->psql('old',
	"SET retailflow.conflict_action = off", extra_params => [ '-U', 'odoo' ]);
like($err, qr/permission denied to set parameter/, "Odoo's role cannot switch the conflict triggers off after the upgrade");

$node->stop;
done_testing();
