# 014_audit_checkpoint: the audit chain head anchored outside the database.
# Webhook worker 0 emits audit.checkpoint on a schedule
# (retailflow.audit_checkpoint_interval), the administrator on demand; a
# receiver on 127.0.0.1 gets them signed and keeps them.  Then the DBA
# (superuser) deletes the newest audit rows and rewinds audit_head with the
# triggers disabled: the chain alone still verifies, verify_audit_log() with
# the checkpoints the receiver kept reports the log broken at the first
# removed row, and the receiver sees the head go backwards.
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

my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$PostgreSQL::Test::Utils::tmp_check/receiver.jsonl";
my $recv = IPC::Run::start([ '/usr/bin/python3', rf_src() . '/test/receiver.py', $port, $log, $secret ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/receiver.out", '2>&1');

my $node = rf_node('anchor', conf => qq{
retailflow.database = 'odoo'
retailflow.scheduler_tick = 0
retailflow.webhook_workers = 1
retailflow.webhook_poll_interval = 100ms
retailflow.audit_checkpoint_interval = 2s
log_min_messages = warning
});
$node->start;
rf_empty_db($node, 'odoo');
rf_admin_role($node);
sub su { return $node->safe_psql('odoo', $_[0]); }
sub aq { return rf_admin_psql($node, 'odoo', $_[0]); }
for (1 .. 50) { last if system("curl -s -o /dev/null http://127.0.0.1:$port/_stats") == 0; sleep 0.1; }
# the checkpoints the receiver got, in arrival order
sub checkpoints
{
	return () unless -f $log;
	open my $fh, '<', $log or die;
	my @r = grep { ($_->{type} // '') eq 'audit.checkpoint' } map { decode_json($_) } grep { /\S/ } <$fh>;
	close $fh;
	return @r;
}
sub wait_checkpoint
{
	my ($what, $cond) = @_;
	for (1 .. 300)
	{
		my @c = grep { $cond->($_->{data}) } checkpoints();
		return $c[-1] if @c;
		sleep 0.1;
	}
	fail("no checkpoint $what");
	return undef;
}

aq("INSERT INTO retailflow.endpoint (name, url, secret, event_filters)
	VALUES ('anchor', 'http://127.0.0.1:$port/anchor', '$secret', '{audit.checkpoint}')");
su("SELECT count(retailflow.audit('note', 'test', g, NULL, jsonb_build_object('n', g))) FROM generate_series(1, 10) g");
my $head10 = su("SELECT encode(last_hash, 'hex') FROM retailflow.audit_head");

# on a schedule: worker 0 emits the head every 2 s
my $c = wait_checkpoint('of row 10 on the schedule', sub { $_[0]{last_id} == 10 && $_[0]{scheduled} });
ok($c, 'worker 0 emitted a scheduled checkpoint of the ten rows');
ok($c->{sig_ok}, 'the checkpoint is signed with the endpoint secret');
is(join(' ', map { $c->{data}{$_} } qw(database rows last_id head_hash)), "odoo 10 10 $head10",
	'it carries the database, the row count, the last id and the head hash');
my $n = scalar(checkpoints());
sleep 4.5;
ok(scalar(checkpoints()) >= $n + 1, 'more follow on the schedule');

# on demand: the administrator
su("SELECT count(retailflow.audit('note', 'test', g, NULL, jsonb_build_object('n', g))) FROM generate_series(11, 15) g");
my $demand = decode_json(aq('SELECT retailflow.audit_checkpoint()'));
is($demand->{last_id}, 15, 'the administrator takes a checkpoint of row 15');
my $c15 = wait_checkpoint('on demand', sub { $_[0]{checkpoint_id} == $demand->{checkpoint_id} });
ok($c15 && $c15->{sig_ok} && !$c15->{data}{scheduled} && $c15->{data}{head_hash} eq $demand->{head_hash},
	'the receiver got it, signed');
is(su("SELECT count(*) FROM retailflow.audit_checkpoint WHERE event_id IS NOT NULL"), su("SELECT count(*) FROM retailflow.audit_checkpoint"),
	'every checkpoint is recorded with its event');
my ($ret, $out, $err) = rf_psql_as($node, 'odoo', 'odoo', 'SELECT retailflow.audit_checkpoint()');
like($err, qr/permission denied for function audit_checkpoint/, "Odoo's role cannot take one");

# the DBA removes rows 13-15 and rewinds the head with the triggers disabled
su(q{ALTER TABLE retailflow.audit_log DISABLE TRIGGER USER;
	ALTER TABLE retailflow.audit_head DISABLE TRIGGER USER;
	DELETE FROM retailflow.audit_log WHERE id > 12;
	UPDATE retailflow.audit_head SET last_id = 12, last_hash = (SELECT hash FROM retailflow.audit_log WHERE id = 12);
	ALTER TABLE retailflow.audit_log ENABLE TRIGGER USER;
	ALTER TABLE retailflow.audit_head ENABLE TRIGGER USER;});
is(su('SELECT ok::text || rows_checked FROM retailflow.verify_audit_log()'), 'true12', 'the chain alone still verifies');
my $kept = encode_json([ map { $_->{data} } checkpoints() ]);
my $verdict = rf_admin_psql($node, 'odoo', "SELECT ok::text || ' ' || first_broken_id || ' ' || detail FROM retailflow.verify_audit_log('$kept')");
like($verdict, qr/^false 13 The log ends at row 12, but the checkpoint taken at \S+ names row 15: rows at the end were removed/,
	'against the checkpoints the receiver kept the log is broken at row 13, the first removed');
is(rf_admin_psql($node, 'odoo', "SELECT ok FROM retailflow.verify_audit_log('" . encode_json($c->{data}) . "')"), 't',
	'the checkpoint of row 10 is still extended');
# the next scheduled checkpoint shows the head went backwards
my $after = wait_checkpoint('after the rewind', sub { $_[0]{checkpoint_id} > $demand->{checkpoint_id} && $_[0]{last_id} == 12 });
ok($after && $after->{sig_ok}, 'the receiver sees the head go back from row 15 to row 12 in the next scheduled checkpoint');

$node->stop;
$recv->kill_kill;
END { $recv->kill_kill if $recv; }
done_testing();
