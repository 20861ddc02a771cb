# 011_webhooks_standby: a hot standby runs no delivery worker; after
# promotion the workers start and deliver events committed on the new primary
# (and events replicated from the old primary that were still pending).
# Roles as deployed (docs/security.md): the database belongs to Odoo's role
# "odoo", which emits the events; the administrator "integrator" adds the
# endpoint; only the circuit is forced by the superuser, in
# retailflow.endpoint_health, which no role below it may write.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use IPC::Run;
use RfTest;

$PostgreSQL::Test::Utils::timeout_default = $ENV{PG_TEST_TIMEOUT_DEFAULT} // 40;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$PostgreSQL::Test::Utils::tmp_check/receiver.jsonl";
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $recv = IPC::Run::start([ '/usr/bin/python3', rf_src() . '/test/receiver.py', $port, $log, $secret ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/receiver.out", '2>&1');

# exact counts: no scheduled exception checks (and their events) in this test
my $conf = "retailflow.database = 'odoo'\nretailflow.webhook_poll_interval = 100ms\nretailflow.scheduler_tick = 0\n";
my $primary = rf_node('primary', allows_streaming => 1, conf => $conf);
$primary->start;
rf_empty_db($primary, 'odoo');
rf_admin_role($primary);
my $ep = rf_admin_psql($primary, 'odoo', "INSERT INTO retailflow.endpoint (name, url, secret)
	VALUES ('r', 'http://127.0.0.1:$port/hook', '$secret') RETURNING id");
# the endpoint's circuit is held open on the primary so that one event stays pending
$primary->safe_psql('odoo', "INSERT INTO retailflow.endpoint_health (endpoint_id, circuit_open_until) VALUES ($ep, 'infinity')");
rf_odoo_psql($primary, 'odoo', "SELECT retailflow.send_test_event('from the old primary')");
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

sleep 1;
is($standby->safe_psql('odoo', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'"),
	'0', 'no delivery worker on the hot standby');
is(rf_odoo_psql($standby, 'odoo', "SELECT count(*) FROM retailflow.delivery WHERE state = 'pending'"), '1',
	'the pending delivery is replicated');
$primary->stop('immediate');
$standby->promote;
ok($standby->poll_query_until('odoo', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'retailflow webhook worker'"),
	'the worker starts after promotion');
$standby->safe_psql('odoo', "UPDATE retailflow.endpoint_health SET circuit_open_until = NULL");
rf_odoo_psql($standby, 'odoo', "SELECT retailflow.send_test_event('from the new primary')");
ok($standby->poll_query_until('odoo', "SELECT count(*) = 2 FROM retailflow.delivery WHERE state = 'delivered'"),
	'both events delivered by the promoted node');
open my $fh, '<', $log or die;
my @r = map { decode_json($_) } grep { /\S/ } <$fh>;
is(scalar(grep { $_->{sig_ok} && $_->{status} == 200 } @r), 2, 'the receiver got both, signed');

$standby->stop;
$recv->kill_kill;
END { $recv->kill_kill if $recv; }
done_testing();
