/*
 * run_as.c
 *	  Owns who retailflow's code runs as.  PostgreSQL's own rule (since
 *	  CVE-2022-1552) is that work done on a table on someone else's behalf
 *	  runs as the table's owner inside a security-restricted operation, as
 *	  REFRESH MATERIALIZED VIEW and autovacuum do.  retailflow follows it:
 *	    RfRunAsExtensionOwner()  retailflow's own tables (outbox, deliveries,
 *	        exception log, guards, approval requests, audit) are written by
 *	        fixed, schema-qualified SQL as the extension's owner, inside a
 *	        security-restricted operation, with search_path pinned to
 *	        pg_catalog, pg_temp
 *	    RfRunAsOdooReader()      Odoo's tables are never read or written with
 *	        a superuser's rights: when the current user is a superuser (a
 *	        SECURITY DEFINER function, a background worker, a DBA) they are
 *	        read as the owner of Odoo's tables, inside a security-restricted
 *	        operation; anyone else reads them with their own rights.  Either
 *	        way search_path is pinned to pg_catalog, pg_temp: retailflow's SQL
 *	        names Odoo's tables with their schema, so nobody's operators or
 *	        functions in Odoo's schema can stand in for the built-in ones
 *	    the plain-table rule     while retailflow reads Odoo's schema, a view,
 *	        foreign table or materialized view there is refused (an executor
 *	        permission hook), so nothing can stand in for an Odoo table
 *	    retailflow.odoo_query()  the one way retailflow's SQL functions reach
 *	        Odoo's tables: {odoo} is replaced by the schema, and both rules
 *	        above apply
 *	    RfPinSearchPath()        any other SQL retailflow runs on the caller's
 *	        behalf (catalog reads) resolves names in pg_catalog only
 *	    retailflow.acting_role() the role a session acts as (SET ROLE
 *	        included, SECURITY DEFINER excluded), for audit rows
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/xact.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_odoo_query);
PG_FUNCTION_INFO_V1(rf_odoo_exec);
PG_FUNCTION_INFO_V1(rf_acting_role);

static ExecutorCheckPerms_hook_type prev_check_perms_hook = NULL;

/* > 0 while retailflow reads Odoo's tables (reset when a transaction aborts). */
static int	odoo_read_depth = 0;

static Oid	ext_owner_cache = InvalidOid;

/* Forgets the cached extension owner when pg_namespace changes. */
static void
ext_owner_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	ext_owner_cache = InvalidOid;
}

/* Owner of the retailflow schema (the extension's owner). */
Oid
RfExtensionOwner(void)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, ext_owner_inval, (Datum) 0);
		registered = true;
	}
	if (!OidIsValid(ext_owner_cache))
	{
		Oid			nsp = get_namespace_oid(RF_SCHEMA_NAME, false);
		HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for namespace %u", nsp);
		ext_owner_cache = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	return ext_owner_cache;
}

/* Owner of a relation, or InvalidOid. */
static Oid
rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The role that owns Odoo's tables: the owner of stock_quant (of res_users
 * without the stock module), else the database's owner.
 */
Oid
RfOdooOwner(void)
{
	const RfOdoo *o = RfOdooGet();
	Oid			owner = InvalidOid;
	HeapTuple	tup;

	if (OidIsValid(o->nsp))
	{
		Oid			rel = get_relname_relid("stock_quant", o->nsp);

		if (!OidIsValid(rel))
			rel = get_relname_relid("res_users", o->nsp);
		if (OidIsValid(rel))
			owner = rel_owner(rel);
	}
	if (OidIsValid(owner))
		return owner;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	owner = ((Form_pg_database) GETSTRUCT(tup))->datdba;
	ReleaseSysCache(tup);
	return owner;
}

/* Opens a GUC nest level with search_path = pg_catalog, pg_temp; returns the level for RfUnpinSearchPath(). */
int
RfPinSearchPath(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* Closes RfPinSearchPath(): the settings as before. */
void
RfUnpinSearchPath(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
}

/* Switches to role (unless InvalidOid), with search_path pinned in its own GUC nest level. */
static void
run_as(RfRunAs *ra, Oid role)
{
	if (OidIsValid(role))
	{
		GetUserIdAndSecContext(&ra->save_user, &ra->save_sec);
		SetUserIdAndSecContext(role, ra->save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
	}
	ra->role_switched = OidIsValid(role);
	ra->nestlevel = RfPinSearchPath();
	ra->switched = true;
}

/*
 * Runs what follows as the extension's owner, for fixed SQL on retailflow's
 * own tables: a security-restricted operation with search_path pinned.
 */
void
RfRunAsExtensionOwner(RfRunAs *ra)
{
	ra->counted = false;
	run_as(ra, RfExtensionOwner());
}

/*
 * Runs what follows with the right to read Odoo's tables: a superuser (or the
 * extension's owner) becomes the owner of Odoo's tables inside a
 * security-restricted operation; anyone else stays who they are.  The
 * plain-table rule applies until RfRunAsEnd().
 */
void
RfRunAsOdooReader(RfRunAs *ra)
{
	Oid			cur = GetUserId();
	Oid			role = InvalidOid;

	ra->switched = false;
	ra->counted = true;
	odoo_read_depth++;
	if (superuser_arg(cur) || cur == RfExtensionOwner())
	{
		Oid			owner = RfOdooOwner();

		if (owner != cur && !superuser_arg(owner))
			role = owner;
	}
	run_as(ra, role);
}

/* Ends RfRunAsExtensionOwner() / RfRunAsOdooReader(): settings and role as before. */
void
RfRunAsEnd(RfRunAs *ra)
{
	if (ra->switched)
	{
		RfUnpinSearchPath(ra->nestlevel);
		if (ra->role_switched)
			SetUserIdAndSecContext(ra->save_user, ra->save_sec);
		ra->switched = false;
	}
	if (ra->counted && odoo_read_depth > 0)
		odoo_read_depth--;
	ra->counted = false;
}

/* What a relkind is called in messages. */
static const char *
relkind_word(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		default:
			return "relation that is not a table";
	}
}

/* Raises the plain-table refusal for relation relid of kind relkind. */
void
RfRefuseNonTable(Oid relid, char relkind)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("odoo relation \"%s.%s\" is a %s, not a table", nsp ? nsp : "?", rel ? rel : "?",
					relkind_word(relkind)),
			 errdetail("retailflow reads Odoo's schema only through plain tables; a view, foreign table or "
					   "materialized view there could run code or hide rows."),
			 errhint("Restore the table Odoo created. SELECT * FROM retailflow.status() lists what retailflow found.")));
}

/*
 * Executor permission hook: while retailflow reads Odoo's tables, any view,
 * foreign table or materialized view of Odoo's schema in a query is refused.
 */
static bool
rf_check_perms(List *rangeTable, bool ereport_on_violation)
{
	if (odoo_read_depth > 0)
	{
		const RfOdoo *o = RfOdooGet();
		ListCell   *lc;

		foreach(lc, rangeTable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

			if (rte->rtekind != RTE_RELATION || rte->relkind == RELKIND_RELATION ||
				rte->relkind == RELKIND_PARTITIONED_TABLE || !OidIsValid(o->nsp))
				continue;
			if (get_rel_namespace(rte->relid) == o->nsp)
				RfRefuseNonTable(rte->relid, rte->relkind);
		}
	}
	if (prev_check_perms_hook)
		return prev_check_perms_hook(rangeTable, ereport_on_violation);
	return true;
}

/* A transaction that aborted left no Odoo read in progress. */
static void
run_as_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		odoo_read_depth = 0;
}

/* Installs the executor permission hook. */
void
RunAsInit(void)
{
	prev_check_perms_hook = ExecutorCheckPerms_hook;
	ExecutorCheckPerms_hook = rf_check_perms;
	RegisterXactCallback(run_as_xact_callback, NULL);
}

/* Replaces every {odoo} in sql by the quoted name of Odoo's schema. */
static char *
expand_odoo(const char *sql)
{
	const RfOdoo *o = RfOdooGet();
	const char *schema = OidIsValid(o->nsp) ? quote_identifier(get_namespace_name(o->nsp)) : NULL;
	StringInfoData buf;
	const char *p = sql;
	const char *hit;

	initStringInfo(&buf);
	while ((hit = strstr(p, "{odoo}")) != NULL)
	{
		if (schema == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_SCHEMA),
					 errmsg("the schema of Odoo's tables was not found"),
					 errdetail("%s", o->reason),
					 errhint("A superuser sets retailflow.odoo_schema to the schema that holds Odoo's tables.")));
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, schema);
		p = hit + 6;
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

/* The arguments after the statement of odoo_query()/odoo_exec(), as SPI wants them. */
static int
odoo_args(FunctionCallInfo fcinfo, Oid **types, Datum **values, char **nulls)
{
	int			nargs = PG_NARGS() - 1;

	if (nargs <= 0)
		return 0;
	if (get_fn_expr_variadic(fcinfo->flinfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("odoo_query() takes its arguments one by one, not as a VARIADIC array")));
	*types = palloc(sizeof(Oid) * nargs);
	*values = palloc(sizeof(Datum) * nargs);
	*nulls = palloc(nargs);
	for (int i = 0; i < nargs; i++)
	{
		Oid			t = get_fn_expr_argtype(fcinfo->flinfo, i + 1);

		if (!OidIsValid(t))
			elog(ERROR, "could not determine the type of odoo_query() argument %d", i + 1);
		(*nulls)[i] = PG_ARGISNULL(i + 1) ? 'n' : ' ';
		if (t == UNKNOWNOID)
		{
			/* an untyped literal: passed as text */
			t = TEXTOID;
			(*values)[i] = PG_ARGISNULL(i + 1) ? (Datum) 0 :
				CStringGetTextDatum(DatumGetCString(PG_GETARG_DATUM(i + 1)));
		}
		else
			(*values)[i] = PG_GETARG_DATUM(i + 1);
		(*types)[i] = t;
	}
	return nargs;
}

/*
 * Runs one statement over Odoo's tables as RfRunAsOdooReader() says, with
 * unqualified names resolved in Odoo's schema; rows go to rsinfo (when
 * given, typed as its column definition list).  Returns the rows processed.
 */
static uint64
odoo_run(FunctionCallInfo fcinfo, ReturnSetInfo *rsinfo)
{
	char	   *sql;
	Oid		   *types = NULL;
	Datum	   *values = NULL;
	char	   *nulls = NULL;
	int			nargs;
	RfRunAs		ra;
	int			ret;
	uint64		processed;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the statement of odoo_query() must not be null")));
	sql = expand_odoo(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	nargs = odoo_args(fcinfo, &types, &values, &nulls);

	/* search_path pinned: Odoo's tables are named {odoo}.name, never found through the path */
	RfRunAsOdooReader(&ra);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "odoo_query() failed: %s", SPI_result_code_string(ret));
	processed = SPI_processed;
	if (rsinfo != NULL && SPI_tuptable != NULL)
	{
		TupleDesc	got = SPI_tuptable->tupdesc;
		TupleDesc	want = rsinfo->setDesc;

		if (got->natts != want->natts)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("odoo_query() returned %d columns, the column definition list has %d", got->natts, want->natts)));
		for (int i = 0; i < got->natts; i++)
			if (TupleDescAttr(got, i)->atttypid != TupleDescAttr(want, i)->atttypid)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("odoo_query() column %d is of type %s, the column definition list says %s", i + 1,
								format_type_be(TupleDescAttr(got, i)->atttypid),
								format_type_be(TupleDescAttr(want, i)->atttypid)),
						 errhint("Cast the column in the statement.")));
		for (uint64 r = 0; r < SPI_processed; r++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
	}
	SPI_finish();
	RfRunAsEnd(&ra);
	return processed;
}

/*
 * SQL: retailflow.odoo_query(sql text [, VARIADIC args "any"]) RETURNS SETOF
 * record: the rows of one statement over Odoo's tables ({odoo} = their
 * schema, $n = the arguments), whose column types must match the caller's
 * column definition list.
 */
Datum
rf_odoo_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("odoo_query() must be called in FROM with a column definition list"),
				 errhint("For example SELECT * FROM retailflow.odoo_query('SELECT id FROM {odoo}.stock_location') AS t(id integer).")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) odoo_run(fcinfo, rsinfo);
	return (Datum) 0;
}

/* SQL: retailflow.odoo_exec(sql text [, VARIADIC args "any"]) RETURNS bigint: odoo_query() for statements without rows. */
Datum
rf_odoo_exec(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) odoo_run(fcinfo, NULL));
}

/* SQL: retailflow.acting_role(): the role this session acts as (SET ROLE counts, SECURITY DEFINER does not). */
Datum
rf_acting_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}

/* Connects SPI to read Odoo's tables, as RfRunAsOdooReader() says. */
void
RfOdooSpiConnect(RfRunAs *ra)
{
	RfRunAsOdooReader(ra);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Ends RfOdooSpiConnect(). */
void
RfOdooSpiFinish(RfRunAs *ra)
{
	SPI_finish();
	RfRunAsEnd(ra);
}

/* Connects SPI to write retailflow's own tables, as RfRunAsExtensionOwner() says. */
void
RfOwnSpiConnect(RfRunAs *ra)
{
	RfRunAsExtensionOwner(ra);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Ends RfOwnSpiConnect(). */
void
RfOwnSpiFinish(RfRunAs *ra)
{
	SPI_finish();
	RfRunAsEnd(ra);
}
