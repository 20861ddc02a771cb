/*
 * odoo_catalog.c
 *	  Owns what retailflow knows about the Odoo database it runs in: which
 *	  schema holds Odoo's tables (GUC retailflow.odoo_schema), which Odoo
 *	  version the columns say it is (17 and 18 supported, 16 and older
 *	  refused), the retailflow.status() report, the statement trigger that
 *	  turns data changes of cached Odoo tables into relcache invalidations,
 *	  the event trigger that detaches retailflow's triggers from Odoo's
 *	  tables when the extension is dropped, and the event triggers that
 *	  record anyone else dropping, disabling or renaming them.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "utils/rel.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "catalog/pg_class.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "storage/proc.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_status);
PG_FUNCTION_INFO_V1(rf_odoo_version);
PG_FUNCTION_INFO_V1(rf_cache_invalidate_trigger);
PG_FUNCTION_INFO_V1(rf_drop_extension_guard);
PG_FUNCTION_INFO_V1(rf_attach);
PG_FUNCTION_INFO_V1(rf_detach);
PG_FUNCTION_INFO_V1(rf_managed_trigger_ddl);
PG_FUNCTION_INFO_V1(rf_managed_trigger_drop);

const char *const RfTableNames[RF_NUM_TABLES] = {
	"stock_quant",
	"stock_location",
	"stock_warehouse",
	"stock_move",
	"stock_move_line",
	"stock_lot",
	"product_product",
	"product_template",
	"uom_uom",
	"sale_order",
	"sale_order_line",
	"ir_module_module",
	"stock_quant_package",
	"res_partner",
	"stock_picking",
	"stock_picking_type",
	"stock_warehouse_orderpoint",
	"purchase_order",
	"purchase_order_line",
	"account_move",
	"res_users",
	"res_groups",
	"res_groups_users_rel",
	"res_company",
	"product_category",
	"res_partner_res_partner_category_rel",
	"crm_team",
	"product_supplierinfo",
};

/* Columns every supported version must have, per table (NULL-terminated). */
static const char *const required_columns[RF_NUM_TABLES][12] = {
	[RF_STOCK_QUANT] = {"id", "product_id", "location_id", "lot_id", "package_id", "owner_id", "company_id", "quantity", "reserved_quantity", NULL},
	[RF_STOCK_LOCATION] = {"id", "location_id", "parent_path", "usage", "company_id", "active", "scrap_location", "warehouse_id", NULL},
	[RF_STOCK_WAREHOUSE] = {"id", "view_location_id", "lot_stock_id", "company_id", "active", "code", "name", NULL},
	[RF_STOCK_MOVE] = {"id", "product_id", "product_qty", "product_uom_qty", "quantity", "state", "location_id", "location_dest_id", "company_id", NULL},
	[RF_STOCK_MOVE_LINE] = {"id", "move_id", "product_id", "quantity", "quantity_product_uom", "state", "location_id", "lot_id", "package_id", "owner_id", NULL},
	[RF_STOCK_LOT] = {"id", "product_id", "name", NULL},
	[RF_PRODUCT_PRODUCT] = {"id", "product_tmpl_id", "active", NULL},
	[RF_PRODUCT_TEMPLATE] = {"id", "tracking", "uom_id", "type", NULL},
	[RF_UOM_UOM] = {"id", "rounding", NULL},
	[RF_SALE_ORDER] = {"id", "state", "warehouse_id", "company_id", NULL},
	[RF_SALE_ORDER_LINE] = {"id", "order_id", "product_id", "product_uom_qty", "product_uom", NULL},
	[RF_IR_MODULE_MODULE] = {"name", "state", "latest_version", NULL},
	[RF_STOCK_QUANT_PACKAGE] = {"id", NULL},
	[RF_RES_PARTNER] = {"id", NULL},
	[RF_STOCK_PICKING] = {"id", "name", "state", "picking_type_id", "location_id", "location_dest_id", "scheduled_date", NULL},
	[RF_STOCK_PICKING_TYPE] = {"id", "code", "warehouse_id", NULL},
	[RF_STOCK_WAREHOUSE_ORDERPOINT] = {"id", "product_id", "location_id", "warehouse_id", "product_min_qty", "product_max_qty", "qty_multiple", NULL},
	[RF_PURCHASE_ORDER] = {"id", "name", "state", "amount_total", "company_id", NULL},
	[RF_PURCHASE_ORDER_LINE] = {"id", "order_id", "product_id", "product_qty", "price_unit", NULL},
	[RF_ACCOUNT_MOVE] = {"id", "move_type", "state", "amount_total", "company_id", NULL},
	[RF_RES_USERS] = {"id", "active", "partner_id", NULL},
	[RF_RES_GROUPS] = {"id", "name", NULL},
	[RF_RES_GROUPS_USERS_REL] = {"gid", "uid", NULL},
	[RF_RES_COMPANY] = {"id", "name", NULL},
	[RF_PRODUCT_CATEGORY] = {"id", "parent_path", NULL},
	[RF_RES_PARTNER_CATEGORY_REL] = {"category_id", "partner_id", NULL},
	[RF_CRM_TEAM] = {"id", "name", NULL},
	[RF_PRODUCT_SUPPLIERINFO] = {"id", "delay", NULL},
};

static char *odoo_schema_guc = NULL;
static RfOdoo odoo_cache;
static bool odoo_cache_valid = false;
static bool callbacks_registered = false;

/* Tables the role acl_user may SELECT, as a mask (reset by catalog changes). */
static Oid	acl_user = InvalidOid;
static uint32 acl_ok_mask = 0;

/* Marks the cached detection stale when pg_class/pg_attribute change. */
static void
odoo_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	odoo_cache_valid = false;
	acl_ok_mask = 0;
}

/* Forgets the privileges checked when roles or memberships change. */
static void
odoo_acl_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	acl_ok_mask = 0;
}

/* Marks the cached detection stale when the schema GUC changes. */
static void
odoo_schema_assign(const char *newval, void *extra)
{
	odoo_cache_valid = false;
}

/* Registers GUCs owned by this file. */
void
OdooCatalogInit(void)
{
	DefineCustomStringVariable("retailflow.odoo_schema",
							   "Schema that holds Odoo's tables.",
							   "retailflow reads stock_quant, stock_location and the other Odoo tables from this schema.",
							   &odoo_schema_guc,
							   "public",
							   PGC_SUSET,
							   0,
							   NULL, odoo_schema_assign, NULL);
}

/* Returns true if relation relid has a column of that name. */
static bool
rel_has_column(Oid relid, const char *column)
{
	return OidIsValid(relid) && get_attnum(relid, column) != InvalidAttrNumber;
}

/* Recomputes the detection from the catalog; never raises an error. */
static void
odoo_detect(RfOdoo *o)
{
	memset(o, 0, sizeof(*o));
	o->nsp = get_namespace_oid(odoo_schema_guc ? odoo_schema_guc : "public", true);
	if (!OidIsValid(o->nsp))
	{
		snprintf(o->reason, sizeof(o->reason), "Schema \"%s\" does not exist.", odoo_schema_guc);
		return;
	}
	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
		Oid			relid = get_relname_relid(RfTableNames[i], o->nsp);

		if (OidIsValid(relid) && get_rel_relkind(relid) != RELKIND_RELATION &&
			get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		{
			/* a view or foreign table under an Odoo table's name: refused, never read */
			o->refused[i] = get_rel_relkind(relid);
			relid = InvalidOid;
		}
		o->rel[i] = relid;
	}
	if (!OidIsValid(o->rel[RF_STOCK_QUANT]))
	{
		if (OidIsValid(get_relname_relid("stock_production_lot", o->nsp)))
		{
			o->version = 16;
			snprintf(o->reason, sizeof(o->reason), "Table %s.stock_production_lot exists and stock_quant does not; this looks like Odoo 15 or older.", odoo_schema_guc);
		}
		else
			snprintf(o->reason, sizeof(o->reason), "Table %s.stock_quant does not exist.", odoo_schema_guc);
		return;
	}
	if (rel_has_column(o->rel[RF_STOCK_MOVE], "quantity_done"))
	{
		o->version = 16;
		snprintf(o->reason, sizeof(o->reason), "Column stock_move.quantity_done exists; Odoo 17 replaced it with stock_move.quantity.");
		return;
	}
	if (rel_has_column(o->rel[RF_STOCK_MOVE_LINE], "reserved_qty") ||
		rel_has_column(o->rel[RF_STOCK_MOVE_LINE], "reserved_uom_qty"))
	{
		o->version = 16;
		snprintf(o->reason, sizeof(o->reason), "Column stock_move_line.reserved_qty exists; Odoo 17 replaced it with stock_move_line.quantity_product_uom.");
		return;
	}
	if (!OidIsValid(o->rel[RF_STOCK_LOT]) && OidIsValid(get_relname_relid("stock_production_lot", o->nsp)))
	{
		o->version = 16;
		snprintf(o->reason, sizeof(o->reason), "Table stock_production_lot exists instead of stock_lot; this looks like Odoo 15 or older.");
		return;
	}
	if (rel_has_column(o->rel[RF_PRODUCT_TEMPLATE], "is_storable"))
	{
		o->version = 18;
		snprintf(o->reason, sizeof(o->reason), "Column product_template.is_storable exists.");
	}
	else if (rel_has_column(o->rel[RF_PRODUCT_TEMPLATE], "detailed_type"))
	{
		o->version = 17;
		snprintf(o->reason, sizeof(o->reason), "Column product_template.detailed_type exists and is_storable does not.");
	}
	else
	{
		o->version = 0;
		snprintf(o->reason, sizeof(o->reason), "Table product_template has neither detailed_type (Odoo 17) nor is_storable (Odoo 18).");
		return;
	}
	/* Every table a supported version needs must have its columns. */
	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
		if (!OidIsValid(o->rel[i]))
			continue;
		for (int c = 0; required_columns[i][c] != NULL; c++)
		{
			if (!rel_has_column(o->rel[i], required_columns[i][c]))
			{
				snprintf(o->reason, sizeof(o->reason), "Column %s.%s does not exist.", RfTableNames[i], required_columns[i][c]);
				o->version = 0;
				return;
			}
		}
	}
}

/* Returns the (cached) detection result. */
const RfOdoo *
RfOdooGet(void)
{
	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(RELOID, odoo_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(ATTNUM, odoo_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, odoo_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, odoo_acl_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, odoo_acl_callback, (Datum) 0);
		callbacks_registered = true;
	}
	if (!odoo_cache_valid)
	{
		odoo_detect(&odoo_cache);
		odoo_cache_valid = true;
	}
	return &odoo_cache;
}

/*
 * Returns the detection, raising a clear error unless this is a supported
 * Odoo database that has every table in table_mask.
 */
const RfOdoo *
RfOdooRequire(uint32 table_mask)
{
	const RfOdoo *o = RfOdooGet();

	if (o->version == 16)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("odoo 16 or older is not supported by retailflow"),
				 errdetail("%s", o->reason),
				 errhint("retailflow supports Odoo 17 and 18; upgrade the database with Odoo's upgrade tooling first.")));
	if (o->version == 0 && OidIsValid(o->rel[RF_STOCK_QUANT]))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported odoo schema in schema \"%s\"", odoo_schema_guc),
				 errdetail("%s", o->reason),
				 errhint("retailflow supports Odoo 17 and 18 with the stock module installed.")));
	if (o->version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("odoo tables were not found in schema \"%s\"", odoo_schema_guc),
				 errdetail("%s", o->reason),
				 errhint("Install Odoo's stock module in this database, or set retailflow.odoo_schema to the schema that holds Odoo's tables.")));
	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
		if ((table_mask & RF_MASK(i)) && o->refused[i])
			RfRefuseNonTable(get_relname_relid(RfTableNames[i], o->nsp), o->refused[i]);
		if ((table_mask & RF_MASK(i)) && !OidIsValid(o->rel[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("odoo table \"%s.%s\" was not found", odoo_schema_guc, RfTableNames[i]),
					 errdetail("This function reads %s, which the Odoo modules installed in this database did not create.", RfTableNames[i]),
					 errhint("Install the Odoo module that provides it (stock, sale_stock or purchase_stock).")));
	}
	RfOdooCheckSelect(o, table_mask);
	return o;
}

/*
 * Raises 42501 unless the current user may SELECT every table in table_mask:
 * reading the heap directly must not see more than a query would.
 */
void
RfOdooCheckSelect(const RfOdoo *o, uint32 table_mask)
{
	Oid			user = GetUserId();

	if (user != acl_user)
	{
		acl_user = user;
		acl_ok_mask = 0;
	}
	if ((table_mask & ~acl_ok_mask) == 0)
		return;
	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
		if (!(table_mask & RF_MASK(i)) || (acl_ok_mask & RF_MASK(i)) || !OidIsValid(o->rel[i]))
			continue;
		if (pg_class_aclcheck(o->rel[i], user, ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", RfTableNames[i]),
					 errdetail("retailflow's functions read Odoo's tables with the caller's privileges, and role \"%s\" may not read %s.",
							   GetUserNameFromId(user, false), RfTableNames[i]),
					 errhint("Odoo's role (the tables' owner) grants SELECT on Odoo's tables to reporting roles; see docs/security.md.")));
		acl_ok_mask |= RF_MASK(i);
	}
}

/* Columns retailflow reads as numeric (Odoo's Float fields with digits, Monetary). */
static const char *const numeric_columns[] = {
	"quantity", "reserved_quantity", "product_qty", "product_uom_qty", "quantity_product_uom",
	"amount_total", "amount_untaxed", "currency_rate", "discount", "price_unit", "price_subtotal",
	"inventory_quantity", "inventory_diff_quantity", "product_min_qty", "product_max_qty", "qty_multiple",
	"rounding", "factor", "list_price", "qty_delivered", NULL
};

/* Columns retailflow reads as text (Odoo's Selection and Char fields). */
static const char *const text_columns[] = {
	"state", "usage", "parent_path", "display_type", "tracking", "type", "detailed_type", "move_type",
	"code", NULL
};

/* The type class retailflow reads a column as: 'i' int4, 'n' numeric, 't' text, 0 when it does not read the datum. */
static char
column_class(const char *column)
{
	size_t		len = strlen(column);

	if (strcmp(column, "id") == 0 || (len > 3 && strcmp(column + len - 3, "_id") == 0) ||
		strcmp(column, "product_uom") == 0)
		return 'i';
	for (int i = 0; numeric_columns[i]; i++)
		if (strcmp(column, numeric_columns[i]) == 0)
			return 'n';
	for (int i = 0; text_columns[i]; i++)
		if (strcmp(column, text_columns[i]) == 0)
			return 't';
	return 0;
}

/*
 * Returns the attribute number of an Odoo column, or errors unless
 * missing_ok.  The column must also have the type retailflow reads its
 * datum as (integer ids, numeric quantities, text states): the heap readers
 * decode datums directly, so a column altered to another type is refused
 * here, with a clear error, instead of being misread.
 */
AttrNumber
RfAttnum(RfTable table, const char *column, bool missing_ok)
{
	const RfOdoo *o = RfOdooGet();
	AttrNumber	attnum = OidIsValid(o->rel[table]) ? get_attnum(o->rel[table], column) : InvalidAttrNumber;
	Oid			typid;
	char		want;
	bool		ok;

	if (attnum == InvalidAttrNumber && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("odoo column \"%s.%s\" was not found", RfTableNames[table], column),
				 errdetail("retailflow needs this column of Odoo's %s table.", RfTableNames[table]),
				 errhint("Check that the database was created by Odoo 17 or 18.")));
	if (attnum == InvalidAttrNumber || (want = column_class(column)) == 0)
		return attnum;
	typid = get_atttype(o->rel[table], attnum);
	ok = want == 'i' ? typid == INT4OID :
		want == 'n' ? typid == NUMERICOID :
		(typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("odoo column \"%s.%s\" is of type %s, not %s", RfTableNames[table], column,
						format_type_be(typid), want == 'i' ? "integer" : want == 'n' ? "numeric" : "character varying"),
				 errdetail("Odoo 17 and 18 create this column as %s, and retailflow reads it as such.",
						   want == 'i' ? "integer" : want == 'n' ? "numeric" : "character varying"),
				 errhint("Restore the column's type; SELECT * FROM retailflow.status() shows what retailflow found.")));
	return attnum;
}

/* Finds a valid, non-partial btree index whose first column is attnum (int4). */
Oid
RfFindLeadingIndex(Oid relid, AttrNumber attnum)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			best = InvalidOid;
	int			best_natts = INT_MAX;

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		Relation	irel = index_open(indexoid, AccessShareLock);
		Form_pg_index idx = irel->rd_index;

		if (idx->indisvalid && idx->indisready && idx->indislive &&
			irel->rd_rel->relam == BTREE_AM_OID &&
			idx->indnkeyatts >= 1 && idx->indkey.values[0] == attnum &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			irel->rd_opcintype[0] == INT4OID &&
			idx->indnatts < best_natts)
		{
			best = indexoid;
			best_natts = idx->indnatts;
		}
		index_close(irel, AccessShareLock);
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
	return best;
}

/* Reads ir_module_module's version of the base module, or NULL. */
static char *
base_module_version(const RfOdoo *o)
{
	char	   *result = NULL;
	char	   *sql;
	int			ret;
	RfRunAs		ra;

	if (!OidIsValid(o->rel[RF_IR_MODULE_MODULE]) ||
		!rel_has_column(o->rel[RF_IR_MODULE_MODULE], "latest_version"))
		return NULL;
	sql = psprintf("SELECT latest_version::text FROM %s.ir_module_module WHERE name = 'base' AND state = 'installed' LIMIT 1",
				   quote_identifier(get_namespace_name(o->nsp)));
	RfOdooSpiConnect(&ra);
	ret = SPI_execute(sql, true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v)
			result = MemoryContextStrdup(TopTransactionContext, v);
	}
	RfOdooSpiFinish(&ra);
	return result;
}

/* Returns the installed extension version, or "not installed". */
static char *
extension_version(void)
{
	char	   *result = "not installed";
	int			nest = RfPinSearchPath();

	SPI_connect();
	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'retailflow'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		result = MemoryContextStrdup(TopTransactionContext,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	RfUnpinSearchPath(nest);
	return result;
}

/* Returns the detected Odoo major version (17, 18), 16 for too old, NULL if none. */
Datum
rf_odoo_version(PG_FUNCTION_ARGS)
{
	const RfOdoo *o = RfOdooGet();

	if (o->version == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(o->version);
}

/* Adds one row to the status() result. */
static void
status_row(Tuplestorestate *ts, TupleDesc td, const char *component, const char *name,
		   const char *status, const char *detail)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = CStringGetTextDatum(component);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(status);
	if (detail)
		values[3] = CStringGetTextDatum(detail);
	else
		nulls[3] = true;
	tuplestore_putvalues(ts, td, values, nulls);
}

/* The value of a setting and where it comes from ("postgresql.conf", "database", ...). */
static char *
setting_with_source(const char *name)
{
	const char *v = GetConfigOption(name, true, false);
	char	   *src = NULL;
	int			nest = RfPinSearchPath();

	SPI_connect();
	if (SPI_execute(psprintf("SELECT source FROM pg_catalog.pg_settings WHERE name = %s",
							 quote_literal_cstr(name)), true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (s)
			src = MemoryContextStrdup(TopTransactionContext, s);
	}
	SPI_finish();
	RfUnpinSearchPath(nest);
	return psprintf("%s (set by: %s)", v ? v : "", src ? src : "unknown");
}

/*
 * Rows of the deployment model: Odoo's role, whether it is a superuser and a
 * member of retailflow_odoo, the extension's owner and the policy settings.
 */
static void
status_security(Tuplestorestate *ts, TupleDesc td, const RfOdoo *o)
{
	Oid			odoo = RfOdooOwner();
	Oid			group = get_role_oid("retailflow_odoo", true);
	bool		member = OidIsValid(group) && has_privs_of_role(odoo, group);
	bool		super = superuser_arg(odoo);

	status_row(ts, td, "security", "odoo role", GetUserNameFromId(odoo, false),
			   psprintf("Owner of Odoo's tables%s; %s; %s.",
						OidIsValid(get_relname_relid("stock_quant", o->nsp)) ? " (of stock_quant)" : " (the database's owner)",
						super ? "a superuser: retailflow cannot run Odoo's reads with fewer rights, run Odoo as an ordinary role" :
						"not a superuser",
						member ? "member of retailflow_odoo" :
						"NOT a member of retailflow_odoo: GRANT retailflow_odoo TO it (README, Installing)"));
	status_row(ts, td, "security", "extension owner", GetUserNameFromId(RfExtensionOwner(), false),
			   "Writes retailflow's own tables on behalf of triggers and workers, inside a security-restricted operation.");
	status_row(ts, td, "policy", "retailflow.conflict_action",
			   GetConfigOption("retailflow.conflict_action", true, false),
			   setting_with_source("retailflow.conflict_action"));
	status_row(ts, td, "policy", "retailflow.approval_enforcement",
			   GetConfigOption("retailflow.approval_enforcement", true, false),
			   setting_with_source("retailflow.approval_enforcement"));
}

/*
 * retailflow.status(): the extension version, the detected Odoo version and
 * which Odoo tables and columns were found, one row each.
 */
Datum
rf_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RfOdoo *o;
	char	   *basever;
	StringInfoData buf;

	InitMaterializedSRF(fcinfo, 0);
	o = RfOdooGet();

	status_row(rsinfo->setResult, rsinfo->setDesc, "extension", "retailflow",
			   extension_version(), psprintf("library built for PostgreSQL %s", PG_MAJORVERSION));
	status_row(rsinfo->setResult, rsinfo->setDesc, "server", "role",
			   RecoveryInProgress() ? "standby" : "primary", NULL);

	basever = base_module_version(o);
	initStringInfo(&buf);
	appendStringInfoString(&buf, o->reason);
	if (basever)
		appendStringInfo(&buf, " ir_module_module reports base %s.", basever);
	status_row(rsinfo->setResult, rsinfo->setDesc, "odoo", "version",
			   o->version == 17 ? "17" : o->version == 18 ? "18" :
			   o->version == 16 ? "unsupported (16 or older)" : "not detected",
			   buf.data);
	status_row(rsinfo->setResult, rsinfo->setDesc, "odoo", "schema",
			   OidIsValid(o->nsp) ? "found" : "missing", odoo_schema_guc);
	status_security(rsinfo->setResult, rsinfo->setDesc, o);

	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
		if (o->refused[i])
		{
			status_row(rsinfo->setResult, rsinfo->setDesc, "table", RfTableNames[i], "refused",
					   psprintf("A %s stands where Odoo's table should be; retailflow never reads it.",
								o->refused[i] == RELKIND_VIEW ? "view" :
								o->refused[i] == RELKIND_FOREIGN_TABLE ? "foreign table" :
								o->refused[i] == RELKIND_MATVIEW ? "materialized view" : "relation that is not a table"));
			continue;
		}
		if (!OidIsValid(o->rel[i]))
		{
			status_row(rsinfo->setResult, rsinfo->setDesc, "table", RfTableNames[i], "missing", NULL);
			continue;
		}
		resetStringInfo(&buf);
		{
			StringInfoData missing;

			initStringInfo(&missing);
			for (int c = 0; required_columns[i][c] != NULL; c++)
			{
				const char *col = required_columns[i][c];
				AttrNumber	att = get_attnum(o->rel[i], col);
				char		want = column_class(col);
				Oid			typid = att != InvalidAttrNumber ? get_atttype(o->rel[i], att) : InvalidOid;

				if (att == InvalidAttrNumber)
					appendStringInfo(&missing, "%s%s", missing.len ? ", " : "", col);
				else if ((want == 'i' && typid != INT4OID) || (want == 'n' && typid != NUMERICOID) ||
						 (want == 't' && typid != TEXTOID && typid != VARCHAROID && typid != BPCHAROID))
					appendStringInfo(&missing, "%s%s (of type %s)", missing.len ? ", " : "", col,
									 format_type_be(typid));
			}
			if (missing.len)
				appendStringInfo(&buf, "missing or mistyped columns: %s", missing.data);
			else
			{
				for (int c = 0; required_columns[i][c] != NULL; c++)
					appendStringInfo(&buf, "%s%s", c ? ", " : "columns: ", required_columns[i][c]);
			}
			status_row(rsinfo->setResult, rsinfo->setDesc, "table", RfTableNames[i],
					   missing.len ? "incomplete" : "found", buf.data);
		}
	}
	return (Datum) 0;
}

/*
 * Statement trigger on Odoo tables that retailflow caches (locations,
 * warehouses, products): queues a relcache invalidation of the table, which
 * every backend (and, through the commit record, every hot standby) processes
 * once the change is committed, so per-backend caches reload.
 */
Datum
rf_cache_invalidate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.cache_invalidate_trigger() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * Event trigger at ddl_command_start for DROP EXTENSION: when retailflow is
 * among the extensions dropped, remove its triggers from Odoo's tables first
 * so that Odoo's tables are left clean.
 */
Datum
rf_drop_extension_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	DropStmt   *stmt;
	ListCell   *lc;
	bool		ours = false;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.drop_extension_guard() must be called as an event trigger")));
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), RF_EXTENSION_NAME) == 0)
			ours = true;
	}
	if (!ours || !OidIsValid(get_extension_oid(RF_EXTENSION_NAME, true)))
		PG_RETURN_VOID();

	{
		int			nest = RfPinSearchPath();

		SPI_connect();
		SPI_execute("SELECT retailflow.detach()", false, 0);
		SPI_finish();
		RfUnpinSearchPath(nest);
	}
	PG_RETURN_VOID();
}

/* ---------- the managed triggers: changes made by anyone but retailflow ---------- */

/* Non-zero while attach()/detach() run: their own changes are not tampering. */
static int	maintenance_depth = 0;

/*
 * Runs sql (attach_triggers() or detach_triggers(), as the caller) with the
 * maintenance mark set for exactly as long as it runs, and returns its rows.
 * No SQL-callable function sets the mark, so a session cannot hide its own
 * DROP TRIGGER behind it.
 */
static Datum
run_maintenance(FunctionCallInfo fcinfo, const char *sql)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nest;

	InitMaterializedSRF(fcinfo, 0);
	nest = RfPinSearchPath();
	maintenance_depth++;
	PG_TRY();
	{
		SPI_connect();
		if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "retailflow: %s failed", sql);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		values[3];
			bool		nulls[3];

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		maintenance_depth--;
	}
	PG_END_TRY();
	RfUnpinSearchPath(nest);
	return (Datum) 0;
}

/* SQL: retailflow.attach(): creates, replaces or enables the managed triggers. */
Datum
rf_attach(PG_FUNCTION_ARGS)
{
	return run_maintenance(fcinfo, "SELECT table_name, trigger_name, action FROM retailflow.attach_triggers()");
}

/* SQL: retailflow.detach(): drops every managed trigger. */
Datum
rf_detach(PG_FUNCTION_ARGS)
{
	return run_maintenance(fcinfo, "SELECT table_name, trigger_name, action FROM retailflow.detach_triggers()");
}

/* Records one change of a managed trigger through retailflow.record_trigger_change(), as the extension's owner. */
static void
record_trigger_change(const char *action, const char *schema, const char *table, const char *trigger,
					  const char *detail)
{
	RfRunAs		ra;
	Datum		v[5];
	char		n[5] = {' ', ' ', ' ', ' ', ' '};

	v[0] = CStringGetTextDatum(action);
	v[1] = CStringGetTextDatum(schema);
	v[2] = CStringGetTextDatum(table);
	if (trigger)
		v[3] = CStringGetTextDatum(trigger);
	else
		n[3] = 'n';
	v[4] = CStringGetTextDatum(detail);
	RfOwnSpiConnect(&ra);
	if (SPI_execute_with_args("SELECT retailflow.record_trigger_change($1, $2, $3, $4, $5)", 5,
							  (Oid[]) {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}, v, n, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not record a change of a managed trigger");
	RfOwnSpiFinish(&ra);
}

/* Is a change made now retailflow's own (extension script, attach(), detach())? */
static bool
trigger_change_is_ours(void)
{
	return creating_extension || maintenance_depth > 0 ||
		!OidIsValid(get_extension_oid(RF_EXTENSION_NAME, true));
}

/*
 * Event trigger at ddl_command_end for ALTER TABLE, ALTER TRIGGER and
 * CREATE TRIGGER: a managed trigger disabled, enabled for replicas only or
 * always, enabled again, renamed, or created or replaced under its name by
 * someone else, and a table holding managed triggers renamed or moved out of
 * Odoo's schema, are recorded (audit row, event, exception through the
 * managed_trigger check).
 */
Datum
rf_managed_trigger_ddl(PG_FUNCTION_ARGS)
{
	EventTriggerData *trig = (EventTriggerData *) fcinfo->context;
	const RfOdoo *o;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.managed_trigger_ddl() must be called as an event trigger")));
	if (trigger_change_is_ours())
		PG_RETURN_VOID();
	o = RfOdooGet();
	if (IsA(trig->parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) trig->parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		if (!OidIsValid(relid) || get_rel_namespace(relid) != o->nsp)
			PG_RETURN_VOID();
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
			const char *what = NULL;
			bool		all = false;

			switch (cmd->subtype)
			{
				case AT_DisableTrig:
					what = "disabled";
					break;
				case AT_DisableTrigAll:
				case AT_DisableTrigUser:
					what = "disabled";
					all = true;
					break;
				case AT_EnableReplicaTrig:
					what = "enabled for replicas only";
					break;
				case AT_EnableAlwaysTrig:
					what = "enabled always";
					break;
				case AT_EnableTrig:
					what = "enabled";
					break;
				case AT_EnableTrigAll:
				case AT_EnableTrigUser:
					what = "enabled";
					all = true;
					break;
				default:
					break;
			}
			if (what)
				record_trigger_change(what, get_namespace_name(o->nsp), get_rel_name(relid),
									  all ? NULL : cmd->name,
									  psprintf("ALTER TABLE %s %s TRIGGER %s", get_rel_name(relid),
											   strncmp(what, "disabled", 8) == 0 ? "DISABLE" : "ENABLE",
											   all ? (cmd->subtype == AT_DisableTrigUser || cmd->subtype == AT_EnableTrigUser ? "USER" : "ALL") :
											   quote_identifier(cmd->name)));
		}
	}
	else if (IsA(trig->parsetree, RenameStmt) &&
			 ((RenameStmt *) trig->parsetree)->renameType == OBJECT_TRIGGER)
	{
		RenameStmt *stmt = (RenameStmt *) trig->parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == o->nsp)
			record_trigger_change("renamed", get_namespace_name(o->nsp), get_rel_name(relid), stmt->subname,
								  psprintf("ALTER TRIGGER %s ON %s RENAME TO %s", quote_identifier(stmt->subname),
										   get_rel_name(relid), quote_identifier(stmt->newname)));
	}
	else if (IsA(trig->parsetree, RenameStmt) &&
			 ((RenameStmt *) trig->parsetree)->renameType == OBJECT_TABLE)
	{
		/* the table now has the new name: its managed triggers left the name they guard */
		RenameStmt *stmt = (RenameStmt *) trig->parsetree;
		Oid			relid = RangeVarGetRelid(makeRangeVar(stmt->relation->schemaname, stmt->newname, -1),
											 NoLock, true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == o->nsp)
			record_trigger_change("table renamed", get_namespace_name(o->nsp), stmt->relation->relname, NULL,
								  psprintf("ALTER TABLE %s RENAME TO %s", quote_identifier(stmt->relation->relname),
										   quote_identifier(stmt->newname)));
	}
	else if (IsA(trig->parsetree, AlterObjectSchemaStmt) &&
			 ((AlterObjectSchemaStmt *) trig->parsetree)->objectType == OBJECT_TABLE)
	{
		/* moved out of Odoo's schema (named explicitly, or found through the search path) */
		AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) trig->parsetree;
		char	   *odoo_nsp = OidIsValid(o->nsp) ? get_namespace_name(o->nsp) : NULL;

		if (odoo_nsp && strcmp(stmt->newschema, odoo_nsp) != 0 &&
			(stmt->relation->schemaname == NULL || strcmp(stmt->relation->schemaname, odoo_nsp) == 0))
			record_trigger_change("table moved", odoo_nsp, stmt->relation->relname, NULL,
								  psprintf("ALTER TABLE %s SET SCHEMA %s", quote_identifier(stmt->relation->relname),
										   quote_identifier(stmt->newschema)));
	}
	else if (IsA(trig->parsetree, CreateTrigStmt))
	{
		/* a trigger of a managed name created by someone else: a look-alike until attach() replaces it */
		CreateTrigStmt *stmt = (CreateTrigStmt *) trig->parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == o->nsp)
			record_trigger_change(stmt->replace ? "replaced" : "created", get_namespace_name(o->nsp),
								  get_rel_name(relid), stmt->trigname,
								  psprintf("CREATE %sTRIGGER %s ON %s", stmt->replace ? "OR REPLACE " : "",
										   quote_identifier(stmt->trigname), get_rel_name(relid)));
	}
	PG_RETURN_VOID();
}

/*
 * Event trigger at sql_drop: a managed trigger dropped from a table of Odoo's
 * schema (DROP TRIGGER, or with its table) is recorded.
 */
Datum
rf_managed_trigger_drop(PG_FUNCTION_ARGS)
{
	const RfOdoo *o;
	List	   *drops = NIL;
	ListCell   *lc;
	char	   *nsp;
	MemoryContext outer;
	int			nest;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.managed_trigger_drop() must be called as an event trigger")));
	if (trigger_change_is_ours())
		PG_RETURN_VOID();
	o = RfOdooGet();
	nsp = OidIsValid(o->nsp) ? get_namespace_name(o->nsp) : NULL;
	if (nsp == NULL)
		PG_RETURN_VOID();
	outer = CurrentMemoryContext;
	nest = RfPinSearchPath();
	SPI_connect();
	if (SPI_execute_with_args("SELECT o.address_names[2], o.address_names[3], o.original "
							  "FROM pg_catalog.pg_event_trigger_dropped_objects() o "
							  "WHERE o.object_type OPERATOR(pg_catalog.=) 'trigger' "
							  "AND o.address_names[1] OPERATOR(pg_catalog.=) $1 "
							  "AND o.address_names[3] OPERATOR(pg_catalog.~~) 'retailflow\\_%'",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(nsp)}, NULL, true, 0) == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *t = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
			char	   *g = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
			char	   *orig = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);

			if (t && g)
			{
				MemoryContext spi = MemoryContextSwitchTo(outer);

				drops = lappend(drops, list_make3(pstrdup(t), pstrdup(g),
												  pstrdup(orig && orig[0] == 't' ? "DROP TRIGGER" :
														  "dropped with its table")));
				MemoryContextSwitchTo(spi);
			}
		}
	}
	SPI_finish();
	RfUnpinSearchPath(nest);
	foreach(lc, drops)
	{
		List	   *d = (List *) lfirst(lc);

		record_trigger_change("dropped", nsp, linitial(d), lsecond(d), lthird(d));
	}
	PG_RETURN_VOID();
}
