/*
 * conflicts.c
 *	  Owns reservation conflict detection and oversell prevention:
 *	    GUC retailflow.conflict_action        off | log | block (superuser only)
 *	    retailflow.conflict_check_trigger()   statement triggers (transition
 *	                                          tables) on stock_quant and
 *	                                          stock_move_line: each statement's
 *	                                          changes per quant key, kept for
 *	                                          the commit; in block mode a guard
 *	                                          row per (product, location) so
 *	                                          concurrent REPEATABLE READ
 *	                                          reservations conflict (40001)
 *	    retailflow.conflict_commit_trigger()  the deferred constraint trigger
 *	                                          that judges the touched keys at
 *	                                          commit, on the transaction's net
 *	                                          effect (23514 in block mode)
 *	    retailflow.reservation_conflicts()    the full scan of Odoo's stock
 *	                                          invariants, read from the heap and
 *	                                          aggregated in partitions by product
 *	  and a small per-backend cache of locations, products and UoMs (relcache
 *	  invalidation from the statement triggers of odoo_catalog.c marks it stale).
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "storage/proc.h"
#include "utils/tuplestore.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_conflict_check_trigger);
PG_FUNCTION_INFO_V1(rf_conflict_commit_trigger);
PG_FUNCTION_INFO_V1(rf_reservation_conflicts);
PG_FUNCTION_INFO_V1(rf_conflicts_for_checks);

typedef enum
{
	CONFLICT_OFF,
	CONFLICT_LOG,
	CONFLICT_BLOCK
} ConflictAction;

static const struct config_enum_entry conflict_action_options[] = {
	{"off", CONFLICT_OFF, false},
	{"log", CONFLICT_LOG, false},
	{"block", CONFLICT_BLOCK, false},
	{NULL, 0, false}
};

static int	conflict_action = CONFLICT_LOG;

/* ---------- cache: locations, products, UoMs by id ---------- */

#define LOC_BYPASS		0x01
#define LOC_INTERNAL	0x02
#define LOC_KNOWN		0x04

typedef struct CfLoc
{
	uint8		flags;
	int32		warehouse_id;	/* stock_location.warehouse_id, 0 if none */
	char	   *path;			/* parent_path */
	char	   *usage;
} CfLoc;

#define PROD_KNOWN		0x01
#define PROD_STORABLE	0x02
#define PROD_SERIAL		0x04

typedef struct CfProd
{
	uint8		flags;
	double		rounding;
} CfProd;

typedef struct CfUom
{
	bool		known;
	double		factor;
	double		rounding;
} CfUom;

typedef struct CfCache
{
	MemoryContext cxt;
	bool		stale;			/* locations, products, UoMs */
	bool		stale_rels;		/* column numbers, index */
	Oid			rel[RF_NUM_TABLES];
	int			version;
	int32		max_loc, max_prod, max_uom;
	CfLoc	   *locs;			/* indexed by id */
	CfProd	   *prods;
	CfUom	   *uoms;
	/* stock_quant / stock_move_line / stock_move column numbers */
	AttrNumber	q_id, q_product, q_location, q_lot, q_package, q_owner, q_quantity, q_reserved, q_max;
	AttrNumber	l_id, l_move, l_product, l_location, l_lot, l_package, l_owner, l_state, l_qty, l_qty_uom, l_uom, l_max;
	AttrNumber	m_id, m_product, m_state, m_location, m_dest, m_final, m_pqty, m_qty, m_uom, m_max;
	Oid			quant_index;	/* btree leading with product_id */
	Oid			line_index;		/* the same on stock_move_line */
} CfCache;

static CfCache cf;
static bool cf_initialized = false;

static void cf_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static SPIPlanPtr guard_plan = NULL;
static SPIPlanPtr log_plan = NULL;

/*
 * Relcache callback: a data change of a cached Odoo table marks the data
 * stale; an invalidation of stock_quant (DDL, VACUUM, ANALYZE) only the
 * column numbers and the index choice, which are cheap to redo.
 */
static void
cf_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cf.rel[RF_STOCK_LOCATION] || relid == cf.rel[RF_PRODUCT_PRODUCT] ||
		relid == cf.rel[RF_PRODUCT_TEMPLATE] || relid == cf.rel[RF_UOM_UOM])
		cf.stale = true;
	if (!OidIsValid(relid) || relid == cf.rel[RF_STOCK_QUANT] || relid == cf.rel[RF_STOCK_MOVE] ||
		relid == cf.rel[RF_STOCK_MOVE_LINE])
		cf.stale_rels = true;
}

/* Registers the retailflow.conflict_action GUC. */
void
ConflictsInit(void)
{
	DefineCustomEnumVariable("retailflow.conflict_action",
							 "What the reservation conflict triggers do: off, log or block.",
							 "log records each conflict in retailflow.exception_log and lets the write through; "
							 "block raises an error and serializes reservations per product and location.",
							 &conflict_action,
							 CONFLICT_LOG,
							 conflict_action_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	RegisterSubXactCallback(cf_subxact_callback, NULL);
}

/* Returns an int4 column of an SPI row, or dflt when NULL. */
static int32
cf_spi_int(int row, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

/* Returns a float8 column of an SPI row, or dflt when NULL. */
static double
cf_spi_float(int row, int col, double dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? dflt : DatumGetFloat8(d);
}

/* Runs a read-only SPI query, erroring on failure. */
static void
cf_query(const char *sql)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: conflict cache query failed: %s", sql);
}

/* Returns the max of an int4 column of every SPI row. */
static int32
cf_max_id(void)
{
	int32		m = 0;

	for (uint64 i = 0; i < SPI_processed; i++)
		m = Max(m, cf_spi_int(i, 1, 0));
	return m;
}


/* Loads column numbers of stock_quant / stock_move_line / stock_move and the quant index. */
static void
cf_load_rels(const RfOdoo *o)
{
	cf.stale_rels = false;		/* first: an invalidation during the load marks it again */
	cf.q_id = RfAttnum(RF_STOCK_QUANT, "id", false);
	cf.q_product = RfAttnum(RF_STOCK_QUANT, "product_id", false);
	cf.q_location = RfAttnum(RF_STOCK_QUANT, "location_id", false);
	cf.q_lot = RfAttnum(RF_STOCK_QUANT, "lot_id", false);
	cf.q_package = RfAttnum(RF_STOCK_QUANT, "package_id", false);
	cf.q_owner = RfAttnum(RF_STOCK_QUANT, "owner_id", false);
	cf.q_quantity = RfAttnum(RF_STOCK_QUANT, "quantity", false);
	cf.q_reserved = RfAttnum(RF_STOCK_QUANT, "reserved_quantity", false);
	cf.q_max = Max(Max(Max(cf.q_id, cf.q_product), Max(cf.q_location, cf.q_lot)),
				   Max(Max(cf.q_package, cf.q_owner), Max(cf.q_quantity, cf.q_reserved)));
	cf.l_id = RfAttnum(RF_STOCK_MOVE_LINE, "id", false);
	cf.l_move = RfAttnum(RF_STOCK_MOVE_LINE, "move_id", false);
	cf.l_product = RfAttnum(RF_STOCK_MOVE_LINE, "product_id", false);
	cf.l_location = RfAttnum(RF_STOCK_MOVE_LINE, "location_id", false);
	cf.l_lot = RfAttnum(RF_STOCK_MOVE_LINE, "lot_id", false);
	cf.l_package = RfAttnum(RF_STOCK_MOVE_LINE, "package_id", false);
	cf.l_owner = RfAttnum(RF_STOCK_MOVE_LINE, "owner_id", false);
	cf.l_state = RfAttnum(RF_STOCK_MOVE_LINE, "state", false);
	cf.l_qty = RfAttnum(RF_STOCK_MOVE_LINE, "quantity", false);
	cf.l_qty_uom = RfAttnum(RF_STOCK_MOVE_LINE, "quantity_product_uom", false);
	cf.l_uom = RfAttnum(RF_STOCK_MOVE_LINE, "product_uom_id", false);
	cf.l_max = 0;
	for (AttrNumber *a = &cf.l_id; a <= &cf.l_uom; a++)
		cf.l_max = Max(cf.l_max, *a);
	cf.m_id = RfAttnum(RF_STOCK_MOVE, "id", false);
	cf.m_product = RfAttnum(RF_STOCK_MOVE, "product_id", false);
	cf.m_state = RfAttnum(RF_STOCK_MOVE, "state", false);
	cf.m_location = RfAttnum(RF_STOCK_MOVE, "location_id", false);
	cf.m_dest = RfAttnum(RF_STOCK_MOVE, "location_dest_id", false);
	cf.m_final = RfAttnum(RF_STOCK_MOVE, "location_final_id", true);
	cf.m_pqty = RfAttnum(RF_STOCK_MOVE, "product_qty", false);
	cf.m_qty = RfAttnum(RF_STOCK_MOVE, "quantity", false);
	cf.m_uom = RfAttnum(RF_STOCK_MOVE, "product_uom", false);
	cf.m_max = 0;
	for (AttrNumber *a = &cf.m_id; a <= &cf.m_uom; a++)
		cf.m_max = Max(cf.m_max, *a);
	cf.quant_index = RfFindLeadingIndex(o->rel[RF_STOCK_QUANT], cf.q_product);
	cf.line_index = RfFindLeadingIndex(o->rel[RF_STOCK_MOVE_LINE], cf.l_product);
}

/* Makes sure the cache matches the catalog and the data; returns the Odoo info. */
static const RfOdoo *
cf_ensure(void)
{
	const RfOdoo *o;
	const char *nsp;
	RfRunAs		ra;

	AcceptInvalidationMessages();
	o = RfOdooRequire(RF_MASK(RF_STOCK_QUANT) | RF_MASK(RF_STOCK_LOCATION) | RF_MASK(RF_STOCK_MOVE) |
					  RF_MASK(RF_STOCK_MOVE_LINE) | RF_MASK(RF_PRODUCT_PRODUCT) |
					  RF_MASK(RF_PRODUCT_TEMPLATE) | RF_MASK(RF_UOM_UOM));
	if (!cf_initialized)
	{
		cf.cxt = AllocSetContextCreate(CacheMemoryContext, "retailflow conflicts cache", ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(cf_relcache_callback, (Datum) 0);
		cf.stale = true;
		cf_initialized = true;
	}
	if (memcmp(cf.rel, o->rel, sizeof(cf.rel)) != 0 || cf.version != o->version)
		cf.stale = true;
	if (!cf.stale)
	{
		if (cf.stale_rels)
			cf_load_rels(o);
		return o;
	}

	memcpy(cf.rel, o->rel, sizeof(cf.rel));
	cf.version = o->version;
	cf.stale = false;
	MemoryContextReset(cf.cxt);
	nsp = quote_identifier(get_namespace_name(o->nsp));

	PG_TRY();
	{
		RfOdooSpiConnect(&ra);
		cf_query(psprintf("SELECT l.id, l.warehouse_id, (l.usage IN ('supplier', 'customer', 'inventory', 'production') "
						  "OR coalesce(l.scrap_location, false)%s), l.usage = 'internal', l.parent_path, l.usage::text "
						  "FROM %s.stock_location l",
						  o->version == 17 ? " OR (l.usage = 'transit' AND l.company_id IS NULL)" : "", nsp));
		cf.max_loc = cf_max_id();
		cf.locs = MemoryContextAllocZero(cf.cxt, sizeof(CfLoc) * ((Size) cf.max_loc + 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int32		id = cf_spi_int(i, 1, -1);
			bool		isnull;
			char	   *s;

			if (id < 0)
				continue;
			cf.locs[id].flags = LOC_KNOWN;
			cf.locs[id].warehouse_id = cf_spi_int(i, 2, 0);
			if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull)) && !isnull)
				cf.locs[id].flags |= LOC_BYPASS;
			if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull)) && !isnull)
				cf.locs[id].flags |= LOC_INTERNAL;
			s = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5);
			cf.locs[id].path = MemoryContextStrdup(cf.cxt, s ? s : "");
			s = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6);
			cf.locs[id].usage = MemoryContextStrdup(cf.cxt, s ? s : "?");
		}

		cf_query(psprintf("SELECT pp.id, %s, pt.tracking = 'serial', coalesce(u.rounding, 0.01)::float8 "
						  "FROM %s.product_product pp JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
						  "LEFT JOIN %s.uom_uom u ON u.id = pt.uom_id",
						  o->version >= 18 ? "coalesce(pt.is_storable, false)" : "pt.type = 'product'",
						  nsp, nsp, nsp));
		cf.max_prod = cf_max_id();
		cf.prods = MemoryContextAllocZero(cf.cxt, sizeof(CfProd) * ((Size) cf.max_prod + 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int32		id = cf_spi_int(i, 1, -1);
			bool		isnull;

			if (id < 0)
				continue;
			cf.prods[id].flags = PROD_KNOWN;
			if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)) && !isnull)
				cf.prods[id].flags |= PROD_STORABLE;
			if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull)) && !isnull)
				cf.prods[id].flags |= PROD_SERIAL;
			cf.prods[id].rounding = cf_spi_float(i, 4, 0.01);
		}

		cf_query(psprintf("SELECT id, factor::float8, rounding::float8 FROM %s.uom_uom", nsp));
		cf.max_uom = cf_max_id();
		cf.uoms = MemoryContextAllocZero(cf.cxt, sizeof(CfUom) * ((Size) cf.max_uom + 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int32		id = cf_spi_int(i, 1, -1);

			if (id < 0)
				continue;
			cf.uoms[id].known = true;
			cf.uoms[id].factor = cf_spi_float(i, 2, 1.0);
			cf.uoms[id].rounding = cf_spi_float(i, 3, 0.01);
		}
		RfOdooSpiFinish(&ra);
	}
	PG_CATCH();
	{
		cf.stale = true;
		PG_RE_THROW();
	}
	PG_END_TRY();

	cf_load_rels(o);
	return o;
}

/* Cached location flags of id (0 when unknown). */
static inline const CfLoc *
cf_loc(int32 id)
{
	static const CfLoc none = {0, 0, "", "?"};

	return (id >= 0 && id <= cf.max_loc) ? &cf.locs[id] : &none;
}

/* Cached product of id (flags 0 when unknown). */
static inline const CfProd *
cf_prod(int32 id)
{
	static const CfProd none = {0, 0.01};

	return (id >= 0 && id <= cf.max_prod) ? &cf.prods[id] : &none;
}

/* Odoo float_compare(a, b, rounding). */
static inline int
cf_cmp(double a, double b, double r)
{
	return RfFloatCompare(a, b, r > 0 ? r : 0.01);
}



/* True when the varchar/text Datum (state) means an open move: not done/cancel. */
static inline bool
cf_state_open(TupleTableSlot *slot, AttrNumber att)
{
	if (slot->tts_isnull[att - 1])
		return true;
	return !RfTextEquals(slot->tts_values[att - 1], "done", 4) &&
		!RfTextEquals(slot->tts_values[att - 1], "cancel", 6);
}


/* ---------- quant keys ---------- */

typedef struct QKey
{
	int32		product;
	int32		location;
	int32		lot;
	int32		package;
	int32		owner;
} QKey;

typedef struct QAgg
{
	QKey		key;
	char		status;
	int32		n;				/* quants */
	int32		min_qid;		/* smallest quant id, 0 = no quant */
	int32		min_mlid;		/* smallest open move line id */
	double		qty;
	double		res;
	double		mlres;
	bool		has_ml;
} QAgg;

/* Hash of a quant key. */
static inline uint32
qkey_hash(const QKey *k)
{
	uint32		h = murmurhash32((uint32) k->product);

	h = hash_combine(h, murmurhash32((uint32) k->location));
	h = hash_combine(h, murmurhash32((uint32) k->lot));
	h = hash_combine(h, murmurhash32((uint32) k->package));
	return hash_combine(h, murmurhash32((uint32) k->owner));
}

#define SH_PREFIX qagg
#define SH_ELEMENT_TYPE QAgg
#define SH_KEY_TYPE QKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) qkey_hash(&(k))
#define SH_EQUAL(tb, a, b) (memcmp(&(a), &(b), sizeof(QKey)) == 0)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Zeroes the sums of a new aggregate (qagg_insert set its key). */
static inline void
qagg_init(QAgg *a)
{
	a->n = 0;
	a->min_qid = a->min_mlid = 0;
	a->qty = a->res = a->mlres = 0.0;
	a->has_ml = false;
}

/* ---------- trigger ---------- */

/* Formats a key's optional parts for messages. */
static char *
cf_key_text(const QKey *k)
{
	StringInfoData s;

	initStringInfo(&s);
	if (k->lot)
		appendStringInfo(&s, ", lot %d", k->lot);
	if (k->package)
		appendStringInfo(&s, ", package %d", k->package);
	if (k->owner)
		appendStringInfo(&s, ", owner %d", k->owner);
	return s.data;
}

/*
 * Records one conflict found at commit: a row of retailflow.exception_log
 * (and its stock.conflict event) of the given severity, written as the
 * extension's owner.
 */
static void
cf_log(const char *kind, const char *severity, int32 record_id, const QKey *k,
	   double expected, double actual, const char *what)
{
	const CfLoc *loc = cf_loc(k->location);
	char	   *keytext = cf_key_text(k);
	RfRunAs		ra;
	Datum		args[12];
	char		nulls[12];
	char	   *keys = psprintf("{\"lot_id\": %s, \"package_id\": %s, \"owner_id\": %s}",
								k->lot ? psprintf("%d", k->lot) : "null",
								k->package ? psprintf("%d", k->package) : "null",
								k->owner ? psprintf("%d", k->owner) : "null");
	char	   *detail = psprintf("%s (product %d, %s location %d%s)", what, k->product, loc->usage,
								  k->location, keytext);
	char	   *role = GetUserNameFromId(GetOuterUserId(), false);

	memset(nulls, ' ', sizeof(nulls));
	RfOwnSpiConnect(&ra);
	if (log_plan == NULL)
	{
		Oid			types[12] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID, TEXTOID,
		FLOAT8OID, FLOAT8OID, TEXTOID, TEXTOID, TEXTOID};
		SPIPlanPtr	p = SPI_prepare("SELECT retailflow.log_exception($1, $2, $3, $4, $5, $6, $7::jsonb, "
									"$8::numeric, $9::numeric, $10, $11, $12::name)", 12, types);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the conflict log statement");
		SPI_keepplan(p);
		log_plan = p;
	}
	args[0] = CStringGetTextDatum(kind);
	args[1] = CStringGetTextDatum(severity);
	args[2] = CStringGetTextDatum("stock.quant");
	args[3] = Int32GetDatum(record_id);
	nulls[3] = record_id ? ' ' : 'n';
	args[4] = Int32GetDatum(k->product);
	args[5] = Int32GetDatum(k->location);
	args[6] = CStringGetTextDatum(keys);
	args[7] = Float8GetDatum(expected);
	args[8] = Float8GetDatum(actual);
	args[9] = CStringGetTextDatum(detail);
	args[10] = CStringGetTextDatum("trigger");
	args[11] = CStringGetTextDatum(role);
	if (SPI_execute_plan(log_plan, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not log a reservation conflict");
	RfOwnSpiFinish(&ra);
}

/* Guard rows already bumped by this (sub)transaction: their row lock is held. */
#define GUARD_MEMO 32
static struct
{
	LocalTransactionId lxid;
	SubTransactionId subxid;
	int			n;
	int32		product[GUARD_MEMO];
	int32		location[GUARD_MEMO];
} guard_memo;

/* Bumps the guard row of (product, location), as the extension owner. */
static void
cf_guard(int32 product, int32 location)
{
	RfRunAs		ra;
	Datum		args[2];

	if (guard_memo.lxid != MyProc->lxid || guard_memo.subxid != GetCurrentSubTransactionId())
	{
		guard_memo.lxid = MyProc->lxid;
		guard_memo.subxid = GetCurrentSubTransactionId();
		guard_memo.n = 0;
	}
	for (int i = 0; i < guard_memo.n; i++)
		if (guard_memo.product[i] == product && guard_memo.location[i] == location)
			return;				/* we hold its lock until the end of the transaction */
	RfOwnSpiConnect(&ra);
	if (guard_plan == NULL)
	{
		Oid			types[2] = {INT4OID, INT4OID};
		SPIPlanPtr	p = SPI_prepare("INSERT INTO retailflow.reservation_guard AS g (product_id, location_id) "
									"VALUES ($1, $2) ON CONFLICT (product_id, location_id) "
									"DO UPDATE SET bumps = g.bumps OPERATOR(pg_catalog.+) 1", 2, types);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the reservation guard statement");
		SPI_keepplan(p);
		guard_plan = p;
	}
	args[0] = Int32GetDatum(product);
	args[1] = Int32GetDatum(location);
	if (SPI_execute_plan(guard_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "retailflow: could not update the reservation guard");
	RfOwnSpiFinish(&ra);
	if (guard_memo.n < GUARD_MEMO)
	{
		guard_memo.product[guard_memo.n] = product;
		guard_memo.location[guard_memo.n] = location;
		guard_memo.n++;
	}
}

/* Scans the rows of relid whose first index column (product_id) is product, by index or heap. */
typedef bool (*CfRowFn) (TupleTableSlot *slot, void *arg);

/* Calls fn on every row of relid with product_id = product (fresh snapshot: sees this transaction's writes). */
static void
cf_scan_product(Oid relid, Oid index, AttrNumber product_att, AttrNumber max_att, int32 product,
				CfRowFn fn, void *arg)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

	if (OidIsValid(index))
	{
		Relation	irel = index_open(index, AccessShareLock);
		IndexScanDesc scan = index_beginscan(rel, irel, snap, 1, 0);
		ScanKeyData key;

		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(product));
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			slot_getsomeattrs(slot, max_att);
			if (RfSlotInt(slot, product_att) == product)
				fn(slot, arg);
		}
		index_endscan(scan);
		index_close(irel, AccessShareLock);
	}
	else
	{
		TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			slot_getsomeattrs(slot, max_att);
			if (RfSlotInt(slot, product_att) == product)
				fn(slot, arg);
		}
		table_endscan(scan);
	}
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
}

/* A key's sums at commit: quants (quantity, reserved, smallest id) and open move lines. */
typedef struct CfSums
{
	QKey		key;
	bool		any_lot;		/* every lot of the key (reservations are judged across lots) */
	double		qty;
	double		res;
	int32		qid;
	double		lres;
	int32		lid;
} CfSums;

/* Adds a quant row of the key to the sums. */
static bool
cf_add_quant(TupleTableSlot *slot, void *arg)
{
	CfSums	   *s = (CfSums *) arg;

	if (RfSlotInt(slot, cf.q_location) != s->key.location ||
		(!s->any_lot && RfSlotInt(slot, cf.q_lot) != s->key.lot) ||
		RfSlotInt(slot, cf.q_package) != s->key.package || RfSlotInt(slot, cf.q_owner) != s->key.owner)
		return false;
	s->qty += RfSlotNum(slot, cf.q_quantity);
	s->res += RfSlotNum(slot, cf.q_reserved);
	if (s->qid == 0 || RfSlotInt(slot, cf.q_id) < s->qid)
		s->qid = RfSlotInt(slot, cf.q_id);
	return true;
}

/* Adds an open move line of the key to the sums. */
static bool
cf_add_line(TupleTableSlot *slot, void *arg)
{
	CfSums	   *s = (CfSums *) arg;

	if (RfSlotInt(slot, cf.l_location) != s->key.location ||
		(!s->any_lot && RfSlotInt(slot, cf.l_lot) != s->key.lot) ||
		RfSlotInt(slot, cf.l_package) != s->key.package || RfSlotInt(slot, cf.l_owner) != s->key.owner ||
		!cf_state_open(slot, cf.l_state))
		return false;
	s->lres += RfSlotNum(slot, cf.l_qty_uom);
	if (s->lid == 0 || RfSlotInt(slot, cf.l_id) < s->lid)
		s->lid = RfSlotInt(slot, cf.l_id);
	return true;
}

/* ---------- triggers: each statement's changes per key, judged at commit ---------- */

/* What one statement changed on one quant key, tagged with its subtransaction. */
typedef struct CfDelta
{
	QKey		key;
	SubTransactionId subxid;
	double		dres;			/* Σ quants' reserved_quantity */
	double		dqty;			/* Σ quants' quantity */
	double		dlres;			/* Σ reservations of open move lines (product UoM) */
} CfDelta;

/* This transaction's changes not yet judged (TopTransactionContext). */
static struct
{
	LocalTransactionId lxid;
	int			n;
	int			cap;
	CfDelta    *d;
} pending;

/* A subtransaction's changes go with it: dropped on abort, handed to the parent on commit. */
static void
cf_subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	if (pending.lxid != MyProc->lxid || pending.n == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			k = 0;

		for (int i = 0; i < pending.n; i++)
			if (pending.d[i].subxid != mySubid)
				pending.d[k++] = pending.d[i];
		pending.n = k;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < pending.n; i++)
			if (pending.d[i].subxid == mySubid)
				pending.d[i].subxid = parentSubid;
	}
}

/* Appends one statement's change of a key to this transaction's pending changes. */
static void
cf_pending_add(const QAgg *a)
{
	if (pending.lxid != MyProc->lxid)
	{
		pending.lxid = MyProc->lxid;
		pending.n = 0;
		pending.cap = 16;
		pending.d = MemoryContextAlloc(TopTransactionContext, sizeof(CfDelta) * pending.cap);
	}
	if (pending.n == pending.cap)
	{
		pending.cap *= 2;
		pending.d = repalloc(pending.d, sizeof(CfDelta) * pending.cap);
	}
	pending.d[pending.n].key = a->key;
	pending.d[pending.n].subxid = GetCurrentSubTransactionId();
	pending.d[pending.n].dres = a->res;
	pending.d[pending.n].dqty = a->qty;
	pending.d[pending.n].dlres = a->mlres;
	pending.n++;
}

/* Adds the rows of a transition table to the per-key sums: sign +1 for NEW, -1 for OLD. */
static void
cf_add_transition(qagg_hash *h, Tuplestorestate *ts, TupleDesc desc, bool is_quant, double sign)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			readptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(ts, readptr);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		QKey		k;
		QAgg	   *a;
		bool		found;

		if (is_quant)
		{
			double		qty,
						res;

			slot_getsomeattrs(slot, cf.q_max);
			qty = RfSlotNum(slot, cf.q_quantity);
			res = RfSlotNum(slot, cf.q_reserved);
			if (qty == 0.0 && res == 0.0)
				continue;
			k.product = RfSlotInt(slot, cf.q_product);
			k.location = RfSlotInt(slot, cf.q_location);
			k.lot = RfSlotInt(slot, cf.q_lot);
			k.package = RfSlotInt(slot, cf.q_package);
			k.owner = RfSlotInt(slot, cf.q_owner);
			a = qagg_insert(h, k, &found);
			if (!found)
				qagg_init(a);
			a->qty += sign * qty;
			a->res += sign * res;
		}
		else
		{
			double		q;

			slot_getsomeattrs(slot, cf.l_max);
			if (!cf_state_open(slot, cf.l_state))
				continue;
			q = RfSlotNum(slot, cf.l_qty_uom);
			if (q == 0.0)
				continue;
			k.product = RfSlotInt(slot, cf.l_product);
			k.location = RfSlotInt(slot, cf.l_location);
			k.lot = RfSlotInt(slot, cf.l_lot);
			k.package = RfSlotInt(slot, cf.l_package);
			k.owner = RfSlotInt(slot, cf.l_owner);
			a = qagg_insert(h, k, &found);
			if (!found)
				qagg_init(a);
			a->mlres += sign * q;
		}
	}
	tuplestore_select_read_pointer(ts, 0);
	ExecDropSingleTupleTableSlot(slot);
}

/* qsort comparator: keys by product, location, package, owner, then lot (a key's lots adjacent). */
static int
qkey_cmp(const void *a, const void *b)
{
	const QKey *x = (const QKey *) a;
	const QKey *y = (const QKey *) b;
	const int32 xs[5] = {x->product, x->location, x->package, x->owner, x->lot};
	const int32 ys[5] = {y->product, y->location, y->package, y->owner, y->lot};

	for (int i = 0; i < 5; i++)
		if (xs[i] != ys[i])
			return xs[i] < ys[i] ? -1 : 1;
	return 0;
}

/*
 * Trigger: AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT with transition
 * tables on stock_quant and stock_move_line.  Sums what the statement changed
 * per quant key (quants' reserved and on-hand quantity, open move lines'
 * reservations) into this transaction's pending changes, which the deferred
 * trigger judges at commit.  In block mode it also bumps the guard row of
 * every (product, location) whose reservation or stock it changed, so that
 * two REPEATABLE READ transactions racing for the same stock conflict (40001).
 */
Datum
rf_conflict_check_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const RfOdoo *o;
	Oid			relid;
	bool		is_quant;
	qagg_hash  *h;
	qagg_iterator it;
	QAgg	   *a;
	QKey	   *guards = NULL;
	int			nguards = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conflict_check_trigger() must be an AFTER ... FOR EACH STATEMENT trigger"),
				 errdetail("retailflow.attach() creates it from retailflow.managed_trigger.")));
	if (conflict_action == CONFLICT_OFF || (td->tg_newtable == NULL && td->tg_oldtable == NULL))
		return PointerGetDatum(NULL);
	o = RfOdooGet();
	if (o->version < 17)
	{
		/* block mode fails closed: a write it cannot judge is not let through */
		if (conflict_action == CONFLICT_BLOCK)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("reservation conflicts cannot be checked on table \"%s\"",
							RelationGetRelationName(td->tg_relation)),
					 errdetail("retailflow.conflict_action = block, and retailflow does not recognise Odoo's schema: %s",
							   o->reason),
					 errhint("Restore the schema Odoo 17 or 18 created; SELECT * FROM retailflow.status() shows what retailflow found.")));
		return PointerGetDatum(NULL);
	}
	relid = RelationGetRelid(td->tg_relation);
	if (relid == o->rel[RF_STOCK_QUANT])
		is_quant = true;
	else if (relid == o->rel[RF_STOCK_MOVE_LINE])
		is_quant = false;
	else
		return PointerGetDatum(NULL);

	o = cf_ensure();
	h = qagg_create(CurrentMemoryContext, 16, NULL);
	if (td->tg_newtable)
		cf_add_transition(h, td->tg_newtable, RelationGetDescr(td->tg_relation), is_quant, 1.0);
	if (td->tg_oldtable)
		cf_add_transition(h, td->tg_oldtable, RelationGetDescr(td->tg_relation), is_quant, -1.0);

	qagg_start_iterate(h, &it);
	while ((a = qagg_iterate(h, &it)) != NULL)
	{
		const CfProd *prod = cf_prod(a->key.product);
		const CfLoc *loc = cf_loc(a->key.location);
		double		r = prod->rounding;

		if (!(prod->flags & PROD_KNOWN) || !(loc->flags & LOC_KNOWN))
		{
			cf_ensure();		/* created after our cache was loaded */
			prod = cf_prod(a->key.product);
			loc = cf_loc(a->key.location);
			r = prod->rounding;
		}
		if (cf_cmp(a->res, 0.0, r) == 0 && cf_cmp(a->qty, 0.0, r) == 0 && cf_cmp(a->mlres, 0.0, r) == 0)
			continue;			/* nothing this statement changed adds up on this key */
		cf_pending_add(a);
		if (conflict_action == CONFLICT_BLOCK && !(loc->flags & LOC_BYPASS) &&
			(cf_cmp(a->res, 0.0, r) != 0 || cf_cmp(a->qty, 0.0, r) < 0))
		{
			if (guards == NULL)
				guards = palloc(sizeof(QKey) * h->members);
			guards[nguards++] = a->key;
		}
	}
	/* guard rows in a fixed order (no deadlocks among retailflow's own locks) */
	if (nguards > 1)
		qsort(guards, nguards, sizeof(QKey), qkey_cmp);
	for (int i = 0; i < nguards; i++)
		if (i == 0 || guards[i].product != guards[i - 1].product || guards[i].location != guards[i - 1].location)
			cf_guard(guards[i].product, guards[i].location);
	return PointerGetDatum(NULL);
}

/* Refuses the commit (block mode) or logs an error (log mode) for a broken invariant. */
static void
cf_violation(const char *kind, int32 record_id, const QKey *k, double expected, double actual, const char *what)
{
	if (conflict_action == CONFLICT_BLOCK)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("reservation conflict (%s) on product %d in location %d", kind, k->product, k->location),
				 errdetail("Product %d in %s location %d%s: %s.", k->product, cf_loc(k->location)->usage,
						   k->location, cf_key_text(k), what),
				 errhint("retailflow.conflict_action = block refuses a transaction that breaks an invariant Odoo's own "
						 "code keeps; docs/conflicts.md lists each kind and the Odoo code behind it.")));
	cf_log(kind, "error", record_id, k, expected, actual, what);
}

/*
 * Judges the reservations of one key with its lots merged (lot 0), at
 * commit: quants' and open move lines' reservations changed by different
 * amounts, and differ now.  Lots are merged because Odoo 17 and 18 reserve a
 * lot's move line on a quant of that lot or on one without lot
 * (stock.quant._get_gather_domain), so only the sum over the key's lots is
 * an invariant of Odoo's code.
 */
static void
cf_judge_reservation(const RfOdoo *o, const QAgg *d)
{
	const CfLoc *loc = cf_loc(d->key.location);
	const CfProd *prod = cf_prod(d->key.product);
	double		r = prod->rounding;
	CfSums		s;

	if ((loc->flags & LOC_BYPASS) || !(prod->flags & PROD_STORABLE) || cf_cmp(d->res, d->mlres, r) == 0)
		return;
	memset(&s, 0, sizeof(s));
	s.key = d->key;
	s.any_lot = true;
	cf_scan_product(o->rel[RF_STOCK_QUANT], cf.quant_index, cf.q_product, cf.q_max, d->key.product,
					cf_add_quant, &s);
	cf_scan_product(o->rel[RF_STOCK_MOVE_LINE], cf.line_index, cf.l_product, cf.l_max, d->key.product,
					cf_add_line, &s);
	if (cf_cmp(s.res, s.lres, r) == 0)
		return;
	if (s.qid == 0 && s.lid != 0)
		cf_violation("reservation_without_quant", s.lid, &d->key, s.lres, 0.0,
					 psprintf("open move lines reserve %.15g and no quant holds it (this transaction "
							  "changed the move lines' reservations by %.15g)", s.lres, d->mlres));
	else
		cf_violation("reservation_mismatch", s.qid, &d->key, s.lres, s.res,
					 psprintf("quants reserve %.15g but open move lines reserve %.15g: this transaction "
							  "changed the quants' reservation by %.15g and the move lines' by %.15g",
							  s.res, s.lres, d->res, d->mlres));
}

/*
 * Judges one key at commit from what this transaction changed on it (d) and,
 * where that is not enough, from its sums now.  Broken invariants (a
 * reservation in a location where Odoo never reserves; quants' and open move
 * lines' reservations no longer equal because this transaction changed one
 * side only) are refused in block mode and logged as errors in log mode.
 * States Odoo reaches by itself (reserved above on hand, negative stock or
 * reservation), when this transaction introduced or worsened them, are
 * logged as warnings, never refused.
 */
static void
cf_judge(const RfOdoo *o, const QAgg *d)
{
	const CfLoc *loc = cf_loc(d->key.location);
	const CfProd *prod = cf_prod(d->key.product);
	double		r = prod->rounding;
	CfSums		s;

	memset(&s, 0, sizeof(s));
	s.key = d->key;
	if (loc->flags & LOC_BYPASS)
	{
		if (cf_cmp(d->res, 0.0, r) == 0)
			return;
		cf_scan_product(o->rel[RF_STOCK_QUANT], cf.quant_index, cf.q_product, cf.q_max, d->key.product,
						cf_add_quant, &s);
		if (cf_cmp(s.res, 0.0, r) != 0 && fabs(s.res) > fabs(s.res - d->res) - r / 2)
			cf_violation("reserved_in_bypass_location", s.qid, &d->key, 0.0, s.res,
						 psprintf("%.15g reserved where Odoo never reserves (this transaction changed it by %.15g)",
								  s.res, d->res));
		return;
	}
	if (!(prod->flags & PROD_STORABLE))
		return;

	/* warnings, only when this transaction may have introduced or worsened them */
	if (d->res - d->qty > r / 2 || (d->qty < -r / 2 && (loc->flags & LOC_INTERNAL)) || d->res < -r / 2)
	{
		double		pre_res,
					pre_qty;

		cf_scan_product(o->rel[RF_STOCK_QUANT], cf.quant_index, cf.q_product, cf.q_max, d->key.product,
						cf_add_quant, &s);
		if (s.qid == 0)
			return;
		pre_res = s.res - d->res;
		pre_qty = s.qty - d->qty;
		if (cf_cmp(s.res, s.qty, r) > 0 && cf_cmp(s.res, 0.0, r) > 0 &&
			(cf_cmp(pre_res, pre_qty, r) <= 0 || (s.res - s.qty) > (pre_res - pre_qty) + r / 2))
			cf_log("over_reservation", "warning", s.qid, &d->key, s.qty, s.res,
				   psprintf("%.15g reserved but only %.15g on hand", s.res, s.qty));
		if ((loc->flags & LOC_INTERNAL) && cf_cmp(s.qty, 0.0, r) < 0 &&
			(cf_cmp(pre_qty, 0.0, r) >= 0 || s.qty < pre_qty - r / 2))
			cf_log("negative_stock", "warning", s.qid, &d->key, 0.0, s.qty,
				   psprintf("%.15g on hand in an internal location", s.qty));
		if (cf_cmp(s.res, 0.0, r) < 0 && (cf_cmp(pre_res, 0.0, r) >= 0 || s.res < pre_res - r / 2))
			cf_log("negative_reservation", "warning", s.qid, &d->key, 0.0, s.res,
				   psprintf("negative reserved quantity %.15g", s.res));
	}
}

/* Judges the keys (sorted): reservations with lots merged, then each exact key. */
static void
cf_judge_all(const RfOdoo *o, QAgg *keys, int nkeys)
{
	QAgg		m;
	bool		open = false;

	for (int i = 0; i < nkeys; i++)
	{
		QKey		k = keys[i].key;

		k.lot = 0;
		if (open && memcmp(&m.key, &k, sizeof(QKey)) == 0)
		{
			m.res += keys[i].res;
			m.mlres += keys[i].mlres;
			continue;
		}
		if (open)
			cf_judge_reservation(o, &m);
		m = keys[i];
		m.key = k;
		open = true;
	}
	if (open)
		cf_judge_reservation(o, &m);
	for (int i = 0; i < nkeys; i++)
		cf_judge(o, &keys[i]);
}

/*
 * Deferred constraint trigger on stock_quant and stock_move_line (AFTER ROW,
 * INITIALLY DEFERRED): at commit (or SET CONSTRAINTS ... IMMEDIATE), the
 * first event judges every key this transaction changed, on its net effect;
 * the other events of the transaction find nothing pending.
 */
Datum
rf_conflict_commit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const RfOdoo *o;
	qagg_hash  *h;
	QAgg	   *keys;
	int			nkeys = 0;
	qagg_iterator it;
	QAgg	   *a;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conflict_commit_trigger() must be a deferred AFTER ... FOR EACH ROW constraint trigger"),
				 errdetail("retailflow.attach() creates it from retailflow.managed_trigger.")));
	if (pending.lxid != MyProc->lxid || pending.n == 0)
		return PointerGetDatum(NULL);
	if (conflict_action == CONFLICT_OFF)
	{
		pending.n = 0;
		return PointerGetDatum(NULL);
	}
	/* the sums below must see every write of this transaction, the last command's included */
	CommandCounterIncrement();
	/* net change per key, then nothing pending: logging below writes rows, which may fire us again */
	h = qagg_create(CurrentMemoryContext, Max(pending.n, 16), NULL);
	for (int i = 0; i < pending.n; i++)
	{
		bool		found;

		a = qagg_insert(h, pending.d[i].key, &found);
		if (!found)
			qagg_init(a);
		a->res += pending.d[i].dres;
		a->qty += pending.d[i].dqty;
		a->mlres += pending.d[i].dlres;
	}
	pending.n = 0;
	keys = palloc(sizeof(QAgg) * h->members);
	qagg_start_iterate(h, &it);
	while ((a = qagg_iterate(h, &it)) != NULL)
		keys[nkeys++] = *a;
	if (nkeys > 1)
		qsort(keys, nkeys, sizeof(QAgg), qkey_cmp);
	if (conflict_action == CONFLICT_BLOCK)
	{
		/* block mode fails closed: what cannot be judged is not committed */
		o = cf_ensure();
		cf_judge_all(o, keys, nkeys);
	}
	else
	{
		/*
		 * Log mode never stops Odoo's commit: an error while judging (Odoo's
		 * schema changing under a module upgrade, a table refused) is rolled
		 * back to a subtransaction and reported as a warning.
		 */
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			o = cf_ensure();
			cf_judge_all(o, keys, nkeys);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("retailflow could not judge this transaction's reservation changes: %s", edata->message),
					 errdetail("retailflow.conflict_action is log, so the commit goes on; nothing was logged for the %d quant key(s) it changed.", nkeys),
					 errhint("SELECT * FROM retailflow.status() shows what retailflow does not recognise; the scan (retailflow.reservation_conflicts()) finds any conflict later.")));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	return PointerGetDatum(NULL);
}

/* ---------- full scan ---------- */

typedef struct MoveAgg
{
	int32		id;
	char		status;
	int32		product;
	int32		location;
	int32		uom;
	double		qty;			/* stock_move.quantity */
	double		mlqty;			/* sum of its lines, in the move's UoM */
} MoveAgg;

#define SH_PREFIX moveagg
#define SH_ELEMENT_TYPE MoveAgg
#define SH_KEY_TYPE int32
#define SH_KEY id
#define SH_HASH_KEY(tb, k) murmurhash32((uint32) (k))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Open moves by id: a dense array while ids stay near the table's size (they
 * are a sequence, and heap order roughly follows it), a hash for the rest.
 */
typedef struct MoveTab
{
	MoveAgg    *dense;			/* indexed by id; status != 0 when present */
	int32		cap;
	int32		count;
	moveagg_hash *sparse;
} MoveTab;

#define MOVETAB_MAX ((uint64) (MaxAllocSize / sizeof(MoveAgg)))

/* Creates an empty move table for about est moves. */
static void
movetab_init(MoveTab *t, uint32 est)
{
	t->cap = (int32) Min((uint64) est + est / 4 + 1024, MOVETAB_MAX);
	t->dense = palloc0(sizeof(MoveAgg) * (Size) t->cap);
	t->count = 0;
	t->sparse = moveagg_create(CurrentMemoryContext, 64, NULL);
}

/* The entry of move id, created (zeroed but for id) when missing. */
static MoveAgg *
movetab_insert(MoveTab *t, int32 id)
{
	MoveAgg    *m;
	bool		found;

	if (id >= t->cap && id >= 0 && (int64) id < 8 * ((int64) t->count + 1024))
	{
		int32		ncap = (int32) Min(Max((int64) id + 1, (int64) t->cap * 2), (int64) MOVETAB_MAX);

		if (id < ncap)
		{
			t->dense = repalloc(t->dense, sizeof(MoveAgg) * (Size) ncap);
			memset(t->dense + t->cap, 0, sizeof(MoveAgg) * (Size) (ncap - t->cap));
			t->cap = ncap;
		}
	}
	t->count++;
	if (id >= 0 && id < t->cap)
	{
		m = &t->dense[id];
		memset(m, 0, sizeof(MoveAgg));
		m->status = 1;
	}
	else
	{
		m = moveagg_insert(t->sparse, id, &found);
		memset(((char *) m) + offsetof(MoveAgg, product), 0, sizeof(MoveAgg) - offsetof(MoveAgg, product));
	}
	m->id = id;
	return m;
}

/* The entry of move id, or NULL. */
static inline MoveAgg *
movetab_lookup(MoveTab *t, int32 id)
{
	if (id >= 0 && id < t->cap)
		return t->dense[id].status ? &t->dense[id] : NULL;
	return moveagg_lookup(t->sparse, id);
}

typedef struct PairAgg
{
	uint64		key;			/* a << 32 | b */
	char		status;
	int32		n;
	int32		loc;			/* serial: the one location, -1 when several */
	double		qty;
	double		in;
	double		out;
} PairAgg;

#define SH_PREFIX pairagg
#define SH_ELEMENT_TYPE PairAgg
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) (murmurhash32((uint32) (k)) ^ murmurhash32((uint32) ((k) >> 32) + 0x9e3779b9))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct ScanOut
{
	Tuplestorestate *ts;
	TupleDesc	td;
} ScanOut;

/* float8_numeric(v), without its text round trip when v is a whole number below 10^15 (the same value). */
static Datum
cf_numeric(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return NumericGetDatum(int64_to_numeric((int64) v));
	return DirectFunctionCall1(float8_numeric, Float8GetDatum(v));
}

/* v as printf's "%.15g" into buf (32 bytes), without printf for a whole number below 10^15. */
static const char *
cf_g(double v, char *buf)
{
	if (v == floor(v) && fabs(v) < 1e15 && !(v == 0.0 && signbit(v)))
		pg_lltoa((int64) v, buf);
	else
		snprintf(buf, 32, "%.15g", v);
	return buf;
}

/* Emits one conflict row. */
static void
emit_row(ScanOut *so, const char *kind, const char *severity, const QKey *k, int32 warehouse_id,
		 int32 record_id, double expected, double actual, const char *detail)
{
	Datum		v[12];
	bool		n[12] = {false};

	v[0] = CStringGetTextDatum(kind);
	v[1] = CStringGetTextDatum(severity);
	v[2] = Int32GetDatum(k->product);
	v[3] = Int32GetDatum(k->location);
	n[3] = k->location == 0;
	v[4] = Int32GetDatum(k->lot);
	n[4] = k->lot == 0;
	v[5] = Int32GetDatum(k->package);
	n[5] = k->package == 0;
	v[6] = Int32GetDatum(k->owner);
	n[6] = k->owner == 0;
	v[7] = Int32GetDatum(warehouse_id);
	n[7] = warehouse_id == 0;
	v[8] = Int32GetDatum(record_id);
	n[8] = record_id == 0;
	v[9] = cf_numeric(expected);
	v[10] = cf_numeric(actual);
	v[11] = CStringGetTextDatum(detail);
	tuplestore_putvalues(so->ts, so->td, v, n);
}

/* ---------- partitions by product ---------- */

/*
 * One hash table over a million quant keys costs a cache and TLB miss per
 * row.  Instead the scans append compact records to 256 partitions chosen by
 * product, and each partition is then aggregated on its own, in tables small
 * enough to stay in cache.  Every key and every (warehouse, product) pair
 * lies in exactly one partition, and within a partition the records keep
 * scan order: moves, then quants, then move lines.
 */
#define PART_BITS	8
#define NPARTS		(1 << PART_BITS)
#define PART_CHUNK	160			/* records per chunk: one chunk under 8kB */

typedef enum PRecKind
{
	PR_MOVE,					/* a to-do move's quantity in or out of a warehouse */
	PR_QUANT,
	PR_LINE						/* an open move line */
} PRecKind;

typedef struct PRec
{
	QKey		key;			/* PR_MOVE: product, location = warehouse index */
	int32		kind;
	int32		id;				/* quant or move line id */
	double		a;				/* quant: quantity; line: reserved; move: incoming */
	double		b;				/* quant: reserved; move: outgoing */
} PRec;

typedef struct PChunk
{
	struct PChunk *next;
	int			n;
	PRec		r[PART_CHUNK];
} PChunk;

typedef struct Parts
{
	MemoryContext cxt;
	PChunk	   *head[NPARTS];
	PChunk	   *tail[NPARTS];
	uint32		nkeys[NPARTS];	/* quant and line records */
	uint32		nmoves[NPARTS];
} Parts;

/* Appends a record of the given kind to product's partition; the caller fills key, id, a, b. */
static inline PRec *
part_add(Parts *ps, int32 product, PRecKind kind)
{
	int			p = murmurhash32((uint32) product) & (NPARTS - 1);
	PChunk	   *c = ps->tail[p];
	PRec	   *r;

	if (c == NULL || c->n == PART_CHUNK)
	{
		PChunk	   *nc = MemoryContextAlloc(ps->cxt, sizeof(PChunk));

		nc->next = NULL;
		nc->n = 0;
		if (c)
			c->next = nc;
		else
			ps->head[p] = nc;
		ps->tail[p] = c = nc;
	}
	if (kind == PR_MOVE)
		ps->nmoves[p]++;
	else
		ps->nkeys[p]++;
	r = &c->r[c->n++];
	r->kind = kind;
	return r;
}

/* Appends a to-do move's quantity pq leaving (out) or entering (!out) warehouse index wi. */
static inline void
part_add_move(Parts *ps, int32 product, int wi, double pq, bool out)
{
	PRec	   *r = part_add(ps, product, PR_MOVE);

	memset(&r->key, 0, sizeof(QKey));
	r->key.product = product;
	r->key.location = wi;
	r->id = 0;
	r->a = out ? 0.0 : pq;
	r->b = out ? pq : 0.0;
}

/*
 * Emits the conflicts of one aggregated quant key: kinds 1, 3, 4, 5, 6.
 * merged (NULL when no key has a lot) holds the sums of the key's lots
 * together: Odoo 17 and 18 reserve a lot's move line on a quant of that lot
 * or on one without lot, so kinds 1 and 3 are reported only when the
 * reservations differ across the key's lots too.
 */
static void
emit_key_conflicts(ScanOut *so, const QAgg *a, qagg_hash *merged)
{
	const CfLoc *loc = cf_loc(a->key.location);
	const CfProd *prod = cf_prod(a->key.product);
	double		r = prod->rounding;
	bool		bypass = (loc->flags & LOC_BYPASS) != 0;
	bool		balanced = false;
	char		b1[32], b2[32];

	if (!(loc->flags & LOC_KNOWN) || !(prod->flags & PROD_KNOWN))
		return;
	if (merged)
	{
		QKey		k = a->key;
		QAgg	   *m;

		k.lot = 0;
		m = qagg_lookup(merged, k);
		balanced = m != NULL && cf_cmp(m->res, m->mlres, r) == 0;
	}
	if (a->min_qid != 0)
	{
		if (!bypass && (prod->flags & PROD_STORABLE) && !balanced && cf_cmp(a->res, a->mlres, r) != 0)
			emit_row(so, "reservation_mismatch", "error", &a->key, loc->warehouse_id, a->min_qid,
					 a->mlres, a->res,
					 psprintf("quants reserve %s but open move lines reserve %s", cf_g(a->res, b1), cf_g(a->mlres, b2)));
		if (!bypass && a->res > 0.0 && cf_cmp(a->res, 0.0, r) > 0 && cf_cmp(a->res, a->qty, r) > 0)
			emit_row(so, "over_reservation", "warning", &a->key, loc->warehouse_id, a->min_qid,
					 a->qty, a->res, psprintf("%s reserved but only %s on hand", cf_g(a->res, b1), cf_g(a->qty, b2)));
		if ((loc->flags & LOC_INTERNAL) && a->qty < 0.0 && cf_cmp(a->qty, 0.0, r) < 0)
			emit_row(so, "negative_stock", "warning", &a->key, loc->warehouse_id, a->min_qid,
					 0.0, a->qty, psprintf("%s on hand in an internal location", cf_g(a->qty, b1)));
		if (a->n > 1)
			emit_row(so, "duplicate_quant", "warning", &a->key, loc->warehouse_id, a->min_qid,
					 1.0, a->n, psprintf("%d quants share this key", a->n));
	}
	else if (a->has_ml && !bypass && (prod->flags & PROD_STORABLE) && !balanced && cf_cmp(a->mlres, 0.0, r) > 0)
		emit_row(so, "reservation_without_quant", "error", &a->key, loc->warehouse_id, a->min_mlid,
				 a->mlres, 0.0,
				 psprintf("open move lines reserve %.15g but no quant exists for this key", a->mlres));
}

/* Emits kind 8 for one (warehouse, product) pair when outgoing demand exceeds on hand plus incoming. */
static void
emit_oversell(ScanOut *so, const PairAgg *w, const int32 *wh_ids, const int32 *wh_views)
{
	QKey		k;
	int			wi = (int) (w->key >> 32);
	const CfProd *prod;
	char		b1[32], b2[32], b3[32];

	memset(&k, 0, sizeof(k));
	k.product = (int32) (uint32) w->key;
	prod = cf_prod(k.product);
	if (w->out <= 0.0 || !(prod->flags & PROD_STORABLE))
		return;
	if (w->qty + w->in - w->out >= 0.0 || cf_cmp(w->qty + w->in - w->out, 0.0, prod->rounding) >= 0)
		return;
	k.location = wh_views[wi];
	emit_row(so, "oversell_risk", "warning", &k, wh_ids[wi], 0, w->out, w->qty + w->in,
			 psprintf("open outgoing demand %s exceeds on hand %s plus incoming %s",
					  cf_g(w->out, b1), cf_g(w->qty, b2), cf_g(w->in, b3)));
}

/*
 * Aggregates partition p: keys (quants and open lines) and the on-hand,
 * incoming and outgoing quantities of its (warehouse, product) pairs, then
 * emits their conflicts.  Allocates in cxt, which the caller resets.
 */
static void
part_aggregate(ScanOut *so, const Parts *ps, int p, MemoryContext cxt,
			   const int *loc_wh_first, const int *loc_wh, const int32 *wh_ids, const int32 *wh_views)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	qagg_hash  *keys = qagg_create(cxt, Max(ps->nkeys[p], 16), NULL);
	pairagg_hash *whprod = pairagg_create(cxt, Max(ps->nmoves[p], 16), NULL);

	for (const PChunk *c = ps->head[p]; c; c = c->next)
		for (int i = 0; i < c->n; i++)
		{
			const PRec *r = &c->r[i];
			bool		found;

			if (r->kind == PR_MOVE)
			{
				PairAgg    *w = pairagg_insert(whprod, ((uint64) (uint32) r->key.location << 32) | (uint32) r->key.product, &found);

				if (!found)
					w->qty = w->in = w->out = 0.0;
				w->in += r->a;
				w->out += r->b;
			}
			else if (r->kind == PR_QUANT)
			{
				QAgg	   *a = qagg_insert(keys, r->key, &found);
				int32		l = r->key.location;

				if (!found)
					qagg_init(a);
				a->n++;
				if (a->min_qid == 0 || r->id < a->min_qid)
					a->min_qid = r->id;
				a->qty += r->a;
				a->res += r->b;
				/* only pairs with to-do moves, all seen before the quants, can be at risk */
				if (whprod->members > 0 && l >= 0 && l <= cf.max_loc)
					for (int j = loc_wh_first[l]; j < loc_wh_first[l + 1]; j++)
					{
						PairAgg    *w = pairagg_lookup(whprod, ((uint64) (uint32) loc_wh[j] << 32) | (uint32) r->key.product);

						if (w)
							w->qty += r->a;
					}
			}
			else
			{
				QAgg	   *a = qagg_insert(keys, r->key, &found);

				if (!found)
					qagg_init(a);
				a->has_ml = true;
				a->mlres += r->a;
				if (a->min_mlid == 0 || r->id < a->min_mlid)
					a->min_mlid = r->id;
			}
		}

	{
		qagg_iterator it;
		QAgg	   *a;
		qagg_hash  *merged = NULL;

		/* the keys' lots merged, when some key has a lot (see emit_key_conflicts) */
		qagg_start_iterate(keys, &it);
		while ((a = qagg_iterate(keys, &it)) != NULL)
			if (a->key.lot != 0)
			{
				merged = qagg_create(cxt, Max(keys->members, 16), NULL);
				break;
			}
		if (merged)
		{
			qagg_start_iterate(keys, &it);
			while ((a = qagg_iterate(keys, &it)) != NULL)
			{
				QKey		k = a->key;
				bool		found;
				QAgg	   *m;

				k.lot = 0;
				m = qagg_insert(merged, k, &found);
				if (!found)
					qagg_init(m);
				m->res += a->res;
				m->mlres += a->mlres;
			}
		}
		qagg_start_iterate(keys, &it);
		while ((a = qagg_iterate(keys, &it)) != NULL)
			emit_key_conflicts(so, a, merged);
	}
	{
		pairagg_iterator it;
		PairAgg    *w;

		pairagg_start_iterate(whprod, &it);
		while ((w = pairagg_iterate(whprod, &it)) != NULL)
			emit_oversell(so, w, wh_ids, wh_views);
	}
	MemoryContextSwitchTo(old);
}

/* Emits kind 9 for an open move whose quantity differs from the sum of its lines. */
static void
emit_move_mismatch(ScanOut *so, const MoveAgg *m)
{
	double		r = (m->uom > 0 && m->uom <= cf.max_uom && cf.uoms[m->uom].known)
		? cf.uoms[m->uom].rounding : 0.01;
	QKey		k;
	char		b1[32], b2[32];

	if (cf_cmp(m->qty, m->mlqty, r) == 0)
		return;
	memset(&k, 0, sizeof(k));
	k.product = m->product;
	k.location = m->location;
	emit_row(so, "move_quantity_mismatch", "error", &k, cf_loc(m->location)->warehouse_id, m->id,
			 m->mlqty, m->qty,
			 psprintf("move quantity %s but its move lines sum to %s", cf_g(m->qty, b1), cf_g(m->mlqty, b2)));
}

/* Row estimate of relid from pg_class (at least 1024). */
static uint32
cf_estimate(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	double		n = rel->rd_rel->reltuples;

	table_close(rel, AccessShareLock);
	return (uint32) Min(Max(n, 1024.0), 64.0 * 1024 * 1024);
}

/* Opens a heap scan of relid with the active snapshot. */
static TableScanDesc
scan_open(Oid relid, Relation *rel, TupleTableSlot **slot)
{
	*rel = table_open(relid, AccessShareLock);
	*slot = table_slot_create(*rel, NULL);
	return table_beginscan(*rel, GetActiveSnapshot(), 0, NULL);
}

/* Closes what scan_open opened. */
static void
scan_close(TableScanDesc scan, Relation rel, TupleTableSlot *slot)
{
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
}

/* True when cached location l lies under the parent_path prefix root. */
static inline bool
path_under(const CfLoc *l, const char *root, int rootlen)
{
	return l->path && rootlen > 0 && strncmp(l->path, root, rootlen) == 0;
}

/*
 * SQL: retailflow.reservation_conflicts(): every conflict of Odoo's stock
 * invariants, one row each (see docs/conflicts.md for the kinds).
 */
Datum
rf_reservation_conflicts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RfOdoo *o;
	MemoryContext work, old;
	ScanOut		so;
	Parts	   *ps;
	MoveTab		moves;
	pairagg_hash *serials;
	int			nwh = 0;
	int32	   *wh_ids = NULL;
	int32	   *wh_views = NULL;
	int		   *loc_wh_first;	/* CSR: location id -> warehouses containing it */
	int		   *loc_wh = NULL;
	Relation	rel;
	TupleTableSlot *slot;
	TableScanDesc scan;
	uint64		n = 0;
	RfRunAs		ra;

	o = RfOdooGet();
	if (o->version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("odoo stock tables were not found"),
				 errdetail("Reservation conflicts are computed on stock_quant, stock_move_line and stock_move."),
				 errhint("Set retailflow.odoo_schema to the schema of Odoo's tables.")));
	o = cf_ensure();
	o = RfOdooRequire(RF_MASK(RF_STOCK_WAREHOUSE));
	InitMaterializedSRF(fcinfo, 0);
	so.ts = rsinfo->setResult;
	so.td = rsinfo->setDesc;

	work = AllocSetContextCreate(CurrentMemoryContext, "retailflow reservation_conflicts", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* warehouses (active) and which locations lie in each view subtree */
	RfOdooSpiConnect(&ra);
	cf_query(psprintf("SELECT w.id, w.view_location_id FROM %s.stock_warehouse w WHERE w.active ORDER BY w.id",
					  quote_identifier(get_namespace_name(o->nsp))));
	nwh = (int) SPI_processed;
	wh_ids = MemoryContextAlloc(work, sizeof(int32) * Max(nwh, 1));
	wh_views = MemoryContextAlloc(work, sizeof(int32) * Max(nwh, 1));
	for (int i = 0; i < nwh; i++)
	{
		wh_ids[i] = cf_spi_int(i, 1, 0);
		wh_views[i] = cf_spi_int(i, 2, 0);
	}
	RfOdooSpiFinish(&ra);
	{
		int			total = 0;

		loc_wh_first = palloc0(sizeof(int) * ((Size) cf.max_loc + 2));
		for (int pass = 0; pass < 2; pass++)
		{
			total = 0;
			for (int32 l = 0; l <= cf.max_loc; l++)
			{
				if (pass == 1)
					loc_wh_first[l] = total;
				if (!(cf.locs[l].flags & LOC_KNOWN))
					continue;
				for (int w = 0; w < nwh; w++)
				{
					const CfLoc *v = cf_loc(wh_views[w]);

					if (path_under(&cf.locs[l], v->path, strlen(v->path)))
					{
						if (pass == 1)
							loc_wh[total] = w;
						total++;
					}
				}
			}
			if (pass == 0)
				loc_wh = palloc(sizeof(int) * Max(total, 1));
		}
		loc_wh_first[cf.max_loc + 1] = total;
	}

	/* size the move table from the planner's row estimate: no regrowth */
	movetab_init(&moves, cf_estimate(o->rel[RF_STOCK_MOVE]));
	serials = pairagg_create(work, 256, NULL);
	ps = palloc0(sizeof(Parts));
	ps->cxt = AllocSetContextCreate(work, "retailflow conflict partitions", 0, 64 * 1024, 8 * 1024 * 1024);

	/* stock_move: open moves (quantity check), to-do moves (in/out per warehouse) */
	scan = scan_open(o->rel[RF_STOCK_MOVE], &rel, &slot);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		int32		src, dst, product;

		if ((++n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(slot, cf.m_max);
		if (slot->tts_isnull[cf.m_state - 1] || !cf_state_open(slot, cf.m_state))
			continue;
		product = RfSlotInt(slot, cf.m_product);
		{
			MoveAgg    *m = movetab_insert(&moves, RfSlotInt(slot, cf.m_id));

			m->product = product;
			m->location = RfSlotInt(slot, cf.m_location);
			m->uom = RfSlotInt(slot, cf.m_uom);
			m->qty = RfSlotNum(slot, cf.m_qty);
			m->mlqty = 0.0;
		}
		if (slot->tts_isnull[cf.m_state - 1] || !RfMoveStateTodo(slot->tts_values[cf.m_state - 1]) || !(cf_prod(product)->flags & PROD_STORABLE))
			continue;
		src = RfSlotInt(slot, cf.m_location);
		dst = (cf.m_final != InvalidAttrNumber && !slot->tts_isnull[cf.m_final - 1])
			? RfSlotInt(slot, cf.m_final) : RfSlotInt(slot, cf.m_dest);
		{
			double		pq = RfSlotNum(slot, cf.m_pqty);
			int			sf = (src >= 0 && src <= cf.max_loc) ? loc_wh_first[src] : 0;
			int			sl = (src >= 0 && src <= cf.max_loc) ? loc_wh_first[src + 1] : 0;
			int			df = (dst >= 0 && dst <= cf.max_loc) ? loc_wh_first[dst] : 0;
			int			dl = (dst >= 0 && dst <= cf.max_loc) ? loc_wh_first[dst + 1] : 0;

			for (int j = sf; j < sl; j++)
			{
				bool		inside = false;

				for (int d = df; d < dl; d++)
					inside |= loc_wh[d] == loc_wh[j];
				if (!inside)
					part_add_move(ps, product, loc_wh[j], pq, true);
			}
			for (int d = df; d < dl; d++)
			{
				bool		inside = false;

				for (int j = sf; j < sl; j++)
					inside |= loc_wh[d] == loc_wh[j];
				if (!inside)
					part_add_move(ps, product, loc_wh[d], pq, false);
			}
		}
	}
	scan_close(scan, rel, slot);

	/* stock_quant: keys, per-row checks, serials, on hand per warehouse */
	scan = scan_open(o->rel[RF_STOCK_QUANT], &rel, &slot);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		QKey		k;
		PRec	   *r;
		bool		found;
		double		qty, res;
		int32		qid;
		const CfLoc *loc;
		const CfProd *prod;

		if ((++n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(slot, cf.q_max);
		memset(&k, 0, sizeof(k));
		k.product = RfSlotInt(slot, cf.q_product);
		k.location = RfSlotInt(slot, cf.q_location);
		k.lot = RfSlotInt(slot, cf.q_lot);
		k.package = RfSlotInt(slot, cf.q_package);
		k.owner = RfSlotInt(slot, cf.q_owner);
		qty = RfSlotNum(slot, cf.q_quantity);
		res = RfSlotNum(slot, cf.q_reserved);
		qid = RfSlotInt(slot, cf.q_id);
		r = part_add(ps, k.product, PR_QUANT);
		r->key = k;
		r->id = qid;
		r->a = qty;
		r->b = res;

		loc = cf_loc(k.location);
		prod = cf_prod(k.product);
		if (!(prod->flags & PROD_KNOWN))
			continue;
		if ((loc->flags & LOC_BYPASS) && cf_cmp(res, 0.0, prod->rounding) != 0)
			emit_row(&so, "reserved_in_bypass_location", "error", &k, loc->warehouse_id, qid, 0.0, res,
					 psprintf("%.15g reserved in a %s location, where Odoo never reserves", res, loc->usage));
		else if (!(loc->flags & LOC_BYPASS) && cf_cmp(res, 0.0, prod->rounding) < 0)
			emit_row(&so, "negative_reservation", "warning", &k, loc->warehouse_id, qid, 0.0, res,
					 psprintf("negative reserved quantity %.15g", res));
		if ((prod->flags & PROD_SERIAL) && k.lot && (loc->flags & LOC_INTERNAL))
		{
			PairAgg    *s = pairagg_insert(serials, ((uint64) (uint32) k.product << 32) | (uint32) k.lot, &found);

			if (!found)
			{
				s->n = 0;
				s->qty = s->in = s->out = 0.0;
				s->loc = k.location;
			}
			else if (s->loc != k.location)
				s->loc = -1;
			s->qty += qty;
			if (cf_cmp(qty, 0.0, prod->rounding) != 0)
				s->n++;
		}
	}
	scan_close(scan, rel, slot);

	/* stock_move_line: reservations per key, quantities per move */
	scan = scan_open(o->rel[RF_STOCK_MOVE_LINE], &rel, &slot);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MoveAgg    *m;

		if ((++n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(slot, cf.l_max);
		if (!slot->tts_isnull[cf.l_move - 1] &&
			(m = movetab_lookup(&moves, RfSlotInt(slot, cf.l_move))) != NULL)
		{
			int32		lu = RfSlotInt(slot, cf.l_uom);
			double		q = RfSlotNum(slot, cf.l_qty);

			if (lu != 0 && lu != m->uom && lu <= cf.max_uom && m->uom <= cf.max_uom &&
				cf.uoms[lu].known && cf.uoms[m->uom].known && cf.uoms[lu].factor != 0.0)
				q = q / cf.uoms[lu].factor * cf.uoms[m->uom].factor;
			m->mlqty += q;
		}
		if (cf_state_open(slot, cf.l_state))
		{
			QKey		k;
			PRec	   *r;
			int32		id = RfSlotInt(slot, cf.l_id);

			memset(&k, 0, sizeof(k));
			k.product = RfSlotInt(slot, cf.l_product);
			k.location = RfSlotInt(slot, cf.l_location);
			k.lot = RfSlotInt(slot, cf.l_lot);
			k.package = RfSlotInt(slot, cf.l_package);
			k.owner = RfSlotInt(slot, cf.l_owner);
			r = part_add(ps, k.product, PR_LINE);
			r->key = k;
			r->id = id;
			r->a = RfSlotNum(slot, cf.l_qty_uom);
			r->b = 0.0;
		}
	}
	scan_close(scan, rel, slot);

	/* per partition: kinds 1, 3, 4, 5, 6 and 8 */
	{
		MemoryContext pcxt = AllocSetContextCreate(work, "retailflow conflict partition", ALLOCSET_DEFAULT_SIZES);

		for (int p = 0; p < NPARTS; p++)
		{
			CHECK_FOR_INTERRUPTS();
			part_aggregate(&so, ps, p, pcxt, loc_wh_first, loc_wh, wh_ids, wh_views);
			MemoryContextReset(pcxt);
		}
	}

	/* kind 7: serial numbers */
	{
		pairagg_iterator it;
		PairAgg    *s;

		pairagg_start_iterate(serials, &it);
		while ((s = pairagg_iterate(serials, &it)) != NULL)
		{
			QKey		k;
			double		r;

			memset(&k, 0, sizeof(k));
			k.product = (int32) (s->key >> 32);
			k.lot = (int32) (uint32) s->key;
			k.location = s->loc > 0 ? s->loc : 0;
			r = cf_prod(k.product)->rounding;
			if (cf_cmp(s->qty, 1.0, r) > 0)
				emit_row(&so, "serial_overstock", "warning", &k, 0, k.lot, 1.0, s->qty,
						 psprintf("serial number holds %.15g units in internal locations", s->qty));
			if (s->n > 1)
				emit_row(&so, "serial_duplicated", "warning", &k, 0, k.lot, 1.0, s->n,
						 psprintf("serial number is in %d internal quants", s->n));
		}
	}

	/* kind 9: move quantity vs its lines */
	{
		moveagg_iterator it;
		MoveAgg    *m;

		for (int32 id = 0; id < moves.cap; id++)
			if (moves.dense[id].status)
				emit_move_mismatch(&so, &moves.dense[id]);
		moveagg_start_iterate(moves.sparse, &it);
		while ((m = moveagg_iterate(moves.sparse, &it)) != NULL)
			emit_move_mismatch(&so, m);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/* ---------- the scan, once per transaction, for the exception checks ---------- */

static Tuplestorestate *checks_scan = NULL;
static LocalTransactionId checks_scan_lxid = InvalidLocalTransactionId;

/*
 * SQL: retailflow.conflicts_for_checks(): the rows of reservation_conflicts(),
 * scanned once per transaction and kept (in the transaction's memory) for
 * the conflict kinds of one run of the exception checks.
 */
Datum
rf_conflicts_for_checks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ResourceOwner save_owner = CurrentResourceOwner;
	TupleTableSlot *slot;

	InitMaterializedSRF(fcinfo, 0);
	/* the kept store belongs to the transaction, not to a check's subtransaction */
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		if (checks_scan == NULL || checks_scan_lxid != MyProc->lxid)
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
			Tuplestorestate *ts = tuplestore_begin_heap(true, false, work_mem);
			int			nest;

			MemoryContextSwitchTo(old);
			nest = RfPinSearchPath();
			checks_scan = NULL;
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute("SELECT * FROM retailflow.reservation_conflicts()", true, 0) != SPI_OK_SELECT)
				elog(ERROR, "retailflow: the conflict scan failed");
			for (uint64 i = 0; i < SPI_processed; i++)
				tuplestore_puttuple(ts, SPI_tuptable->vals[i]);
			SPI_finish();
			RfUnpinSearchPath(nest);
			checks_scan = ts;
			checks_scan_lxid = MyProc->lxid;
		}
		slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsMinimalTuple);
		tuplestore_rescan(checks_scan);
		while (tuplestore_gettupleslot(checks_scan, true, false, slot))
			tuplestore_puttupleslot(rsinfo->setResult, slot);
		ExecDropSingleTupleTableSlot(slot);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save_owner;
	}
	PG_END_TRY();
	return (Datum) 0;
}
