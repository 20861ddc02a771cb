-- demo/odoo_writes.sql: a load generator's building blocks (schema demo) that
-- write to Odoo's tables the way Odoo 17's ORM does: sale orders and lines,
-- confirmation, delivery pickings with moves, reservation of quants with move
-- lines (quant reserved_quantity + stock_move_line, as _update_reserved_quantity
-- and _action_assign do), delivery validation, returns and refunds.
-- Used by demo/run, which loads it as Odoo's role "odoo" (owner of the
-- database and of every Odoo table, not a superuser) and calls it only as
-- odoo: the functions run with odoo's rights; not part of the extension.
CREATE SCHEMA demo;

-- A draft sale order with one line per product, priced at list price.
CREATE FUNCTION demo.place_order(p_team integer, p_partner integer, p_products integer[], p_qty numeric[],
                                 p_discount numeric DEFAULT 0, p_warehouse integer DEFAULT 1)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    so integer;
    untaxed numeric;
BEGIN
    INSERT INTO sale_order (company_id, partner_id, partner_invoice_id, partner_shipping_id, currency_id, user_id,
                            team_id, name, state, invoice_status, currency_rate, amount_untaxed, amount_tax,
                            amount_total, locked, require_signature, require_payment, date_order,
                            prepayment_percent, warehouse_id, picking_policy, create_uid, write_uid,
                            create_date, write_date)
    VALUES (1, p_partner, p_partner, p_partner, 1, 2, p_team, 'DEMO/' || nextval('sale_order_id_seq'), 'draft', 'no',
            1.0, 0, 0, 0, false, false, false, clock_timestamp(), 1.0, p_warehouse, 'direct', 2, 2,
            clock_timestamp(), clock_timestamp())
    RETURNING id INTO so;
    INSERT INTO sale_order_line (order_id, sequence, company_id, currency_id, order_partner_id, salesman_id, product_id,
                                 product_uom, state, qty_delivered_method, invoice_status, name, product_uom_qty,
                                 price_unit, discount, price_subtotal, price_total, price_reduce_taxexcl,
                                 price_reduce_taxinc, qty_delivered, qty_invoiced, qty_to_invoice,
                                 untaxed_amount_invoiced, untaxed_amount_to_invoice, is_downpayment, is_expense,
                                 price_tax, customer_lead, create_uid, write_uid, create_date, write_date)
    SELECT so, 10 + o, 1, 1, p_partner, 2, pp.id, pt.uom_id, 'draft', 'stock_move', 'no', pp.default_code, q,
           pt.list_price, p_discount, round(q * pt.list_price * (1 - p_discount / 100), 2),
           round(q * pt.list_price * (1 - p_discount / 100), 2), round(pt.list_price * (1 - p_discount / 100), 2),
           round(pt.list_price * (1 - p_discount / 100), 2), 0, 0, 0, 0, 0, false, false, 0, 0, 2, 2,
           clock_timestamp(), clock_timestamp()
    FROM unnest(p_products, p_qty) WITH ORDINALITY AS l(pid, q, o)
    JOIN product_product pp ON pp.id = l.pid JOIN product_template pt ON pt.id = pp.product_tmpl_id;
    SELECT sum(price_subtotal) INTO untaxed FROM sale_order_line WHERE order_id = so;
    UPDATE sale_order SET amount_untaxed = untaxed, amount_total = untaxed WHERE id = so;
    RETURN so;
END $$;

-- Confirms an order (draft -> sale), as action_confirm writes it.
CREATE FUNCTION demo.confirm(p_order integer) RETURNS void LANGUAGE sql AS $$
    UPDATE sale_order SET state = 'sale', write_date = clock_timestamp() WHERE id = p_order;
    UPDATE sale_order_line SET state = 'sale' WHERE order_id = p_order;
$$;

-- Creates the delivery picking and its moves from warehouse p_wh, then reserves
-- what the warehouse has free, quant by quant (FIFO), like _action_assign.
-- Returns the picking id.
CREATE FUNCTION demo.ship_from(p_order integer, p_wh integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    w record;
    pick integer;
    mv record;
    q record;
    need numeric;
    take numeric;
    customers integer := (SELECT id FROM stock_location WHERE usage = 'customer' ORDER BY id LIMIT 1);
    total_need numeric := 0;
    total_got numeric := 0;
BEGIN
    SELECT sw.*, pt.id AS out_type INTO w FROM stock_warehouse sw
    JOIN stock_picking_type pt ON pt.warehouse_id = sw.id AND pt.code = 'outgoing' WHERE sw.id = p_wh
    ORDER BY pt.id LIMIT 1;
    INSERT INTO stock_picking (location_id, location_dest_id, picking_type_id, partner_id, company_id, user_id, name,
                               origin, move_type, state, priority, scheduled_date, date, sale_id, create_uid,
                               write_uid, create_date, write_date)
    SELECT w.lot_stock_id, customers, w.out_type, so.partner_id, 1, 2, w.code || '/OUT/D' || so.id, so.name, 'direct',
           'confirmed', '0', clock_timestamp() + interval '1 day', clock_timestamp(), so.id, 2, 2,
           clock_timestamp(), clock_timestamp()
    FROM sale_order so WHERE so.id = p_order
    RETURNING id INTO pick;
    FOR mv IN
        INSERT INTO stock_move (company_id, product_id, product_uom, location_id, location_dest_id, partner_id,
                                picking_id, picking_type_id, warehouse_id, name, state, origin, procure_method,
                                reference, product_qty, product_uom_qty, quantity, picked, date, sale_line_id,
                                create_uid, write_uid, create_date, write_date)
        SELECT 1, l.product_id, l.product_uom, w.lot_stock_id, customers, l.order_partner_id, pick, w.out_type, w.id,
               l.name, 'confirmed', 'DEMO', 'make_to_stock', 'OUT/' || pick, l.product_uom_qty, l.product_uom_qty, 0,
               false, clock_timestamp(), l.id, 2, 2, clock_timestamp(), clock_timestamp()
        FROM sale_order_line l JOIN product_product pp ON pp.id = l.product_id
        JOIN product_template t ON t.id = pp.product_tmpl_id
        WHERE l.order_id = p_order AND t.type = 'product'
        RETURNING id, product_id, product_qty
    LOOP
        need := mv.product_qty;
        total_need := total_need + need;
        FOR q IN
            SELECT sq.id, sq.location_id, sq.lot_id, sq.package_id, sq.owner_id,
                   sq.quantity - sq.reserved_quantity AS free
            FROM stock_quant sq JOIN stock_location l ON l.id = sq.location_id
            WHERE sq.product_id = mv.product_id AND l.usage = 'internal'
              AND l.parent_path LIKE (SELECT parent_path FROM stock_location WHERE id = w.lot_stock_id) || '%'
              AND sq.quantity - sq.reserved_quantity > 0
            ORDER BY sq.in_date, sq.id
            FOR NO KEY UPDATE OF sq
        LOOP
            EXIT WHEN need <= 0;
            take := least(need, q.free);
            UPDATE stock_quant SET reserved_quantity = reserved_quantity + take WHERE id = q.id;
            INSERT INTO stock_move_line (picking_id, move_id, company_id, product_id, product_uom_id, package_id,
                                         lot_id, owner_id, location_id, location_dest_id, state, reference,
                                         quantity, quantity_product_uom, picked, date, create_uid, write_uid,
                                         create_date, write_date)
            VALUES (pick, mv.id, 1, mv.product_id, 1, q.package_id, q.lot_id, q.owner_id, q.location_id, customers,
                    'assigned', 'OUT/' || pick, take, take, false, clock_timestamp(), 2, 2,
                    clock_timestamp(), clock_timestamp());
            need := need - take;
        END LOOP;
        total_got := total_got + (mv.product_qty - need);
        UPDATE stock_move SET quantity = mv.product_qty - need,
               state = CASE WHEN need <= 0 THEN 'assigned' WHEN need < mv.product_qty THEN 'partially_available'
                            ELSE 'confirmed' END
        WHERE id = mv.id;
        UPDATE stock_move_line SET state = (SELECT state FROM stock_move WHERE id = mv.id) WHERE move_id = mv.id;
    END LOOP;
    UPDATE stock_picking SET state = CASE WHEN total_got >= total_need THEN 'assigned' ELSE 'confirmed' END
    WHERE id = pick;
    RETURN pick;
END $$;

-- Validates a delivery: reserved stock leaves the warehouse for Customers
-- (unreserve, -qty at the source key, +qty at the destination), as _action_done.
CREATE FUNCTION demo.validate(p_picking integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ml record;
BEGIN
    FOR ml IN SELECT * FROM stock_move_line WHERE picking_id = p_picking AND state NOT IN ('done', 'cancel')
    LOOP
        UPDATE stock_quant SET reserved_quantity = reserved_quantity - ml.quantity_product_uom,
                               quantity = quantity - ml.quantity_product_uom
        WHERE id = (SELECT id FROM stock_quant WHERE product_id = ml.product_id AND location_id = ml.location_id
                      AND lot_id IS NOT DISTINCT FROM ml.lot_id AND package_id IS NOT DISTINCT FROM ml.package_id
                      AND owner_id IS NOT DISTINCT FROM ml.owner_id ORDER BY id LIMIT 1);
        INSERT INTO stock_quant (product_id, company_id, location_id, lot_id, quantity, reserved_quantity, in_date)
        VALUES (ml.product_id, 1, ml.location_dest_id, ml.lot_id, ml.quantity_product_uom, 0, clock_timestamp());
    END LOOP;
    UPDATE stock_move_line SET state = 'done', picked = true WHERE picking_id = p_picking;
    UPDATE stock_move SET state = 'done', picked = true, product_uom_qty = quantity, product_qty = quantity
    WHERE picking_id = p_picking;
    UPDATE stock_picking SET state = 'done', date_done = clock_timestamp() WHERE id = p_picking;
END $$;

-- One omnichannel order, end to end: a channel (sales team) sells 1-3
-- storable products, the order is confirmed, shipped from the warehouse
-- fulfilment_options() ranks first, and every other order is delivered at once.
CREATE FUNCTION demo.order_cycle(p_seed integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    prods integer[];
    qtys numeric[];
    cust integer;
    so integer;
    wh integer;
    pick integer;
BEGIN
    SELECT id INTO cust FROM res_partner WHERE active AND coalesce(customer_rank, 0) > 0
    ORDER BY id OFFSET p_seed % greatest(1, (SELECT count(*) FROM res_partner
                                             WHERE active AND coalesce(customer_rank, 0) > 0)) LIMIT 1;
    IF cust IS NULL THEN
        SELECT id INTO cust FROM res_partner WHERE active ORDER BY id DESC LIMIT 1;
    END IF;
    SELECT array_agg(x.id), array_agg(1 + x.id % 3) INTO prods, qtys
    FROM (SELECT pp.id FROM product_product pp JOIN product_template pt ON pt.id = pp.product_tmpl_id
          WHERE pt.type = 'product' AND pp.active
          ORDER BY hashint4(pp.id # p_seed), pp.id LIMIT 1 + p_seed % 3) x;
    IF prods IS NULL THEN
        RETURN 'no product';
    END IF;
    so := demo.place_order(1 + p_seed % 4, cust, prods, qtys, CASE WHEN p_seed % 10 = 0 THEN 30 ELSE 0 END, 1);
    PERFORM demo.confirm(so);
    SELECT f.warehouse_id INTO wh FROM retailflow.fulfilment_options(so) f
    ORDER BY f.can_fulfil_all DESC, f.fill_rate DESC, f.warehouse_id LIMIT 1;
    IF wh IS NULL THEN
        RETURN 'nothing to ship';
    END IF;
    pick := demo.ship_from(so, wh);
    IF p_seed % 2 = 0 THEN
        PERFORM demo.validate(pick);
        RETURN 'delivered';
    END IF;
    RETURN 'reserved';
END $$;

-- A customer return of a delivered order, received back into stock, and its
-- draft refund (out_refund), as Odoo's return wizard and credit note do.
-- Returns the refund's id; demo.post_refund() posts it.
CREATE FUNCTION demo.return_and_refund(p_picking integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    out_pick record;
    ret integer;
    refund integer;
    in_type integer;
BEGIN
    SELECT * INTO out_pick FROM stock_picking WHERE id = p_picking AND state = 'done';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT pt.id INTO in_type FROM stock_picking_type pt JOIN stock_warehouse w ON w.id = pt.warehouse_id
    WHERE pt.code = 'incoming' AND w.lot_stock_id = out_pick.location_id ORDER BY pt.id LIMIT 1;
    INSERT INTO stock_picking (location_id, location_dest_id, picking_type_id, partner_id, company_id, name, origin,
                               move_type, state, scheduled_date, date, date_done, return_id, sale_id,
                               create_date, write_date)
    VALUES (out_pick.location_dest_id, out_pick.location_id, coalesce(in_type, out_pick.picking_type_id),
            out_pick.partner_id, 1, 'RET/' || p_picking, 'Return of ' || out_pick.name, 'direct', 'done',
            clock_timestamp(), clock_timestamp(), clock_timestamp(), p_picking, out_pick.sale_id,
            clock_timestamp(), clock_timestamp())
    RETURNING id INTO ret;
    INSERT INTO stock_quant (product_id, company_id, location_id, quantity, reserved_quantity, in_date)
    SELECT ml.product_id, 1, out_pick.location_id, ml.quantity_product_uom, 0, clock_timestamp()
    FROM stock_move_line ml WHERE ml.picking_id = p_picking;
    INSERT INTO account_move (journal_id, company_id, partner_id, commercial_partner_id, currency_id, name, state,
                              move_type, auto_post, date, invoice_origin, amount_untaxed, amount_tax, amount_total,
                              amount_total_signed, create_date, write_date)
    SELECT 1, 1, so.partner_id, so.partner_id, 1, '/', 'draft', 'out_refund', 'no', current_date, so.name,
           so.amount_untaxed, 0, so.amount_total, -so.amount_total, clock_timestamp(), clock_timestamp()
    FROM sale_order so WHERE so.id = out_pick.sale_id
    RETURNING id INTO refund;
    RETURN refund;
END $$;

-- Posts a refund (draft -> posted), as action_post writes it.
CREATE FUNCTION demo.post_refund(p_move integer) RETURNS void LANGUAGE sql AS $$
    UPDATE account_move SET state = 'posted', name = 'RINV/DEMO/' || id, write_date = clock_timestamp()
    WHERE id = p_move AND state = 'draft';
$$;
