-- 00_core.sql: the retailflow schema's foundation: the deployment model's
-- group roles, status and Odoo detection, odoo_query() (the one way the SQL
-- functions reach Odoo's tables), the registry of triggers retailflow manages
-- on Odoo's tables, attach() and detach(), the event triggers that clean
-- Odoo's tables on DROP EXTENSION and record tampering with the managed
-- triggers.  Privileges are granted in 95_grants.sql.

COMMENT ON SCHEMA retailflow IS 'retailflow: omnichannel stock, conflicts, approvals and webhooks for Odoo databases';

-- The deployment model's group roles (docs/security.md).  Roles belong to
-- the cluster: the first CREATE EXTENSION creates them, later ones (other
-- databases) find them.  DROP EXTENSION leaves them.
-- @since 1.1
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'retailflow_reader') THEN
        CREATE ROLE retailflow_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'retailflow_odoo') THEN
        CREATE ROLE retailflow_odoo NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'retailflow_admin') THEN
        CREATE ROLE retailflow_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('retailflow_odoo', 'retailflow_reader', 'MEMBER') THEN
        GRANT retailflow_reader TO retailflow_odoo;
    END IF;
    IF NOT pg_catalog.pg_has_role('retailflow_admin', 'retailflow_reader', 'MEMBER') THEN
        GRANT retailflow_reader TO retailflow_admin;
    END IF;
END
$$;

-- Runs one statement over Odoo's tables: {odoo} is their schema, $1... the
-- arguments; a superuser's call runs as the owner of Odoo's tables inside a
-- security-restricted operation; views and foreign tables in Odoo's schema
-- are refused.  SELECT * FROM retailflow.odoo_query('...', ...) AS t(col type, ...).
-- Executable by everyone: it never runs anything with more rights than the
-- caller has (SECURITY INVOKER functions call it with their caller's rights).
CREATE FUNCTION retailflow.odoo_query(sql text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_odoo_query'
LANGUAGE C VOLATILE;
CREATE FUNCTION retailflow.odoo_query(sql text, VARIADIC args "any")
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_odoo_query'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION retailflow.odoo_query(text) IS
  'Internal: runs a statement over Odoo''s tables ({odoo} = their schema) with the rights retailflow reads them with';
COMMENT ON FUNCTION retailflow.odoo_query(text, "any") IS
  'Internal: odoo_query() with arguments $1, $2, ...';
CREATE FUNCTION retailflow.odoo_exec(sql text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rf_odoo_exec'
LANGUAGE C VOLATILE;
CREATE FUNCTION retailflow.odoo_exec(sql text, VARIADIC args "any")
RETURNS bigint
AS 'MODULE_PATHNAME', 'rf_odoo_exec'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION retailflow.odoo_exec(text) IS
  'Internal: odoo_query() for a statement without rows (LOCK, UPDATE); returns the rows processed';
COMMENT ON FUNCTION retailflow.odoo_exec(text, "any") IS
  'Internal: odoo_exec() with arguments $1, $2, ...';

-- Whether every named table exists in Odoo's schema.
CREATE FUNCTION retailflow.odoo_tables_exist(tables text[])
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN NOT EXISTS (
    SELECT 1 FROM unnest(tables) AS t
    WHERE to_regclass(format('%I.%I', coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public'), t)) IS NULL);
COMMENT ON FUNCTION retailflow.odoo_tables_exist(text[]) IS
  'Internal: whether every named table exists in Odoo''s schema';

-- The role the session acts as: SET ROLE counts, SECURITY DEFINER does not.
CREATE FUNCTION retailflow.acting_role()
RETURNS name
AS 'MODULE_PATHNAME', 'rf_acting_role'
LANGUAGE C STABLE;
COMMENT ON FUNCTION retailflow.acting_role() IS
  'The database role this session acts as (after SET ROLE, ignoring SECURITY DEFINER), as audit rows record it';

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
    -- what follows "CREATE [CONSTRAINT] TRIGGER <name>"; %s stands for the qualified table
    definition   text NOT NULL CHECK (definition LIKE '%\%s%'),
    -- a constraint trigger (CREATE CONSTRAINT TRIGGER), e.g. deferred to commit
    constraint_trigger boolean NOT NULL DEFAULT false,
    PRIMARY KEY (table_name, trigger_name)
);
COMMENT ON TABLE retailflow.managed_trigger IS
  'Triggers retailflow manages on Odoo tables; attach() creates them, detach() drops them';

-- Definitions are written the way pg_get_triggerdef() prints them, so that
-- attach() and the managed_trigger check can tell our trigger from another of
-- the same name; none has a WHEN clause or a column list, which would make it
-- depend on Odoo's columns (Odoo alters its columns in module upgrades).
-- @since 1.1
INSERT INTO retailflow.managed_trigger (table_name, trigger_name, concern, definition)
SELECT t, 'retailflow_cache_inval', 'availability cache',
       'AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION retailflow.cache_invalidate_trigger()'
FROM unnest(ARRAY['stock_location', 'stock_warehouse', 'product_product',
                  'product_template', 'uom_uom']) AS t;

-- SECURITY INVOKER: creating a trigger on a table needs its owner (Odoo's
-- role) or a superuser, as CREATE TRIGGER itself does.
-- The statement that creates a managed trigger on rel, in pg_get_triggerdef()'s
-- form: attach() and the managed_trigger check compare it with the catalog.
CREATE FUNCTION retailflow.managed_trigger_sql(constraint_trigger boolean, trigger_name name, definition text,
                                               rel regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN format('CREATE %sTRIGGER %I ', CASE WHEN constraint_trigger THEN 'CONSTRAINT ' ELSE '' END, trigger_name)
       || format(definition, rel::text);
COMMENT ON FUNCTION retailflow.managed_trigger_sql(boolean, name, text, regclass) IS
  'Internal: the CREATE TRIGGER statement of a managed trigger on a table, as pg_get_triggerdef() prints it';

-- attach() and detach() are C: while they run (and only then) their own
-- trigger changes are not recorded as tampering by the event triggers below;
-- the work is done by attach_triggers() / detach_triggers(), whose changes
-- are recorded like anyone's when they are called directly.
CREATE FUNCTION retailflow.attach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_attach'
LANGUAGE C;
COMMENT ON FUNCTION retailflow.attach() IS
  'Creates every trigger registered in retailflow.managed_trigger on the Odoo tables that exist; replaces a trigger of the same name with another definition and enables a disabled one';

CREATE FUNCTION retailflow.detach(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rf_detach'
LANGUAGE C;
COMMENT ON FUNCTION retailflow.detach() IS
  'Drops every retailflow trigger from Odoo tables; DROP EXTENSION calls it first';

CREATE FUNCTION retailflow.attach_triggers(
    OUT table_name name, OUT trigger_name name, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch  text := coalesce(nullif(current_setting('retailflow.odoo_schema', true), ''), 'public');
    r    record;
    rel  regclass;
    want text;
    tg   record;
BEGIN
    FOR r IN SELECT m.table_name, m.trigger_name, m.definition, m.constraint_trigger
             FROM retailflow.managed_trigger m ORDER BY 1, 2
    LOOP
        table_name := r.table_name;
        trigger_name := r.trigger_name;
        rel := to_regclass(format('%I.%I', sch, r.table_name));
        IF rel IS NULL THEN
            action := 'table missing';
            RETURN NEXT;
            CONTINUE;
        END IF;
        want := retailflow.managed_trigger_sql(r.constraint_trigger, r.trigger_name, r.definition, rel);
        SELECT t.tgenabled, pg_get_triggerdef(t.oid) AS def INTO tg
        FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = r.trigger_name;
        IF NOT FOUND THEN
            EXECUTE want;
            action := 'created';
        ELSIF tg.def IS DISTINCT FROM want THEN
            -- same name, another definition (a look-alike, or an older one): put ours back
            EXECUTE format('DROP TRIGGER %I ON %s', r.trigger_name, rel);
            EXECUTE want;
            action := 'replaced';
        ELSIF tg.tgenabled IN ('D', 'R') THEN
            EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', rel, r.trigger_name);
            action := 'enabled';
        ELSE
            action := 'present';
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION retailflow.attach_triggers() IS
  'Internal: the work of attach()';

CREATE FUNCTION retailflow.detach_triggers(
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
COMMENT ON FUNCTION retailflow.detach_triggers() IS
  'Internal: the work of detach()';

REVOKE ALL ON FUNCTION retailflow.attach() FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.detach() FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.attach_triggers() FROM PUBLIC;
REVOKE ALL ON FUNCTION retailflow.detach_triggers() FROM PUBLIC;
REVOKE ALL ON TABLE retailflow.managed_trigger FROM PUBLIC;

CREATE FUNCTION retailflow.drop_extension_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rf_drop_extension_guard'
LANGUAGE C;

CREATE EVENT TRIGGER retailflow_drop_extension_guard
    ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION retailflow.drop_extension_guard();

-- Anyone else changing a managed trigger (a table owner may drop or disable
-- the triggers on its own tables) is recorded: an audit row, a
-- retailflow.trigger_changed event and, through the managed_trigger check,
-- an exception that stays open until the trigger is back (attach()).
CREATE FUNCTION retailflow.record_trigger_change(action text, schema_name text, table_name text,
                                                 trigger_name text, detail text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record;
BEGIN
    FOR m IN SELECT mt.table_name, mt.trigger_name, mt.concern, t.tgenabled
             FROM retailflow.managed_trigger mt
             LEFT JOIN pg_catalog.pg_trigger t
                    ON t.tgname = mt.trigger_name
                   AND t.tgrelid = to_regclass(format('%I.%I', schema_name, mt.table_name))
             WHERE mt.table_name = record_trigger_change.table_name
               AND (record_trigger_change.trigger_name IS NULL OR mt.trigger_name = record_trigger_change.trigger_name)
             ORDER BY mt.trigger_name
    LOOP
        PERFORM retailflow.audit('managed_trigger.' || replace(action, ' ', '_'), 'retailflow.managed_trigger', NULL,
                                 NULL, jsonb_build_object('schema', schema_name, 'table', m.table_name,
                                                          'trigger', m.trigger_name, 'concern', m.concern,
                                                          'state', m.tgenabled, 'statement', detail));
        PERFORM retailflow.emit('retailflow.trigger_changed', 'retailflow.managed_trigger', NULL,
                                jsonb_build_object('action', action, 'schema', schema_name, 'table', m.table_name,
                                                   'trigger', m.trigger_name, 'concern', m.concern,
                                                   'statement', detail, 'role', retailflow.acting_role()));
    END LOOP;
    IF FOUND AND EXISTS (SELECT 1 FROM retailflow.exception_check c WHERE c.kind = 'managed_trigger' AND c.enabled) THEN
        PERFORM retailflow.run_check('managed_trigger', retailflow.now());
    END IF;
END
$$;
COMMENT ON FUNCTION retailflow.record_trigger_change(text, text, text, text, text) IS
  'Internal: records a change of a managed trigger made outside attach()/detach() (audit, event, exception)';
REVOKE ALL ON FUNCTION retailflow.record_trigger_change(text, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION retailflow.managed_trigger_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rf_managed_trigger_ddl'
LANGUAGE C;
CREATE FUNCTION retailflow.managed_trigger_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rf_managed_trigger_drop'
LANGUAGE C;
-- @since 1.1
CREATE EVENT TRIGGER retailflow_managed_trigger_ddl
    ON ddl_command_end WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'CREATE TRIGGER')
    EXECUTE FUNCTION retailflow.managed_trigger_ddl();
-- @since 1.1
CREATE EVENT TRIGGER retailflow_managed_trigger_drop
    ON sql_drop
    EXECUTE FUNCTION retailflow.managed_trigger_drop();
