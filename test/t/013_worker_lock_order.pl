# 013_worker_lock_order: several delivery workers recording results for many
# endpoints at once never deadlock.  Four workers share 40 endpoints (half of
# them answer 500, so every batch updates their endpoint_health rows; the
# others succeed), new endpoints start without health rows (concurrent
# inserts), and the batches are small so the workers' batches interleave.
# Recording takes its locks in a fixed order (deliveries by id, then
# endpoint_health and endpoints by endpoint id): the server log has no
# "deadlock detected", no worker restarted, and every delivery ended
# delivered or dead.  The previous recording (health rows in the order the
# results came back) deadlocked here within seconds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use IPC::Run;
use RfTest;

$PostgreSQL::Test::Utils::timeout_default = $ENV{PG_TEST_TIMEOUT_DEFAULT} // 120;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$PostgreSQL::Test::Utils::tmp_check/receiver.jsonl";
my $recv = IPC::Run::start([ '/usr/bin/python3', rf_src() . '/test/receiver.py', $port, $log, $secret ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/receiver.out", '2>&1');
my $endpoints = 40;
my $events = 150;

my $node = rf_node('locks', conf => qq{
retailflow.database = 'odoo'
retailflow.scheduler_tick = 0
retailflow.webhook_workers = 4
retailflow.webhook_batch_size = 16
retailflow.webhook_endpoint_max_in_flight = 4
retailflow.webhook_poll_interval = 50ms
retailflow.webhook_backoff_base = 10ms
retailflow.webhook_backoff_max = 40ms
retailflow.webhook_max_attempts = 4
retailflow.webhook_circuit_failures = 1000000
deadlock_timeout = 100ms
log_min_messages = warning
max_connections = 40
});
$node->start;
rf_empty_db($node, 'odoo');
rf_admin_role($node);
sub su { return $node->safe_psql('odoo', $_[0]); }
for (1 .. 50) { last if system("curl -s -o /dev/null http://127.0.0.1:$port/_stats") == 0; sleep 0.1; }
for my $i (1 .. $endpoints)
{
	next if $i % 2;
	system('curl', '-s', '-o', '/dev/null', '-X', 'POST', '-d', encode_json({ path => "/e$i", mode => '500' }),
		"http://127.0.0.1:$port/_control") == 0 or die;
}
su("INSERT INTO retailflow.event_type VALUES ('test.many', 'test')");
rf_admin_psql($node, 'odoo', "INSERT INTO retailflow.endpoint (name, url, secret, event_filters)
	SELECT 'e' || i, 'http://127.0.0.1:$port/e' || i, '$secret', '{test.many}' FROM generate_series(1, $endpoints) i");
# the workers connect once the database exists (they retry every 5 s)
ok($node->poll_query_until('odoo', "SELECT count(*) = 4 FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'"),
	'four workers connected');
my $pids = su("SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'");
my $log_from = -s $node->logfile;

# events in several transactions, each fanned out to every endpoint
my $t0 = time;
su("SELECT retailflow.emit('test.many', 'x', g, jsonb_build_object('n', g)) FROM generate_series(1, $events / 3) g") for 1 .. 3;
my $total = $endpoints * 3 * int($events / 3);
ok($node->poll_query_until('odoo', "SELECT count(*) = 0 FROM retailflow.delivery WHERE state = 'pending'"),
	"all $total deliveries finished");
note(sprintf('%d deliveries (half failing, 4 attempts each) recorded in %.1f s', $total, time - $t0));
is(su("SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) n FROM retailflow.delivery GROUP BY state) s"),
	'dead ' . ($total / 2) . ', delivered ' . ($total / 2), 'the succeeding endpoints delivered everything, the failing ones dead-lettered');
is(su("SELECT count(*) FROM retailflow.endpoint_health WHERE consecutive_failures > 0"),
	$endpoints / 2, 'every failing endpoint has its health row');
my $slog = substr(slurp_file($node->logfile), $log_from);
my @deadlocks = $slog =~ /(deadlock detected)/g;
is(scalar(@deadlocks), 0, 'no deadlock between the workers')
  or diag(join("\n", (grep { /deadlock detected|while / } split /\n/, $slog)[0 .. 5]));
is(su("SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'"),
	$pids, 'no worker restarted');
unlike($slog, qr/retailflow webhook worker.*exited with exit code/, 'no worker exited');

$node->stop;
$recv->kill_kill;
END { $recv->kill_kill if $recv; }
done_testing();
