# 012_egress: the webhook egress policy at connect time, with a real worker,
# and not one packet off loopback.  Test host names are mapped to addresses
# with retailflow.webhook_test_resolve (CURLOPT_RESOLVE, no DNS); the denied
# addresses are loopback ones: 127.0.0.2 put in retailflow.webhook_denied_networks
# (a raw listener there proves no connection was ever attempted), its
# IPv4-mapped IPv6 spelling, and 0.0.0.0 (denied by default, local on Linux).
# Also: what the administrator reads is "denied by policy" and curl's error
# category (never an address or port); the server log names the address for
# the DBA; a kept-alive connection is refused after the policy changes; a
# 302 is not followed; proxies in the environment are not used; a URL over
# 2,048 characters is not sent; an endpoint outside a narrowed policy can
# still be disabled by the administrator (the URL is not re-checked).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use IPC::Run;
use RfTest;

$PostgreSQL::Test::Utils::timeout_default = $ENV{PG_TEST_TIMEOUT_DEFAULT} // 40;

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$PostgreSQL::Test::Utils::tmp_check/receiver.jsonl";
my $recv = IPC::Run::start([ '/usr/bin/python3', rf_src() . '/test/receiver.py', $port, $log, $secret ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/receiver.out", '2>&1');

# raw listeners: one on the denied 127.0.0.2, one posing as an HTTP proxy;
# a connection to either would wait in its accept queue
sub listener
{
	my ($addr) = @_;
	for (1 .. 20)
	{
		my $p = PostgreSQL::Test::Cluster::get_free_port();
		my $l = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $p, Listen => 16, ReuseAddr => 1, Proto => 'tcp');
		return ($l, $p) if $l;
	}
	die "no free port on $addr";
}
sub connections
{
	my ($l) = @_;
	$l->blocking(0);
	my $n = 0;
	while (my $c = $l->accept) { $n++; close $c; }
	return $n;
}
my ($denied_l, $dport) = listener('127.0.0.2');
my ($proxy_l, $pport) = listener('127.0.0.1');
my $closed = PostgreSQL::Test::Cluster::get_free_port();
# libcurl would use these by default; the workers must not
$ENV{http_proxy} = $ENV{https_proxy} = $ENV{ALL_PROXY} = "http://127.0.0.1:$pport";

my $node = rf_node('egress', conf => qq{
retailflow.database = 'odoo'
retailflow.scheduler_tick = 0
retailflow.webhook_workers = 1
retailflow.webhook_poll_interval = 100ms
retailflow.webhook_backoff_base = 100ms
retailflow.webhook_backoff_max = 200ms
retailflow.webhook_max_attempts = 3
retailflow.webhook_denied_networks = 'default, 127.0.0.2/32'
retailflow.webhook_test_resolve = 'recv.test:$port:127.0.0.1 internal.test:$dport:127.0.0.2 mapped.test:$dport:[::ffff:127.0.0.2] zero.test:$port:0.0.0.0'
log_min_messages = warning
});
$node->start;
delete @ENV{qw(http_proxy https_proxy ALL_PROXY)};
rf_empty_db($node, 'odoo');
rf_admin_role($node);
sub su { return $node->safe_psql('odoo', $_[0]); }
sub aq { return rf_admin_psql($node, 'odoo', $_[0]); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('odoo', $sql), $what); }
sub control
{
	my ($path, %cfg) = @_;
	system('curl', '-s', '--noproxy', '*', '-o', '/dev/null', '-X', 'POST', '-d', encode_json({ path => $path, %cfg }),
		"http://127.0.0.1:$port/_control") == 0 or die "receiver control failed";
}
sub received
{
	my ($path) = @_;
	return () unless -f $log;
	open my $fh, '<', $log or die;
	my @r = map { decode_json($_) } grep { /\S/ } <$fh>;
	close $fh;
	return grep { !defined $path || $_->{path} eq $path } @r;
}
sub endpoint
{
	my ($name, $url) = @_;
	aq("INSERT INTO retailflow.endpoint (name, url, secret, event_filters) VALUES ('$name', '$url', '$secret', '{test.$name}')");
}
sub delivery
{
	my ($name) = @_;
	return su("SELECT d.state || '|' || d.attempts || '|' || coalesce(d.last_status::text, '') || '|' || coalesce(d.last_error, '')
		FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id WHERE e.name = '$name' ORDER BY d.id DESC LIMIT 1");
}
for (1 .. 50) { last if system("curl -s --noproxy '*' -o /dev/null http://127.0.0.1:$port/_stats") == 0; sleep 0.1; }
su("INSERT INTO retailflow.event_type SELECT 'test.' || n, 'test' FROM unnest(ARRAY['direct', 'internal', 'mapped', 'zero',
	'closed', 'redir', 'keep', 'legacy']) n");
sub emit { su("SELECT retailflow.emit('test.$_[0]', 'x', 1, '{}')"); }

# a host name mapped to the receiver's loopback address: delivered, directly
endpoint('direct', "http://recv.test:$port/direct");
emit('direct');
wait_for("SELECT state = 'delivered' FROM retailflow.delivery", 'a test host name mapped to 127.0.0.1 is delivered to');
is(scalar(received('/direct')), 1, 'the receiver got it');
is(connections($proxy_l), 0, 'the proxy in the environment was not used');

# host names pass creation; the worker refuses the denied address they resolve to, before connecting
endpoint($_, $_ eq 'zero' ? "http://zero.test:$port/zero" : "http://$_.test:$dport/$_") for qw(internal mapped zero);
emit($_) for qw(internal mapped zero);
wait_for("SELECT count(*) = 3 FROM retailflow.delivery WHERE state = 'dead'", 'the three deliveries to denied addresses are dead letters');
is(delivery('internal'), 'dead|1||denied by policy', 'a name resolved to a denied address: dead at the first attempt, "denied by policy", no status');
is(delivery('mapped'), 'dead|1||denied by policy', 'an IPv4-mapped IPv6 address is checked as the IPv4 address');
is(delivery('zero'), 'dead|1||denied by policy', '0.0.0.0 is denied by the default');
is(connections($denied_l), 0, 'not one connection reached the denied address');
is(aq("SELECT string_agg(name || ': ' || coalesce(last_status::text, '-') || ' ' || last_error, ', ' ORDER BY name)
	FROM retailflow.webhook_stats WHERE name IN ('internal', 'mapped', 'zero')"),
	'internal: - denied by policy, mapped: - denied by policy, zero: - denied by policy',
	'the administrator reads "denied by policy" and nothing about the peer');
my $slog = slurp_file($node->logfile);
like($slog, qr/denied by policy.*\n.*DETAIL:  The address 127\.0\.0\.2 is in retailflow\.webhook_denied_networks/,
	'the server log names the address for the DBA');
like($slog, qr/The address ::ffff:127\.0\.0\.2 is in/, 'and the IPv4-mapped spelling libcurl used');
# the listener does see connections when there are any
IO::Socket::INET->new(PeerAddr => '127.0.0.2', PeerPort => $dport, Proto => 'tcp') or die;
sleep 0.1;
is(connections($denied_l), 1, 'the raw listener counts a connection made to it (the check above means something)');

# an allowed address that refuses: curl's category, not the address or the port
endpoint('closed', "http://127.0.0.1:$closed/closed");
emit('closed');
wait_for("SELECT last_error IS NOT NULL FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id WHERE e.name = 'closed'",
	'the refused connection is recorded');
like(delivery('closed'), qr/\|Couldn't connect to server$/, "the error is curl's category text");
unlike(delivery('closed') . aq("SELECT last_error FROM retailflow.webhook_stats WHERE name = 'closed'"), qr/127\.0\.0\.1|$closed/,
	'neither the address nor the port is stored');

# redirects are not followed: a 302 is a failure, its Location never requested
control('/redir', mode => 'redirect', location => "http://127.0.0.1:$port/followed");
endpoint('redir', "http://recv.test:$port/redir");
emit('redir');
wait_for("SELECT count(*) = 1 FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id
	WHERE e.name = 'redir' AND d.state = 'dead'", 'the redirected delivery is dead after its attempts');
is(delivery('redir'), 'dead|3|302|HTTP 302', 'each attempt recorded the 302');
is(scalar(received('/redir')) . ' ' . scalar(received('/followed')), '3 0', 'three attempts, the Location never requested');

# a URL over 2,048 characters (written past the validation trigger) is not sent
su("SET session_replication_role = replica;
	INSERT INTO retailflow.endpoint (name, url, secret, event_filters)
	VALUES ('legacy', 'http://recv.test:$port/legacy' || repeat('a', 2048), '$secret', '{test.legacy}')");
emit('legacy');
wait_for("SELECT count(*) = 1 FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id
	WHERE e.name = 'legacy' AND d.state = 'dead'", 'the over-long URL is a dead letter');
is(delivery('legacy'), 'dead|1||url longer than 2048 characters', 'with that reason');
is(scalar(grep { $_->{path} =~ m{^/legacy} } received()), 0, 'nothing sent');

# a kept-alive connection: the DBA denies loopback; the next request on the
# cached connection to recv.test is refused before it is sent
endpoint('keep', "http://recv.test:$port/keep");
emit('keep');
wait_for("SELECT state = 'delivered' FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id WHERE e.name = 'keep'",
	'delivered while loopback is allowed');
$node->append_conf('postgresql.conf', "retailflow.webhook_denied_networks = 'default, loopback'\n");
$node->reload;
sleep 0.5;
emit('keep');
wait_for("SELECT state = 'dead' FROM retailflow.delivery d JOIN retailflow.endpoint e ON e.id = d.endpoint_id
	WHERE e.name = 'keep' ORDER BY d.id DESC LIMIT 1", 'after the reload the next delivery is refused');
is(delivery('keep'), 'dead|1||denied by policy', 'denied by policy');
is(scalar(received('/keep')), 1, 'the receiver got only the first one');

# the administrator can still disable (or rename) an endpoint the narrowed policy would refuse now
is(aq("UPDATE retailflow.endpoint SET active = false, name = 'closed-old' WHERE name = 'closed' RETURNING url ~ '^http://127'"), 't',
	'an update that keeps the URL is not re-checked');
my ($ret, $out, $err) = rf_psql_as($node, 'integrator', 'odoo',
	"UPDATE retailflow.endpoint SET url = 'http://127.0.0.1:$closed/other' WHERE name = 'closed-old'");
like($err, qr/webhook address 127\.0\.0\.1 is denied by policy/, 'a changed URL is');

$node->stop;
$recv->kill_kill;
END { $recv->kill_kill if $recv; }
done_testing();
