# 030_no_escalation: the attack suite of docs/security.md's deployment model.
#
# Odoo's role "odoo" (LOGIN CREATEDB, not a superuser) owns its database and
# every Odoo table; a superuser only ran CREATE EXTENSION retailflow and
# GRANT retailflow_odoo TO odoo.  Acting only as odoo (its own connections,
# never SET ROLE from a superuser), this test plants code everywhere
# retailflow could run it (views in place of Odoo's tables, triggers, row
# security, functions and operators shadowing built-ins in schema public,
# search_path settings of the database and of the role), tries every
# retailflow setting, calls every retailflow function odoo may execute,
# performs Odoo-style writes that fire every managed trigger, lets worker 0
# run its scheduled checks, and has a superuser call what a DBA calls.  Then
# it asserts that:
#   - odoo never became a superuser and no planted function ever ran as a
#     superuser or as the extension's owner (a table the planted functions
#     write, and the server log, which keeps what rolled back);
#   - no backend crashed (server log; postmaster pid unchanged);
#   - the superuser-only policy settings stay out of odoo's reach, and block
#     mode set by the DBA keeps refusing a reservation over-write;
#   - odoo cannot write retailflow's internal tables or read webhook secrets;
#   - a view in place of an Odoo table is refused (42809) and reported;
#   - tampering with a managed trigger is recorded (audit, event, exception).
# A failure here is a hole: it must stay failing until the code is fixed.
# Holes this suite found when it was written, each fixed since (the failing
# test's diag said what odoo did, which code path ran it and as whom):
#   - escalation: odoo sets ALTER DATABASE odoo SET search_path = public,
#     pg_catalog and creates public.= (name, name); a DBA's SELECT * FROM
#     retailflow.status() runs it as the superuser (odoo_catalog.c:
#     extension_version() and setting_with_source() run unqualified SPI with
#     the caller's search_path);
#   - crash (SIGSEGV): a column type odoo changes (stock_move_line.state,
#     quantity_product_uom, sale_order.amount_total) is read by the C heap
#     readers as numeric/text Datums (conflicts.c, approvals.c);
#   - block mode bypassed without a trace: stock_move.quantity_done added
#     for one transaction (version detection says 16, the conflict trigger
#     returns early), or an = (varchar, varchar) of odoo's in public (the
#     facts/caches are read with odoo's own search_path);
#   - detection gaps: an impostor trigger under a managed trigger's name
#     (checked by name only), a managed table moved out of the schema.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use RfTest;

my $node = rf_node('noesc', conf => qq{
retailflow.database = 'odoo'
retailflow.webhook_workers = 1
retailflow.scheduler_tick = 200ms
retailflow.check_interval = '1s'
retailflow.webhook_poll_interval = 100ms
log_min_messages = warning
restart_after_crash = on
});
$node->start;
my $pm_pid = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];

rf_odoo_role($node);
rf_odoo_db($node, 'odoo', '2, 20, 200, 60');

# ---------------------------------------------------------------- helpers

# (rc, stdout, stderr) of a script run by role $user; errors carry their SQLSTATE.
sub run_sql
{
	my ($db, $user, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db, "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err,
		on_error_stop => 1, extra_params => [ '-U', $user ]);
	return ($rc, $out, $err);
}
sub sqlstate { return $_[0] =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):/ ? $1 : ''; }

# odoo's statements: dies on error; odoo_state returns 'ok' or the SQLSTATE.
sub odoo
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = run_sql($db, 'odoo', $sql);
	die "statement of odoo failed: $err\n$sql\n" if $rc;
	return $out;
}
sub odoo_state
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = run_sql($db, 'odoo', $sql);
	return $rc ? (sqlstate($err) || "rc=$rc $err") : 'ok';
}

# The test's own superuser queries pin search_path: odoo may have set the
# database's search_path and shadowed built-in operators in public.
my $su_name = $node->safe_psql('postgres', 'SELECT current_user');
sub su
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, "SET search_path = pg_catalog, pg_temp;\n$sql");
}
# What a DBA types: the session as the database's settings make it.
sub dba_state
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = run_sql($db, $su_name, $sql);
	return $rc ? (sqlstate($err) || "rc=$rc $err") : 'ok';
}
sub su_poll
{
	my ($db, $sql, $secs) = @_;
	my $deadline = time + ($secs // 60);
	while (time < $deadline)
	{
		my ($rc, $out, $err) = run_sql($db, $su_name, "SET search_path = pg_catalog, pg_temp;\n$sql");
		return 1 if $rc == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

my $ext_owner = su('odoo', "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
	WHERE n.nspname = 'retailflow'");

# The server log from a position on (each reader keeps its own position).
sub log_read
{
	my ($posref) = @_;
	open(my $fh, '<', $node->logfile) or die "cannot open the server log: $!";
	seek($fh, $$posref, 0);
	local $/;
	my $s = <$fh> // '';
	$$posref = tell($fh);
	close($fh);
	return $s;
}
my $log_pos = 0;
my $probe_pos = 0;

# Lines of a server log that say a process crashed.
sub crash_lines
{
	return grep { !/statement:/ && /was terminated by (?:signal|exception)|PANIC:/ } split /\n/, $_[0];
}
# The log lines of planted code run by a superuser (with the context of the first).
sub pwn_lines
{
	my ($log, $app) = @_;
	my @l = split /\n/, $log;
	my @hits;
	for my $i (0 .. $#l)
	{
		next if $l[$i] =~ /statement:/;
		next if defined $app && $l[$i] !~ /\Q$app\E/;
		next unless $l[$i] =~ /LOG:\s+RFPWN(?:-ESCALATED)? tag=.*(?:super=t|escalated)/;
		push @hits, @hits ? $l[$i] : join("\n", @l[ $i .. ($i + 8 > $#l ? $#l : $i + 8) ]);
	}
	return @hits;
}

# odoo made a superuser is undone at once, so that what follows still tests something.
sub odoo_super
{
	my $super = $node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'odoo'");
	$node->safe_psql('postgres', 'ALTER ROLE odoo NOSUPERUSER') if $super eq 't';
	return $super eq 't';
}

# probe(who, db, sql): runs sql as odoo or as the DBA (with the session the
# database's settings give), then attributes to it any planted code the
# server log shows running as a superuser during it, and odoo becoming one.
my @offences;
my $probe_n = 0;
sub probe
{
	my ($who, $db, $sql) = @_;
	my $app = sprintf('rfprobe%05d', ++$probe_n);
	log_read(\$probe_pos);
	my ($rc, $out, $err) = run_sql($db, $who eq 'odoo' ? 'odoo' : $su_name, "SET application_name = '$app';\n$sql");
	my $st = $rc ? (sqlstate($err) || "rc=$rc") : 'ok';
	my @hits = pwn_lines(log_read(\$probe_pos), $app);
	my $became = odoo_super();
	if (@hits || $became)
	{
		push @offences, "[$who in $db] $sql => " . ($became ? 'ODOO BECAME A SUPERUSER; ' : '')
		  . scalar(@hits) . " planted function runs as a superuser, first:\n" . ($hits[0] // '');
	}
	return $st;
}

# Evidence at the end of each phase.
sub evidence_ok
{
	my ($phase, $db) = @_;
	$db //= 'odoo';
	my $log = log_read(\$log_pos);
	is(scalar(@offences), 0, "$phase: no call made odoo a superuser or ran planted code as a superuser")
	  or diag("HOLE ($phase):\n" . join("\n----\n", @offences));
	@offences = ();
	my @other = grep { !/rfprobe\d{5}/ } pwn_lines($log);
	is(scalar(@other), 0, "$phase: the server log (worker 0, triggers, the test's other statements) shows no planted code run as a superuser")
	  or diag(join("\n", @other[ 0 .. ($#other < 9 ? $#other : 9) ]));
	my $bad = su($db, "SELECT coalesce(string_agg(DISTINCT format('%s ran as %s (session %s)', tag, cur, sess), '; '), '')
		FROM public.rf_attack_log WHERE (cur_super OR cur = '$ext_owner')");
	is($bad, '', "$phase: the recording table shows no planted function run as a superuser or as the extension owner ($ext_owner)")
	  or diag("planted functions ran with a superuser's rights: $bad");
	su($db, 'TRUNCATE public.rf_attack_log');
	is(odoo_super() ? 't' : 'f', 'f', "$phase: odoo is not a superuser");
	my @crash = crash_lines($log);
	is(scalar(@crash), 0, "$phase: no backend crashed") or diag(join("\n", @crash));
	return;
}

# Waits for worker 0 to run every enabled check at least twice after now.
sub worker_ticks
{
	my ($phase) = @_;
	my $t0 = su('odoo', 'SELECT clock_timestamp()');
	ok(su_poll('odoo', "SELECT bool_and(last_run_at > '$t0'::timestamptz + interval '1.2 s')
		FROM retailflow.exception_check WHERE enabled", 90),
		"$phase: worker 0 ran every enabled check again (several scheduler ticks)");
	return;
}

# Every retailflow function role $who may execute, called with plausible
# arguments; errors are fine.  Returns { signature => sqlstate or ok }.
# never called: they would undo the deployment under test
my %skip_for_dba = map { $_ => 1 } ('detach', 'purge', 'purge_exceptions', 'redeliver_dead');
sub arg_literal
{
	my ($fname, $aname, $type) = @_;
	$aname //= '';
	return undef if $type =~ /"any"/;
	return 'NULL::text[]' if $type eq 'text[]' && $aname eq 'kinds';
	return "'{stock_quant,res_users}'::text[]" if $type eq 'text[]';
	return "'{1,2}'::integer[]" if $type eq 'integer[]';
	return "'{1,2,3,10}'::numeric[]" if $type eq 'numeric[]';
	return 'true' if $type eq 'boolean';
	return "pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 year'" if $type =~ /^timestamp/ && $aname eq 'date_from';
	return 'pg_catalog.now()' if $type =~ /^timestamp/;
	return "interval '1 day'" if $type eq 'interval';
	return "'odoo'::name" if $type eq 'name';
	if ($type eq 'jsonb')
	{
		return $fname eq 'required_approvals' ? q{'{"amount": 100, "company_id": 1}'::jsonb} : q{'{}'::jsonb};
	}
	if ($type eq 'text')
	{
		return "'sale.order'" if $aname =~ /^(document_type|tdoc|model)$/;
		return "'sale.order.confirmed'" if $aname eq 'event_type';
		return "'late_picking'" if $aname =~ /^(p_)?kind$/;
		return "'retailflow.order_sla'" if $aname eq 'name';
		return "'acknowledge'" if $aname eq 'action';
		return "'SELECT 1'" if $aname eq 'sql';
		return "'public'" if $aname eq 'schema_name';
		return "'stock_quant'" if $aname eq 'table_name';
		return "'x'";
	}
	return '1' if $type =~ /^(integer|bigint|smallint|numeric|double precision)$/;
	return "NULL::$type";
}
my %odoo_funcs;    # db => [signatures odoo may execute], computed while odoo is an ordinary role
sub odoo_functions
{
	my ($db) = @_;
	$odoo_funcs{$db} //= [ split /\n/, su($db, qq{
		SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		FROM pg_proc p
		WHERE p.pronamespace = 'retailflow'::regnamespace
		  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
		  AND has_function_privilege('odoo', p.oid, 'EXECUTE')
		ORDER BY 1}) ];
	return @{ $odoo_funcs{$db} };
}
sub call_all
{
	my ($db, $who, $phase) = @_;
	my %res;
	for my $sig (odoo_functions($db))
	{
		my ($fname, $args) = $sig =~ /^(\w+)\((.*)\)$/;
		next if $skip_for_dba{$fname};
		my @lits;
		my $ok = 1;
		for my $a (split /, /, $args)
		{
			next if $a =~ /^OUT /;
			$a =~ s/^(?:IN |VARIADIC )//;
			my ($aname, $type) = $a =~ /^(\w+) (.+)$/ ? ($1, $2) : (undef, $a);
			my $lit = arg_literal($fname, $aname, $type);
			if (!defined $lit) { $ok = 0; last; }
			push @lits, $lit;
		}
		my $sql = $ok ? "SELECT * FROM retailflow.$fname(" . join(', ', @lits) . ") LIMIT 100"
		  : "SELECT * FROM retailflow.$fname('SELECT 1') AS t(x integer)";
		$res{$sig} = probe($who, $db, $sql);
	}
	note("$phase: $who called " . scalar(keys %res) . " functions: "
		  . join(', ', map { (my $k = $_) =~ s/\(.*//; "$k=$res{$_}" } sort keys %res));
	return \%res;
}

# The functions a DBA calls (docs/operations.md), as a superuser.
# Every name qualified: what the DBA types must not itself reach odoo's objects.
my $period = "pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 year', pg_catalog.now()";
my @dba_calls = (
	'SELECT * FROM retailflow.status()',
	"SELECT * FROM retailflow.kpi_order_release($period)",
	"SELECT * FROM retailflow.kpi_fulfilment_latency($period)",
	"SELECT * FROM retailflow.kpi_return_cycle($period)",
	"SELECT * FROM retailflow.kpi_stock_accuracy($period)",
	"SELECT * FROM retailflow.kpi_exceptions($period)",
	"SELECT * FROM retailflow.kpi_approval_turnaround($period)",
	"SELECT * FROM retailflow.kpi_webhook_delivery($period)",
	'SELECT pg_catalog.count(*) FROM retailflow.reservation_conflicts()',
	'SELECT pg_catalog.count(*) FROM retailflow.reservation_conflicts_sql()',
	'SELECT * FROM retailflow.run_checks()',
	'SELECT * FROM retailflow.run_due_checks()',
	'SELECT * FROM retailflow.verify_audit_log()',
	'SELECT * FROM retailflow.attach()',
	'SELECT pg_catalog.count(*) FROM retailflow.repair_reservations(true)',
	'SELECT retailflow.escalate_overdue(pg_catalog.now())',
	'SELECT pg_catalog.count(*) FROM retailflow.product_quantities()',
	'SELECT pg_catalog.count(*) FROM retailflow.stockout_risk()',
	'SELECT * FROM retailflow.order_risk(1)',
	'SELECT pg_catalog.count(*) FROM retailflow.replenishment_needs()',
	"SELECT pg_catalog.count(*) FROM retailflow.required_approvals('sale.order', 1)",
	"SELECT pg_catalog.count(*) FROM retailflow.required_approvals('account.move', 1)",
	"SELECT pg_catalog.count(*) FROM retailflow.required_approvals('stock.quant', 1)",
	"SELECT * FROM retailflow.exceptions LIMIT 5",
	"SELECT * FROM retailflow.webhook_stats");
sub dba_calls
{
	my ($db, $phase) = @_;
	my @r = map { my $s = probe('dba', $db, $_); "$_ => $s" } @dba_calls;
	note("$phase: DBA calls: " . join('; ', @r));
	return;
}

# ---------------------------------------------------------------- the deployment model

odoo_functions('odoo');

is(su('odoo', "SELECT rolsuper::text || rolcreatedb::text || rolcanlogin::text FROM pg_roles WHERE rolname = 'odoo'"),
	'falsetruetrue', 'odoo is LOGIN CREATEDB and not a superuser');
is(su('odoo', "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relowner <> 'odoo'::regrole"), '0',
	'odoo owns every Odoo table (the fixture was loaded by odoo)');
is(su('odoo', "SELECT rolsuper FROM pg_roles WHERE rolname = '$ext_owner'"), 't', "the extension owner ($ext_owner) is a superuser");
my %status = map { my @f = split /\|/; ("$f[0]/$f[1]" => [ $f[2], $f[3] // '' ]) }
  split /\n/, odoo('odoo', 'SELECT component, name, status, detail FROM retailflow.status()');
is($status{'security/extension owner'}[0], $ext_owner, "status() reports the extension owner ($ext_owner)");
is($status{'security/odoo role'}[0], 'odoo', "status() reports Odoo's role (odoo)");
like($status{'security/odoo role'}[1], qr/not a superuser; member of retailflow_odoo/,
	"status() says Odoo's role is not a superuser and is a member of retailflow_odoo");
is($status{'odoo/version'}[0], '17', 'status() detects Odoo 17');

# ---------------------------------------------------------------- the recording of planted code

# Every planted function calls rf_pwn(tag): it records who runs it (table and
# server log: the log keeps what rolls back) and tries to make odoo a superuser.
odoo('odoo', q{
CREATE TABLE public.rf_attack_log (id bigserial PRIMARY KEY, tag text NOT NULL, cur name NOT NULL,
    sess name NOT NULL, cur_super boolean, at timestamptz NOT NULL DEFAULT clock_timestamp());
GRANT SELECT, INSERT ON public.rf_attack_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.rf_attack_log_id_seq TO PUBLIC;
CREATE FUNCTION public.rf_pwn(tag text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    su boolean;
    k text := 'rfpwn.k' || md5(tag || '/' || current_user || '/' || session_user);
BEGIN
    -- once per transaction and context: views call it for every row
    IF current_setting(k, true) OPERATOR(pg_catalog.=) '1' THEN RETURN 1; END IF;
    PERFORM set_config(k, '1', true);
    SELECT r.rolsuper INTO su FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    RAISE LOG 'RFPWN tag=% cur=% sess=% super=%', tag, current_user, session_user, su;
    BEGIN
        INSERT INTO public.rf_attack_log (tag, cur, sess, cur_super) VALUES (tag, current_user, session_user, su);
    EXCEPTION WHEN OTHERS THEN
        RAISE LOG 'RFPWN-NOREC tag=% cur=% err=%', tag, current_user, SQLERRM;
    END;
    BEGIN
        EXECUTE 'ALTER ROLE odoo SUPERUSER';
        RAISE LOG 'RFPWN-ESCALATED tag=% cur=% escalated', tag, current_user;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    -- the session's own user may be a superuser (worker 0, a DBA) while we run as odoo
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', session_user);
        EXECUTE 'ALTER ROLE odoo SUPERUSER';
        RAISE LOG 'RFPWN-ESCALATED tag=% cur=% escalated through SET ROLE %', tag, current_user, session_user;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE format('SET SESSION AUTHORIZATION %I', session_user);
        EXECUTE 'ALTER ROLE odoo SUPERUSER';
        RAISE LOG 'RFPWN-ESCALATED tag=% cur=% escalated through SET SESSION AUTHORIZATION %', tag, current_user, session_user;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN 1;
END $$;
});
is(odoo('odoo', "SELECT public.rf_pwn('selftest'); SELECT cur FROM public.rf_attack_log WHERE tag = 'selftest'"),
	"1\nodoo", 'the recorder works and records odoo as odoo');
evidence_ok('setup');

# ---------------------------------------------------------------- 1. settings

# every retailflow.* setting, by its context
my @gucs = map { [ split /\|/ ] } split /\n/,
  su('odoo', "SELECT name, context FROM pg_settings WHERE name LIKE 'retailflow.%' ORDER BY 1");
ok(scalar(@gucs) >= 10, 'retailflow registers its settings (' . scalar(@gucs) . ')');
my %policy = map { $_ => 1 } qw(retailflow.conflict_action retailflow.odoo_schema retailflow.approval_enforcement
  retailflow.webhook_allowed_hosts retailflow.now_override retailflow.check_interval retailflow.check_intervals
  retailflow.order_sla retailflow.partial_delivery_age retailflow.return_stall);
for my $p (sort keys %policy)
{
	my ($ctx) = map { $_->[1] } grep { $_->[0] eq $p } @gucs;
	is($ctx, 'superuser', "$p is superuser-only");
}
odoo('odoo', 'CREATE SCHEMA evil; CREATE TABLE evil.stock_quant (LIKE public.stock_quant INCLUDING ALL)');
for my $g (@gucs)
{
	my ($name, $ctx) = @$g;
	my $val = $name eq 'retailflow.odoo_schema' ? 'evil' : $name =~ /action|enforcement/ ? 'off'
	  : $name eq 'retailflow.now_override' ? '2000-01-01' : $name =~ /interval|sla|age|stall|retention/ ? '1000 days'
	  : $name =~ /hosts/ ? 'attacker.example' : $name eq 'retailflow.database' ? 'postgres' : '1';
	my $expect = $ctx eq 'superuser' ? '42501' : $ctx eq 'user' ? 'ok' : '55P02';
	$expect = 'ok|42501|55P02' if $ctx eq 'user';
	like(odoo_state('odoo', "SET $name = '$val'"), qr/^(?:$expect)$/, "odoo: SET $name ($ctx) => $expect");
	like(odoo_state('odoo', "SELECT set_config('$name', '$val', false)"), qr/^(?:$expect)$/,
		"odoo: set_config('$name') ($ctx) => $expect");
	next if $ctx eq 'user';
	like(odoo_state('odoo', "ALTER ROLE odoo SET $name = '$val'"), qr/^(?:42501|55P02)$/,
		"odoo: ALTER ROLE odoo SET $name is refused");
	like(odoo_state('odoo', "ALTER DATABASE odoo SET $name = '$val'"), qr/^(?:42501|55P02)$/,
		"odoo: ALTER DATABASE odoo SET $name is refused");
}
is(odoo_state('odoo', "CREATE FUNCTION public.rf_off() RETURNS int LANGUAGE sql
	SET retailflow.conflict_action = 'off' AS 'SELECT 1'"), '42501',
	'odoo cannot pin retailflow.conflict_action = off in a function of its own');
is(odoo_state('odoo', 'SET session_replication_role = replica'), '42501',
	'odoo cannot SET session_replication_role (which would silence every trigger)');
is(su('odoo', "SELECT count(*) FROM pg_db_role_setting s WHERE array_to_string(s.setconfig, ',') LIKE '%retailflow.%'"),
	'0', 'no retailflow setting was stored for the database or the role');
is(odoo('odoo', "SELECT current_setting('retailflow.odoo_schema') || '/' || current_setting('retailflow.conflict_action')
	|| '/' || current_setting('retailflow.approval_enforcement')"), 'public/log/log',
	'the policy settings odoo sees are the DBA\'s defaults');

# ---------------------------------------------------------------- 2. retailflow's own tables

my %writes = (
	'INSERT INTO retailflow.outbox (event_type, model, record_id) VALUES (\'sale.order.confirmed\', \'sale.order\', 1)' => 'outbox',
	'INSERT INTO retailflow.delivery (event_id, endpoint_id, model, record_id) VALUES (1, 1, \'x\', 1)' => 'delivery',
	'INSERT INTO retailflow.audit_log (action, entity, prev_hash, hash, backend_pid, db_role) VALUES (\'x\', \'y\', \'\', \'\', 1, \'postgres\')' => 'audit_log',
	'INSERT INTO retailflow.approval_request (document_type, record_id, rule_id, level, group_id, reason, state) VALUES (\'sale.order\', 1, 1, 1, 1, \'x\', \'approved\')' => 'approval_request',
	'INSERT INTO retailflow.exception_log (kind) VALUES (\'x\')' => 'exception_log',
	'UPDATE retailflow.audit_head SET last_id = 0' => 'audit_head (UPDATE)',
	'SELECT secret FROM retailflow.endpoint' => 'endpoint.secret (SELECT)',
	'UPDATE retailflow.exception SET closed_at = now(), close_reason = \'resolved\'' => 'exception (UPDATE)',
	'UPDATE retailflow.exception_check SET query = \'SELECT 1\'' => 'exception_check.query (UPDATE)',
	'INSERT INTO retailflow.managed_trigger VALUES (\'stock_quant\', \'retailflow_x\', \'x\', \'AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION public.rf_pwn()\')' => 'managed_trigger',
	'INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES (\'x\', \'sale.order\', 1)' => 'approval_rule',
	'UPDATE retailflow.event_type SET description = \'x\'' => 'event_type (UPDATE)',
	'INSERT INTO retailflow.endpoint (name, url) VALUES (\'x\', \'http://127.0.0.1:1/\')' => 'endpoint',
	'UPDATE retailflow.risk_parameter SET value = 0' => 'risk_parameter (UPDATE)',
	'INSERT INTO retailflow.reservation_guard (product_id, location_id) VALUES (1, 1)' => 'reservation_guard');
for my $w (sort { $writes{$a} cmp $writes{$b} } keys %writes)
{
	is(odoo_state('odoo', $w), '42501', "odoo cannot write retailflow.$writes{$w} directly");
}
# the internal functions that write as the extension owner
for my $f ('retailflow.audit(\'x\', \'y\', 1)',
	'retailflow.audit_queued(\'x\', \'y\', 1, NULL, NULL, \'postgres\', \'x\', 1, now())',
	'retailflow.audit_after_rollback(\'x\', \'y\', 1, 1, \'{}\')',
	'retailflow.odoo_exec(\'ALTER ROLE odoo SUPERUSER\')',
	'retailflow.run_check(\'late_picking\', now())',
	'retailflow.run_checks()',
	'retailflow.record_trigger_change(\'x\', \'public\', \'stock_quant\', NULL, \'x\')',
	'retailflow.detach()',
	'retailflow.approval_enforce_missing(\'sale.order\', 1, 1, \'sale\')',
	'retailflow.wake_workers_at_commit()',
	'retailflow.decide(1, 1, \'x\', true)')
{
	is(odoo_state('odoo', "SELECT $f"), '42501', "odoo may not call $f");
}
# odoo_query() is Odoo's own read: called by odoo it runs as odoo
is(odoo('odoo', "SELECT * FROM retailflow.odoo_query('SELECT current_user::text') AS t(x text)"), 'odoo',
	'retailflow.odoo_query() called by odoo runs as odoo');

# ---------------------------------------------------------------- 3. planted code in schema public

# Built-ins shadowed in public: exact-match overloads win over implicit casts
# (varchar = varchar, numeric <> integer ...) and, with public first in
# search_path, over pg_catalog itself.  Each keeps the built-in's result.
odoo('odoo', q{
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.rf_eq_int(integer, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(integer,integer)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.rf_eq_int);
CREATE FUNCTION public.rf_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(text,text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.rf_eq_text);
CREATE FUNCTION public.rf_eq_name(name, name) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(name,name)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.rf_eq_name);
CREATE FUNCTION public.rf_eq_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(varchar,varchar)'); RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.rf_eq_varchar);
CREATE FUNCTION public.rf_ne_num_int(numeric, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:<>(numeric,integer)'); RETURN $1 OPERATOR(pg_catalog.<>) $2::numeric; END $$;
CREATE OPERATOR public.<> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.rf_ne_num_int);
CREATE FUNCTION public.jsonb_build_object(text, integer) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:jsonb_build_object(text,integer)'); RETURN pg_catalog.jsonb_build_object($1, $2); END $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:jsonb_build_object(text,text)'); RETURN pg_catalog.jsonb_build_object($1, $2); END $$;
CREATE FUNCTION public.round(numeric, integer) RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:round(numeric,integer)'); RETURN pg_catalog.round($1, $2); END $$;
CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:current_setting(text,boolean)'); RETURN pg_catalog.current_setting($1, $2); END $$;
CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('shadow:to_regclass(text)'); RETURN pg_catalog.to_regclass($1); END $$;
});
# odoo's own triggers and row security on the tables retailflow reads and writes
odoo('odoo', q{
CREATE FUNCTION public.rf_pwn_trigger() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('trigger:' || TG_TABLE_NAME); RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$;
CREATE TRIGGER aaa_rf_pwn BEFORE INSERT OR UPDATE OR DELETE ON public.stock_quant FOR EACH ROW EXECUTE FUNCTION public.rf_pwn_trigger();
CREATE TRIGGER aaa_rf_pwn BEFORE INSERT OR UPDATE OR DELETE ON public.sale_order FOR EACH ROW EXECUTE FUNCTION public.rf_pwn_trigger();
CREATE TRIGGER zzz_rf_pwn AFTER INSERT OR UPDATE OR DELETE ON public.stock_move_line FOR EACH ROW EXECUTE FUNCTION public.rf_pwn_trigger();
CREATE TRIGGER zzz_rf_pwn AFTER UPDATE ON public.account_move FOR EACH ROW EXECUTE FUNCTION public.rf_pwn_trigger();
CREATE FUNCTION public.rf_pwn_rls(t text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM public.rf_pwn('rls:' || t); RETURN true; END $$;
ALTER TABLE public.stock_quant ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rf_pwn ON public.stock_quant USING (public.rf_pwn_rls('stock_quant'));
ALTER TABLE public.sale_order ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rf_pwn ON public.sale_order USING (public.rf_pwn_rls('sale_order'));
ALTER TABLE public.res_users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rf_pwn ON public.res_users USING (public.rf_pwn_rls('res_users'));
});
is(odoo('odoo', "SELECT count(*) > 0 FROM stock_quant"), 't', 'odoo still reads its tables through its policies');
ok(odoo('odoo', "SELECT count(*) FROM public.rf_attack_log WHERE tag = 'rls:stock_quant' AND cur = 'odoo'") > 0,
	'positive control: the row security function ran (as odoo) for odoo\'s own query');

# ---------------------------------------------------------------- 4. views in place of Odoo's tables

my @viewed = qw(stock_location stock_warehouse product_product product_template uom_uom res_users res_groups
  res_groups_users_rel res_company stock_picking_type stock_picking sale_order sale_order_line ir_config_parameter
  product_category res_partner_category stock_quant);
my %planted;
sub plant_views
{
	my ($db, @tables) = @_;
	@tables = @viewed unless @tables;
	my @present = split /\n/, su($db, "SELECT t FROM unnest(ARRAY['" . join("','", @tables)
		  . "']) t WHERE to_regclass('public.' || t) IS NOT NULL");
	$planted{$db} = \@present;
	my $sql = '';
	for my $t (@present)
	{
		$sql .= "ALTER TABLE public.$t RENAME TO ${t}__real;\n"
		  . "CREATE VIEW public.$t AS SELECT r.*, public.rf_pwn('view:$t:column') AS rf_pwn_column "
		  . "FROM public.${t}__real r WHERE public.rf_pwn('view:$t:where') > 0;\n";
	}
	odoo($db, $sql);
	return scalar(@present);
}
sub remove_views
{
	my ($db) = @_;
	odoo($db, join('', map { "DROP VIEW public.$_; ALTER TABLE public.${_}__real RENAME TO $_;\n" } @{ $planted{$db} }));
	return;
}
my %known = map { $_ => 1 } split /\n/, su('odoo', "SELECT name FROM retailflow.status() WHERE component = 'table'");

# 4a. a few views, Odoo still detected: each function that reads one is refused with 42809
plant_views('odoo', qw(sale_order stock_warehouse res_groups));
is(odoo('odoo', 'SELECT retailflow.odoo_version()'), '17', 'with views on sale_order, stock_warehouse, res_groups Odoo 17 is still detected');
is(odoo_state('odoo', 'SELECT count(*) FROM retailflow.reservation_conflicts()'), '42809',
	'reservation_conflicts() refuses the view in place of stock_warehouse (42809)');
is(odoo_state('odoo', "SELECT count(*) FROM retailflow.required_approvals('sale.order', 1)"), '42809',
	'required_approvals() refuses the view in place of sale_order (42809)');
is(dba_state('odoo', "SELECT * FROM retailflow.kpi_order_release($period)"), '42809',
	'a DBA\'s kpi_order_release() refuses the view in place of sale_order (42809)');
is(dba_state('odoo', 'SELECT * FROM retailflow.order_risk(1)'), '42809', 'a DBA\'s order_risk() refuses it (42809)');
is(dba_state('odoo', "INSERT INTO retailflow.approval_rule (name, document_type, group_id) VALUES ('x', 'sale.order', 1)"),
	'42809', 'a DBA\'s new approval rule is validated without reading the view in place of res_groups (42809)');
is(dba_state('odoo', "SELECT * FROM retailflow.run_checks('{stuck_order}')"), 'ok', 'a DBA\'s run_checks() runs');
like(su('odoo', "SELECT last_error FROM retailflow.exception_check WHERE kind = 'stuck_order'"), qr/is a view, not a table/,
	'and the stuck_order check records the refusal of the view');
for my $t (qw(sale_order stock_warehouse res_groups))
{
	is(odoo('odoo', "SELECT status FROM retailflow.status() WHERE component = 'table' AND name = '$t'"), 'refused',
		"status() reports the view in place of $t as refused");
}
call_all('odoo', 'odoo', 'three views');
call_all('odoo', 'dba', 'three views');
evidence_ok('views in place of sale_order, stock_warehouse, res_groups');
remove_views('odoo');

# 4b. every table retailflow reads replaced by a view
plant_views('odoo');
is(odoo('odoo', "SELECT count(*) > 0 FROM public.stock_quant"), 't', 'odoo reads its stock through the planted view');

for my $t (grep { $known{$_} } @{ $planted{odoo} })
{
	is(odoo('odoo', "SELECT status FROM retailflow.status() WHERE component = 'table' AND name = '$t'"), 'refused',
		"status() reports the view in place of $t as refused");
}
for my $q ('SELECT count(*) FROM retailflow.reservation_conflicts()',
	"SELECT count(*) FROM retailflow.required_approvals('sale.order', 1)",
	'SELECT count(*) FROM retailflow.product_quantities()',
	"SELECT * FROM retailflow.kpi_order_release($period)")
{
	like(odoo_state('odoo', $q), qr/^(42809|42P01|42501)$/, "odoo: $q is refused (42809, or 42P01 as stock_quant is a view)");
	like(dba_state('odoo', $q), qr/^(42809|42P01)$/, "DBA: $q is refused");
}
like(dba_state('odoo', 'SELECT count(*) FROM retailflow.repair_reservations(true)'), qr/^(42809|42P01)$/,
	'a DBA\'s repair_reservations() dry run is refused');
call_all('odoo', 'odoo', 'views');
call_all('odoo', 'dba', 'views');
dba_calls('odoo', 'views');
worker_ticks('views');
like(su('odoo', "SELECT string_agg(DISTINCT last_status, ',') FROM retailflow.exception_check
	WHERE enabled AND kind IN ('late_picking', 'stuck_order', 'conflict_reservation_mismatch')"), qr/^error$/,
	'worker 0\'s checks over the viewed tables end in error (refused), not in a planted function');
evidence_ok('views in place of Odoo tables');
remove_views('odoo');
is(odoo('odoo', "SELECT count(*) FROM retailflow.status() WHERE status = 'refused'"), '0', 'tables restored: nothing refused');

# ---------------------------------------------------------------- 5. Odoo-style writes, every managed trigger

my $group = su('odoo', 'SELECT min(id) FROM public.res_groups');
su('odoo', "INSERT INTO retailflow.approval_rule (name, document_type, amount_min, group_id, sla) VALUES
	('attack: every sale order', 'sale.order', 0, $group, '1 second'),
	('attack: every refund', 'account.move', 0, $group, '1 second'),
	('attack: every purchase', 'purchase.order', 0, $group, '1 second'),
	('attack: every price override', 'sale.order.line', 0, $group, NULL)");
su('odoo', "INSERT INTO retailflow.approval_rule (name, document_type, group_id, sla) VALUES
	('attack: every inventory adjustment', 'stock.quant', $group, '1 second')");

# quant keys with an open move line, a free quant (no move line) of a storable product in an internal location
my ($rq, $rml) = split /\|/, odoo('odoo', q{
	SELECT q.id, ml.id FROM stock_quant q
	JOIN stock_move_line ml ON ml.product_id = q.product_id AND ml.location_id = q.location_id
	 AND ml.lot_id IS NOT DISTINCT FROM q.lot_id AND ml.package_id IS NOT DISTINCT FROM q.package_id
	 AND ml.owner_id IS NOT DISTINCT FROM q.owner_id
	JOIN stock_location l ON l.id = q.location_id
	WHERE ml.state NOT IN ('done', 'cancel') AND l.usage = 'internal' AND q.quantity - q.reserved_quantity >= 1
	ORDER BY q.id LIMIT 1});
my $free = odoo('odoo', q{
	SELECT q.id FROM stock_quant q
	JOIN stock_location l ON l.id = q.location_id
	JOIN product_product pp ON pp.id = q.product_id JOIN product_template pt ON pt.id = pp.product_tmpl_id
	WHERE l.usage = 'internal' AND pt.type = 'product' AND q.lot_id IS NULL AND q.package_id IS NULL AND q.owner_id IS NULL
	  AND q.quantity > 10 AND NOT EXISTS (SELECT 1 FROM stock_move_line ml WHERE ml.product_id = q.product_id
	      AND ml.location_id = q.location_id AND ml.state NOT IN ('done', 'cancel'))
	  AND NOT EXISTS (SELECT 1 FROM stock_quant q2 WHERE q2.product_id = q.product_id AND q2.location_id = q.location_id
	      AND q2.id <> q.id)
	ORDER BY q.id LIMIT 1});
ok($rq && $rml && $free, "found a reserved quant key ($rq, line $rml) and a free quant ($free)");
sub odoo_writes
{
	my ($phase) = @_;
	my @w = (
		"UPDATE sale_order SET state = 'sale' WHERE id = (SELECT min(id) FROM sale_order WHERE state IN ('draft', 'sent'))",
		"UPDATE purchase_order SET state = 'purchase' WHERE id = (SELECT min(id) FROM purchase_order WHERE state IN ('draft', 'sent', 'to approve'))",
		"BEGIN; UPDATE stock_quant SET reserved_quantity = reserved_quantity + 1 WHERE id = $rq;
		 UPDATE stock_move_line SET quantity = quantity + 1, quantity_product_uom = quantity_product_uom + 1 WHERE id = $rml; COMMIT",
		"UPDATE stock_quant SET inventory_quantity = quantity + 3, inventory_diff_quantity = 3, inventory_quantity_set = true WHERE id = $free",
		"UPDATE stock_quant SET quantity = quantity + 3, inventory_quantity = 0, inventory_diff_quantity = 0, inventory_quantity_set = false WHERE id = $free",
		"UPDATE account_move SET state = 'draft' WHERE id = (SELECT min(id) FROM account_move WHERE move_type = 'out_refund')",
		"UPDATE account_move SET state = 'posted' WHERE id = (SELECT min(id) FROM account_move WHERE move_type = 'out_refund')",
		"UPDATE stock_picking SET state = 'done', date_done = now() AT TIME ZONE 'UTC' WHERE id = (SELECT min(id) FROM stock_picking WHERE state = 'assigned')",
		"UPDATE stock_location SET write_date = write_date WHERE id = (SELECT min(id) FROM stock_location)",
		"UPDATE product_template SET write_date = write_date WHERE id = (SELECT min(id) FROM product_template)",
		"UPDATE product_category SET write_date = write_date WHERE id = (SELECT min(id) FROM product_category)",
		"INSERT INTO stock_quant (product_id, location_id, company_id, quantity, reserved_quantity, in_date)
		 SELECT product_id, location_id, company_id, 1, 0, now() FROM stock_quant WHERE id = $free",
		"DELETE FROM stock_quant WHERE id = (SELECT max(id) FROM stock_quant)");
	my @r = map { probe('odoo', 'odoo', $_) } @w;
	note("$phase: Odoo-style writes: " . join(', ', @r));
	return \@r;
}
my $wr = odoo_writes('writes');
is($wr->[0], 'ok', 'odoo confirms a sale order (approval enforcement in log mode)');
is($wr->[2], 'ok', 'odoo reserves stock on a quant and its move line');
is($wr->[4], 'ok', 'odoo applies an inventory adjustment');
is($wr->[6], 'ok', 'odoo posts a refund');
ok(odoo('odoo', "SELECT count(*) FROM retailflow.approval_request WHERE document_type IN ('sale.order', 'stock.quant', 'account.move')") > 0,
	'log mode: the enforcement trigger created approval requests as the extension owner');
ok(odoo('odoo', "SELECT count(*) FROM retailflow.outbox WHERE event_type IN ('sale.order.confirmed', 'account.move.refund_posted')") > 0,
	'the capture triggers wrote events to the outbox');
ok(odoo('odoo', "SELECT count(*) FROM public.rf_attack_log WHERE tag = 'trigger:stock_quant' AND cur = 'odoo'") > 0,
	'positive control: odoo\'s own trigger ran (as odoo) for odoo\'s writes');
call_all('odoo', 'odoo', 'writes');
call_all('odoo', 'dba', 'writes');
dba_calls('odoo', 'writes');
is(dba_state('odoo', 'SELECT count(*) FROM retailflow.repair_reservations(false)'), '42501',
	'a superuser\'s repair_reservations(false) refuses to write Odoo\'s tables as a superuser');
worker_ticks('writes');
# the approval SLA passed: worker 0 escalated requests (approval escalation ran)
ok(su_poll('odoo', "SELECT count(*) > 0 FROM retailflow.approval_request WHERE state = 'escalated'", 30),
	'worker 0 escalated overdue approval requests');
evidence_ok('Odoo-style writes, triggers, row security and shadowed built-ins');

# ---------------------------------------------------------------- 6. block mode

su('postgres', 'ALTER DATABASE odoo SET retailflow.conflict_action = block');
sub overwrite
{
	my ($pre, $post) = @_;
	$pre //= '';
	$post //= '';
	my $before = su('odoo', "SELECT reserved_quantity FROM public.stock_quant WHERE id = $free");
	my $st = odoo_state('odoo', "SET retailflow.conflict_action = off;") eq '42501'
	  ? odoo_state('odoo', "BEGIN; $pre UPDATE stock_quant SET reserved_quantity = reserved_quantity + 5 WHERE id = $free; $post COMMIT;")
	  : 'SET was allowed';
	my $after = su('odoo', "SELECT reserved_quantity FROM public.stock_quant WHERE id = $free");
	if ($after ne $before)
	{
		# put it back (a consistent write), for the next attempt
		odoo_state('odoo', "UPDATE stock_quant SET reserved_quantity = $before WHERE id = $free");
	}
	return ($st, $before, $after);
}
is(odoo('odoo', 'SHOW retailflow.conflict_action'), 'block', "odoo's sessions run in the DBA's block mode");
my ($st, $b, $a) = overwrite();
is($st, '23514', 'block mode refuses the over-write at COMMIT (23514) after odoo\'s SET ... = off attempt');
is($a, $b, 'and the reserved quantity is unchanged');
($st, $b, $a) = overwrite("SET LOCAL retailflow.conflict_action = off;");
is($st, '42501', 'SET LOCAL retailflow.conflict_action = off inside the transaction is refused (42501)');
# a column Odoo 16 had makes retailflow detect "Odoo 16" for the length of the transaction
($st, $b, $a) = overwrite('ALTER TABLE public.stock_move ADD COLUMN quantity_done numeric;',
	'ALTER TABLE public.stock_move DROP COLUMN quantity_done;');
is($st, '23514', 'block mode still refuses the over-write when odoo adds stock_move.quantity_done for the transaction')
  or diag("HOLE: odoo added Odoo 16's column stock_move.quantity_done, over-reserved quant $free "
	  . "($b -> $a) and dropped the column again in one transaction; COMMIT returned '$st': "
	  . "the conflict statement trigger returns early when RfOdooGet()->version < 17, so nothing was judged, "
	  . "and no audit row, event or exception records it");
# the storable test (pt.type = 'product', varchar = unknown) hijacked by odoo's own = (varchar, varchar)
odoo('odoo', q{CREATE OR REPLACE FUNCTION public.rf_eq_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(varchar,varchar)');
	IF $2::text OPERATOR(pg_catalog.=) 'product' THEN RETURN false; END IF;
	RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$});
($st, $b, $a) = overwrite();
is($st, '23514', 'block mode still refuses the over-write when odoo shadows = (varchar, varchar) in public')
  or diag("HOLE: with public.=(varchar,varchar) answering false for 'product', COMMIT returned '$st' and quant $free "
	  . "went $b -> $a: cf_ensure() reads \"pt.type = 'product'\" with odoo's own search_path (RfOdooSpiConnect "
	  . "does not pin it when the caller is not a superuser), no product is storable, cf_judge() returns early");
odoo('odoo', q{CREATE OR REPLACE FUNCTION public.rf_eq_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(varchar,varchar)');
	RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$});
is(su('odoo', "SELECT reserved_quantity FROM public.stock_quant WHERE id = $free"), $b, 'the free quant is back as it was');

# approvals in block mode: a refund needs its approval
su('postgres', 'ALTER DATABASE odoo SET retailflow.approval_enforcement = block');
my $refund = odoo('odoo', "SELECT min(id) FROM account_move WHERE move_type = 'out_refund'");
odoo('odoo', "UPDATE account_move SET state = 'draft' WHERE id = $refund");
is(odoo_state('odoo', "SET retailflow.approval_enforcement = off"), '42501', 'odoo cannot turn approval enforcement off');
my $req_ok = odoo('odoo', "SELECT count(*) FROM retailflow.approval_request WHERE document_type = 'account.move'
	AND record_id = $refund AND state = 'approved'");
is($req_ok, '0', "refund $refund has no approved request");
is(odoo_state('odoo', "UPDATE account_move SET state = 'posted' WHERE id = $refund"), '55000',
	'block mode refuses to post the refund without its approval (55000)');
odoo('odoo', q{CREATE OR REPLACE FUNCTION public.rf_eq_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(varchar,varchar)');
	IF $2::text OPERATOR(pg_catalog.~~) '%refund' THEN RETURN false; END IF;
	RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$});
my $posted = odoo_state('odoo', "UPDATE account_move SET state = 'posted' WHERE id = $refund");
is($posted, '55000', 'block mode still refuses the refund when odoo shadows = (varchar, varchar) in public')
  or diag("HOLE: refund $refund was posted without its approval in block mode (result '$posted'): the facts query "
	  . "of ap_facts_sql() (\"am.move_type IN ('out_refund', 'in_refund')\") ran with odoo's search_path and "
	  . "odoo's operator said the move is not a refund, so no rule applied");
odoo('odoo', q{CREATE OR REPLACE FUNCTION public.rf_eq_varchar(varchar, varchar) RETURNS boolean LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$ BEGIN PERFORM public.rf_pwn('shadow:=(varchar,varchar)');
	RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$});
su('postgres', 'ALTER DATABASE odoo RESET retailflow.approval_enforcement');
evidence_ok('block mode');

# ---------------------------------------------------------------- 7. tampering with managed triggers

my $audit0 = su('odoo', 'SELECT count(*) FROM retailflow.audit_log');
is(odoo_state('odoo', 'DROP TRIGGER retailflow_conflict_upd ON public.stock_quant'), 'ok',
	'odoo (the table owner) can drop a managed trigger');
is(su('odoo', "SELECT count(*) FROM retailflow.audit_log WHERE action = 'managed_trigger.dropped'
	AND after->>'trigger' = 'retailflow_conflict_upd' AND db_role = 'odoo'"), '1',
	'the drop is in the audit log, naming odoo');
is(su('odoo', "SELECT count(*) FROM retailflow.outbox WHERE event_type = 'retailflow.trigger_changed'
	AND data->>'trigger' = 'retailflow_conflict_upd' AND data->>'action' = 'dropped'"), '1',
	'a retailflow.trigger_changed event was emitted');
ok(su_poll('odoo', "SELECT count(*) = 1 FROM retailflow.exceptions WHERE kind = 'managed_trigger'
	AND reference = 'stock_quant.retailflow_conflict_upd'", 30), 'the managed_trigger exception is open');
is(odoo_state('odoo', 'ALTER TABLE public.sale_order DISABLE TRIGGER retailflow_approval_enforce'), 'ok',
	'odoo can disable a managed trigger');
is(su('odoo', "SELECT count(*) FROM retailflow.audit_log WHERE action = 'managed_trigger.disabled'
	AND after->>'trigger' = 'retailflow_approval_enforce' AND db_role = 'odoo'"), '1', 'the disable is in the audit log');
ok(su_poll('odoo', "SELECT count(*) = 1 FROM retailflow.exceptions WHERE kind = 'managed_trigger'
	AND reference = 'sale_order.retailflow_approval_enforce'", 30), 'and opens a managed_trigger exception');
is(odoo_state('odoo', 'ALTER TABLE public.stock_quant DISABLE TRIGGER USER'), 'ok', 'odoo can disable all its triggers at once');
ok(su('odoo', "SELECT count(*) FROM retailflow.audit_log WHERE action = 'managed_trigger.disabled'
	AND after->>'table' = 'stock_quant' AND db_role = 'odoo'") >= 3, 'DISABLE TRIGGER USER is audited per managed trigger');
odoo('odoo', 'ALTER TABLE public.stock_quant ENABLE TRIGGER USER; ALTER TABLE public.sale_order ENABLE TRIGGER retailflow_approval_enforce');
my $att = odoo_state('odoo', 'SELECT * FROM retailflow.attach()');
note("odoo's attach(): $att");
is(dba_state('odoo', 'SELECT * FROM retailflow.attach()'), 'ok', 'a superuser re-attaches the dropped trigger');
ok(su_poll('odoo', "SELECT count(*) = 0 FROM retailflow.exceptions WHERE kind = 'managed_trigger'", 30),
	'the managed_trigger exceptions close once the triggers are back');
ok(su('odoo', 'SELECT count(*) FROM retailflow.audit_log') > $audit0, 'audit rows were appended');
is(su('odoo', 'SELECT ok FROM retailflow.verify_audit_log()'), 't', 'the audit chain is intact');
# an impostor under a managed trigger's name: the control is off, is it still reported?
odoo('odoo', q{CREATE FUNCTION public.rf_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$});
my $amax0 = su('odoo', 'SELECT coalesce(max(id), 0) FROM retailflow.audit_log');
is(odoo_state('odoo', "BEGIN; DROP TRIGGER retailflow_conflict_upd ON public.stock_quant;
	CREATE TRIGGER retailflow_conflict_upd AFTER UPDATE ON public.stock_quant FOR EACH STATEMENT EXECUTE FUNCTION public.rf_noop();
	COMMIT;"), 'ok', 'odoo replaces a managed trigger by a trigger of its own under the same name');
is(su('odoo', "SELECT count(*) FROM retailflow.audit_log WHERE id > $amax0 AND action = 'managed_trigger.dropped'
	AND after->>'trigger' = 'retailflow_conflict_upd'"), '1', 'the drop of the real trigger is audited');
worker_ticks('impostor trigger');
is(su('odoo', "SELECT count(*) FROM retailflow.exceptions WHERE kind = 'managed_trigger'
	AND reference = 'stock_quant.retailflow_conflict_upd'"), '1',
	'after several runs of worker 0, the impostor (not retailflow.conflict_check_trigger()) keeps the managed_trigger exception open')
  or diag("HOLE: as odoo, BEGIN; DROP TRIGGER retailflow_conflict_upd ON stock_quant; CREATE TRIGGER retailflow_conflict_upd "
	  . "AFTER UPDATE ON stock_quant FOR EACH STATEMENT EXECUTE FUNCTION public.rf_noop(); COMMIT; -- the managed_trigger check "
	  . "(and attach(), which answers 'present') only compare the trigger's name and tgenabled, never its function or "
	  . "definition: the drop opened the exception for a moment (record_trigger_change() runs the check inside the "
	  . "dropping transaction), then worker 0's next run closed it as 'disappeared' while the control stays off");
is(dba_state('odoo', 'SELECT * FROM retailflow.attach()'), 'ok', 'a superuser runs attach()');
is(su('odoo', "SELECT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
	WHERE t.tgrelid = 'public.stock_quant'::regclass AND t.tgname = 'retailflow_conflict_upd'"), 'conflict_check_trigger',
	'attach() puts the real trigger back in place of the impostor')
  or diag('HOLE: attach() reports the impostor as "present" and leaves it');
odoo('odoo', 'DROP TRIGGER retailflow_conflict_upd ON public.stock_quant');
dba_state('odoo', 'SELECT * FROM retailflow.attach()');
is(su('odoo', "SELECT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
	WHERE t.tgrelid = 'public.stock_quant'::regclass AND t.tgname = 'retailflow_conflict_upd'"), 'conflict_check_trigger',
	'the real trigger is back (impostor dropped, attach() again)');
evidence_ok('managed trigger tampering');

# The same control, switched off by moving the table away: Odoo's code then
# writes a trigger-less copy under the old name.
my $amax = su('odoo', 'SELECT coalesce(max(id), 0) FROM retailflow.audit_log');
odoo('odoo', 'CREATE SCHEMA evil2; ALTER TABLE public.stock_quant SET SCHEMA evil2;
	CREATE TABLE public.stock_quant (LIKE evil2.stock_quant INCLUDING ALL)');
ok(su_poll('odoo', "SELECT count(*) > 0 FROM retailflow.exceptions WHERE kind = 'managed_trigger'
	AND reference LIKE 'stock_quant.%'", 30), 'a trigger-less stock_quant in place of the moved one opens managed_trigger exceptions');
my $moved = su('odoo', "SELECT count(*) FROM retailflow.audit_log WHERE id > $amax AND action LIKE 'managed_trigger.%'");
ok($moved > 0, 'moving stock_quant (and its managed triggers) out of Odoo\'s schema is in the audit log')
  or diag("HOLE: as odoo, ALTER TABLE public.stock_quant SET SCHEMA evil2 and CREATE TABLE public.stock_quant (LIKE ...) "
	  . "took every managed trigger off Odoo's stock_quant with no audit row and no retailflow.trigger_changed event: "
	  . "rf_managed_trigger_ddl() only looks at AlterTableStmt and trigger RenameStmt, not AlterObjectSchemaStmt or a table "
	  . "RenameStmt; only the managed_trigger check notices, later, that the new table lacks the triggers");
odoo('odoo', 'DROP TABLE public.stock_quant; ALTER TABLE evil2.stock_quant SET SCHEMA public');
ok(su_poll('odoo', "SELECT count(*) = 0 FROM retailflow.exceptions WHERE kind = 'managed_trigger'", 30),
	'stock_quant moved back: the managed_trigger exceptions close');
evidence_ok('managed triggers moved away with their table');

# ---------------------------------------------------------------- 8. search_path of the database and of the role

odoo('odoo', 'ALTER DATABASE odoo SET search_path = public, pg_catalog');
odoo('odoo', 'ALTER ROLE odoo SET search_path = public, pg_catalog');
is(odoo('odoo', 'SHOW search_path'), 'public, pg_catalog', "odoo put public before pg_catalog for everyone's sessions");
# first the one call every DBA makes, alone, so that its evidence is its own
my $st_status = probe('dba', 'odoo', 'SELECT * FROM retailflow.status()');
note("DBA's status() under odoo's search_path: $st_status");
evidence_ok("a DBA's SELECT * FROM retailflow.status() with the search_path odoo set for the database");
dba_calls('odoo', 'search_path');
evidence_ok("a DBA's usual calls with the search_path odoo set for the database");
call_all('odoo', 'dba', 'search_path');
call_all('odoo', 'odoo', 'search_path');
odoo_writes('search_path');
worker_ticks('search_path');
evidence_ok("everything else with search_path = public, pg_catalog set by odoo for the database and its role");
su('postgres', 'ALTER DATABASE odoo RESET search_path; ALTER ROLE odoo RESET search_path');

# ---------------------------------------------------------------- 9. the real Odoo 17 database

my $shared = $ENV{RF_SHARED_ODOO} // '';
SKIP:
{
	skip 'RF_SHARED_ODOO (../shared/odoo) not present: the real Odoo 17 database part is skipped', 12
	  unless $shared ne '' && -f "$shared/odoo17_demo_full.sql.gz";
	rf_load_dump($node, 'demo17', 'odoo17_demo_full.sql.gz') or skip 'the dump did not load', 11;
	is(su('demo17', 'SELECT retailflow.odoo_version()'), '17', 'the real dump is detected as Odoo 17');
	is(su('demo17', "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relowner <> 'odoo'::regrole"), '0',
		'odoo owns every table of the real database');
	odoo('demo17', q{
	CREATE TABLE public.rf_attack_log (id bigserial PRIMARY KEY, tag text NOT NULL, cur name NOT NULL,
	    sess name NOT NULL, cur_super boolean, at timestamptz NOT NULL DEFAULT clock_timestamp());
	GRANT SELECT, INSERT ON public.rf_attack_log TO PUBLIC;
	GRANT USAGE ON SEQUENCE public.rf_attack_log_id_seq TO PUBLIC;
	});
	odoo('demo17', su('odoo', "SELECT pg_get_functiondef('public.rf_pwn(text)'::regprocedure)"));
	plant_views('demo17');
	is(su('demo17', "SELECT count(*) FROM retailflow.status() WHERE status = 'refused'"),
		scalar(grep { $known{$_} } @{ $planted{demo17} }), 'status() reports every viewed table of the real database as refused');
	like(odoo_state('demo17', 'SELECT count(*) FROM retailflow.reservation_conflicts()'), qr/^(42809|42P01)$/,
		'real database: reservation_conflicts() refuses the views');
	call_all('demo17', 'odoo', 'real db views');
	call_all('demo17', 'dba', 'real db views');
	dba_calls('demo17', 'real db views');
	evidence_ok('real Odoo 17 database with views', 'demo17');
	remove_views('demo17');
	call_all('demo17', 'odoo', 'real db');
	dba_calls('demo17', 'real db');
	evidence_ok('real Odoo 17 database', 'demo17');
}

# ---------------------------------------------------------------- 10. crashes

# Odoo alters its own columns in module upgrades; retailflow's C readers
# must not trust a column's type.  Each attempt runs in a transaction that
# never commits, so a crash happens at most once per attempt.
for my $c (
	[ 'stock_move_line.state becomes integer (conflict statement trigger)',
	  "ALTER TABLE public.stock_move_line ALTER COLUMN state TYPE integer USING 7;
	   UPDATE public.stock_move_line SET quantity = quantity WHERE id = $rml;" ],
	[ 'stock_move_line.quantity_product_uom becomes double precision (conflict statement trigger)',
	  "ALTER TABLE public.stock_move_line ALTER COLUMN quantity_product_uom TYPE double precision;
	   UPDATE public.stock_move_line SET quantity = quantity WHERE id = $rml;" ],
	[ 'sale_order.amount_total becomes double precision (approval enforcement on confirmation)',
	  "ALTER TABLE public.sale_order ALTER COLUMN amount_total TYPE double precision;
	   UPDATE public.sale_order SET state = 'draft' WHERE id = (SELECT min(id) FROM public.sale_order);
	   UPDATE public.sale_order SET state = 'sale' WHERE id = (SELECT min(id) FROM public.sale_order);" ])
{
	my ($what, $sql) = @$c;
	my $pos = -s $node->logfile;
	my ($rc, $out, $err) = run_sql('odoo', 'odoo', "BEGIN;\n$sql\nROLLBACK;");
	ok(su_poll('postgres', 'SELECT true', 60), "the server accepts connections after: $what");
	my $log = log_read(\$pos);
	my @crash = crash_lines($log);
	is(scalar(@crash), 0, "no crash when $what (odoo's statement ended with rc=$rc " . (sqlstate($err) || 'ok') . ')')
	  or diag("CRASH: as odoo, BEGIN; $sql ROLLBACK; => " . join(' / ', @crash));
}
is(su('odoo', "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attname) FROM pg_attribute
	WHERE (attrelid, attname) IN (('public.stock_move_line'::regclass, 'state'), ('public.stock_move_line'::regclass, 'quantity_product_uom'),
	                              ('public.sale_order'::regclass, 'amount_total'))"), 'numeric,numeric,character varying',
	'the column types are as Odoo made them (the attempts rolled back)');

# ---------------------------------------------------------------- final

ok(su_poll('odoo', 'SELECT true', 60), 'the server is up');
my $pid_now = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
is($pid_now, $pm_pid, 'the postmaster pid is unchanged');
my @all_crashes = crash_lines(slurp_file($node->logfile));
is(scalar(@all_crashes), 0, 'no backend crashed during the whole run') or diag(join("\n", @all_crashes));
is(su('odoo', "SELECT rolsuper FROM pg_roles WHERE rolname = 'odoo'"), 'f', 'odoo ends the run as it started: not a superuser');
my $summary = su('odoo', "SELECT coalesce(string_agg(DISTINCT tag || ' as ' || cur, ', '), '') FROM public.rf_attack_log");
note("planted functions that ran: $summary");

$node->stop('fast');
done_testing();
