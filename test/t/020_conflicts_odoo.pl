# 020_conflicts_odoo: reservation conflicts on the real Odoo 17 (and 18) demo
# databases in ../shared/odoo: no invariant break is reported (no false
# positives), the C scan equals the plain-SQL one, repair_reservations()
# finds nothing to change, and the triggers log nothing when every quant is
# rewritten in log mode.  Skipped when ../shared/odoo is not present.
# Odoo's role "odoo" loads the dumps, makes every read and write (the quant
# and move line rewrites too); block mode is the DBA's (ALTER DATABASE).
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

my $node = rf_node('conflicts');
$node->start;

# Loads a real Odoo dump into a new database with retailflow (RfTest).
sub load_dump { return rf_load_dump($node, @_); }

my $diff_sql = q{
	SELECT count(*) FROM (
	  (SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
	          round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts()
	   EXCEPT ALL
	   SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
	          round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts_sql())
	  UNION ALL
	  (SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
	          round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts_sql()
	   EXCEPT ALL
	   SELECT kind, product_id, location_id, lot_id, package_id, owner_id, warehouse_id, record_id,
	          round(expected, 6), round(actual, 6) FROM retailflow.reservation_conflicts())) d};

for my $v (17, 18)
{
	my $file = "odoo${v}_demo_full.sql.gz";
	SKIP:
	{
		skip "$file not present", 8 unless -f "$shared/$file";
		my $db = "demo$v";
		load_dump($db, $file);
		is(rf_odoo_psql($node, $db, 'SELECT retailflow.odoo_version()'), $v, "demo $v detected as Odoo $v");
		my $all = rf_odoo_psql($node, $db,
			"SELECT coalesce(string_agg(kind || ':' || severity || ':' || n, ', ' ORDER BY kind), 'none')
			 FROM (SELECT kind, severity, count(*) AS n FROM retailflow.reservation_conflicts() GROUP BY 1, 2) s");
		note("demo $v conflicts: $all");
		my $broken = rf_odoo_psql($node, $db,
			"SELECT coalesce(string_agg(kind || ' ' || detail, '; '), '') FROM retailflow.reservation_conflicts()
			 WHERE kind IN ('reservation_mismatch', 'reserved_in_bypass_location', 'reservation_without_quant',
			                'over_reservation', 'negative_reservation', 'move_quantity_mismatch')");
		is($broken, '', "demo $v: no broken reservation reported (Odoo's own data keeps the invariants)");
		is(rf_odoo_psql($node, $db, $diff_sql), '0', "demo $v: C scan equals the plain-SQL scan");
		# oversell risk is Odoo's own forecast: virtual_available < 0 with outgoing demand
		is(rf_odoo_psql($node, $db, q{
			SELECT count(*) FROM (
			  (SELECT product_id, warehouse_id FROM retailflow.reservation_conflicts() WHERE kind = 'oversell_risk'
			   EXCEPT SELECT product_id, warehouse_id FROM retailflow.product_quantities()
			          WHERE virtual_available < 0 AND outgoing_qty > 0)
			  UNION ALL
			  (SELECT product_id, warehouse_id FROM retailflow.product_quantities()
			   WHERE virtual_available < 0 AND outgoing_qty > 0
			   EXCEPT SELECT product_id, warehouse_id FROM retailflow.reservation_conflicts() WHERE kind = 'oversell_risk')) d}),
			'0', "demo $v: oversell_risk rows are exactly the pairs product_quantities() forecasts negative");
		is(rf_odoo_psql($node, $db, 'SELECT count(*) FROM retailflow.repair_reservations()'), '0',
			"demo $v: repair_reservations() finds nothing to change");
		# every quant and open move line rewritten in log mode: the triggers judge what a transaction
		# changes, and a rewrite changes nothing
		rf_odoo_psql($node, $db, 'UPDATE stock_quant SET quantity = quantity; '
			  . "UPDATE stock_move_line SET quantity = quantity WHERE state NOT IN ('done', 'cancel')");
		is(rf_odoo_psql($node, $db, "SELECT count(*) FROM retailflow.exception_log"), '0',
			"demo $v: rewriting every quant and open move line logs nothing");
		# block mode (the DBA's setting) refuses, at commit, a reservation no move line accounts for
		$node->safe_psql('postgres', "ALTER DATABASE $db SET retailflow.conflict_action = block");
		my ($ret, $out, $err) = $node->psql($db,
			"UPDATE stock_quant q SET reserved_quantity = q.reserved_quantity + 1
			 WHERE q.id = (SELECT q2.id FROM stock_quant q2 JOIN stock_location l ON l.id = q2.location_id
			               WHERE l.usage = 'internal' AND q2.quantity > 0 ORDER BY q2.id LIMIT 1)",
			extra_params => [ '-U', 'odoo' ]);
		like($err, qr/reservation conflict \(reservation_mismatch\)/,
			"demo $v: block mode refuses a reservation no move line accounts for");
		$node->safe_psql('postgres', "ALTER DATABASE $db RESET retailflow.conflict_action");
	}
}

$node->stop;
done_testing();
