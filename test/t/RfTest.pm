# RfTest.pm: helpers shared by retailflow's TAP tests: a node with retailflow
# preloaded, and an Odoo-shaped database loaded from test/fixtures/.
package RfTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(rf_node rf_odoo_db rf_src rf_load_dump rf_odoo_role rf_odoo_db_as rf_load_dump_as);

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

# rf_odoo_db(node, db, scale args): Odoo 17 schema + generated network + extension.
sub rf_odoo_db
{
	my ($node, $db, $gen) = @_;
	my $src = rf_src();
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'");
	for my $f ('odoo17_schema.sql', 'generate.sql', 'helpers.sql')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
				'-c', 'SET client_min_messages = warning', '-f', "$src/test/fixtures/$f" ], "load $f into $db");
	}
	$node->safe_psql($db, "SELECT rf_fixture_generate($gen)") if $gen;
	$node->safe_psql($db, 'CREATE EXTENSION retailflow; ANALYZE;');
	return;
}

# rf_load_dump(node, db, file): loads a gzip'd pg_dump of ../shared/odoo
# (RF_SHARED_ODOO) into a new database and installs retailflow there.
sub rf_load_dump
{
	my ($node, $db, $file) = @_;
	my $shared = $ENV{RF_SHARED_ODOO} // '';
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'");
	my $rc = system("zcat '$shared/$file' | psql -X -q -v ON_ERROR_STOP=1 -d '"
		  . $node->connstr($db) . "' > /dev/null 2>&1");
	Test::More::is($rc, 0, "loaded $file");
	$node->safe_psql($db, 'CREATE EXTENSION retailflow');
	return;
}

# rf_odoo_role(node, role): the deployment model's Odoo role: LOGIN CREATEDB,
# not a superuser (docs/security.md).
sub rf_odoo_role
{
	my ($node, $role) = @_;
	$node->safe_psql('postgres', "CREATE ROLE $role LOGIN CREATEDB");
	return;
}

# rf_odoo_db_as(node, db, role, scale args): like rf_odoo_db, but the
# database is owned by role and the fixture is loaded BY that role (so it
# owns every Odoo table); then a superuser runs README's install: CREATE
# EXTENSION and GRANT retailflow_odoo TO role, nothing else.
sub rf_odoo_db_as
{
	my ($node, $db, $role, $gen) = @_;
	my $src = rf_src();
	$node->safe_psql('postgres', "CREATE DATABASE $db OWNER $role TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'");
	for my $f ('odoo17_schema.sql', 'generate.sql', 'helpers.sql')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', $role, '-d', $node->connstr($db),
				'-c', 'SET client_min_messages = warning', '-f', "$src/test/fixtures/$f" ], "load $f into $db as $role");
	}
	$node->safe_psql($db, "SELECT rf_fixture_generate($gen)", extra_params => [ '-U', $role ]) if $gen;
	$node->safe_psql($db, "ANALYZE", extra_params => [ '-U', $role ]);
	$node->safe_psql($db, "CREATE EXTENSION retailflow; GRANT retailflow_odoo TO $role;");
	return;
}

# rf_load_dump_as(node, db, file, role): rf_load_dump with the database owned
# by role and the dump loaded by role; returns false if the load failed.
sub rf_load_dump_as
{
	my ($node, $db, $file, $role) = @_;
	my $shared = $ENV{RF_SHARED_ODOO} // '';
	$node->safe_psql('postgres', "CREATE DATABASE $db OWNER $role TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'");
	my $rc = system("zcat '$shared/$file' | psql -X -q -v ON_ERROR_STOP=1 -U $role -d \""
		  . $node->connstr($db) . "\" > /dev/null 2>&1");
	Test::More::is($rc, 0, "loaded $file as $role");
	return 0 if $rc;
	$node->safe_psql($db, "CREATE EXTENSION retailflow; GRANT retailflow_odoo TO $role;");
	return 1;
}

1;
