# rf_tier: a server-wide module of retailflow's Odoo tier (never installed in a
# database): loaded with --load, it makes every TransactionCase test end the
# way a commit would, by firing the deferred constraint triggers before the
# test's savepoint is rolled back.
{
    'name': 'retailflow test tier hooks',
    'version': '1.0',
    'license': 'LGPL-3',
    'installable': False,
}
