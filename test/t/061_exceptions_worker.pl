# 061_exceptions_worker: the background worker runs the scheduled checks by
# itself (no Odoo cron): it opens the exceptions a new late picking causes,
# emits exception.opened through the outbox (delivered like any webhook
# event), closes the exception with exception.resolved once the picking
# is done, and removes closed history past retailflow.exception_retention.
# Odoo's role "odoo" (not a superuser) owns the tables and makes the picking
# writes and the reads; the worker reads Odoo's tables as their owner; the
# intervals and the retention are the DBA's (postgresql.conf).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RfTest;

my $node = rf_node('exw', conf => qq{
retailflow.database = 'odoo'
retailflow.webhook_workers = 1
retailflow.scheduler_tick = 200ms
retailflow.check_interval = '1s'
retailflow.webhook_poll_interval = 100ms
});
$node->start;
rf_odoo_db($node, 'odoo', '3, 30, 300, 100');
# as Odoo's role
sub sq { return rf_odoo_psql($node, 'odoo', $_[0]); }

# the worker's first runs open what the fixture already has (its dates are in 2024)
ok($node->poll_query_until('odoo', "SELECT count(*) > 0 FROM retailflow.exceptions WHERE kind = 'late_picking'"),
	'the worker opened late-picking exceptions without being asked');
ok($node->poll_query_until('odoo', "SELECT count(*) > 0 FROM retailflow.outbox WHERE event_type = 'exception.opened'"),
	'and announced them as exception.opened events');

# a new picking, scheduled an hour ago and not done
my $pick = sq(q{
	INSERT INTO stock_picking (location_id, location_dest_id, picking_type_id, company_id, name, move_type, state,
	                           scheduled_date, date, create_date, write_date)
	SELECT location_id, location_dest_id, picking_type_id, company_id, 'TEST/LATE/1', move_type, 'assigned',
	       now() - interval '1 hour', now(), now(), now()
	FROM stock_picking WHERE state NOT IN ('done', 'cancel') ORDER BY id LIMIT 1
	RETURNING id});
ok($pick > 0, "created picking $pick scheduled an hour ago");
ok($node->poll_query_until('odoo',
	"SELECT count(*) = 1 FROM retailflow.exceptions WHERE kind = 'late_picking' AND record_id = $pick"),
	'the worker found the new late picking');
is(sq("SELECT count(*) FROM retailflow.outbox WHERE event_type = 'exception.opened'
	   AND model = 'stock.picking' AND record_id = $pick AND data->>'kind' = 'late_picking'"),
	'1', 'exactly one exception.opened event for it');

sq("UPDATE stock_picking SET state = 'done', date_done = now() WHERE id = $pick");
ok($node->poll_query_until('odoo',
	"SELECT count(*) = 1 FROM retailflow.outbox WHERE event_type = 'exception.resolved' AND record_id = $pick"),
	'done picking: the worker closed the exception and emitted exception.resolved');
is(sq("SELECT count(*) FROM retailflow.exceptions WHERE record_id = $pick AND kind = 'late_picking'"),
	'0', 'the exception left the open queue');
is(sq("SELECT count(*) FROM retailflow.exception WHERE record_id = $pick AND kind = 'late_picking' AND close_reason = 'disappeared'"),
	'1', 'and stays in the history as disappeared');

# retention: the worker removes closed history older than retailflow.exception_retention
# (here one hour), and keeps the rest of the history and the open queue
$node->append_conf('postgresql.conf', "retailflow.exception_retention = '1 hour'");
$node->reload;
# (the superuser plants an old closed row: no role below it writes retailflow.exception)
my $old = $node->safe_psql('odoo', "INSERT INTO retailflow.exception (kind, model, record_id, reference, severity, reason,
	suggested_action, opened_at, closed_at, close_reason)
	VALUES ('late_picking', 'stock.picking', -1, 'OLD', 'low', 'old', 'none', now() - interval '3 hours',
	        now() - interval '2 hours', 'resolved') RETURNING id");
my $open = sq("SELECT count(*) FROM retailflow.exceptions");
ok($node->poll_query_until('odoo', "SELECT count(*) = 0 FROM retailflow.exception WHERE id = $old"),
	'the worker removed a closed exception older than the retention');
is(sq("SELECT count(*) FROM retailflow.exception WHERE record_id = $pick AND kind = 'late_picking'"),
	'1', 'the one closed a moment ago stays');
is(sq("SELECT count(*) FROM retailflow.exceptions"), $open, 'the open queue is untouched');
like(slurp_file($node->logfile), qr/^((?!scheduled job).)*$/s, 'no scheduled job failed');

$node->stop;
done_testing();
