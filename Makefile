# retailflow: PostgreSQL extension for Odoo databases (PGXS build).
#
# Layout: C sources in src/ (one file per concern), the extension's SQL in
# sql/install/ (concatenated in name order into the versioned install script),
# pg_regress tests in sql/ + expected/, isolation specs in test/isolation/,
# TAP tests in test/t/.  `bash test/run` is the entry point that installs
# dependencies, builds, starts throwaway clusters and runs every suite.

EXTENSION    = retailflow
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" retailflow.control)
MODULE_big   = retailflow
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PGFILEDESC   = "retailflow - Odoo omnichannel stock, conflicts, approvals and webhooks"

DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
# the 1.0 install script as released (frozen), and every upgrade script
DATA         = sql/$(EXTENSION)--1.0.sql $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*--*.sql))

# pg_regress: every sql/*.sql is a test; "setup" runs first and builds the
# fixture template databases the other tests clone.
REGRESS_ALL  = $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql))))
REGRESS      = setup $(filter-out setup,$(REGRESS_ALL))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
ISOLATION    = $(sort $(patsubst test/isolation/specs/%.spec,%,$(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation
TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl

SHLIB_LINK   += -lcurl -ljansson
PG_CPPFLAGS  += -I$(srcdir)/src
PG_CFLAGS    += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

EXTRA_CLEAN  = $(DATA_built) tmp_install tmp_run

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install script is the concatenation of sql/install/*.sql in name order.
$(DATA_built): $(sort $(wildcard sql/install/*.sql)) retailflow.control
	@{ echo "-- generated from sql/install/*.sql by make; do not edit"; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	   for f in $(sort $(wildcard sql/install/*.sql)); do echo; echo "-- >>> $$f"; cat $$f; done; } > $@

all: $(DATA_built)

# Upgrade scripts are generated from the install script and the hand-written
# parts in sql/upgrade/ (see sql/upgrade/build.py); the result is committed,
# and test/t/003_upgrade.pl fails when it is not current.
upgrade-scripts:
	python3 sql/upgrade/build.py 1.0 1.1 > sql/$(EXTENSION)--1.0--1.1.sql
.PHONY: upgrade-scripts
