# test/odoo/flows.py: the live ORM flows of the Odoo tier.  test/odoo/run
# feeds this file to "odoo-bin shell -d rf_live -r odoo ..." with RF_FLOW set:
# env is bound to Odoo's superuser, on a database where retailflow was
# installed as README.md says, connected as Odoo's ordinary role.  Every
# transaction goes through Odoo's own retrying() (flush, serialization
# failures retried, commit), as an HTTP request does.  It prints
# "ok - ..." / "not ok - ..." lines with "#" details; the flows share ids
# through the JSON file RF_STATE.
#   setup       users (a clerk who creates, a manager who approves), a second
#               warehouse, products, customers, a vendor, sales teams, stock
#   channelN    channel N (a sales team) confirms orders in its own session
#   stockflows  receipts (full, partial with backorder, pending), reservations,
#               partial and full deliveries, an order shipped from warehouse 2
#   fidelity    product_quantities() and available_qty() against Odoo's ORM
#   block       conflict_action = block: the policy is the DBA's; committed
#               Odoo flows go through; a direct invariant-breaking write is
#               refused at COMMIT with 23514
#   approvals   approval_enforcement = block with matching rules: each path is
#               refused naming the missing approvals, then approved and retried
# Odoo 17 and 18 (storable products differ); standard library + Odoo only.
import json
import os
import random
import traceback

from odoo import Command
from odoo.release import version_info
from odoo.service.model import retrying
from odoo.tools import float_compare

FLOW = os.environ["RF_FLOW"]
STATE = os.environ["RF_STATE"]
LIVE = os.environ["RF_LIVE"]
V = version_info[0]
STORABLE_DOMAIN = [("is_storable", "=", True)] if V >= 18 else [("detailed_type", "=", "product")]
STORABLE_VALS = {"type": "consu", "is_storable": True} if V >= 18 else {"detailed_type": "product"}
QTY_FIELDS = ["qty_available", "free_qty", "virtual_available", "incoming_qty", "outgoing_qty"]
WIZARDS = {"stock.backorder.confirmation": "process", "stock.inventory.adjustment.name": "action_apply"}


def say(line):
    print(line, flush=True)


def check(cond, name, details=()):
    """One test line, with up to 40 detail lines."""
    say(("ok" if cond else "not ok") + " - " + name)
    for d in list(details)[:40]:
        for part in str(d).splitlines():
            say("#   " + part)
    return bool(cond)


def pg_error(exc):
    """The psycopg2 error behind an Odoo exception (or the exception itself), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "pgcode", None):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def describe(exc):
    """SQLSTATE, message, detail and hint of an error, or its Python form."""
    pe = pg_error(exc)
    if pe is None:
        return "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    d = pe.diag
    parts = ["SQLSTATE %s: %s" % (pe.pgcode, d.message_primary)]
    if d.message_detail:
        parts.append("DETAIL: " + d.message_detail)
    if d.message_hint:
        parts.append("HINT: " + d.message_hint)
    return " | ".join(parts)


def run(env_, fn):
    """One Odoo transaction through retrying(); returns (result, None) or (None, exception)."""
    try:
        return retrying(fn, env_), None
    except Exception as exc:  # noqa: BLE001 - every failure is reported
        try:
            env_.cr.rollback()
        except Exception:  # noqa: BLE001
            pass
        env_.reset()
        return None, exc


def load():
    with open(STATE) as f:
        return json.load(f)


def save(state):
    with open(STATE, "w") as f:
        json.dump(state, f, indent=1)


def follow(env_, res):
    """Completes the wizards a button returns, as a user clicking their default button."""
    for _ in range(5):
        if not (isinstance(res, dict) and res.get("res_model") in WIZARDS):
            return res
        wiz = env_[res["res_model"]].with_context(**res.get("context", {})).create({})
        res = getattr(wiz, WIZARDS[res["res_model"]])()
    return res


def validate(env_, picking, quantities=None):
    """Sets each move's quantity (all of its demand by default) as picked and validates the picking."""
    picking = env_["stock.picking"].browse(picking.id)
    for move in picking.move_ids:
        qty = move.product_uom_qty if quantities is None else quantities.get(move.product_id.id, move.product_uom_qty)
        move.quantity = qty
        move.picked = True
    return follow(env_, picking.button_validate())


def uenv(uid):
    return env(user=uid)


# ---------------------------------------------------------------------------


def flow_setup():
    company = env.company
    admin = env.ref("base.user_admin")
    ref = lambda x: env.ref(x).id  # noqa: E731
    users = env["res.users"].with_context(no_reset_password=True)
    clerk = users.create({
        "name": "RF Clerk", "login": "rf_clerk", "email": "rf_clerk@example.com", "company_id": company.id, "company_ids": [Command.set([company.id])],
        "groups_id": [Command.set([ref("base.group_user"), ref("sales_team.group_sale_salesman_all_leads"),
                                   ref("stock.group_stock_manager"), ref("purchase.group_purchase_user"),
                                   ref("account.group_account_invoice")])]})
    manager = users.create({
        "name": "RF Manager", "login": "rf_manager", "email": "rf_manager@example.com", "company_id": company.id, "company_ids": [Command.set([company.id])],
        "groups_id": [Command.set([ref("base.group_user"), ref("sales_team.group_sale_manager"),
                                   ref("stock.group_stock_manager"), ref("purchase.group_purchase_manager"),
                                   ref("account.group_account_manager")])]})
    if not admin.email:
        admin.email = "admin@example.com"
    wh1 = env["stock.warehouse"].search([("company_id", "=", company.id)], limit=1)
    wh2 = env["stock.warehouse"].create({"name": "RF Outlet", "code": "RFO", "company_id": company.id})
    products = {}
    for name, price, cost in [("RF Tee", 25, 10), ("RF Mug", 12, 4), ("RF Cap", 18, 6), ("RF Bag", 60, 25),
                              ("RF Lamp", 45, 20), ("RF Pen", 3, 1), ("RF Ghost", 30, 12)]:
        products[name] = env["product.product"].create(
            {"name": name, "list_price": price, "standard_price": cost, **STORABLE_VALS}).id
    customers = [env["res.partner"].create({"name": "RF Customer %s" % c}).id for c in "ABC"]
    vendor = env["res.partner"].create({"name": "RF Vendor"}).id
    teams = [env["crm.team"].create({"name": n, "company_id": company.id}).id
             for n in ("RF Web", "RF Store", "RF Marketplace")]
    env.cr.commit()
    opening = [(wh1, "RF Tee", 20), (wh1, "RF Mug", 10), (wh1, "RF Cap", 4), (wh1, "RF Bag", 2), (wh1, "RF Pen", 50),
               (wh2, "RF Tee", 5), (wh2, "RF Mug", 3), (wh2, "RF Pen", 10)]
    adm = uenv(admin.id)

    def apply_opening():
        for wh, name, qty in opening:
            adm["stock.quant"].with_context(inventory_mode=True).create({
                "product_id": products[name], "location_id": wh.lot_stock_id.id,
                "inventory_quantity": qty}).action_apply_inventory()
    _, err = run(adm, apply_opening)
    state = {"clerk": clerk.id, "manager": manager.id, "admin": admin.id, "wh1": wh1.id, "wh2": wh2.id,
             "products": products, "customers": customers, "vendor": vendor, "teams": teams}
    save(state)
    check(err is None, "flows setup: users, warehouse RF Outlet, 7 products, opening stock in 2 warehouses",
          [describe(err)] if err else [])


def flow_channel():
    i = int(os.environ["RF_CHANNEL"])
    st = load()
    cl = uenv(st["clerk"])
    rnd = random.Random(1000 + i)
    team = st["teams"][i]
    names = ["RF Tee", "RF Mug", "RF Cap", "RF Bag", "RF Pen"]
    confirmed, unconfirmed, errors = [], [], []

    def order_vals():
        lines = rnd.sample(names, rnd.randint(1, 2))
        return {"partner_id": rnd.choice(st["customers"]), "team_id": team, "warehouse_id": st["wh1"],
                "order_line": [Command.create({"product_id": st["products"][n], "product_uom_qty": rnd.randint(1, 3)})
                               for n in lines]}

    for k in range(4):
        vals = order_vals()

        def confirm(vals=vals):
            so = cl["sale.order"].create(vals)
            so.action_confirm()
            return so.id
        sid, err = run(cl, confirm)
        if err:
            errors.append("order %d: %s" % (k, describe(err)))
        else:
            confirmed.append(sid)
    # a quotation left as is and one cancelled: neither may send sale.order.confirmed
    for cancel in (False, True):
        vals = order_vals()

        def quote(vals=vals, cancel=cancel):
            so = cl["sale.order"].create(vals)
            if cancel:
                so._action_cancel()
            return so.id
        sid, err = run(cl, quote)
        if err:
            errors.append("quotation: %s" % describe(err))
        else:
            unconfirmed.append(sid)
    with open(os.path.join(LIVE, "channel%d.json" % i), "w") as f:
        json.dump({"channel": env["crm.team"].browse(team).name, "confirmed": confirmed,
                   "unconfirmed": unconfirmed}, f)
    check(not errors and len(confirmed) == 4,
          "flows a: channel %d (%s) confirmed %d orders in its own session" % (i, env["crm.team"].browse(team).name,
                                                                              len(confirmed)), errors)


def flow_stockflows():
    st = load()
    cl = uenv(st["clerk"])
    P = st["products"]
    wh1, wh2 = env["stock.warehouse"].browse(st["wh1"]), env["stock.warehouse"].browse(st["wh2"])
    steps = []

    def step(name, fn):
        res, err = run(cl, fn)
        steps.append((name, err))
        return res

    def po(lines, wh):
        o = cl["purchase.order"].create({
            "partner_id": st["vendor"], "picking_type_id": wh.in_type_id.id,
            "order_line": [Command.create({"product_id": P[n], "product_qty": q, "price_unit": 5}) for n, q in lines]})
        o.button_confirm()
        return o.id

    def lamp_order():
        o = cl["sale.order"].create({"partner_id": st["customers"][2], "warehouse_id": wh1.id, "order_line": [
            Command.create({"product_id": P["RF Lamp"], "product_uom_qty": 4})]})
        o.action_confirm()
        return o.id
    lamp_so = step("confirm an order for 4 Lamp (none in stock: its delivery waits)", lamp_order)
    if lamp_so and cl["sale.order"].browse(lamp_so).picking_ids[:1].state != "confirmed":
        steps.append(("the Lamp delivery waits", RuntimeError("its state is %s" % (
            cl["sale.order"].browse(lamp_so).picking_ids[:1].state))))
    po1 = step("purchase 8 Lamp + 6 Bag for WH", lambda: po([("RF Lamp", 8), ("RF Bag", 6)], wh1))
    po2 = step("purchase 10 Cap for RF Outlet", lambda: po([("RF Cap", 10)], wh2))
    step("purchase 5 Mug for WH (receipt left pending)", lambda: po([("RF Mug", 5)], wh1))
    if po1:
        step("receive all of the first purchase",
             lambda: validate(cl, cl["purchase.order"].browse(po1).picking_ids[:1]))
    if po2:
        step("receive 6 of 10 Cap, backorder the rest",
             lambda: validate(cl, cl["purchase.order"].browse(po2).picking_ids[:1], {P["RF Cap"]: 6}))
    so_ids = [lamp_so] if lamp_so else []
    for i in range(3):
        p = os.path.join(LIVE, "channel%d.json" % i)
        if os.path.exists(p):
            with open(p) as f:
                so_ids += json.load(f)["confirmed"]
    outs = lambda: cl["sale.order"].browse(so_ids).picking_ids.filtered(  # noqa: E731
        lambda p: p.picking_type_code == "outgoing")
    def reserve():
        # the receipt reserved the waiting Lamp delivery already (Odoo assigns waiting moves of the products it
        # receives); action_assign() for whatever still waits (partially available ones are "assigned" in 17)
        lamp = cl["sale.order"].browse(lamp_so).picking_ids[:1]
        if lamp.state != "assigned":
            raise RuntimeError("the Lamp delivery is %s after its stock was received" % lamp.state)
        waiting = outs().filtered(lambda p: p.state in ("confirmed", "waiting") or any(
            m.state in ("confirmed", "partially_available") for m in p.move_ids))
        if waiting:
            waiting.action_assign()
    if lamp_so:
        step("the receipt reserved the waiting Lamp delivery; reserve what still waits", reserve)

    def partial():
        pick = outs().filtered(lambda p: p.state == "assigned" and any(m.product_uom_qty >= 2 for m in p.move_ids))[:1]
        if not pick:
            raise RuntimeError("no ready delivery with a line of 2 or more")
        move = pick.move_ids.filtered(lambda m: m.product_uom_qty >= 2)[:1]
        qtys = {m.product_id.id: (1 if m == move else m.product_uom_qty) for m in pick.move_ids}
        return validate(cl, pick, qtys)
    step("deliver one unit less than ordered, backorder the rest", partial)

    def full():
        pick = outs().filtered(lambda p: p.state == "assigned")[:1]
        if not pick:
            raise RuntimeError("no ready delivery")
        return validate(cl, pick)
    step("deliver a whole order", full)

    def outlet_order():
        so = cl["sale.order"].create({
            "partner_id": st["customers"][0], "warehouse_id": wh2.id,
            "order_line": [Command.create({"product_id": P["RF Tee"], "product_uom_qty": 2}),
                           Command.create({"product_id": P["RF Cap"], "product_uom_qty": 1})]})
        so.action_confirm()
        return so.id
    step("confirm an order shipped from RF Outlet (reserved there)", outlet_order)
    bad = ["%s: %s" % (n, describe(e)) for n, e in steps if e]
    check(not bad, "flows b: %d committed stock flows (receipts, backorders, reservations, partial and full deliveries)"
          % len(steps), bad)


def flow_fidelity():
    tag = os.environ.get("RF_TAG", "")
    products = env["product.product"].search(STORABLE_DOMAIN)
    whs = env["stock.warehouse"].search([])
    env.cr.execute("SELECT product_id, warehouse_id, " + ", ".join(QTY_FIELDS) +
                   " FROM retailflow.product_quantities()")
    rf = {(r[0], r[1]): r[2:] for r in env.cr.fetchall()}
    want = {(p.id, w.id) for p in products for w in whs}
    details, nonzero = [], dict.fromkeys(QTY_FIELDS, 0)
    missing, extra = sorted(want - rf.keys()), sorted(rf.keys() - want)
    if missing:
        details.append("pairs Odoo has and product_quantities() lacks: %s" % missing[:10])
    if extra:
        details.append("pairs product_quantities() returns that are not storable x active: %s" % extra[:10])
    for w in whs:
        for p in products.with_context(warehouse=w.id):
            got = rf.get((p.id, w.id))
            if got is None:
                continue
            for f, rv in zip(QTY_FIELDS, got):
                ov = p[f]
                if float_compare(ov, 0, precision_rounding=p.uom_id.rounding):
                    nonzero[f] += 1
                if float_compare(ov, rv, precision_rounding=p.uom_id.rounding) != 0:
                    details.append("%s (product %d) in %s: %s Odoo %r, retailflow %r" % (
                        p.display_name, p.id, w.name, f, ov, rv))
    trivial = [f for f, n in nonzero.items() if n == 0]
    if trivial:
        details.append("no product has a non-zero %s: the comparison would be trivial" % ", ".join(trivial))
    check(not details, "flows b (%s): product_quantities() equals Odoo's %s for %d storable products x %d warehouses"
          % (tag, ", ".join(QTY_FIELDS), len(products), len(whs)),
          details + ["non-zero values compared: %s" % nonzero])
    details, n, nz = [], 0, 0
    Quant = env["stock.quant"]
    for w in whs:
        loc = w.lot_stock_id
        for p in products:
            ov = Quant._get_available_quantity(p, loc)
            env.cr.execute("SELECT retailflow.available_qty(%s, %s)", (p.id, loc.id))
            rv = env.cr.fetchone()[0]
            n += 1
            nz += 1 if float_compare(ov, 0, precision_rounding=p.uom_id.rounding) else 0
            if float_compare(ov, rv, precision_rounding=p.uom_id.rounding) != 0:
                details.append("%s (product %d) at %s: Odoo %r, retailflow %r" % (
                    p.display_name, p.id, loc.complete_name, ov, rv))
    check(not details and nz > 0, "flows b (%s): available_qty() equals stock.quant._get_available_quantity() for %d "
          "product x stock location pairs (%d non-zero)" % (tag, n, nz), details)
    env.cr.rollback()


def flow_block():
    st = load()
    cl = uenv(st["clerk"])
    P = st["products"]
    wh1 = env["stock.warehouse"].browse(st["wh1"])
    env.cr.execute("SELECT current_setting('retailflow.conflict_action'), current_user::text, current_database()::text")
    action, role, db = env.cr.fetchone()
    env.cr.rollback()
    # the policy is the DBA's: Odoo's role cannot loosen it
    tried = []
    for stmt in ("SET retailflow.conflict_action = log", "SET retailflow.approval_enforcement = off",
                 'ALTER DATABASE "%s" SET retailflow.conflict_action = off' % db,
                 "ALTER ROLE CURRENT_USER SET retailflow.conflict_action = off"):
        try:
            with env.cr.savepoint(flush=False):
                env.cr.execute(stmt)
            tried.append((stmt, None))
        except Exception as exc:  # noqa: BLE001
            tried.append((stmt, exc))
    env.cr.rollback()
    check(action == "block" and role == "odoo" and all(e is not None and getattr(pg_error(e), "pgcode", "") == "42501"
                                                       for _, e in tried),
          "flows c: conflict_action is block for Odoo's role, which cannot change it (42501)",
          ["current_setting = %s as %s" % (action, role)] +
          ["%s -> %s" % (s, describe(e) if e else "ACCEPTED") for s, e in tried])

    steps = []

    def step(name, fn):
        res, err = run(cl, fn)
        steps.append((name, err))
        return res

    def so(lines):
        o = cl["sale.order"].create({"partner_id": st["customers"][1], "warehouse_id": wh1.id,
                                     "order_line": [Command.create({"product_id": P[n], "product_uom_qty": q})
                                                    for n, q in lines]})
        o.action_confirm()
        return o.id

    def delivery(so_id):
        return cl["sale.order"].browse(so_id).picking_ids.filtered(lambda p: p.picking_type_code == "outgoing")[:1]

    s1 = step("confirm an order for 2 Tee (reserves)", lambda: so([("RF Tee", 2)]))
    s2 = step("confirm an order for 4 Mug", lambda: so([("RF Mug", 4)]))
    if s2:
        step("unreserve its delivery", lambda: delivery(s2).do_unreserve())
        step("reserve it again", lambda: delivery(s2).action_assign())
    s3 = step("confirm an order for 2 Cap", lambda: so([("RF Cap", 2)]))
    if s3:
        def force():
            pick = delivery(s3)
            on_hand = cl["product.product"].browse(P["RF Cap"]).with_context(warehouse=wh1.id).qty_available
            return validate(cl, pick, {P["RF Cap"]: on_hand + 3})
        step("force 3 more Cap than on hand on the move and validate", force)
    s4 = step("confirm an order for 3 Ghost (none in stock)", lambda: so([("RF Ghost", 3)]))
    if s4:
        step("validate its delivery into negative stock", lambda: validate(cl, delivery(s4)))

        def ret_ghost():
            pick = delivery(s4)
            wiz = cl["stock.return.picking"].with_context(active_id=pick.id, active_ids=pick.ids,
                                                          active_model="stock.picking").create({})
            for line in wiz.product_return_moves:
                line.quantity = line.move_id.quantity
            res = wiz.create_returns() if hasattr(wiz, "create_returns") else wiz.action_create_returns()
            return validate(cl, cl["stock.picking"].browse(res["res_id"]))
        step("return the Ghost delivery and validate the return", ret_ghost)
    if s1:
        step("deliver the Tee order", lambda: validate(cl, delivery(s1)))

        def ret_tee():
            pick = delivery(s1)
            wiz = cl["stock.return.picking"].with_context(active_id=pick.id, active_ids=pick.ids,
                                                          active_model="stock.picking").create({})
            for line in wiz.product_return_moves:
                line.quantity = 1
            res = wiz.create_returns() if hasattr(wiz, "create_returns") else wiz.action_create_returns()
            return validate(cl, cl["stock.picking"].browse(res["res_id"]))
        step("return 1 Tee of it", ret_tee)
    bad = ["%s: %s" % (n, describe(e)) for n, e in steps if e]
    check(not bad, "flows c: %d committed Odoo flows go through in block mode (confirm, "
          "unreserve/reserve, forced quantity, negative stock, returns)" % len(steps),
          bad + ["%s: committed" % n for n, e in steps if not e])

    # a direct write that breaks an invariant: refused at COMMIT
    quant = env["stock.quant"].search([("product_id", "=", P["RF Pen"]), ("location_id", "=", wh1.lot_stock_id.id)],
                                      limit=1)
    env.cr.execute("SELECT reserved_quantity FROM stock_quant WHERE id = %s", (quant.id,))
    before = env.cr.fetchone()[0]
    env.cr.rollback()
    stmt_err = commit_err = None
    try:
        env.cr.execute("UPDATE stock_quant SET reserved_quantity = reserved_quantity + 5 WHERE id = %s", (quant.id,))
    except Exception as exc:  # noqa: BLE001
        stmt_err = exc
    if stmt_err is None:
        try:
            env.cr.commit()
        except Exception as exc:  # noqa: BLE001
            commit_err = exc
    env.cr.rollback()
    env.cr.execute("SELECT reserved_quantity FROM stock_quant WHERE id = %s", (quant.id,))
    after = env.cr.fetchone()[0]
    env.cr.rollback()
    code = getattr(pg_error(commit_err), "pgcode", None) if commit_err else None
    check(stmt_err is None and code == "23514" and after == before,
          "flows c: UPDATE stock_quant SET reserved_quantity = reserved_quantity + 5 (no move line) by Odoo's role "
          "is refused at COMMIT with 23514",
          ["statement: %s" % (describe(stmt_err) if stmt_err else "accepted (judged at commit)"),
           "commit: %s" % (describe(commit_err) if commit_err else "COMMITTED"),
           "reserved_quantity of quant %d: %s before, %s after" % (quant.id, before, after)])


def flow_approvals():
    st = load()
    clerk, manager = st["clerk"], st["manager"]
    cl = uenv(clerk)
    P = st["products"]
    wh1, wh2 = env["stock.warehouse"].browse(st["wh1"]), env["stock.warehouse"].browse(st["wh2"])
    env.cr.execute("SELECT current_setting('retailflow.approval_enforcement')")
    mode = env.cr.fetchone()[0]
    env.cr.rollback()
    say("# approval_enforcement = %s for Odoo's role" % mode)

    def mark(path, phase):
        env.cr.execute("SET application_name = %s", ("rf:%s:%s" % (path, phase),))
        env.cr.commit()

    def request_and_approve(doc, ids, notes):
        """request_approvals() for each record, then approve(): first by the clerk (the document's creator and
        requester: refused), then by the manager; each record in one transaction through retrying(), as Odoo
        would call them.  Returns the number of requests approved and their reasons."""
        n, reasons = 0, {}
        for rid in ids:
            def decide(rid=rid):
                lines = []
                env.cr.execute("SELECT id, reason FROM retailflow.request_approvals(%s, %s, %s)", (doc, rid, clerk))
                reqs = env.cr.fetchall()
                lines.append("request_approvals(%r, %d): %s" % (doc, rid, reqs or "no request (nothing matches)"))
                for req_id, _reason in reqs:
                    try:
                        with env.cr.savepoint(flush=False):
                            env.cr.execute("SELECT state FROM retailflow.approve(%s, %s)", (req_id, clerk))
                        lines.append("approve(%d) by the clerk: ACCEPTED (segregation of duties not enforced)" % req_id)
                    except Exception as exc:  # noqa: BLE001
                        if getattr(pg_error(exc), "pgcode", None) == "40001":
                            raise
                        lines.append("approve(%d) by the clerk: %s" % (req_id, describe(exc)))
                    env.cr.execute("SELECT state FROM retailflow.approve(%s, %s)", (req_id, manager))
                    lines.append("approve(%d) by the manager: %s" % (req_id, env.cr.fetchone()[0]))
                return lines, [r[1] for r in reqs]
            res, err = run(env, decide)
            if err:
                notes.append("requesting/approving %s %d: %s" % (doc, rid, describe(err)))
            else:
                notes.extend(res[0])
                n += len(res[1])
                reasons[rid] = res[1]
        return n, reasons

    def refused_properly(err, reasons, notes):
        """Refused with 55000 for one of the documents, the detail naming every approval request_approvals() then
        created for that document (by its reason); reasons: {record id: [reasons]}."""
        pe = pg_error(err)
        if pe is None or pe.pgcode != "55000":
            return False
        detail, msg = pe.diag.message_detail or "", pe.diag.message_primary or ""
        refused_id = next((rid for rid in reasons if (" %d cannot be " % rid) in msg), None)
        others = [r for rid, rs in reasons.items() if rid != refused_id for r in rs if r not in detail]
        if others:
            notes.append("not named by the refusal (it stops at the first document): %s" % others)
        return ("approvals are missing" in msg and detail.startswith("Missing approvals: ") and refused_id is not None
                and bool(reasons[refused_id]) and all(r in detail for r in reasons[refused_id]))

    def path(name, label, doc, prepare, act, verify):
        notes = []
        mark(name, "prepare")
        ids, err = run(cl, prepare)
        if err:
            return check(False, "flows d: %s: preparing the document failed" % label, [describe(err)])
        ids = ids if isinstance(ids, list) else [ids]
        mark(name, "attempt")
        _, err = run(cl, lambda: act(ids))
        notes.append("without approval: %s" % (describe(err) if err else "WENT THROUGH"))
        if err is None:
            mark(name, "done")
            return check(False, "flows d: %s is refused naming the missing approvals: it went through" % label, notes)
        mark(name, "approve")
        n, reasons = request_and_approve(doc, ids, notes)
        refused = refused_properly(err, reasons, notes)
        before = quant_snapshot(ids) if doc == "stock.quant" else None
        mark(name, "retry")
        _, err2 = run(cl, lambda: act(ids))
        notes.append("after approval: %s" % (describe(err2) if err2 else "went through"))
        verified, why = (verify(ids) if before is None else quant_applied(before)) if err2 is None else (False, "")
        if why:
            notes.append(why)
        mark(name, "done")
        return check(refused and n >= len(ids) and err2 is None and verified,
                     "flows d: %s is refused naming the missing approvals, and goes through once approved" % label,
                     notes)

    def quant_of(pid, loc):
        return cl["stock.quant"].search([("product_id", "=", pid), ("location_id", "=", loc.id)], limit=1)

    def key_total(q):
        """On hand for a quant's key (product, location, lot, package, owner): Odoo may hold duplicate quants
        (a reservation that skipped a locked quant creates one) and move the difference onto another of them."""
        env.cr.execute("SELECT coalesce(sum(quantity), 0) FROM stock_quant WHERE product_id = %s AND location_id = %s"
                       " AND lot_id IS NOT DISTINCT FROM %s AND package_id IS NOT DISTINCT FROM %s"
                       " AND owner_id IS NOT DISTINCT FROM %s",
                       (q.product_id.id, q.location_id.id, q.lot_id.id or None, q.package_id.id or None,
                        q.owner_id.id or None))
        return env.cr.fetchone()[0]

    def quant_snapshot(ids):
        """Per counted quant: its key's on hand and the pending difference, just before the apply."""
        qs = env["stock.quant"].browse(ids)
        qs.invalidate_recordset()
        return [(q, key_total(q), q.inventory_diff_quantity) for q in qs]

    def quant_applied(before):
        """The apply moved each key by its counted difference and cleared the counts."""
        ok, got = True, []
        for q, total, diff in before:
            q.invalidate_recordset()
            now = key_total(q)
            ok = ok and float_compare(now, total + diff, 2) == 0 and not q.inventory_quantity_set
            got.append("%s at %s: %s on hand, %+g counted, now %s (quant %d count pending: %s)" % (
                q.product_id.display_name, q.location_id.complete_name, total, diff, now, q.id, q.inventory_quantity_set))
        return ok, "; ".join(got)

    # 1. product form, Update Quantity (stock.change.product.qty): count and apply in one transaction
    tee = cl["product.product"].browse(P["RF Tee"])
    target = tee.with_context(warehouse=wh1.id).qty_available + 4
    tee_quant = quant_of(P["RF Tee"], wh1.lot_stock_id).id

    def wizard():
        w = cl["stock.change.product.qty"].create({"product_id": tee.id, "product_tmpl_id": tee.product_tmpl_id.id,
                                                   "new_quantity": target})
        return w.change_product_qty()
    notes = []
    mark("wizard", "attempt")
    _, err = run(cl, wizard)
    notes.append("Update Quantity to %s without approval: %s" % (target, describe(err) if err else "WENT THROUGH"))
    if err is None:
        mark("wizard", "done")
        check(False, "flows d: Update Quantity wizard (stock.change.product.qty) is refused naming the missing "
              "approvals: it went through", notes + ["quant %d now holds %s" % (
                  tee_quant, env["stock.quant"].browse(tee_quant).quantity)])
    else:
        wizard_err = err
        mark("wizard", "approve")
        # The count the wizard sets rolls back with the refusal: nothing is left to request approvals for ...
        def probe_requests():
            env.cr.execute("SELECT count(*) FROM retailflow.request_approvals('stock.quant', %s, %s)",
                           (tee_quant, clerk))
            return env.cr.fetchone()[0]
        nreq, err = run(env, probe_requests)
        notes.append("request_approvals on quant %d after the refusal: %s" % (
            tee_quant, describe(err) if err else "%d request(s)" % nreq))
        # ... so the count is set first (as the Physical Inventory list does), approved, then the wizard runs again.
        _, err = run(cl, lambda: cl["stock.quant"].browse(tee_quant).with_context(inventory_mode=True).write(
            {"inventory_quantity": target}))
        n, reasons = request_and_approve("stock.quant", [tee_quant], notes) if err is None else (0, {})
        refused = refused_properly(wizard_err, reasons, notes)
        mark("wizard", "retry")
        _, err2 = run(cl, wizard)
        notes.append("Update Quantity to %s after the count was approved: %s" % (
            target, describe(err2) if err2 else "went through"))
        # the wizard calls _apply_inventory() directly, which leaves inventory_quantity_set as it was: quantity only
        env.invalidate_all()
        held = env["product.product"].browse(tee.id).with_context(warehouse=wh1.id).qty_available
        notes.append("%s on hand in %s now: %s" % (tee.display_name, wh1.name, held))
        mark("wizard", "done")
        check(refused and n >= 1 and err2 is None and float_compare(held, target, 2) == 0,
              "flows d: Update Quantity wizard (stock.change.product.qty) is refused naming the missing approvals, "
              "and goes through once a count of that quantity was approved", notes)

    # 2. stock.quant create with inventory_quantity, then action_apply_inventory()
    path("quant_create", "stock.quant create(inventory_quantity=7) then action_apply_inventory()", "stock.quant",
         lambda: cl["stock.quant"].with_context(inventory_mode=True).create(
             {"product_id": P["RF Lamp"], "location_id": wh2.lot_stock_id.id, "inventory_quantity": 7}).id,
         lambda ids: cl["stock.quant"].browse(ids).with_context(inventory_mode=True).action_apply_inventory(),
         None)

    # 2b. the same in one transaction (one request): count and apply flushed together, as the wizard, Odoo's
    # own tests, imports and RPC scripts do
    notes = []
    mark("quant_create_apply", "attempt")

    def create_apply():
        q = cl["stock.quant"].with_context(inventory_mode=True).create(
            {"product_id": P["RF Bag"], "location_id": wh2.lot_stock_id.id, "inventory_quantity": 3})
        q.action_apply_inventory()
        return q.id
    qid, err = run(cl, create_apply)
    notes.append("create(inventory_quantity=3) + action_apply_inventory() in one transaction: %s" % (
        describe(err) if err else "WENT THROUGH, quant %d now holds %s" % (qid, env["stock.quant"].browse(qid).quantity)))
    mark("quant_create_apply", "done")
    check(pg_error(err) is not None and pg_error(err).pgcode == "55000",
          "flows d: stock.quant create(inventory_quantity=3) + action_apply_inventory() in one transaction is refused "
          "(55000)", notes)

    # 3. write inventory_quantity on an existing quant, then apply
    pen = quant_of(P["RF Pen"], wh1.lot_stock_id)
    pen_target = pen.quantity - 5
    path("quant_write", "write(inventory_quantity) on a quant then action_apply_inventory()", "stock.quant",
         lambda: cl["stock.quant"].browse(pen.id).with_context(inventory_mode=True).write(
             {"inventory_quantity": pen_target}) and pen.id,
         lambda ids: cl["stock.quant"].browse(ids).with_context(inventory_mode=True).action_apply_inventory(),
         None)

    # 4. Physical Inventory list: counts on two quants, Apply (stock.inventory.adjustment.name)
    q_tee2, q_mug2 = quant_of(P["RF Tee"], wh2.lot_stock_id), quant_of(P["RF Mug"], wh2.lot_stock_id)
    counts = {q_tee2.id: q_tee2.quantity + 1, q_mug2.id: max(q_mug2.quantity - 2, 0)}

    def count_two():
        for qid, qty in counts.items():
            cl["stock.quant"].browse(qid).with_context(inventory_mode=True).write({"inventory_quantity": qty})
        return list(counts)
    path("inventory_list", "Physical Inventory list: two counts applied with Apply (stock.inventory.adjustment.name)",
         "stock.quant", count_two,
         lambda ids: cl["stock.inventory.adjustment.name"].with_context(inventory_mode=True).create(
             {"quant_ids": [Command.set(ids)]}).action_apply(),
         None)

    # 5. sale order action_confirm()
    path("sale_confirm", "sale order action_confirm()", "sale.order",
         lambda: cl["sale.order"].create({"partner_id": st["customers"][2], "warehouse_id": wh1.id, "order_line": [
             Command.create({"product_id": P["RF Pen"], "product_uom_qty": 3})]}).id,
         lambda ids: cl["sale.order"].browse(ids).action_confirm(),
         lambda ids: (env["sale.order"].browse(ids).state == "sale", "state %s" % env["sale.order"].browse(ids).state))

    # 6. purchase order button_confirm()
    path("purchase_confirm", "purchase order button_confirm()", "purchase.order",
         lambda: cl["purchase.order"].create({"partner_id": st["vendor"], "picking_type_id": wh1.in_type_id.id,
                                              "order_line": [Command.create({"product_id": P["RF Mug"],
                                                                             "product_qty": 4, "price_unit": 4})]}).id,
         lambda ids: cl["purchase.order"].browse(ids).button_confirm(),
         lambda ids: (env["purchase.order"].browse(ids).state == "purchase",
                      "state %s" % env["purchase.order"].browse(ids).state))

    # 7. customer refund action_post()
    path("refund_post", "customer refund (out_refund) action_post()", "account.move",
         lambda: cl["account.move"].create({"move_type": "out_refund", "partner_id": st["customers"][0],
                                            "invoice_line_ids": [Command.create({"product_id": P["RF Tee"],
                                                                                 "quantity": 1, "price_unit": 25})]}).id,
         lambda ids: cl["account.move"].browse(ids).action_post(),
         lambda ids: (env["account.move"].browse(ids).state == "posted",
                      "state %s" % env["account.move"].browse(ids).state))

    # Probes, reported, not counted: does an approval outlive the change it approved?
    notes = []
    mark("probe_recount", "attempt")
    _, err = run(cl, lambda: cl["stock.quant"].browse(pen.id).with_context(inventory_mode=True).write(
        {"inventory_quantity": pen_target - 10}))
    _, err = run(cl, lambda: cl["stock.quant"].browse(pen.id).with_context(inventory_mode=True).action_apply_inventory())
    say("# probe: a second count on the quant approved in path 3 (%s -> %s), applied without a new approval: %s" % (
        pen_target, pen_target - 10, describe(err) if err else "WENT THROUGH (the earlier approval still counts)"))

    def bigger():
        so = cl["sale.order"].create({"partner_id": st["customers"][2], "warehouse_id": wh1.id, "order_line": [
            Command.create({"product_id": P["RF Pen"], "product_uom_qty": 1})]})
        return so.id
    mark("probe_grow", "prepare")
    sid, err = run(cl, bigger)
    if sid:
        approved_at = env["sale.order"].browse(sid).amount_total
        request_and_approve("sale.order", [sid], notes)
        _, err = run(cl, lambda: cl["sale.order"].browse(sid).write({"order_line": [
            Command.create({"product_id": P["RF Bag"], "product_uom_qty": 50})]}))
        mark("probe_grow", "attempt")
        _, err = run(cl, lambda: cl["sale.order"].browse(sid).action_confirm())
        say("# probe: sale order %d approved at %s, then grown to %s and confirmed: %s" % (
            sid, approved_at, env["sale.order"].browse(sid).amount_total,
            describe(err) if err else "WENT THROUGH (the approval does not bind the amount)"))
    mark("end", "end")


FLOWS = {"setup": flow_setup, "stockflows": flow_stockflows, "fidelity": flow_fidelity, "block": flow_block,
         "approvals": flow_approvals}
try:
    FLOWS.get(FLOW, flow_channel if FLOW.startswith("channel") else None)()
except Exception:  # noqa: BLE001
    check(False, "flows %s: crashed" % FLOW, traceback.format_exc().splitlines()[-25:])
