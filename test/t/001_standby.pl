# 001_standby: every availability read function works on a hot standby, gives
# the primary's answers, and the standby's caches follow location changes
# replayed from the primary (relcache invalidations in commit records).
# Odoo's role "odoo" (not a superuser) owns the tables, makes the write on the
# primary and runs every read, on both nodes (RfTest).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use RfTest;

my $primary = rf_node('primary', allows_streaming => 1);
$primary->start;
rf_odoo_db($primary, 'odoo', '4, 40, 600, 150');
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
# the waiting session below must not be cancelled by cleanup on the primary
$standby->append_conf('postgresql.conf', "hot_standby_feedback = on\n");
$standby->start;
$primary->wait_for_catchup($standby);

# reads and writes as Odoo's role on either node
sub pq { return rf_odoo_psql($primary, 'odoo', $_[0]); }
sub sq { return rf_odoo_psql($standby, 'odoo', $_[0]); }

is(sq('SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');
is(sq("SELECT status FROM retailflow.status() WHERE name = 'role'"), 'standby',
	'status() reports the standby role');

my $matrix = 'SELECT md5(string_agg(format(\'%s/%s/%s/%s/%s/%s/%s\', product_id, warehouse_id, qty_available,
	free_qty, incoming_qty, outgoing_qty, virtual_available), \',\' ORDER BY product_id, warehouse_id))
	FROM retailflow.product_quantities()';
my $lookups = 'SELECT md5(string_agg(retailflow.warehouse_available_qty(p.id, w.id)::text, \',\' ORDER BY p.id, w.id))
	FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id, stock_warehouse w
	WHERE t.type = \'product\'';
is(sq($matrix), pq($matrix),
	'product_quantities() on the standby equals the primary');
is(sq($lookups), pq($lookups),
	'warehouse_available_qty() on the standby equals the primary');
my $so = pq("SELECT min(id) FROM sale_order");
is(sq("SELECT count(*) > 0 FROM retailflow.fulfilment_options($so)"), 't',
	'fulfilment_options() runs on the standby');

# One standby session warms its cache, waits until the primary has moved a
# location to another warehouse (it polls the replicated row), then
# reads again: the replayed invalidation must have reached its cache.
my ($p, $bin, $wh_from, $wh_to) = split /\|/, pq(q{
	SELECT q.product_id, l.id, w.id,
	       (SELECT w2.id FROM stock_warehouse w2 WHERE w2.id <> w.id AND w2.active ORDER BY w2.id LIMIT 1)
	FROM stock_quant q
	JOIN stock_location l ON l.id = q.location_id
	JOIN stock_warehouse w ON w.lot_stock_id = l.location_id
	WHERE w.active AND q.quantity > 0
	ORDER BY q.id LIMIT 1});
ok($bin, "picked bin $bin of warehouse $wh_from holding product $p");
my $q = "SELECT string_agg(warehouse_id || '=' || qty_available, ' ' ORDER BY warehouse_id) FROM retailflow.product_quantities(ARRAY[$p], ARRAY[$wh_from, $wh_to])";
my $script = "\\pset tuples_only on\n\\pset format unaligned\n$q;\n"
  . "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM stock_location WHERE id = $bin AND warehouse_id = $wh_to)\n"
  . "  LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$;\n"
  . "$q;\n";
my ($out, $err) = ('', '');
my $script_file = $PostgreSQL::Test::Utils::tmp_check . '/standby_session.sql';
PostgreSQL::Test::Utils::append_to_file($script_file, $script);
my $h = IPC::Run::start([ 'psql', '-X', '-q', '-U', 'odoo', '-d', $standby->connstr('odoo'), '-f', $script_file ],
	'>', \$out, '2>', \$err);
sleep 1;
my $before = pq($q);
pq(qq{
	UPDATE stock_location l SET location_id = w.lot_stock_id, warehouse_id = w.id,
	       parent_path = (SELECT parent_path FROM stock_location WHERE id = w.lot_stock_id) || l.id || '/'
	FROM stock_warehouse w WHERE w.id = $wh_to AND l.id = $bin;});
my $after = pq($q);
$primary->wait_for_catchup($standby);
$h->finish;
my @lines = grep { /=/ } split /\n/, $out;
isnt($before, $after, 'the move changed the primary\'s answer');
is($lines[0], $before, 'standby session answered like the primary before the move');
is($lines[1], $after, 'the same standby session follows the replayed location move');
is($err, '', 'no errors in the standby session');

$standby->stop;
$primary->stop;
done_testing();
