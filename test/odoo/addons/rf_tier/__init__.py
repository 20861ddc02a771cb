"""retailflow's Odoo tier: judge each test's transaction as COMMIT would.

Odoo's TransactionCase runs every test inside a savepoint that is rolled
back, so nothing a test does is ever committed, and retailflow's commit-time
conflict judgment (a deferred constraint trigger) would never run.  This
server-wide module adds a cleanup to every TransactionCase test that runs
just before the savepoint is rolled back: SET CONSTRAINTS ALL IMMEDIATE fires
the deferred triggers on what the test wrote, exactly as COMMIT would; in
block mode a broken invariant becomes the test's error.  It changes nothing
else.  Like Odoo's commit it first flushes the ORM (a test whose pending
writes cannot be flushed is skipped: a rolled-back test may leave such
writes, and they are not retailflow's to judge).
"""
import atexit
import logging
import os
import sys

import psycopg2

from odoo.tests import common

_logger = logging.getLogger(__name__)
_judged = {'tests': 0, 'skipped': 0}

_orig_setup = common.TransactionCase.setUp


def _known():
    """Tests whose end state block mode refuses by design (test/odoo/known_refusals.txt), by name."""
    path = os.environ.get('RF_TIER_KNOWN')
    names = set()
    if path and os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line:
                    names.add(line.split()[0])
    return names


_KNOWN = _known()


def _judge(case):
    """Flushes the ORM as COMMIT would, then fires the deferred constraint triggers."""
    name = '%s.%s' % (type(case).__name__, case._testMethodName)
    try:
        case.env.flush_all()
    except Exception:  # noqa: BLE001 - what the test left unflushable is the test's business, not retailflow's
        _judged['skipped'] += 1
        return
    try:
        case.cr.execute('SET CONSTRAINTS ALL IMMEDIATE')
        case.cr.execute('SET CONSTRAINTS ALL DEFERRED')
        _judged['tests'] += 1
    except psycopg2.errors.InFailedSqlTransaction:
        _judged['skipped'] += 1   # the test itself already failed the transaction
    except psycopg2.errors.CheckViolation as e:
        _judged['tests'] += 1
        if name not in _KNOWN:
            raise
        # refused by design: recorded, and the test's savepoint rollback recovers the transaction
        print('rf_tier: known refusal %s: %s' % (name, str(e).splitlines()[0]), file=sys.stderr, flush=True)


def _setup(self):
    _orig_setup(self)
    # registered last, so it runs first: before ROLLBACK TO SAVEPOINT
    self.addCleanup(_judge, self)


common.TransactionCase.setUp = _setup


@atexit.register
def _report():
    print('rf_tier: judged %d test transactions at their end as COMMIT would (%d skipped: transaction already failed or not flushable)'
          % (_judged['tests'], _judged['skipped']), file=sys.stderr, flush=True)
    _logger.info('rf_tier: judged %d test transactions at their end as COMMIT would (%d skipped: transaction already failed or not flushable)',
                 _judged['tests'], _judged['skipped'])
