# RfTest.pm: helpers shared by retailflow's TAP tests: a node with retailflow
# preloaded, and an Odoo-shaped database loaded from test/fixtures/ or a real
# dump, as Odoo runs: owned and loaded by the ordinary role "odoo" (LOGIN
# CREATEDB, not a superuser); a superuser installs the extension and grants
# README's group role.  Odoo's writes connect as odoo (rf_odoo_psql); an
# administrator role "integrator" (member of retailflow_admin) manages endpoints
# and rules (rf_admin_psql); policy settings are the superuser's (ALTER DATABASE).
package RfTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(rf_node rf_odoo_db rf_src rf_load_dump rf_odoo_role rf_odoo_psql rf_empty_db
	rf_admin_role rf_admin_psql rf_psql_as);

# Directory holding sql/, test/ (test/run passes it as RF_SRC).
sub rf_src { return $ENV{RF_SRC} // '.'; }

# rf_node(name, %opts): a new node with retailflow in shared_preload_libraries.
sub rf_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{allows_streaming} // 0, extra => [ '--locale=C', '-E', 'UTF8' ]);
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'retailflow'\n" . ($opts{conf} // ''));
	return $node;
}

# rf_odoo_role(node): creates Odoo's role "odoo" (LOGIN CREATEDB, not a superuser) once.
sub rf_odoo_role
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo')
		THEN CREATE ROLE odoo LOGIN CREATEDB; END IF; END$$});
	return;
}

# README's install, as a superuser: the extension, then Odoo's role gets retailflow_odoo.
sub rf_install
{
	my ($node, $db) = @_;
	$node->safe_psql($db, 'CREATE EXTENSION retailflow; GRANT retailflow_odoo TO odoo;');
	return;
}

# rf_odoo_psql(node, db, sql, %params): safe_psql as Odoo's role.
sub rf_odoo_psql
{
	my ($node, $db, $sql, %params) = @_;
	return $node->safe_psql($db, $sql, extra_params => [ '-U', 'odoo' ], %params);
}

# rf_admin_role(node): creates the administrator "integrator" (LOGIN) once and grants it retailflow_admin.
sub rf_admin_role
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'integrator')
		THEN CREATE ROLE integrator LOGIN; END IF; END$$; GRANT retailflow_admin TO integrator;});
	return;
}

# rf_admin_psql(node, db, sql, %params): safe_psql as the administrator (rf_admin_role first).
sub rf_admin_psql
{
	my ($node, $db, $sql, %params) = @_;
	return $node->safe_psql($db, $sql, extra_params => [ '-U', 'integrator' ], %params);
}

# rf_psql_as(node, role, db, sql): psql as role, for statements expected to fail: (ret, stdout, stderr).
sub rf_psql_as
{
	my ($node, $role, $db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, $sql, extra_params => [ '-U', $role ]);
	return ($ret, $out, $err);
}

# rf_empty_db(node, db): a database without Odoo tables owned by Odoo's role, with the extension.
sub rf_empty_db
{
	my ($node, $db) = @_;
	rf_odoo_role($node);
	$node->safe_psql('postgres', "CREATE DATABASE $db OWNER odoo");
	rf_install($node, $db);
	return;
}

# rf_odoo_db(node, db, scale args): Odoo 17 schema + generated network, created
# and loaded by Odoo's role, then the extension.
sub rf_odoo_db
{
	my ($node, $db, $gen) = @_;
	my $src = rf_src();
	rf_odoo_role($node);
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER odoo");
	for my $f ('odoo17_schema.sql', 'generate.sql', 'helpers.sql')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', 'odoo', '-d', $node->connstr($db),
				'-c', 'SET client_min_messages = warning', '-f', "$src/test/fixtures/$f" ], "load $f into $db as odoo");
	}
	rf_odoo_psql($node, $db, "SELECT rf_fixture_generate($gen)") if $gen;
	rf_install($node, $db);
	$node->safe_psql($db, 'ANALYZE');
	return;
}

# rf_load_dump(node, db, file): loads a gzip'd pg_dump of ../shared/odoo
# (RF_SHARED_ODOO) into a new database, as Odoo's role, and installs retailflow.
sub rf_load_dump
{
	my ($node, $db, $file) = @_;
	my $shared = $ENV{RF_SHARED_ODOO} // '';
	rf_odoo_role($node);
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8' OWNER odoo");
	my $rc = system("zcat '$shared/$file' | psql -X -q -v ON_ERROR_STOP=1 -U odoo -d '"
		  . $node->connstr($db) . "' > /dev/null 2>&1");
	Test::More::is($rc, 0, "loaded $file as odoo");
	return 0 if $rc;
	rf_install($node, $db);
	return 1;
}

1;
