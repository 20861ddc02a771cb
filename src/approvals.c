/*
 * approvals.c
 *	  Owns approval rule evaluation:
 *	    retailflow.required_approvals(document_type, record_id)  the rules an Odoo
 *	        document matches, with the reason in words, in approval order
 *	    retailflow.required_approvals(document_type, facts jsonb) the same for a
 *	        what-if set of facts
 *	    retailflow.approval_enforce()   the enforcement trigger on Odoo's state
 *	        changes (its slow path, naming what is missing, is SQL:
 *	        approval_enforce_missing() in sql/install/40_approvals.sql)
 *	  and the GUCs retailflow.approval_enforcement and retailflow.odoo_user_id.
 *
 *	  Speed: the active rules are cached per backend, grouped by document type
 *	  in approval order.  A statement trigger on retailflow.approval_rule (and,
 *	  through retailflow.managed_trigger, on product_category and
 *	  res_partner_category, whose paths and names the cache holds) queues a
 *	  relcache invalidation, so a committed change marks the cache stale in
 *	  every backend.  A cache loaded in the transaction that received the
 *	  invalidation is trusted for that transaction only.  A document's facts
 *	  (company, amount in company currency, largest line discount, margin,
 *	  product category paths, partner tags) are read with the caller's
 *	  snapshot, then matched in C: sale orders by direct index scans with a
 *	  per-backend product cache (category path, list price, cost per company;
 *	  invalidated through product_product, product_template, product_category
 *	  and ir_property), the other types with kept SPI plans.  Only the facts
 *	  the active rules need are read.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_required_approvals);
PG_FUNCTION_INFO_V1(rf_required_approvals_facts);
PG_FUNCTION_INFO_V1(rf_approval_active_rules);
PG_FUNCTION_INFO_V1(rf_approval_enforce);
PG_FUNCTION_INFO_V1(rf_approval_document_amount);

/* Document types rules apply to. */
typedef enum ApDoc
{
	AP_SALE_ORDER = 0,
	AP_SALE_ORDER_LINE,
	AP_PURCHASE_ORDER,
	AP_ACCOUNT_MOVE,
	AP_STOCK_QUANT,
	AP_NUM_DOCS
} ApDoc;

static const char *const ap_doc_names[AP_NUM_DOCS] = {
	"sale.order", "sale.order.line", "purchase.order", "account.move", "stock.quant"
};

/* How reasons name the document's amount. */
static const char *const ap_doc_labels[AP_NUM_DOCS] = {
	"sale order", "price override", "purchase order", "refund", "inventory adjustment"
};

/* One cached active rule. */
typedef struct ApRule
{
	int32		id;
	char	   *name;
	int32		company_id;		/* 0 = every company */
	bool		has_amin, has_amax, has_disc, has_margin, has_risk;
	double		amin, amax, max_disc, min_margin, min_risk;
	char	   *cat_path;		/* NULL = no category condition */
	int			cat_pathlen;
	char	   *cat_name;
	int			ntags;
	int32	   *tags;
	char	  **tag_names;
	int32		group_id;
	int32		level;
	int32		sequence;
	bool		has_sla;
	Interval	sla;
} ApRule;

/* A document's facts, gathered from Odoo's tables or from jsonb. */
typedef struct ApFacts
{
	bool		applicable;		/* false: not a document rules apply to (e.g. an invoice) */
	int32		company_id;
	bool		has_amount, has_disc, has_margin, has_risk;
	double		amount, disc, margin, risk;
	int			npaths;
	char	  **paths;
	int			ntags;
	int32	   *tags;
} ApFacts;

/* Which facts the active rules of a document type need (bits of ApCache.need). */
#define AP_NEED_LINES	0x01		/* discount, margin or category */
#define AP_NEED_COST	0x02		/* margin */
#define AP_NEED_TAGS	0x04		/* partner tags */

typedef struct ApCache
{
	MemoryContext cxt;
	bool		stale;
	bool		txonly;
	LocalTransactionId loaded_lxid;
	LocalTransactionId inval_lxid;
	Oid			rule_relid;
	Oid			cat_relid;
	Oid			tag_relid;
	ApRule	   *rules[AP_NUM_DOCS];
	int			nrules[AP_NUM_DOCS];
	/* kept fact plans, valid for plan_nsp / plan_version */
	SPIPlanPtr	plans[AP_NUM_DOCS][2][8];	/* [doc][lines query?][need] */
	int			need[AP_NUM_DOCS];	/* AP_NEED_* the active rules use */
	/* product part: category path, list price and costs, for direct sale order scans */
	MemoryContext prod_cxt;
	bool		prod_stale;
	bool		prod_txonly;
	LocalTransactionId prod_loaded_lxid;
	LocalTransactionId prod_inval_lxid;
	Oid			prod_rel[5];	/* product_product, product_template, product_category, ir_property, uom (unused) */
	HTAB	   *prods;			/* ApProd by product id */
	HTAB	   *costs;			/* ApCost by (product, company) */
	/* sale order scan setup, valid for plan_nsp / plan_version */
	bool		so_ready;
	Oid			so_rel, so_idx, sol_rel, sol_idx, tag_rel, tag_idx;
	AttrNumber	so_id, so_company, so_amount, so_rate, so_partner;
	AttrNumber	sol_order, sol_display, sol_product, sol_discount, sol_price, sol_subtotal, sol_qty, sol_company;
	AttrNumber	tag_partner, tag_category;
	Oid			plan_nsp;
	int			plan_version;
} ApCache;

/* A product as sale order facts need it. */
typedef struct ApProd
{
	int32		id;
	double		list_price;
	char	   *cat_path;		/* NULL when the product has no category */
} ApProd;

/* The cost of a product in a company (company 0: the row without company). */
typedef struct ApCostKey
{
	int32		product_id;
	int32		company_id;
} ApCostKey;

typedef struct ApCost
{
	ApCostKey	key;
	double		cost;
} ApCost;

static ApCache ap;
static bool ap_initialized = false;

/* Per-relation column numbers the enforcement trigger reads from NEW. */
typedef struct ApTrigCols
{
	Oid			relid;
	AttrNumber	id;
	AttrNumber	write_uid;
	AttrNumber	state;
	AttrNumber	move_type;		/* account_move */
	AttrNumber	is_inventory;	/* stock_move */
} ApTrigCols;

static ApTrigCols ap_trig_cols[AP_NUM_DOCS];

/* GUC retailflow.approval_enforcement */
static const struct config_enum_entry enforcement_options[] = {
	{"off", 0, false},
	{"log", 1, false},
	{"block", 2, false},
	{NULL, 0, false}
};
static int	approval_enforcement = 1;
static int	odoo_user_id = 0;

/* Registers the approvals GUCs. */
void
ApprovalsInit(void)
{
	DefineCustomEnumVariable("retailflow.approval_enforcement",
							 "What Odoo state changes that lack approvals do: off, log or block.",
							 "log lets the change through, creates the pending requests and records it in the audit log; "
							 "block refuses the change naming the missing approvals.",
							 &approval_enforcement,
							 1,
							 enforcement_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.odoo_user_id",
							"Odoo user (res_users.id) acting in this session, for audit rows and approval requests.",
							"0 means unknown: triggers then use the document's write_uid.",
							&odoo_user_id,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
}

/* Relcache callback: marks the rule cache stale when a table it reads changes. */
static void
ap_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == ap.rule_relid || relid == ap.cat_relid || relid == ap.tag_relid)
	{
		ap.stale = true;
		ap.inval_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	}
	/* DDL on a table with the enforcement trigger: look its columns up again */
	for (int d = 0; d < AP_NUM_DOCS; d++)
		if (!OidIsValid(relid) || relid == ap_trig_cols[d].relid)
			ap_trig_cols[d].relid = InvalidOid;
	/* DDL on the scanned tables (indexes created or dropped) redoes the scan setup */
	if (!OidIsValid(relid) || relid == ap.so_rel || relid == ap.sol_rel || relid == ap.tag_rel)
		ap.so_ready = false;
	for (int i = 0; i < 4; i++)
	{
		if (!OidIsValid(relid) || (OidIsValid(ap.prod_rel[i]) && relid == ap.prod_rel[i]))
		{
			ap.prod_stale = true;
			ap.prod_inval_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
		}
	}
}

/* Returns the document type for a name, or raises a clear error. */
static ApDoc
ap_doc_from_text(text *t)
{
	char	   *s = text_to_cstring(t);

	for (int i = 0; i < AP_NUM_DOCS; i++)
		if (strcmp(s, ap_doc_names[i]) == 0)
			return (ApDoc) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown approval document type \"%s\"", s),
			 errdetail("Approvals apply to sale.order, sale.order.line, purchase.order, account.move and stock.quant."),
			 errhint("Use the Odoo model name, for example 'purchase.order'.")));
	return AP_SALE_ORDER;		/* not reached */
}

/* Reads a float8 column of SPI row 0..n, reporting NULL through *has. */
static inline double
spi_f8(HeapTuple tup, TupleDesc td, int col, bool *has)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);

	*has = !isnull;
	return isnull ? 0.0 : DatumGetFloat8(d);
}

/* Reads an int4 column, dflt when NULL. */
static inline int32
spi_i4(HeapTuple tup, TupleDesc td, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

/* Copies an int4[] column into cxt; returns the element count. */
static int
spi_int_array(HeapTuple tup, TupleDesc td, int col, MemoryContext cxt, int32 **out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				k = 0;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &n);
	*out = MemoryContextAlloc(cxt, sizeof(int32) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			(*out)[k++] = DatumGetInt32(elems[i]);
	return k;
}

/* Copies a text[] column into cxt; returns the element count (NULLs kept as NULL). */
static int
spi_text_array(HeapTuple tup, TupleDesc td, int col, MemoryContext cxt, char ***out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	*out = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*out)[i] = nulls[i] ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
	return n;
}

/*
 * Loads the active rules into the cache, grouped by document type in
 * approval order.  The rules are retailflow's own table, read as the
 * extension's owner (so that any role writing Odoo's documents is checked
 * against them); the category paths and partner tag names they name are
 * Odoo's, read as run_as.c says.
 */
static void
ap_load_rules(const char *nsp)
{
	MemoryContext cxt = ap.cxt;
	int			count[AP_NUM_DOCS] = {0};
	TupleDesc	td;
	RfRunAs		ra;
	int32	   *cats;			/* product_category_id per loaded rule (0 = none) */
	ApRule	  **byrow;
	uint64		nrows;

	RfOwnSpiConnect(&ra);
	if (SPI_execute("SELECT r.id, r.name, r.document_type, r.company_id, r.amount_min::pg_catalog.float8, "
					"r.amount_max::pg_catalog.float8, r.max_discount::pg_catalog.float8, "
					"r.min_margin::pg_catalog.float8, r.min_risk_score::pg_catalog.float8, "
					"r.product_category_id, r.partner_category_ids, r.group_id, r.level, r.sequence, r.sla "
					"FROM retailflow.approval_rule r "
					"WHERE r.active ORDER BY r.level, r.sequence, r.id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read retailflow.approval_rule");
	td = SPI_tuptable->tupdesc;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows; i++)
	{
		char	   *dt = SPI_getvalue(SPI_tuptable->vals[i], td, 3);

		for (int d = 0; d < AP_NUM_DOCS; d++)
			if (dt && strcmp(dt, ap_doc_names[d]) == 0)
				count[d]++;
	}
	for (int d = 0; d < AP_NUM_DOCS; d++)
	{
		ap.rules[d] = MemoryContextAllocZero(cxt, sizeof(ApRule) * Max(count[d], 1));
		ap.nrules[d] = 0;
	}
	cats = MemoryContextAllocZero(cxt, sizeof(int32) * Max(nrows, 1));
	byrow = MemoryContextAllocZero(cxt, sizeof(ApRule *) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *dt = SPI_getvalue(tup, td, 3);
		int			d;
		ApRule	   *r;
		char	   *s;
		bool		isnull;
		Datum		v;

		for (d = 0; d < AP_NUM_DOCS; d++)
			if (dt && strcmp(dt, ap_doc_names[d]) == 0)
				break;
		if (d == AP_NUM_DOCS)
			continue;
		r = &ap.rules[d][ap.nrules[d]++];
		byrow[i] = r;
		r->id = spi_i4(tup, td, 1, 0);
		s = SPI_getvalue(tup, td, 2);
		r->name = MemoryContextStrdup(cxt, s ? s : "");
		r->company_id = spi_i4(tup, td, 4, 0);
		r->amin = spi_f8(tup, td, 5, &r->has_amin);
		r->amax = spi_f8(tup, td, 6, &r->has_amax);
		r->max_disc = spi_f8(tup, td, 7, &r->has_disc);
		r->min_margin = spi_f8(tup, td, 8, &r->has_margin);
		r->min_risk = spi_f8(tup, td, 9, &r->has_risk);
		cats[i] = spi_i4(tup, td, 10, 0);
		r->ntags = spi_int_array(tup, td, 11, cxt, &r->tags);
		r->group_id = spi_i4(tup, td, 12, 0);
		r->level = spi_i4(tup, td, 13, 1);
		r->sequence = spi_i4(tup, td, 14, 10);
		if (r->has_disc || r->has_margin || cats[i])
			ap.need[d] |= AP_NEED_LINES;
		if (r->has_margin)
			ap.need[d] |= AP_NEED_COST;
		if (r->ntags > 0)
			ap.need[d] |= AP_NEED_TAGS;
		v = SPI_getbinval(tup, td, 15, &isnull);
		r->has_sla = !isnull;
		if (!isnull)
			r->sla = *DatumGetIntervalP(v);
	}
	RfOwnSpiFinish(&ra);

	/* the category paths and tag names the rules name, from Odoo's tables */
	RfOdooSpiConnect(&ra);
	for (uint64 i = 0; i < nrows; i++)
	{
		ApRule	   *r = byrow[i];
		Oid			t[1] = {INT4OID};
		Datum		v[1];

		if (r == NULL)
			continue;
		if (cats[i])
		{
			v[0] = Int32GetDatum(cats[i]);
			if (SPI_execute_with_args(psprintf("SELECT pc.parent_path::text, coalesce(pc.complete_name::text, pc.parent_path::text) "
											   "FROM %s.product_category pc WHERE pc.id = $1", nsp),
									  1, t, v, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "retailflow: could not read product_category");
			if (SPI_processed == 1)
			{
				char	   *path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
				char	   *name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

				if (path)
				{
					r->cat_path = MemoryContextStrdup(cxt, path);
					r->cat_pathlen = strlen(path);
					r->cat_name = MemoryContextStrdup(cxt, name ? name : path);
				}
			}
		}
		if (r->ntags > 0)
		{
			Datum	   *elems = palloc(sizeof(Datum) * r->ntags);
			ArrayType  *arr;
			char	  **names;

			for (int k = 0; k < r->ntags; k++)
				elems[k] = Int32GetDatum(r->tags[k]);
			arr = construct_array(elems, r->ntags, INT4OID, sizeof(int32), true, TYPALIGN_INT);
			t[0] = INT4ARRAYOID;
			v[0] = PointerGetDatum(arr);
			if (SPI_execute_with_args(psprintf("SELECT array_agg(coalesce(to_jsonb(c.name) ->> 'en_US', c.name::text, u.id::text) ORDER BY u.o) "
											   "FROM unnest($1) WITH ORDINALITY u(id, o) "
											   "LEFT JOIN %s.res_partner_category c ON c.id = u.id", nsp),
									  1, t, v, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "retailflow: could not read res_partner_category");
			if (SPI_processed == 1 && spi_text_array(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, cxt, &names) >= r->ntags)
				r->tag_names = names;
		}
	}
	RfOdooSpiFinish(&ra);
}

/* Makes sure the rule cache is loaded and valid for this transaction. */
static void
ap_ensure_rules(const RfOdoo *o)
{
	LocalTransactionId lxid = MyProc->lxid;

	AcceptInvalidationMessages();
	if (!ap_initialized)
	{
		ap.cxt = AllocSetContextCreate(CacheMemoryContext, "retailflow approvals cache", ALLOCSET_DEFAULT_SIZES);
		ap.prod_cxt = AllocSetContextCreate(CacheMemoryContext, "retailflow approvals product cache", ALLOCSET_DEFAULT_SIZES);
		ap.stale = true;
		ap.prod_stale = true;
		CacheRegisterRelcacheCallback(ap_relcache_callback, (Datum) 0);
		ap_initialized = true;
	}
	if (!ap.stale && ap.txonly && ap.loaded_lxid != lxid)
		ap.stale = true;
	if (!ap.stale)
		return;

	{
		Oid			rfnsp = get_namespace_oid(RF_SCHEMA_NAME, true);
		const char *nsp = quote_identifier(get_namespace_name(o->nsp));

		ap.rule_relid = OidIsValid(rfnsp) ? get_relname_relid("approval_rule", rfnsp) : InvalidOid;
		if (!OidIsValid(ap.rule_relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("retailflow.approval_rule does not exist"),
					 errhint("CREATE EXTENSION retailflow in this database.")));
		ap.cat_relid = o->rel[RF_PRODUCT_CATEGORY];
		ap.tag_relid = get_relname_relid("res_partner_category", o->nsp);
		if (!OidIsValid(ap.tag_relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("odoo table \"res_partner_category\" was not found"),
					 errdetail("Approval rules name partner tags (customer segments).")));

		/* Clear first: an invalidation arriving during the load sets it again. */
		ap.stale = false;
		MemoryContextReset(ap.cxt);
		memset(ap.rules, 0, sizeof(ap.rules));
		memset(ap.nrules, 0, sizeof(ap.nrules));
		memset(ap.need, 0, sizeof(ap.need));
		PG_TRY();
		{
			ap_load_rules(nsp);
		}
		PG_CATCH();
		{
			ap.stale = true;
			PG_RE_THROW();
		}
		PG_END_TRY();
		ap.loaded_lxid = lxid;
		ap.txonly = (ap.inval_lxid == lxid);
	}
}

/* Tables each document type reads. */
static uint32
ap_doc_tables(ApDoc d)
{
	uint32		common = RF_MASK(RF_PRODUCT_PRODUCT) | RF_MASK(RF_PRODUCT_TEMPLATE) |
		RF_MASK(RF_PRODUCT_CATEGORY) | RF_MASK(RF_RES_PARTNER_CATEGORY_REL);

	switch (d)
	{
		case AP_SALE_ORDER:
		case AP_SALE_ORDER_LINE:
			return common | RF_MASK(RF_SALE_ORDER) | RF_MASK(RF_SALE_ORDER_LINE);
		case AP_PURCHASE_ORDER:
			return common | RF_MASK(RF_PURCHASE_ORDER) | RF_MASK(RF_PURCHASE_ORDER_LINE);
		case AP_ACCOUNT_MOVE:
			return common | RF_MASK(RF_ACCOUNT_MOVE);
		case AP_STOCK_QUANT:
			return common | RF_MASK(RF_STOCK_QUANT);
		default:
			return common;
	}
}

/* SQL joins giving c.cost, the cost of product pp in company expression comp. */
static char *
ap_cost_join(const RfOdoo *o, const char *nsp, const char *comp, bool need)
{
	if (!need)
		return pstrdup("LEFT JOIN LATERAL (SELECT NULL::numeric AS cost) c ON true");
	if (o->version >= 18)
		return psprintf("LEFT JOIN LATERAL (SELECT (pp.standard_price ->> (%s)::text)::numeric AS cost) c ON true", comp);
	if (!OidIsValid(get_relname_relid("ir_property", o->nsp)))
		return pstrdup("LEFT JOIN LATERAL (SELECT NULL::numeric AS cost) c ON true");
	/* the company's cost, else the cost without company (Odoo's fallback) */
	return psprintf("LEFT JOIN %s.ir_property ipc ON ipc.name = 'standard_price' "
					"AND ipc.res_id = 'product.product,' || pp.id AND ipc.company_id = %s "
					"LEFT JOIN %s.ir_property ipn ON ipc.id IS NULL AND ipn.name = 'standard_price' "
					"AND ipn.res_id = 'product.product,' || pp.id AND ipn.company_id IS NULL "
					"LEFT JOIN LATERAL (SELECT coalesce(ipc.value_float, ipn.value_float)::numeric AS cost) c ON true",
					nsp, comp, nsp);
}

/* SQL of the partner tags of partner expression partner, or NULL::int[]. */
static char *
ap_tags_sql(const char *nsp, const char *partner, bool need)
{
	if (!need)
		return pstrdup("NULL::int[]");
	return psprintf("ARRAY(SELECT rel.category_id FROM %s.res_partner_res_partner_category_rel rel "
					"WHERE rel.partner_id = %s)", nsp, partner);
}

/* True if facts of document type d come from a header query plus a lines query. */
static inline bool
ap_has_lines_query(ApDoc d)
{
	return d == AP_SALE_ORDER || d == AP_PURCHASE_ORDER;
}

/*
 * The header facts query of a document type.  Columns: company_id, amount
 * (company currency), largest line discount %, margin %, category
 * parent_paths, partner tag ids, applicable.  Orders leave 3-5 NULL: their
 * lines are read by ap_lines_sql and aggregated in C.
 */
static char *
ap_facts_sql(const RfOdoo *o, ApDoc d, int need)
{
	const char *nsp = quote_identifier(get_namespace_name(o->nsp));
	const char *disc =
		"greatest(coalesce(sol.discount, 0), CASE WHEN pt.list_price > 0 AND sol.price_unit < pt.list_price "
		"THEN (1 - sol.price_unit / pt.list_price) * 100 ELSE 0 END)";

	switch (d)
	{
		case AP_SALE_ORDER:
			return psprintf("SELECT so.company_id, round(coalesce(so.amount_total, 0) / coalesce(nullif(so.currency_rate, 0), 1), 2)::float8, "
							"NULL::float8, NULL::float8, NULL::text[], %s, true "
							"FROM %s.sale_order so WHERE so.id = $1",
							ap_tags_sql(nsp, "so.partner_id", need & AP_NEED_TAGS), nsp);
		case AP_PURCHASE_ORDER:
			return psprintf("SELECT po.company_id, round(coalesce(po.amount_total, 0) / coalesce(nullif(po.currency_rate, 0), 1)::numeric, 2)::float8, "
							"NULL::float8, NULL::float8, NULL::text[], %s, true "
							"FROM %s.purchase_order po WHERE po.id = $1",
							ap_tags_sql(nsp, "po.partner_id", need & AP_NEED_TAGS), nsp);
		case AP_SALE_ORDER_LINE:
			return psprintf(
							"SELECT so.company_id, round(coalesce(sol.price_subtotal, 0) / coalesce(nullif(so.currency_rate, 0), 1), 2)::float8, "
							"(%s)::float8, "
							"CASE WHEN sol.price_subtotal > 0 THEN ((sol.price_subtotal - sol.product_uom_qty * coalesce(c.cost, 0)) "
							"     / sol.price_subtotal * 100)::float8 END, "
							"CASE WHEN pc.parent_path IS NOT NULL THEN ARRAY[pc.parent_path::text] END, %s, "
							"sol.display_type IS NULL AND coalesce(%s, 0) > 0 "
							"FROM %s.sale_order_line sol "
							"JOIN %s.sale_order so ON so.id = sol.order_id "
							"LEFT JOIN %s.product_product pp ON pp.id = sol.product_id "
							"LEFT JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
							"LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id "
							"%s "
							"WHERE sol.id = $1",
							disc, ap_tags_sql(nsp, "so.partner_id", need & AP_NEED_TAGS), disc,
							nsp, nsp, nsp, nsp, nsp, ap_cost_join(o, nsp, "so.company_id", true));
		case AP_ACCOUNT_MOVE:
			return psprintf(
							"SELECT am.company_id, abs(coalesce(am.amount_total_signed, am.amount_total, 0))::float8, "
							"NULL::float8, NULL::float8, NULL::text[], %s, am.move_type IN ('out_refund', 'in_refund') "
							"FROM %s.account_move am WHERE am.id = $1",
							ap_tags_sql(nsp, "am.partner_id", need & AP_NEED_TAGS), nsp);
		case AP_STOCK_QUANT:
			return psprintf(
							"SELECT sq.company_id, round(abs(coalesce(sq.inventory_diff_quantity, 0)) * coalesce(c.cost, 0), 2)::float8, "
							"NULL::float8, NULL::float8, CASE WHEN pc.parent_path IS NOT NULL THEN ARRAY[pc.parent_path::text] END, "
							"NULL::int[], coalesce(sq.inventory_quantity_set, false) AND coalesce(sq.inventory_diff_quantity, 0) <> 0 "
							"FROM %s.stock_quant sq "
							"JOIN %s.product_product pp ON pp.id = sq.product_id "
							"JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
							"LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id "
							"%s "
							"WHERE sq.id = $1",
							nsp, nsp, nsp, nsp, ap_cost_join(o, nsp, "sq.company_id", true));
		default:
			elog(ERROR, "retailflow: unknown document type %d", (int) d);
	}
	return NULL;
}

/*
 * The lines query of an order.  Columns: effective discount %, subtotal,
 * quantity x cost (NULL when the rules need no margin), category parent_path.
 */
static char *
ap_lines_sql(const RfOdoo *o, ApDoc d, int need)
{
	const char *nsp = quote_identifier(get_namespace_name(o->nsp));

	if (d == AP_SALE_ORDER)
		return psprintf("SELECT greatest(coalesce(sol.discount, 0), CASE WHEN pt.list_price > 0 AND sol.price_unit < pt.list_price "
						"THEN (1 - sol.price_unit / pt.list_price) * 100 ELSE 0 END)::float8, "
						"sol.price_subtotal::float8, (sol.product_uom_qty * c.cost)::float8, pc.parent_path::text "
						"FROM %s.sale_order_line sol "
						"JOIN %s.product_product pp ON pp.id = sol.product_id "
						"JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
						"LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id "
						"%s "
						"WHERE sol.order_id = $1 AND sol.display_type IS NULL",
						nsp, nsp, nsp, nsp, ap_cost_join(o, nsp, "sol.company_id", need & AP_NEED_COST));
	return psprintf("SELECT coalesce(pol.discount, 0)::float8, pol.price_subtotal::float8, NULL::float8, pc.parent_path::text "
					"FROM %s.purchase_order_line pol "
					"JOIN %s.product_product pp ON pp.id = pol.product_id "
					"JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
					"LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id "
					"WHERE pol.order_id = $1 AND pol.display_type IS NULL",
					nsp, nsp, nsp, nsp);
}

/* Fills f from SPI result row 0 (columns as in ap_facts_sql). */
static void
ap_facts_from_row(ApFacts *f, HeapTuple tup, TupleDesc td)
{
	bool		isnull;
	Datum		v;

	f->company_id = spi_i4(tup, td, 1, 0);
	f->amount = spi_f8(tup, td, 2, &f->has_amount);
	f->disc = spi_f8(tup, td, 3, &f->has_disc);
	f->margin = spi_f8(tup, td, 4, &f->has_margin);
	f->npaths = spi_text_array(tup, td, 5, CurrentMemoryContext, &f->paths);
	f->ntags = spi_int_array(tup, td, 6, CurrentMemoryContext, &f->tags);
	v = SPI_getbinval(tup, td, 7, &isnull);
	f->applicable = !isnull && DatumGetBool(v);
}

/* Returns the kept plan for (document type, lines?, need), preparing it on first use. */
static SPIPlanPtr
ap_plan(const RfOdoo *o, ApDoc d, int lines, int need)
{
	SPIPlanPtr *slot = &ap.plans[d][lines][need];

	if (*slot == NULL)
	{
		Oid			argtype = INT4OID;
		SPIPlanPtr	p = SPI_prepare(lines ? ap_lines_sql(o, d, need) : ap_facts_sql(o, d, need), 1, &argtype);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the %s facts query: %s", ap_doc_names[d],
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}


/* Looks up the relations, indexes and columns the sale order scans read; false if any is missing. */
static bool
ap_so_setup(const RfOdoo *o)
{
	if (ap.so_ready && (ap.so_rel != o->rel[RF_SALE_ORDER] || ap.sol_rel != o->rel[RF_SALE_ORDER_LINE] ||
						ap.tag_rel != o->rel[RF_RES_PARTNER_CATEGORY_REL]))
		ap.so_ready = false;
	if (ap.so_ready)
		return OidIsValid(ap.so_idx) && OidIsValid(ap.sol_idx);
	ap.so_rel = o->rel[RF_SALE_ORDER];
	ap.sol_rel = o->rel[RF_SALE_ORDER_LINE];
	ap.tag_rel = o->rel[RF_RES_PARTNER_CATEGORY_REL];
	ap.so_id = RfAttnum(RF_SALE_ORDER, "id", false);
	ap.so_company = RfAttnum(RF_SALE_ORDER, "company_id", false);
	ap.so_amount = RfAttnum(RF_SALE_ORDER, "amount_total", false);
	ap.so_rate = RfAttnum(RF_SALE_ORDER, "currency_rate", false);
	ap.so_partner = RfAttnum(RF_SALE_ORDER, "partner_id", false);
	ap.sol_order = RfAttnum(RF_SALE_ORDER_LINE, "order_id", false);
	ap.sol_display = RfAttnum(RF_SALE_ORDER_LINE, "display_type", false);
	ap.sol_product = RfAttnum(RF_SALE_ORDER_LINE, "product_id", false);
	ap.sol_discount = RfAttnum(RF_SALE_ORDER_LINE, "discount", false);
	ap.sol_price = RfAttnum(RF_SALE_ORDER_LINE, "price_unit", false);
	ap.sol_subtotal = RfAttnum(RF_SALE_ORDER_LINE, "price_subtotal", false);
	ap.sol_qty = RfAttnum(RF_SALE_ORDER_LINE, "product_uom_qty", false);
	ap.sol_company = RfAttnum(RF_SALE_ORDER_LINE, "company_id", false);
	ap.tag_partner = RfAttnum(RF_RES_PARTNER_CATEGORY_REL, "partner_id", false);
	ap.tag_category = RfAttnum(RF_RES_PARTNER_CATEGORY_REL, "category_id", false);
	ap.so_idx = RfFindLeadingIndex(ap.so_rel, ap.so_id);
	ap.sol_idx = RfFindLeadingIndex(ap.sol_rel, ap.sol_order);
	ap.tag_idx = RfFindLeadingIndex(ap.tag_rel, ap.tag_partner);
	ap.so_ready = true;
	return OidIsValid(ap.so_idx) && OidIsValid(ap.sol_idx);
}

/* Loads products (category path, list price) and costs per company into the product cache. */
static void
ap_load_products(const RfOdoo *o, const char *nsp)
{
	HASHCTL		ctl;
	TupleDesc	td;
	bool		has;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(ApProd);
	ctl.hcxt = ap.prod_cxt;
	ap.prods = hash_create("retailflow approvals products", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ApCostKey);
	ctl.entrysize = sizeof(ApCost);
	ctl.hcxt = ap.prod_cxt;
	ap.costs = hash_create("retailflow approvals costs", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (SPI_execute(psprintf("SELECT pp.id, pt.list_price::float8, pc.parent_path::text "
							 "FROM %s.product_product pp JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
							 "LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id", nsp, nsp, nsp),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read products");
	td = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		int32		id = spi_i4(tup, td, 1, 0);
		ApProd	   *p = hash_search(ap.prods, &id, HASH_ENTER, NULL);
		char	   *path = SPI_getvalue(tup, td, 3);

		p->list_price = spi_f8(tup, td, 2, &has);
		p->cat_path = path ? MemoryContextStrdup(ap.prod_cxt, path) : NULL;
	}
	if (o->version >= 18)
		SPI_execute(psprintf("SELECT pp.id, c.key::int, (c.value #>> '{}')::float8 FROM %s.product_product pp, "
							 "jsonb_each(CASE WHEN jsonb_typeof(pp.standard_price) = 'object' THEN pp.standard_price END) c "
							 "WHERE c.key ~ '^[0-9]+$' AND jsonb_typeof(c.value) = 'number'", nsp), true, 0);
	else if (OidIsValid(get_relname_relid("ir_property", o->nsp)))
		SPI_execute(psprintf("SELECT substr(res_id, 17)::int, coalesce(company_id, 0), value_float FROM %s.ir_property "
							 "WHERE name = 'standard_price' AND res_id ~ '^product\\.product,[0-9]+$' AND value_float IS NOT NULL",
							 nsp), true, 0);
	else
		return;
	td = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		ApCostKey	key;
		ApCost	   *c;

		key.product_id = spi_i4(tup, td, 1, 0);
		key.company_id = spi_i4(tup, td, 2, 0);
		c = hash_search(ap.costs, &key, HASH_ENTER, NULL);
		c->cost = spi_f8(tup, td, 3, &has);
	}
}

/* Makes sure the product cache is valid for this transaction. */
static void
ap_ensure_products(const RfOdoo *o)
{
	LocalTransactionId lxid = MyProc->lxid;
	RfRunAs		ra;

	if (!ap.prod_stale && ap.prod_txonly && ap.prod_loaded_lxid != lxid)
		ap.prod_stale = true;
	if (!ap.prod_stale)
		return;
	ap.prod_rel[0] = o->rel[RF_PRODUCT_PRODUCT];
	ap.prod_rel[1] = o->rel[RF_PRODUCT_TEMPLATE];
	ap.prod_rel[2] = o->rel[RF_PRODUCT_CATEGORY];
	ap.prod_rel[3] = get_relname_relid("ir_property", o->nsp);
	ap.prod_stale = false;
	MemoryContextReset(ap.prod_cxt);
	ap.prods = NULL;
	ap.costs = NULL;
	RfOdooSpiConnect(&ra);
	PG_TRY();
	{
		ap_load_products(o, quote_identifier(get_namespace_name(o->nsp)));
	}
	PG_CATCH();
	{
		ap.prod_stale = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	RfOdooSpiFinish(&ra);
	ap.prod_loaded_lxid = lxid;
	ap.prod_txonly = (ap.prod_inval_lxid == lxid);
}

/* Reads an int4 attribute of a slot, dflt when NULL. */
static inline int32
ap_slot_int(TupleTableSlot *slot, AttrNumber att, int32 dflt)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

/* Reads a numeric attribute of a slot as double, reporting NULL through *has. */
static inline double
ap_slot_num(TupleTableSlot *slot, AttrNumber att, bool *has)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	*has = !isnull;
	return isnull ? 0.0 : RfNumericToDouble(d);
}

/* Opens an index scan of rel for int4 key = value on the index's first column. */
static IndexScanDesc
ap_scan_begin(Relation rel, Relation irel, int32 value, ScanKeyData *key)
{
	IndexScanDesc scan = index_beginscan(rel, irel, GetActiveSnapshot(), 1, 0);

	ScanKeyInit(key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(value));
	index_rescan(scan, key, 1, NULL, 0);
	return scan;
}

/*
 * Sale order facts read directly through the indexes on sale_order.id,
 * sale_order_line.order_id and the partner tag relation, with products and
 * costs from the product cache: the same facts as the SQL of ap_facts_sql and
 * ap_lines_sql, without executor start-up per call.
 */
static bool
ap_read_sale_order(const RfOdoo *o, int32 record_id, ApFacts *f, int need)
{
	Relation	rel,
				irel;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found = false,
				has;
	int32		partner = 0;
	double		amount = 0.0,
				rate;

	if (need & AP_NEED_LINES)
		ap_ensure_products(o);

	rel = table_open(ap.so_rel, AccessShareLock);
	irel = index_open(ap.so_idx, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = ap_scan_begin(rel, irel, record_id, &key);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		if (ap_slot_int(slot, ap.so_id, 0) != record_id)
			continue;
		found = true;
		f->company_id = ap_slot_int(slot, ap.so_company, 0);
		amount = ap_slot_num(slot, ap.so_amount, &has);
		rate = ap_slot_num(slot, ap.so_rate, &has);
		if (!has || rate == 0.0)
			rate = 1.0;
		f->amount = rint(amount / rate * 100.0) / 100.0;
		f->has_amount = true;
		partner = ap_slot_int(slot, ap.so_partner, 0);
		break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (!found)
		return false;
	f->applicable = true;

	if (need & AP_NEED_LINES)
	{
		double		sub = 0.0,
					cost = 0.0;
		int			maxpaths = 8;

		f->paths = palloc(sizeof(char *) * maxpaths);
		rel = table_open(ap.sol_rel, AccessShareLock);
		irel = index_open(ap.sol_idx, AccessShareLock);
		slot = table_slot_create(rel, NULL);
		scan = ap_scan_begin(rel, irel, record_id, &key);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			int32		product;
			ApProd	   *p;
			double		disc,
						price,
						qty;

			CHECK_FOR_INTERRUPTS();
			if (ap_slot_int(slot, ap.sol_order, 0) != record_id)
				continue;
			(void) slot_getattr(slot, ap.sol_display, &isnull);
			if (!isnull)
				continue;		/* section and note lines */
			product = ap_slot_int(slot, ap.sol_product, 0);
			p = hash_search(ap.prods, &product, HASH_FIND, NULL);
			if (p == NULL)
				continue;		/* like the inner join of the SQL form */
			disc = ap_slot_num(slot, ap.sol_discount, &has);
			price = ap_slot_num(slot, ap.sol_price, &has);
			if (p->list_price > 0 && price < p->list_price)
				disc = Max(disc, (1.0 - price / p->list_price) * 100.0);
			if (!f->has_disc || disc > f->disc)
			{
				f->disc = disc;
				f->has_disc = true;
			}
			sub += ap_slot_num(slot, ap.sol_subtotal, &has);
			qty = ap_slot_num(slot, ap.sol_qty, &has);
			if (need & AP_NEED_COST)
			{
				ApCostKey	ck;
				ApCost	   *c;

				ck.product_id = product;
				ck.company_id = ap_slot_int(slot, ap.sol_company, 0);
				c = hash_search(ap.costs, &ck, HASH_FIND, NULL);
				if (c == NULL)
				{
					ck.company_id = 0;
					c = hash_search(ap.costs, &ck, HASH_FIND, NULL);
				}
				if (c)
					cost += qty * c->cost;
			}
			if (p->cat_path)
			{
				if (f->npaths == maxpaths)
				{
					maxpaths *= 2;
					f->paths = repalloc(f->paths, sizeof(char *) * maxpaths);
				}
				f->paths[f->npaths++] = p->cat_path;
			}
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		index_close(irel, AccessShareLock);
		table_close(rel, AccessShareLock);
		if (sub > 0)
		{
			f->margin = (sub - cost) / sub * 100.0;
			f->has_margin = true;
		}
	}

	if ((need & AP_NEED_TAGS) && OidIsValid(ap.tag_idx))
	{
		int			maxtags = 8;

		f->tags = palloc(sizeof(int32) * maxtags);
		rel = table_open(ap.tag_rel, AccessShareLock);
		irel = index_open(ap.tag_idx, AccessShareLock);
		slot = table_slot_create(rel, NULL);
		scan = ap_scan_begin(rel, irel, partner, &key);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			if (ap_slot_int(slot, ap.tag_partner, 0) != partner)
				continue;
			if (f->ntags == maxtags)
			{
				maxtags *= 2;
				f->tags = repalloc(f->tags, sizeof(int32) * maxtags);
			}
			f->tags[f->ntags++] = ap_slot_int(slot, ap.tag_category, 0);
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		index_close(irel, AccessShareLock);
		table_close(rel, AccessShareLock);
	}
	else if (need & AP_NEED_TAGS)
		return false;			/* not reached: checked by the caller */
	return true;
}

/* Reads a record's facts with the kept plans of its document type; false if no such record. */
static bool
ap_read_facts(const RfOdoo *o, ApDoc d, int32 record_id, ApFacts *f)
{
	RfRunAs		ra;
	Datum		arg = Int32GetDatum(record_id);
	bool		found;
	MemoryContext outer = CurrentMemoryContext;
	int			need = ap.need[d];

	if (ap.plan_nsp != o->nsp || ap.plan_version != o->version)
	{
		for (int i = 0; i < AP_NUM_DOCS; i++)
			for (int l = 0; l < 2; l++)
				for (int n = 0; n < 8; n++)
				{
					if (ap.plans[i][l][n])
						SPI_freeplan(ap.plans[i][l][n]);
					ap.plans[i][l][n] = NULL;
				}
		ap.plan_nsp = o->nsp;
		ap.plan_version = o->version;
		ap.so_ready = false;
	}
	if (d == AP_SALE_ORDER && ap_so_setup(o) &&
		(!(need & AP_NEED_TAGS) || OidIsValid(ap.tag_idx)))
		return ap_read_sale_order(o, record_id, f, need);
	RfOdooSpiConnect(&ra);
	if (SPI_execute_plan(ap_plan(o, d, 0, need), &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: the %s facts query failed", ap_doc_names[d]);
	found = SPI_processed == 1;
	if (found)
	{
		MemoryContext spicxt = MemoryContextSwitchTo(outer);

		ap_facts_from_row(f, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(spicxt);
	}
	if (found && ap_has_lines_query(d) && (need & AP_NEED_LINES))
	{
		double		sub = 0.0,
					cost = 0.0;
		bool		has;

		if (SPI_execute_plan(ap_plan(o, d, 1, need), &arg, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "retailflow: the %s lines query failed", ap_doc_names[d]);
		f->paths = MemoryContextAlloc(outer, sizeof(char *) * Max(SPI_processed, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			double		v = spi_f8(tup, td, 1, &has);
			char	   *path;

			if (has && (!f->has_disc || v > f->disc))
			{
				f->disc = v;
				f->has_disc = true;
			}
			sub += spi_f8(tup, td, 2, &has);
			cost += spi_f8(tup, td, 3, &has);
			path = SPI_getvalue(tup, td, 4);
			if (path)
				f->paths[f->npaths++] = MemoryContextStrdup(outer, path);
		}
		if (d == AP_SALE_ORDER && sub > 0)
		{
			f->margin = (sub - cost) / sub * 100.0;
			f->has_margin = true;
		}
	}
	RfOdooSpiFinish(&ra);
	return found;
}

/* Formats a number with thousands separators and 2 decimals: 1,250.00 (cents rounded half to even, like printf). */
static void
ap_append_amount(StringInfo buf, double v)
{
	double		cents = rint(v * 100.0);
	char		digits[32];
	int			n = 0;
	uint64		u;
	int			intlen;

	if (fabs(v) < 0.005 || cents == 0.0)
		cents = 0.0;
	if (!isfinite(cents) || fabs(cents) >= 1e18)
	{
		appendStringInfo(buf, "%.2f", v);	/* out of the fast path's range */
		return;
	}
	if (cents < 0)
	{
		appendStringInfoChar(buf, '-');
		cents = -cents;
	}
	u = (uint64) cents;
	do
	{
		digits[n++] = '0' + (char) (u % 10);
		u /= 10;
	} while (u > 0 || n < 3);
	/* digits holds the number reversed: two decimals, then the integer part */
	intlen = n - 2;
	for (int i = intlen - 1; i >= 0; i--)
	{
		appendStringInfoChar(buf, digits[i + 2]);
		if (i > 0 && i % 3 == 0)
			appendStringInfoChar(buf, ',');
	}
	appendStringInfoChar(buf, '.');
	appendStringInfoChar(buf, digits[1]);
	appendStringInfoChar(buf, digits[0]);
}

/* Adds the separator between reason parts. */
static inline void
ap_sep(StringInfo buf)
{
	if (buf->len > 0)
		appendStringInfoString(buf, ", ");
}

/* Tolerance for comparing amounts and percentages read as float8. */
#define AP_EPS 1e-9

/* True if rule r matches facts f; fills reason (when not NULL) with the reason in words. */
static bool
ap_match(const ApRule *r, const ApFacts *f, ApDoc d, StringInfo reason)
{
	int			cat_hit = -1;
	int			tag_hit = -1;

	if (r->company_id != 0 && r->company_id != f->company_id)
		return false;
	if ((r->has_amin || r->has_amax) && !f->has_amount)
		return false;
	if (r->has_amin && f->amount < r->amin - AP_EPS)
		return false;
	if (r->has_amax && f->amount >= r->amax - AP_EPS)
		return false;
	if (r->has_disc && (!f->has_disc || f->disc <= r->max_disc + AP_EPS))
		return false;
	if (r->has_margin && (!f->has_margin || f->margin >= r->min_margin - AP_EPS))
		return false;
	if (r->has_risk && (!f->has_risk || f->risk < r->min_risk - AP_EPS))
		return false;
	if (r->cat_path)
	{
		for (int i = 0; i < f->npaths && cat_hit < 0; i++)
			if (f->paths[i] && strncmp(f->paths[i], r->cat_path, r->cat_pathlen) == 0)
				cat_hit = i;
		if (cat_hit < 0)
			return false;
	}
	if (r->ntags > 0)
	{
		for (int i = 0; i < r->ntags && tag_hit < 0; i++)
			for (int j = 0; j < f->ntags; j++)
				if (r->tags[i] == f->tags[j])
				{
					tag_hit = i;
					break;
				}
		if (tag_hit < 0)
			return false;
	}
	if (reason == NULL)
		return true;

	resetStringInfo(reason);
	if (r->has_amin || r->has_amax)
	{
		appendStringInfoString(reason, ap_doc_labels[d]);
		appendStringInfoChar(reason, ' ');
		ap_append_amount(reason, f->amount);
		if (r->has_amin && r->has_amax)
		{
			appendStringInfoString(reason, " between ");
			ap_append_amount(reason, r->amin);
			appendStringInfoString(reason, " and ");
			ap_append_amount(reason, r->amax);
		}
		else if (r->has_amin)
		{
			appendStringInfoString(reason, fabs(f->amount - r->amin) <= AP_EPS ? " at " : " above ");
			ap_append_amount(reason, r->amin);
		}
		else
		{
			appendStringInfoString(reason, " below ");
			ap_append_amount(reason, r->amax);
		}
	}
	if (r->has_disc)
	{
		ap_sep(reason);
		appendStringInfoString(reason, "line discount ");
		ap_append_amount(reason, f->disc);
		appendStringInfoString(reason, "% above ");
		ap_append_amount(reason, r->max_disc);
		appendStringInfoChar(reason, '%');
	}
	if (r->has_margin)
	{
		ap_sep(reason);
		appendStringInfoString(reason, "margin ");
		ap_append_amount(reason, f->margin);
		appendStringInfoString(reason, "% below ");
		ap_append_amount(reason, r->min_margin);
		appendStringInfoChar(reason, '%');
	}
	if (r->cat_path)
	{
		ap_sep(reason);
		appendStringInfo(reason, "product in category %s", r->cat_name);
	}
	if (r->ntags > 0)
	{
		ap_sep(reason);
		appendStringInfo(reason, "partner tagged %s",
						 r->tag_names && r->tag_names[tag_hit] ? r->tag_names[tag_hit] : "?");
	}
	if (r->has_risk)
	{
		ap_sep(reason);
		appendStringInfoString(reason, "risk score ");
		ap_append_amount(reason, f->risk);
		appendStringInfoString(reason, fabs(f->risk - r->min_risk) <= AP_EPS ? " at " : " above ");
		ap_append_amount(reason, r->min_risk);
	}
	if (reason->len == 0)
		appendStringInfo(reason, "every %s", ap_doc_labels[d]);
	if (r->company_id != 0)
		appendStringInfo(reason, " (company %d)", r->company_id);
	return true;
}

/* Sets up the result tuplestore with the planner's row type when there is one (no catalog lookup). */
static void
ap_init_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, rsinfo && IsA(rsinfo, ReturnSetInfo) && rsinfo->expectedDesc
						? MAT_SRF_USE_EXPECTED_DESC : 0);
}

/* Emits one result row per matching rule, in approval order. */
static void
ap_emit_matches(FunctionCallInfo fcinfo, ApDoc d, const ApFacts *f)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StringInfoData reason;

	ap_init_srf(fcinfo);
	if (!f->applicable)
		return;
	initStringInfo(&reason);
	for (int i = 0; i < ap.nrules[d]; i++)
	{
		const ApRule *r = &ap.rules[d][i];
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		if (!ap_match(r, f, d, &reason))
			continue;
		values[0] = Int32GetDatum(r->id);
		values[1] = CStringGetTextDatum(r->name);
		values[2] = Int32GetDatum(r->level);
		values[3] = Int32GetDatum(r->sequence);
		values[4] = Int32GetDatum(r->group_id);
		if (r->has_sla)
			values[5] = IntervalPGetDatum(&r->sla);
		else
			nulls[5] = true;
		values[6] = CStringGetTextDatum(reason.data);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* Raises 22004 for a NULL document type. */
static void
ap_check_doc_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("document_type must not be null"),
				 errdetail("Approvals apply to sale.order, sale.order.line, purchase.order, account.move and stock.quant.")));
}

/*
 * retailflow.required_approvals(document_type, record_id): the active rules
 * the Odoo record matches, with the reason in words, by level, sequence, id.
 */
Datum
rf_required_approvals(PG_FUNCTION_ARGS)
{
	ApDoc		d;
	int32		record_id;
	const RfOdoo *o;
	ApFacts		f;

	ap_check_doc_arg(fcinfo);
	d = ap_doc_from_text(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("record_id must not be null"),
				 errhint("Pass the id of the %s record, or use the jsonb form for what-if facts.", ap_doc_names[d])));
	record_id = PG_GETARG_INT32(1);
	o = RfOdooRequire(ap_doc_tables(d));
	ap_ensure_rules(o);

	memset(&f, 0, sizeof(f));
	/* No active rule for this type: nothing can match, the record is not read. */
	if (ap.nrules[d] == 0)
	{
		ap_init_srf(fcinfo);
		return (Datum) 0;
	}
	if (!ap_read_facts(o, d, record_id, &f))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %d does not exist", ap_doc_names[d], record_id),
				 errdetail("There is no row with id %d in %s.", record_id,
						   d == AP_SALE_ORDER_LINE ? "sale_order_line" :
						   d == AP_SALE_ORDER ? "sale_order" :
						   d == AP_PURCHASE_ORDER ? "purchase_order" :
						   d == AP_ACCOUNT_MOVE ? "account_move" : "stock_quant")));
	ap_emit_matches(fcinfo, d, &f);
	return (Datum) 0;
}

/*
 * retailflow.approval_document_amount(document_type, record_id): the amount
 * the rules compare (company currency), NULL when the type has none or the
 * record does not exist.  A request records it: its approval covers that
 * amount and no more.
 */
Datum
rf_approval_document_amount(PG_FUNCTION_ARGS)
{
	ApDoc		d;
	const RfOdoo *o;
	ApFacts		f;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	d = ap_doc_from_text(PG_GETARG_TEXT_PP(0));
	o = RfOdooRequire(ap_doc_tables(d));
	ap_ensure_rules(o);
	memset(&f, 0, sizeof(f));
	if (!ap_read_facts(o, d, PG_GETARG_INT32(1), &f) || !f.has_amount)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(f.amount);
}

/*
 * retailflow.required_approvals(document_type, facts jsonb): what-if
 * evaluation.  Keys: company_id, amount, discount, margin, risk_score
 * (numbers), product_category_ids and partner_category_ids (arrays of ids).
 */
Datum
rf_required_approvals_facts(PG_FUNCTION_ARGS)
{
	ApDoc		d;
	const RfOdoo *o;
	ApFacts		f;
	Datum		arg;
	Oid			argtype = JSONBOID;
	const char *nsp;
	TupleDesc	td;
	HeapTuple	tup;
	char	   *bad;
	int32		badcat;
	bool		has;
	MemoryContext outer = CurrentMemoryContext;
	RfRunAs		ra;

	ap_check_doc_arg(fcinfo);
	d = ap_doc_from_text(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("facts must not be null"),
				 errhint("Pass a json object such as '{\"amount\": 1250, \"company_id\": 1}'.")));
	arg = PG_GETARG_DATUM(1);
	o = RfOdooRequire(ap_doc_tables(d));
	ap_ensure_rules(o);
	nsp = quote_identifier(get_namespace_name(o->nsp));

	memset(&f, 0, sizeof(f));
	f.applicable = true;
	RfOdooSpiConnect(&ra);
	if (SPI_execute_with_args(psprintf(
									   "SELECT jsonb_typeof($1), "
									   "(SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(CASE WHEN jsonb_typeof($1) = 'object' THEN $1 ELSE '{}' END) k "
									   "  WHERE k NOT IN ('company_id', 'amount', 'discount', 'margin', 'risk_score', 'product_category_ids', 'partner_category_ids')), "
									   "(SELECT min(x::int) FROM jsonb_array_elements_text(coalesce($1 -> 'product_category_ids', '[]')) x "
									   "  WHERE NOT EXISTS (SELECT 1 FROM %s.product_category c WHERE c.id = x::int)) ",
									   nsp),
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the facts");
	td = SPI_tuptable->tupdesc;
	tup = SPI_tuptable->vals[0];
	bad = SPI_getvalue(tup, td, 1);
	if (!bad || strcmp(bad, "object") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("facts must be a json object, not %s", bad ? bad : "null"),
				 errhint("For example '{\"amount\": 1250, \"company_id\": 1, \"partner_category_ids\": [1]}'.")));
	bad = SPI_getvalue(tup, td, 2);
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fact: %s", bad),
				 errdetail("Known facts: company_id, amount, discount, margin, risk_score, product_category_ids, partner_category_ids.")));
	badcat = spi_i4(tup, td, 3, 0);
	if (badcat)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product_category %d does not exist", badcat)));
	if (SPI_execute_with_args(psprintf(
									   "SELECT ($1 ->> 'company_id')::int, ($1 ->> 'amount')::float8, ($1 ->> 'discount')::float8, "
									   "($1 ->> 'margin')::float8, "
									   "(SELECT array_agg(c.parent_path::text) FROM %s.product_category c "
									   "  WHERE c.id IN (SELECT x::int FROM jsonb_array_elements_text(coalesce($1 -> 'product_category_ids', '[]')) x)), "
									   "(SELECT array_agg(x::int) FROM jsonb_array_elements_text(coalesce($1 -> 'partner_category_ids', '[]')) x), "
									   "true, ($1 ->> 'risk_score')::float8", nsp),
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the facts");
	{
		MemoryContext spicxt = MemoryContextSwitchTo(outer);

		ap_facts_from_row(&f, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		f.risk = spi_f8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &has);
		f.has_risk = has;
		MemoryContextSwitchTo(spicxt);
	}
	RfOdooSpiFinish(&ra);
	if ((f.has_amount && f.amount < 0) || (f.has_disc && (f.disc < 0 || f.disc > 100)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("amount must not be negative and discount must be between 0 and 100"),
				 errdetail("Amounts are absolute values in company currency; discounts are percentages.")));
	ap_emit_matches(fcinfo, d, &f);
	return (Datum) 0;
}

/*
 * retailflow.approval_active_rules(document_type): how many active rules the
 * type has, from the backend's rule cache (the enforcement trigger skips work
 * with it).
 */
Datum
rf_approval_active_rules(PG_FUNCTION_ARGS)
{
	ApDoc		d;

	ap_check_doc_arg(fcinfo);
	d = ap_doc_from_text(PG_GETARG_TEXT_PP(0));
	ap_ensure_rules(RfOdooRequire(ap_doc_tables(d)));
	PG_RETURN_INT32(ap.nrules[d]);
}

/* ---------- enforcement trigger ---------- */

static SPIPlanPtr ap_requests_plan = NULL;
static SPIPlanPtr ap_missing_plan = NULL;
/* Finds the id, write_uid and state columns of the trigger's table (cached per relation). */
static const ApTrigCols *
ap_trigger_cols(ApDoc d, Relation rel)
{
	ApTrigCols *c = &ap_trig_cols[d];

	if (c->relid != RelationGetRelid(rel))
	{
		TupleDesc	td = RelationGetDescr(rel);

		c->id = c->write_uid = c->state = c->move_type = c->is_inventory = InvalidAttrNumber;
		for (int i = 0; i < td->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(td, i);
			bool		text = a->atttypid == TEXTOID || a->atttypid == VARCHAROID;

			if (a->attisdropped)
				continue;
			if (strcmp(NameStr(a->attname), "id") == 0 && a->atttypid == INT4OID)
				c->id = a->attnum;
			else if (strcmp(NameStr(a->attname), "write_uid") == 0 && a->atttypid == INT4OID)
				c->write_uid = a->attnum;
			else if (strcmp(NameStr(a->attname), "state") == 0 && text)
				c->state = a->attnum;
			else if (strcmp(NameStr(a->attname), "move_type") == 0 && text)
				c->move_type = a->attnum;
			else if (strcmp(NameStr(a->attname), "is_inventory") == 0 && a->atttypid == BOOLOID)
				c->is_inventory = a->attnum;
		}
		if (c->id == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table \"%s\" has no integer id column", RelationGetRelationName(rel)),
					 errdetail("The approvals enforcement trigger reads the Odoo record id from NEW.id.")));
		c->relid = RelationGetRelid(rel);
	}
	return c;
}

/* True if the text attribute att of tup equals s. */
static bool
ap_attr_is(HeapTuple tup, TupleDesc td, AttrNumber att, const char *s)
{
	bool		isnull;
	Datum		v;

	if (att == InvalidAttrNumber)
		return false;
	v = heap_getattr(tup, att, td, &isnull);
	return !isnull && RfTextEquals(v, s, strlen(s));
}

/*
 * Whether this write is the transition the document's approvals guard (the
 * trigger has no WHEN clause, so that Odoo stays free to alter its columns):
 * a sale order confirmed, a purchase order approved, a refund posted, an
 * inventory move (stock_move.is_inventory) done.  oldtup is NULL for an
 * INSERT.
 */
static bool
ap_transition(ApDoc d, const ApTrigCols *c, HeapTuple oldtup, HeapTuple newtup, TupleDesc td)
{
	const char *target;

	switch (d)
	{
		case AP_STOCK_QUANT:
			{
				bool		isnull;
				Datum		inv;

				if (c->is_inventory == InvalidAttrNumber)
					return false;
				inv = heap_getattr(newtup, c->is_inventory, td, &isnull);
				if (isnull || !DatumGetBool(inv))
					return false;
				target = "done";
				break;
			}
		case AP_SALE_ORDER:
			target = "sale";
			break;
		case AP_PURCHASE_ORDER:
			target = "purchase";
			break;
		case AP_ACCOUNT_MOVE:
			target = "posted";
			if (!ap_attr_is(newtup, td, c->move_type, "out_refund") &&
				!ap_attr_is(newtup, td, c->move_type, "in_refund"))
				return false;
			break;
		default:
			return true;
	}
	return ap_attr_is(newtup, td, c->state, target) &&
		(oldtup == NULL || !ap_attr_is(oldtup, td, c->state, target));
}

static bool ap_all_approved(ApDoc d, int32 record_id, const int32 *matched, int nmatched, const ApFacts *f);

/* Appends a JSON string literal. */
static void
ap_json_str(StringInfo buf, const char *s)
{
	escape_json(buf, s ? s : "");
}

/*
 * Inventory adjustments (document stock.quant).  Whatever the path (the
 * product form's Update Quantity wizard, a quant created or written with an
 * inventory quantity then applied, the Physical Inventory list), Odoo 17
 * and 18 apply a count by validating a stock move with is_inventory, from or
 * to the inventory loss location (stock.quant._apply_inventory); the quant's
 * own fields are reset later, in the same or another flush.  So the move is
 * judged: its value (quantity x the product's cost) and category are the
 * facts, and the approvals are those requested on the counted quant of the
 * move's key (product, internal location, lot, package, owner).
 */
static Datum
ap_enforce_inventory(TriggerData *trig, const ApTrigCols *cols, Datum result)
{
	HeapTuple	newtup = trig->tg_newtuple ? trig->tg_newtuple : trig->tg_trigtuple;
	TupleDesc	tupdesc = RelationGetDescr(trig->tg_relation);
	const RfOdoo *o;
	const char *nsp;
	bool		isnull;
	int32		move_id;
	ApFacts		f;
	int32	   *quants = NULL;
	int			nquants = 0;
	int32	   *matched;
	int			nmatched = 0;
	StringInfoData rules;
	RfRunAs		ra;
	Datum		arg;
	bool		found;
	MemoryContext outer = CurrentMemoryContext;

	move_id = DatumGetInt32(heap_getattr(newtup, cols->id, tupdesc, &isnull));
	if (isnull)
		return result;
	o = RfOdooRequire(ap_doc_tables(AP_STOCK_QUANT) | RF_MASK(RF_STOCK_MOVE) | RF_MASK(RF_STOCK_MOVE_LINE) |
					  RF_MASK(RF_STOCK_LOCATION));
	ap_ensure_rules(o);
	if (ap.nrules[AP_STOCK_QUANT] == 0)
		return result;			/* no active rule: nothing can be missing */
	nsp = quote_identifier(get_namespace_name(o->nsp));

	/* the move's facts and the counted quant(s), this statement's change included */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	memset(&f, 0, sizeof(f));
	arg = Int32GetDatum(move_id);
	RfOdooSpiConnect(&ra);
	if (SPI_execute_with_args(psprintf(
		"SELECT sm.company_id, round(abs(coalesce(sm.product_qty, 0)) * coalesce(c.cost, 0), 2)::float8, "
		"NULL::float8, NULL::float8, CASE WHEN pc.parent_path IS NOT NULL THEN ARRAY[pc.parent_path::text] END, "
		"NULL::int[], true, "
		"(SELECT array_agg(DISTINCT q.id ORDER BY q.id) FROM %s.stock_move_line ml, %s.stock_quant q "
		"  WHERE ml.move_id = sm.id AND q.product_id = sm.product_id "
		"    AND q.location_id = CASE WHEN src.usage = 'inventory' THEN sm.location_dest_id ELSE sm.location_id END "
		"    AND q.lot_id IS NOT DISTINCT FROM ml.lot_id AND q.owner_id IS NOT DISTINCT FROM ml.owner_id "
		"    AND q.package_id IS NOT DISTINCT FROM "
		"        CASE WHEN src.usage = 'inventory' THEN ml.result_package_id ELSE ml.package_id END) "
		"FROM %s.stock_move sm "
		"JOIN %s.stock_location src ON src.id = sm.location_id "
		"JOIN %s.product_product pp ON pp.id = sm.product_id "
		"JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
		"LEFT JOIN %s.product_category pc ON pc.id = pt.categ_id "
		"%s "
		"WHERE sm.id = $1",
		nsp, nsp, nsp, nsp, nsp, nsp, nsp, ap_cost_join(o, nsp, "sm.company_id", true)),
							  1, (Oid[]) {INT4OID}, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: the inventory adjustment facts query failed");
	found = SPI_processed == 1;
	if (found)
	{
		MemoryContext spicxt = MemoryContextSwitchTo(outer);

		ap_facts_from_row(&f, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		nquants = spi_int_array(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, outer, &quants);
		MemoryContextSwitchTo(spicxt);
	}
	RfOdooSpiFinish(&ra);
	PopActiveSnapshot();
	if (!found)
		return result;

	/* the rules the adjustment matches, with their reasons, for the SQL that refuses or logs */
	matched = palloc(sizeof(int32) * ap.nrules[AP_STOCK_QUANT]);
	initStringInfo(&rules);
	appendStringInfoChar(&rules, '[');
	for (int i = 0; i < ap.nrules[AP_STOCK_QUANT]; i++)
	{
		const ApRule *r = &ap.rules[AP_STOCK_QUANT][i];
		StringInfoData reason;

		initStringInfo(&reason);
		if (!ap_match(r, &f, AP_STOCK_QUANT, &reason))
			continue;
		matched[nmatched++] = r->id;
		appendStringInfo(&rules, "%s{\"rule_id\": %d, \"level\": %d, \"sequence\": %d, \"group_id\": %d, \"amount\": %.2f, \"sla\": %s, \"reason\": ",
						 nmatched > 1 ? ", " : "", r->id, r->level, r->sequence, r->group_id, f.amount,
						 r->has_sla ? psprintf("\"%s\"", DatumGetCString(DirectFunctionCall1(interval_out,
																						  IntervalPGetDatum((Interval *) &r->sla)))) : "null");
		ap_json_str(&rules, reason.data);
		appendStringInfoChar(&rules, '}');
	}
	appendStringInfoChar(&rules, ']');
	if (nmatched == 0)
		return result;

	RfOwnSpiConnect(&ra);
	for (int q = 0; q < nquants; q++)
		if (ap_all_approved(AP_STOCK_QUANT, quants[q], matched, nmatched, &f))
		{
			/* the counted quant's approvals are granted: this count uses them */
			Datum		args[5];
			char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
			Datum	   *ids = palloc(sizeof(Datum) * nmatched);

			for (int i = 0; i < nmatched; i++)
				ids[i] = Int32GetDatum(matched[i]);
			args[0] = CStringGetTextDatum("stock.quant");
			args[1] = Int32GetDatum(quants[q]);
			args[2] = PointerGetDatum(construct_array(ids, nmatched, INT4OID, sizeof(int32), true, TYPALIGN_INT));
			args[3] = Int32GetDatum(move_id);
			args[4] = cols->write_uid ? heap_getattr(newtup, cols->write_uid, tupdesc, &isnull) : (Datum) 0;
			if (!cols->write_uid || isnull)
				nulls[4] = 'n';
			if (SPI_execute_with_args("SELECT retailflow.approval_consume($1, $2, $3, $4, $5)", 5,
									  (Oid[]) {TEXTOID, INT4OID, INT4ARRAYOID, INT4OID, INT4OID}, args, nulls,
									  false, 0) != SPI_OK_SELECT)
				elog(ERROR, "retailflow: could not record the approvals the inventory adjustment used");
			RfOwnSpiFinish(&ra);
			return result;
		}
	{
		Datum		args[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		args[0] = CStringGetTextDatum("stock.quant");
		args[1] = Int32GetDatum(nquants > 0 ? quants[0] : 0);
		nulls[1] = nquants > 0 ? ' ' : 'n';
		args[2] = cols->write_uid ? heap_getattr(newtup, cols->write_uid, tupdesc, &isnull) : (Datum) 0;
		if (!cols->write_uid || isnull)
			nulls[2] = 'n';
		args[3] = CStringGetTextDatum("done");
		args[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(rules.data));
		if (SPI_execute_with_args("SELECT retailflow.approval_enforce_missing($1, $2, $3, $4, $5)", 5,
								  (Oid[]) {TEXTOID, INT4OID, INT4OID, TEXTOID, JSONBOID}, args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "retailflow: the approvals enforcement query failed");
	}
	RfOwnSpiFinish(&ra);
	return result;
}

/* Returns the kept plan of a trigger query, preparing it on first use. */
static SPIPlanPtr
ap_trigger_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the enforcement query: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}

/*
 * True if every rule in matched[] has a usable approved request for the
 * document: not used by an earlier count, and granted for at least the
 * document's amount now (f; an approval of 3.45 does not cover 3,453.45).
 * Locks the document's requests FOR SHARE first, as the SQL path does, so a
 * decision in flight is waited for and then read as committed.
 */
static bool
ap_all_approved(ApDoc d, int32 record_id, const int32 *matched, int nmatched, const ApFacts *f)
{
	Oid			types[3] = {TEXTOID, INT4OID, FLOAT8OID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};

	args[0] = CStringGetTextDatum(ap_doc_names[d]);
	args[1] = Int32GetDatum(record_id);
	args[2] = Float8GetDatum(f && f->has_amount ? f->amount : 0);
	if (!(f && f->has_amount))
		nulls[2] = 'n';
	if (SPI_execute_plan(ap_trigger_plan(&ap_requests_plan,
										 "SELECT r.rule_id, r.state OPERATOR(pg_catalog.=) 'approved' AND r.consumed_at IS NULL "
										 "AND retailflow.approval_covers(r.amount, $3) "
										 "FROM retailflow.approval_request r "
										 "WHERE r.document_type OPERATOR(pg_catalog.=) $1 "
										 "AND r.record_id OPERATOR(pg_catalog.=) $2 FOR SHARE",
										 3, types),
						 args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the approval requests");
	for (int i = 0; i < nmatched; i++)
	{
		bool		approved = false;

		for (uint64 k = 0; k < SPI_processed && !approved; k++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[k];

			if (DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)) == matched[i] &&
				DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
				approved = true;
		}
		if (!approved)
			return false;
	}
	return true;
}

/*
 * The enforcement trigger on Odoo's state changes (sale order confirmed,
 * purchase order approved, refund posted, inventory adjustment applied).
 * In C: reads the document's facts, matches the cached rules, and checks the
 * approved requests with one kept query.  Only a document that lacks an
 * approval (or has price-override line rules to check) goes to the SQL
 * function retailflow.approval_enforce_missing(), which names what is missing
 * and blocks or logs.  The document's facts are read with the writer's own
 * rights (run_as.c: a superuser reads them as the owner of Odoo's tables);
 * only the approval requests are read, and the refusal or log written, as
 * the extension's owner, by fixed schema-qualified SQL inside a
 * security-restricted operation.
 */
Datum
rf_approval_enforce(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Datum		result;
	ApDoc		d;
	const ApTrigCols *cols;
	HeapTuple	newtup;
	TupleDesc	tupdesc;
	bool		isnull;
	int32		record_id;
	const RfOdoo *o;
	bool		check_lines;
	int32	   *matched;
	int			nmatched = 0;
	RfRunAs		ra;
	ApFacts		f;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) || TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.approval_enforce() must be called as a row-level INSERT or UPDATE trigger")));
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	result = TRIGGER_FIRED_BEFORE(trigdata->tg_event) ? PointerGetDatum(newtup) : PointerGetDatum(NULL);
	if (approval_enforcement == 0)
		return result;
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("retailflow.approval_enforce() needs the document type as its only argument")));
	d = ap_doc_from_text(cstring_to_text(trigdata->tg_trigger->tgargs[0]));
	tupdesc = RelationGetDescr(trigdata->tg_relation);
	cols = ap_trigger_cols(d, trigdata->tg_relation);
	if (!ap_transition(d, cols, TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_trigtuple : NULL,
					   newtup, tupdesc))
		return result;
	if (d == AP_STOCK_QUANT)
		return ap_enforce_inventory(trigdata, cols, result);
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return result;
	record_id = DatumGetInt32(heap_getattr(newtup, cols->id, tupdesc, &isnull));
	if (isnull)
		return result;

	o = RfOdooRequire(ap_doc_tables(d));
	ap_ensure_rules(o);
	check_lines = d == AP_SALE_ORDER && ap.nrules[AP_SALE_ORDER_LINE] > 0;
	if (!check_lines && ap.nrules[d] == 0)
		return result;			/* no active rule: nothing can be missing */

	/* the document's facts as they are now, this statement's change included */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	matched = palloc(sizeof(int32) * Max(ap.nrules[d], 1));
	memset(&f, 0, sizeof(f));
	if (ap.nrules[d] > 0)
	{
		if (ap_read_facts(o, d, record_id, &f) && f.applicable)
			for (int i = 0; i < ap.nrules[d]; i++)
				if (ap_match(&ap.rules[d][i], &f, d, NULL))
					matched[nmatched++] = ap.rules[d][i].id;
	}
	PopActiveSnapshot();

	if (nmatched > 0 || check_lines)
	{
		RfOwnSpiConnect(&ra);
		if (check_lines || !ap_all_approved(d, record_id, matched, nmatched, &f))
		{
			Oid			types[4] = {TEXTOID, INT4OID, INT4OID, TEXTOID};
			Datum		args[4];
			char		nulls[4] = {' ', ' ', ' ', ' '};

			args[0] = CStringGetTextDatum(ap_doc_names[d]);
			args[1] = Int32GetDatum(record_id);
			args[2] = cols->write_uid ? heap_getattr(newtup, cols->write_uid, tupdesc, &isnull) : (Datum) 0;
			if (!cols->write_uid || isnull)
				nulls[2] = 'n';
			args[3] = cols->state ? heap_getattr(newtup, cols->state, tupdesc, &isnull) : (Datum) 0;
			if (!cols->state || isnull)
				nulls[3] = 'n';
			else
			{
				Oid			typid = TupleDescAttr(tupdesc, cols->state - 1)->atttypid;

				/* varchar shares text's representation; anything else goes through its output function */
				if (typid != TEXTOID && typid != VARCHAROID)
				{
					Oid			out;
					bool		varlena;

					getTypeOutputInfo(typid, &out, &varlena);
					args[3] = CStringGetTextDatum(OidOutputFunctionCall(out, args[3]));
				}
			}
			if (SPI_execute_plan(ap_trigger_plan(&ap_missing_plan,
												 "SELECT retailflow.approval_enforce_missing($1, $2, $3, $4)",
												 4, types),
								 args, nulls, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "retailflow: the approvals enforcement query failed");
		}
		RfOwnSpiFinish(&ra);
	}
	return result;
}
