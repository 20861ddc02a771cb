-- 00_core.sql: the retailflow schema's foundation: status and Odoo detection,
-- the registry of triggers retailflow manages on Odoo's tables, attach() and
-- detach(), and the event trigger that cleans Odoo's tables on DROP EXTENSION.

COMMENT ON SCHEMA retailflow IS 'retailflow: omnichannel stock, conflicts, approvals and webhooks for Odoo databases';

CREATE FUNCTION retailflow.status(
    OUT component text, OUT name text, OUT status text, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_status'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.status() IS
  'Extension version, detected Odoo version and which Odoo tables and columns were found';

CREATE FUNCTION retailflow.odoo_version()
RETURNS integer
AS 'MODULE_PATHNAME', 'rf_odoo_version'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.odoo_version() IS
  'Odoo major version detected from the catalog: 17 or 18, 16 when too old, NULL when no Odoo tables';

CREATE FUNCTION retailflow.cache_invalidate_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rf_cache_invalidate_trigger'
LANGUAGE C;

-- Every trigger retailflow puts on an Odoo table is registered here; attach()
-- creates the missing ones (tables may appear after CREATE EXTENSION, when
-- Odoo installs a module), detach() removes them all.
CREATE TABLE retailflow.managed_trigger (
    table_name   name NOT NULL,
    trigger_name name NOT NULL CHECK (trigger_name::text LIKE 'retailflow\_%'),
    concern      text NOT NULL,
    -- what follows "CREATE TRIGGER <name>"; %s stands for the qualified table
    definition   text NOT NULL CHECK (definition LIKE '%\%s%'),
    PRIMARY KEY (table_name, trigger_name)
);
COMMENT ON TABLE retailflow.managed_trigger IS
  'Triggers retailflow manages on Odoo tables; attach() creates them, detach() drops them';

INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition)
SELECT t, 'retailflow_cache_inval', 'availability cache',
       'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()'
FROM unnest(ARRAY['stock_location', 'stock_warehouse', 'product_product',
                  'product_template', 'uom_uom']) AS t;

CREATE FUNCTION retailflow.attach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch  text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    r    record;
    rel  regclass;
BEGIN
    FOR r IN SELECT m.table_name, m.trigger_name, m.definition
             FROM retailflow.managed_trigger m ORDER BY 1, 2
    LOOP
        table_name := r.table_name;
        trigger_name := r.trigger_name;
        rel := to_regclass(format('%I.%I', sch, r.table_name));
        IF rel IS NULL THEN
            action := 'table missing';
        ELSIF EXISTS (SELECT 1 FROM pg_trigger tg
                      WHERE tg.tgrelid = rel AND tg.tgname = r.trigger_name) THEN
            action := 'present';
        ELSE
            EXECUTE format('CREATE TRIGGER %I ', r.trigger_name)
                 || format(r.definition, rel::text);
            action := 'created';
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.attach() IS
  'Creates every trigger registered in retailflow.managed_trigger on the Odoo tables that exist';

CREATE FUNCTION retailflow.detach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    -- Drop by name wherever retailflow put them, whatever the schema GUC says now.
    FOR r IN SELECT tg.tgrelid::regclass AS rel, c.relname, tg.tgname
             FROM pg_trigger tg
             JOIN pg_class c ON c.oid = tg.tgrelid
             JOIN retailflow.managed_trigger m
               ON m.table_name = c.relname AND m.trigger_name = tg.tgname
             WHERE NOT tg.tgisinternal
             ORDER BY 2, 3
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        table_name := r.relname;
        trigger_name := r.tgname;
        action := 'dropped';
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.detach() IS
  'Drops every retailflow trigger from Odoo tables; DROP EXTENSION calls it first';

REVOKE ALL ON FUNCTION retailflow.attach() FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.detach() FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.managed_trigger FROM PUBLIC;

CREATE FUNCTION retailflow.drop_extension_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rf_drop_extension_guard'
LANGUAGE C;

CREATE EVENT TRIGGER retailflow_drop_extension_guard
    ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION retailflow.drop_extension_guard();
