/*
 * odoo_catalog.c
 *	  Owns what retailflow knows about the Odoo database it runs in: which
 *	  schema holds Odoo's tables (GUC retailflow.odoo_schema), which Odoo
 *	  version the columns say it is (17 and 18 supported, 16 and older
 *	  refused), the retailflow.status() report, the statement trigger that
 *	  turns data changes of cached Odoo tables into relcache invalidations,
 *	  and the event trigger that detaches retailflow's triggers from Odoo's
 *	  tables when the extension is dropped.
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
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_status);
PG_FUNCTION_INFO_V1(rf_odoo_version);
PG_FUNCTION_INFO_V1(rf_cache_invalidate_trigger);
PG_FUNCTION_INFO_V1(rf_drop_extension_guard);

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

/* Marks the cached detection stale when pg_class/pg_attribute change. */
static void
odoo_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	odoo_cache_valid = false;
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
							   PGC_USERSET,
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
			relid = InvalidOid;
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
		if ((table_mask & RF_MASK(i)) && !OidIsValid(o->rel[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("odoo table \"%s.%s\" was not found", odoo_schema_guc, RfTableNames[i]),
					 errdetail("This function reads %s, which the Odoo modules installed in this database did not create.", RfTableNames[i]),
					 errhint("Install the Odoo module that provides it (stock, sale_stock or purchase_stock).")));
	}
	return o;
}

/* Returns the attribute number of an Odoo column, or errors unless missing_ok. */
AttrNumber
RfAttnum(RfTable table, const char *column, bool missing_ok)
{
	const RfOdoo *o = RfOdooGet();
	AttrNumber	attnum = OidIsValid(o->rel[table]) ? get_attnum(o->rel[table], column) : InvalidAttrNumber;

	if (attnum == InvalidAttrNumber && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("odoo column \"%s.%s\" was not found", RfTableNames[table], column),
				 errdetail("retailflow needs this column of Odoo's %s table.", RfTableNames[table]),
				 errhint("Check that the database was created by Odoo 17 or 18.")));
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

/* True while this server is a hot standby (or otherwise in recovery). */
bool
RfInRecovery(void)
{
	return RecoveryInProgress();
}

/* Reads ir_module_module's version of the base module, or NULL. */
static char *
base_module_version(const RfOdoo *o)
{
	char	   *result = NULL;
	char	   *sql;
	int			ret;

	if (!OidIsValid(o->rel[RF_IR_MODULE_MODULE]) ||
		!rel_has_column(o->rel[RF_IR_MODULE_MODULE], "latest_version"))
		return NULL;
	sql = psprintf("SELECT latest_version::text FROM %s.ir_module_module WHERE name = 'base' AND state = 'installed' LIMIT 1",
				   quote_identifier(get_namespace_name(o->nsp)));
	SPI_connect();
	ret = SPI_execute(sql, true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v)
			result = MemoryContextStrdup(TopTransactionContext, v);
	}
	SPI_finish();
	return result;
}

/* Returns the installed extension version, or "not installed". */
static char *
extension_version(void)
{
	char	   *result = "not installed";

	SPI_connect();
	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'retailflow'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		result = MemoryContextStrdup(TopTransactionContext,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
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

	for (int i = 0; i < RF_NUM_TABLES; i++)
	{
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
				if (!rel_has_column(o->rel[i], required_columns[i][c]))
					appendStringInfo(&missing, "%s%s", missing.len ? ", " : "", required_columns[i][c]);
			}
			if (missing.len)
				appendStringInfo(&buf, "missing columns: %s", missing.data);
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

	SPI_connect();
	SPI_execute("SELECT retailflow.detach()", false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}
