# 060_exceptions_odoo_real: the exception checks, KPIs and risk scores on the
# real Odoo 17 and 18 demo databases in ../shared/odoo: no crash, no check in
# error, plausible results.  Skipped when ../shared/odoo is not present.
# Roles as deployed (docs/security.md): Odoo's role "odoo" loads the dump and
# owns every table; the checks are run by the administrator "integrator"
# (retailflow_admin; run_checks() reads Odoo's tables as their owner, through
# odoo_query()); Odoo's role may not run them (new in the least-privilege
# model, asserted) and makes every other read: the exception queue and its
# events, risk scores, KPIs.
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

my $node = rf_node('odoo_exc');
$node->start;

# Loads a real Odoo dump into a new database with retailflow (RfTest).
sub load_dump { rf_load_dump($node, @_); rf_admin_role($node); return; }
sub oq { return rf_odoo_psql($node, @_); }
sub aq { return rf_admin_psql($node, @_); }

# Runs every check and the other functions on one demo database.
sub check_demo
{
	my ($db) = @_;
	my ($ret, $out, $err) = rf_psql_as($node, 'odoo', $db, 'SELECT * FROM retailflow.run_checks()');
	like($err, qr/permission denied for function run_checks/, "$db: Odoo's role may not run the checks");
	my $res = aq($db, q{SELECT string_agg(kind || ':' || status || coalesce('=' || open, ''), ' ' ORDER BY kind)
		FROM retailflow.run_checks()});
	unlike($res, qr/:error/, "$db: no check in error ($res)");
	like($res, qr/late_picking:ok/, "$db: the Odoo checks ran");
	my $ev = oq($db, q{SELECT (SELECT count(*) FROM retailflow.outbox WHERE event_type = 'exception.opened')
		= (SELECT count(*) FROM retailflow.exception)});
	is($ev, 't', "$db: one exception.opened event per exception");
	my $again = aq($db, q{SELECT sum(opened + resolved) FROM retailflow.run_checks()});
	is($again, '0', "$db: a second run changes nothing");
	my $risk = oq($db, q{SELECT count(*) || '/' || coalesce(min(r.score), 0) || '/' || coalesce(max(r.score), 0)
		FROM sale_order so, retailflow.order_risk(so.id) r});
	my ($n, $min, $max) = split m{/}, $risk;
	ok($n > 0 && $min >= 0 && $max <= 100, "$db: order_risk() scored $n orders within 0-100 (max $max)");
	diag("$db: top risk: " . oq($db, q{SELECT so.name || ' ' || r.score || ' ' || (SELECT string_agg(e->>'code', ',') FROM jsonb_array_elements(r.reasons) e) FROM sale_order so, retailflow.order_risk(so.id) r ORDER BY r.score DESC, so.id LIMIT 1}));
	my $so = oq($db, q{SELECT count(*) FROM retailflow.stockout_risk(as_of => now())});
	ok($so >= 0, "$db: stockout_risk() ran ($so rows)");
	my $kpi = oq($db, q{SELECT (SELECT count(*) FROM retailflow.kpi_order_release('2000-01-01', '2100-01-01'))
		+ (SELECT count(*) FROM retailflow.kpi_fulfilment_latency('2000-01-01', '2100-01-01'))
		+ (SELECT count(*) FROM retailflow.kpi_return_cycle('2000-01-01', '2100-01-01'))
		+ (SELECT count(*) FROM retailflow.kpi_stock_accuracy('2000-01-01', '2100-01-01'))
		+ (SELECT count(*) FROM retailflow.kpi_exceptions('2000-01-01', '2100-01-01'))});
	ok($kpi > 0, "$db: the KPIs returned $kpi rows");
	return;
}

load_dump('demo17', 'odoo17_demo_full.sql.gz');
check_demo('demo17');

SKIP:
{
	skip 'odoo18_demo_full.sql.gz not present', 9 unless -f "$shared/odoo18_demo_full.sql.gz";
	load_dump('demo18', 'odoo18_demo_full.sql.gz');
	check_demo('demo18');
}

$node->stop;
done_testing();
