/*
 * availability.c
 *	  Owns stock availability with Odoo 17/18 semantics:
 *	    retailflow.available_qty()            stock_quant._get_available_quantity
 *	    retailflow.warehouse_available_qty()  the same from a warehouse's view location
 *	    retailflow.product_quantities()       product.product._compute_quantities_dict,
 *	                                          for a product x warehouse (or location) matrix
 *	    retailflow.product_quantities_at()    the same for (product, location) pairs only
 *	    retailflow.replenishment_needs()      reordering rules below their minimum, with
 *	                                          the quantity to order (and, as
 *	                                          replenishment_items(), the exception
 *	                                          check's items)
 *	  and the per-backend caches they read: locations (parent_path, usage),
 *	  warehouses, products (tracking, storable, UoM rounding) and which index
 *	  of stock_quant / stock_move leads with product_id.
 *
 *	  Cache correctness: statement triggers on the cached Odoo tables queue a
 *	  relcache invalidation (odoo_catalog.c), so a change committed by any
 *	  session, or replayed on a standby, marks the matching part stale here.
 *	  A part loaded in a transaction that received an invalidation may have
 *	  been read with a snapshot older than that change, so it is trusted for
 *	  that transaction only and reloaded by the next one.  Quants and moves are
 *	  never cached: they are read with the caller's snapshot every time.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_available_qty);
PG_FUNCTION_INFO_V1(rf_warehouse_available_qty);
PG_FUNCTION_INFO_V1(rf_product_quantities);
PG_FUNCTION_INFO_V1(rf_replenishment_needs);
PG_FUNCTION_INFO_V1(rf_replenishment_items);
PG_FUNCTION_INFO_V1(rf_product_quantities_at);

/* ---------- cached Odoo master data ---------- */

typedef struct RfLoc
{
	int32		id;
	int32		company_id;
	int32		warehouse_id;
	char		usage;			/* 'i'nternal 'v'iew 's'upplier 'c'ustomer inventor'y' 'p'roduction 't'ransit */
	bool		scrap;
	int			pathlen;
	char	   *path;			/* parent_path, e.g. "1/7/12/" */
} RfLoc;

typedef struct RfWh
{
	int32		id;
	int32		view_location_id;
	int32		company_id;
	bool		active;
} RfWh;

typedef struct RfProd
{
	int32		id;
	bool		active;
	char		tracking;		/* 'n'one 'l'ot 's'erial */
	char		kind;			/* 'S'torable 'c'onsumable 'v' service 'o'ther */
	double		rounding;		/* uom_uom.rounding of the product's UoM */
} RfProd;

/* Maps Odoo ids to array positions: a dense array when ids are compact. */
typedef struct IdMap
{
	int32		max_id;
	int32	   *dense;			/* position + 1, 0 = absent */
	HTAB	   *hash;
} IdMap;

typedef struct IdMapEntry
{
	int32		id;
	int32		pos;
} IdMapEntry;

enum
{
	PART_LOC, PART_WH, PART_PROD, PART_RELS, NUM_PARTS
};

typedef struct AvCache
{
	MemoryContext part_cxt[NUM_PARTS];
	bool		stale[NUM_PARTS];
	bool		txonly[NUM_PARTS];
	LocalTransactionId loaded_lxid[NUM_PARTS];
	LocalTransactionId inval_lxid[NUM_PARTS];
	Oid			rel[RF_NUM_TABLES];	/* relids the parts were loaded from */
	int			version;

	RfLoc	   *locs;
	int			nlocs;
	IdMap		locmap;
	RfWh	   *whs;
	int			nwhs;
	IdMap		whmap;
	RfProd	   *prods;
	int			nprods;
	IdMap		prodmap;

	/* PART_RELS: column numbers and product_id-leading indexes */
	Oid			quant_index;
	Oid			move_index;
	AttrNumber	q_product, q_location, q_lot, q_package, q_owner, q_quantity, q_reserved, q_max;
	AttrNumber	m_product, m_state, m_location, m_dest, m_final, m_qty, m_max;
} AvCache;

static AvCache av;
static bool av_initialized = false;

/* Registers nothing at load time; caches are created on first use. */
void
AvailabilityInit(void)
{
}

/* Relcache callback: marks the parts loaded from relid stale. */
static void
av_relcache_callback(Datum arg, Oid relid)
{
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;

	for (int p = 0; p < NUM_PARTS; p++)
	{
		bool		hit = !OidIsValid(relid);

		switch (p)
		{
			case PART_LOC:
				hit |= relid == av.rel[RF_STOCK_LOCATION];
				break;
			case PART_WH:
				hit |= relid == av.rel[RF_STOCK_WAREHOUSE];
				break;
			case PART_PROD:
				hit |= relid == av.rel[RF_PRODUCT_PRODUCT] ||
					relid == av.rel[RF_PRODUCT_TEMPLATE] || relid == av.rel[RF_UOM_UOM];
				break;
			case PART_RELS:
				hit |= relid == av.rel[RF_STOCK_QUANT] || relid == av.rel[RF_STOCK_MOVE];
				break;
		}
		if (hit)
		{
			av.stale[p] = true;
			av.inval_lxid[p] = lxid;
		}
	}
}

/* ---------- id maps ---------- */

/* Builds an id -> position map over n ids. */
static void
idmap_build(IdMap *m, MemoryContext cxt, int n, int32 (*idof) (int), int32 max_id)
{
	memset(m, 0, sizeof(*m));
	m->max_id = max_id;
	if (max_id >= 0 && max_id <= 4 * 1024 * 1024)
	{
		m->dense = MemoryContextAllocZero(cxt, sizeof(int32) * ((Size) max_id + 1));
		for (int i = 0; i < n; i++)
		{
			int32		id = idof(i);

			if (id >= 0)
				m->dense[id] = i + 1;
		}
	}
	else
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(IdMapEntry);
		ctl.hcxt = cxt;
		m->hash = hash_create("retailflow id map", Max(n, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int i = 0; i < n; i++)
		{
			int32		id = idof(i);
			IdMapEntry *e = hash_search(m->hash, &id, HASH_ENTER, NULL);

			e->pos = i;
		}
	}
}

/* Returns the position of id, or -1. */
static inline int
idmap_get(const IdMap *m, int32 id)
{
	if (m->dense)
		return (id >= 0 && id <= m->max_id) ? m->dense[id] - 1 : -1;
	if (m->hash)
	{
		IdMapEntry *e = hash_search(m->hash, &id, HASH_FIND, NULL);

		return e ? e->pos : -1;
	}
	return -1;
}

static int32
loc_idof(int i)
{
	return av.locs[i].id;
}

static int32
wh_idof(int i)
{
	return av.whs[i].id;
}

static int32
prod_idof(int i)
{
	return av.prods[i].id;
}

/* ---------- loading ---------- */

/* Runs a read-only query through SPI, erroring on failure. */
static void
spi_query(const char *sql)
{
	int			ret = SPI_execute(sql, true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "retailflow: cache query failed (%d): %s", ret, sql);
}

/* Returns an int4 column of the current SPI row, or dflt when NULL. */
static inline int32
spi_int(int row, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

/* Returns a bool column of the current SPI row, or dflt when NULL. */
static inline bool
spi_bool(int row, int col, bool dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? dflt : DatumGetBool(d);
}

/* Loads stock_location into the cache. */
static void
load_locations(MemoryContext cxt, const char *nsp)
{
	int32		max_id = -1;

	spi_query(psprintf("SELECT id, parent_path, usage::text, company_id, warehouse_id, scrap_location "
					   "FROM %s.stock_location", nsp));
	av.nlocs = (int) SPI_processed;
	av.locs = MemoryContextAllocZero(cxt, sizeof(RfLoc) * Max(av.nlocs, 1));
	for (int i = 0; i < av.nlocs; i++)
	{
		RfLoc	   *l = &av.locs[i];
		char	   *path = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		char	   *usage = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);

		l->id = spi_int(i, 1, -1);
		l->path = MemoryContextStrdup(cxt, path ? path : "");
		l->pathlen = strlen(l->path);
		l->usage = !usage ? '?' :
			strcmp(usage, "internal") == 0 ? 'i' :
			strcmp(usage, "view") == 0 ? 'v' :
			strcmp(usage, "supplier") == 0 ? 's' :
			strcmp(usage, "customer") == 0 ? 'c' :
			strcmp(usage, "inventory") == 0 ? 'y' :
			strcmp(usage, "production") == 0 ? 'p' :
			strcmp(usage, "transit") == 0 ? 't' : '?';
		l->company_id = spi_int(i, 4, 0);
		l->warehouse_id = spi_int(i, 5, 0);
		l->scrap = spi_bool(i, 6, false);
		max_id = Max(max_id, l->id);
	}
	idmap_build(&av.locmap, cxt, av.nlocs, loc_idof, max_id);
}

/* Loads stock_warehouse into the cache. */
static void
load_warehouses(MemoryContext cxt, const char *nsp)
{
	int32		max_id = -1;

	spi_query(psprintf("SELECT id, view_location_id, company_id, active FROM %s.stock_warehouse ORDER BY id", nsp));
	av.nwhs = (int) SPI_processed;
	av.whs = MemoryContextAllocZero(cxt, sizeof(RfWh) * Max(av.nwhs, 1));
	for (int i = 0; i < av.nwhs; i++)
	{
		av.whs[i].id = spi_int(i, 1, -1);
		av.whs[i].view_location_id = spi_int(i, 2, 0);
		av.whs[i].company_id = spi_int(i, 3, 0);
		av.whs[i].active = spi_bool(i, 4, true);
		max_id = Max(max_id, av.whs[i].id);
	}
	idmap_build(&av.whmap, cxt, av.nwhs, wh_idof, max_id);
}

/* Loads product_product x product_template x uom_uom into the cache. */
static void
load_products(MemoryContext cxt, const char *nsp, int version)
{
	int32		max_id = -1;

	spi_query(psprintf("SELECT pp.id, pp.active, pt.tracking::text, pt.type::text, %s, u.rounding::float8 "
					   "FROM %s.product_product pp "
					   "JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
					   "LEFT JOIN %s.uom_uom u ON u.id = pt.uom_id ORDER BY pp.id",
					   version >= 18 ? "coalesce(pt.is_storable, false)" : "pt.type = 'product'",
					   nsp, nsp, nsp));
	av.nprods = (int) SPI_processed;
	av.prods = MemoryContextAllocZero(cxt, sizeof(RfProd) * Max(av.nprods, 1));
	for (int i = 0; i < av.nprods; i++)
	{
		RfProd	   *p = &av.prods[i];
		char	   *tracking = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		char	   *type = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
		bool		isnull;
		Datum		r;

		p->id = spi_int(i, 1, -1);
		p->active = spi_bool(i, 2, true);
		p->tracking = tracking && strcmp(tracking, "lot") == 0 ? 'l' :
			tracking && strcmp(tracking, "serial") == 0 ? 's' : 'n';
		if (spi_bool(i, 5, false))
			p->kind = 'S';
		else if (type && strcmp(type, "service") == 0)
			p->kind = 'v';
		else if (type && strcmp(type, "consu") == 0)
			p->kind = 'c';
		else
			p->kind = 'o';
		r = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6, &isnull);
		p->rounding = isnull ? 0.01 : DatumGetFloat8(r);
		max_id = Max(max_id, p->id);
	}
	idmap_build(&av.prodmap, cxt, av.nprods, prod_idof, max_id);
}


/* Loads column numbers and index choices for stock_quant and stock_move. */
static void
load_rels(void)
{
	av.q_product = RfAttnum(RF_STOCK_QUANT, "product_id", false);
	av.q_location = RfAttnum(RF_STOCK_QUANT, "location_id", false);
	av.q_lot = RfAttnum(RF_STOCK_QUANT, "lot_id", false);
	av.q_package = RfAttnum(RF_STOCK_QUANT, "package_id", false);
	av.q_owner = RfAttnum(RF_STOCK_QUANT, "owner_id", false);
	av.q_quantity = RfAttnum(RF_STOCK_QUANT, "quantity", false);
	av.q_reserved = RfAttnum(RF_STOCK_QUANT, "reserved_quantity", false);
	av.q_max = Max(Max(Max(av.q_product, av.q_location), Max(av.q_lot, av.q_package)),
				   Max(Max(av.q_owner, av.q_quantity), av.q_reserved));
	av.quant_index = RfFindLeadingIndex(av.rel[RF_STOCK_QUANT], av.q_product);

	av.m_product = RfAttnum(RF_STOCK_MOVE, "product_id", false);
	av.m_state = RfAttnum(RF_STOCK_MOVE, "state", false);
	av.m_location = RfAttnum(RF_STOCK_MOVE, "location_id", false);
	av.m_dest = RfAttnum(RF_STOCK_MOVE, "location_dest_id", false);
	av.m_final = RfAttnum(RF_STOCK_MOVE, "location_final_id", true);
	av.m_qty = RfAttnum(RF_STOCK_MOVE, "product_qty", false);
	av.m_max = Max(Max(Max(av.m_product, av.m_state), Max(av.m_location, av.m_dest)),
				   Max(av.m_final, av.m_qty));
	av.move_index = RfFindLeadingIndex(av.rel[RF_STOCK_MOVE], av.m_product);
}

/* Makes sure the parts in part_mask are loaded and valid for this snapshot. */
static const RfOdoo *
av_ensure(uint32 table_mask, uint32 part_mask)
{
	const RfOdoo *o;
	const char *nsp;
	volatile bool need_spi = false;
	LocalTransactionId lxid = MyProc->lxid;
	RfRunAs		ra;

	/* Pick up invalidations from commits that our snapshot may already see. */
	AcceptInvalidationMessages();

	table_mask |= RF_MASK(RF_STOCK_QUANT) | RF_MASK(RF_STOCK_LOCATION) |
		RF_MASK(RF_PRODUCT_PRODUCT) | RF_MASK(RF_PRODUCT_TEMPLATE) | RF_MASK(RF_UOM_UOM);
	o = RfOdooRequire(table_mask);

	if (!av_initialized)
	{
		for (int p = 0; p < NUM_PARTS; p++)
		{
			av.part_cxt[p] = AllocSetContextCreate(CacheMemoryContext, "retailflow availability cache",
												   ALLOCSET_DEFAULT_SIZES);
			av.stale[p] = true;
		}
		CacheRegisterRelcacheCallback(av_relcache_callback, (Datum) 0);
		av_initialized = true;
	}
	if (memcmp(av.rel, o->rel, sizeof(av.rel)) != 0 || av.version != o->version)
	{
		memcpy(av.rel, o->rel, sizeof(av.rel));
		av.version = o->version;
		for (int p = 0; p < NUM_PARTS; p++)
			av.stale[p] = true;
	}

	for (int p = 0; p < NUM_PARTS; p++)
	{
		if (!(part_mask & (1 << p)))
			continue;
		if (av.stale[p] || (av.txonly[p] && av.loaded_lxid[p] != lxid))
		{
			av.stale[p] = true;
			if (p != PART_RELS)
				need_spi = true;
		}
	}

	if (!need_spi && !av.stale[PART_RELS])
		return o;				/* the common case: everything cached and valid */
	nsp = quote_identifier(get_namespace_name(o->nsp));
	if (need_spi)
		RfOdooSpiConnect(&ra);
	for (int p = 0; p < NUM_PARTS; p++)
	{
		if (!(part_mask & (1 << p)) || !av.stale[p])
			continue;
		/* Clear first: an invalidation arriving during the load sets it again. */
		av.stale[p] = false;
		MemoryContextReset(av.part_cxt[p]);
		PG_TRY();
		{
			switch (p)
			{
				case PART_LOC:
					load_locations(av.part_cxt[p], nsp);
					break;
				case PART_WH:
					load_warehouses(av.part_cxt[p], nsp);
					break;
				case PART_PROD:
					load_products(av.part_cxt[p], nsp, o->version);
					break;
				case PART_RELS:
					load_rels();
					break;
			}
		}
		PG_CATCH();
		{
			av.stale[p] = true;
			PG_RE_THROW();
		}
		PG_END_TRY();
		av.loaded_lxid[p] = lxid;
		av.txonly[p] = (av.inval_lxid[p] == lxid);
	}
	if (need_spi)
		RfOdooSpiFinish(&ra);
	return o;
}

/* ---------- lookups with clear errors ---------- */

/* Returns the cached product or raises an error for unknown/service products. */
static const RfProd *
lookup_product(int32 product_id)
{
	int			pos = idmap_get(&av.prodmap, product_id);
	const RfProd *p;

	if (pos < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product %d does not exist", product_id),
				 errdetail("There is no row with id %d in product_product.", product_id),
				 errhint("Pass the id of a product.product record, not of a product.template.")));
	p = &av.prods[pos];
	if (p->kind == 'v')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product %d is a service and has no stock", product_id),
				 errdetail("Only storable and consumable products are stocked; services never have quants or stock moves."),
				 errhint("Leave service products out of availability queries.")));
	return p;
}

/* Returns the cached location or raises an error for an unknown id. */
static const RfLoc *
lookup_location(int32 location_id)
{
	int			pos = idmap_get(&av.locmap, location_id);

	if (pos < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("location %d does not exist", location_id),
				 errdetail("There is no row with id %d in stock_location.", location_id),
				 errhint("Use a stock_location id, or warehouse_available_qty() for a warehouse id.")));
	return &av.locs[pos];
}

/* Returns the cached warehouse or raises an error for an unknown id. */
static const RfWh *
lookup_warehouse(int32 warehouse_id)
{
	int			pos = idmap_get(&av.whmap, warehouse_id);

	if (pos < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("warehouse %d does not exist", warehouse_id),
				 errdetail("There is no row with id %d in stock_warehouse.", warehouse_id),
				 errhint("List warehouses with SELECT id, code, name FROM stock_warehouse.")));
	return &av.whs[pos];
}

/* Checks that an optional id exists in an Odoo table (lot, package, owner). */
static void
check_ref_exists(const RfOdoo *o, RfTable table, int32 id, const char *what, int32 product_id)
{
	char	   *sql;
	bool		found;
	int32		lot_product = 0;
	RfRunAs		ra;

	if (!OidIsValid(o->rel[table]))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("odoo table \"%s\" was not found", RfTableNames[table]),
				 errdetail("A %s id was given, but this database has no %s table.", what, RfTableNames[table])));
	sql = psprintf("SELECT %s FROM %s.%s WHERE id = %d",
				   table == RF_STOCK_LOT ? "product_id" : "1",
				   quote_identifier(get_namespace_name(o->nsp)), RfTableNames[table], id);
	RfOdooSpiConnect(&ra);
	spi_query(sql);
	found = SPI_processed > 0;
	if (found && table == RF_STOCK_LOT)
		lot_product = spi_int(0, 1, 0);
	RfOdooSpiFinish(&ra);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %d does not exist", what, id),
				 errdetail("There is no row with id %d in %s.", id, RfTableNames[table])));
	if (table == RF_STOCK_LOT && lot_product != product_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lot %d belongs to product %d, not to product %d", id, lot_product, product_id),
				 errdetail("Odoo refuses quants whose lot is of another product.")));
}

/* True if location l lies in the subtree rooted at root (parent_path prefix). */
static inline bool
loc_in_subtree(const RfLoc *l, const RfLoc *root)
{
	return l->pathlen >= root->pathlen && root->pathlen > 0 &&
		memcmp(l->path, root->path, root->pathlen) == 0;
}

/* ---------- available_qty ---------- */

typedef struct LotBucket
{
	int32		lot_id;			/* 0 = untracked */
	double		qty;
} LotBucket;

/* qsort comparator for LotBucket by lot id. */
static int
lotbucket_cmp(const void *a, const void *b)
{
	int32		x = ((const LotBucket *) a)->lot_id;
	int32		y = ((const LotBucket *) b)->lot_id;

	return (x > y) - (x < y);
}



/*
 * Odoo's stock.quant._get_available_quantity for product at location:
 * gathers quants (child locations unless strict), applies lot/package/owner
 * filters, sums per lot for tracked products keeping positive buckets only
 * unless allow_negative, and clamps at 0 unless allow_negative.
 */
static double
available_qty_internal(const RfOdoo *o, int32 product_id, int32 location_id,
					   int32 lot_id, int32 package_id, int32 owner_id,
					   bool strict, bool allow_negative)
{
	const RfProd *prod = lookup_product(product_id);
	const RfLoc *root = lookup_location(location_id);
	Relation	rel;
	Relation	irel = NULL;
	TupleTableSlot *slot;
	IndexScanDesc iscan = NULL;
	TableScanDesc hscan = NULL;
	ScanKeyData key;
	Snapshot	snapshot = GetActiveSnapshot();
	double		untracked = 0.0;
	LotBucket  *buckets = NULL;
	int			nbuckets = 0,
				maxbuckets = 0;
	bool		tracked = prod->tracking != 'n';

	if (strict && root->usage == 'v')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("location %d is a view location", location_id),
				 errdetail("Odoo never stores quants in view locations, so a strict lookup there is always empty."),
				 errhint("Use strict => false to count the view's child locations.")));
	if (lot_id)
		check_ref_exists(o, RF_STOCK_LOT, lot_id, "lot", product_id);
	if (package_id)
		check_ref_exists(o, RF_STOCK_QUANT_PACKAGE, package_id, "package", product_id);
	if (owner_id)
		check_ref_exists(o, RF_RES_PARTNER, owner_id, "owner", product_id);

	rel = table_open(o->rel[RF_STOCK_QUANT], AccessShareLock);
	slot = table_slot_create(rel, NULL);
	if (OidIsValid(av.quant_index))
	{
		irel = index_open(av.quant_index, AccessShareLock);
		iscan = index_beginscan(rel, irel, snapshot, 1, 0);
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(product_id));
		index_rescan(iscan, &key, 1, NULL, 0);
	}
	else
		hscan = table_beginscan(rel, snapshot, 0, NULL);

	for (;;)
	{
		int32		q_loc, q_lot, q_pkg, q_owner;
		double		avail;

		if (iscan ? !index_getnext_slot(iscan, ForwardScanDirection, slot)
			: !table_scan_getnextslot(hscan, ForwardScanDirection, slot))
			break;
		slot_getsomeattrs(slot, av.q_max);
		if (!iscan && RfSlotInt(slot, av.q_product) != product_id)
			continue;
		CHECK_FOR_INTERRUPTS();
		q_loc = RfSlotInt(slot, av.q_location);
		q_lot = RfSlotInt(slot, av.q_lot);
		q_pkg = RfSlotInt(slot, av.q_package);
		q_owner = RfSlotInt(slot, av.q_owner);

		/* _get_gather_domain */
		if (strict)
		{
			if (q_loc != location_id)
				continue;
			if (lot_id ? (q_lot != lot_id && q_lot != 0) : q_lot != 0)
				continue;
			if (q_pkg != package_id || q_owner != owner_id)
				continue;
		}
		else
		{
			int			pos = idmap_get(&av.locmap, q_loc);

			if (pos < 0)
			{
				/* a location newer than our cache: reload once and retry the lookup */
				av.stale[PART_LOC] = true;
				continue;
			}
			if (!loc_in_subtree(&av.locs[pos], root))
				continue;
			if (lot_id && q_lot != lot_id && q_lot != 0)
				continue;
			if (package_id && q_pkg != package_id)
				continue;
			if (owner_id && q_owner != owner_id)
				continue;
		}

		avail = RfSlotNum(slot, av.q_quantity) - RfSlotNum(slot, av.q_reserved);
		if (!tracked || q_lot == 0)
		{
			if (tracked && strict && lot_id)
				continue;		/* untracked quant skipped in strict lot lookups */
			untracked += avail;
			continue;
		}
		if (nbuckets == maxbuckets)
		{
			maxbuckets = maxbuckets ? maxbuckets * 2 : 16;
			buckets = buckets ? repalloc(buckets, sizeof(LotBucket) * maxbuckets)
				: palloc(sizeof(LotBucket) * maxbuckets);
		}
		buckets[nbuckets].lot_id = q_lot;
		buckets[nbuckets].qty = avail;
		nbuckets++;
	}
	if (iscan)
	{
		index_endscan(iscan);
		index_close(irel, AccessShareLock);
	}
	else
		table_endscan(hscan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	if (!tracked)
	{
		if (allow_negative)
			return untracked;
		return RfFloatCompare(untracked, 0.0, prod->rounding) >= 0 ? untracked : 0.0;
	}
	else
	{
		double		total = 0.0;
		double		positive = 0.0;

		/* per-lot buckets, plus one for untracked quants */
		if (nbuckets > 1)
			qsort(buckets, nbuckets, sizeof(LotBucket), lotbucket_cmp);
		for (int i = 0; i < nbuckets;)
		{
			double		sum = 0.0;
			int			j = i;

			while (j < nbuckets && buckets[j].lot_id == buckets[i].lot_id)
				sum += buckets[j++].qty;
			total += sum;
			if (RfFloatCompare(sum, 0.0, prod->rounding) > 0)
				positive += sum;
			i = j;
		}
		total += untracked;
		if (RfFloatCompare(untracked, 0.0, prod->rounding) > 0)
			positive += untracked;
		return allow_negative ? total : positive;
	}
}

/* Returns an int4 argument that must not be NULL. */
static int32
required_int_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errdetail("retailflow cannot compute availability without a %s.", name)));
	return PG_GETARG_INT32(argno);
}

/* Returns an optional id argument: 0 when NULL, error when not positive. */
static int32
optional_id_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int32		v;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return 0;
	v = PG_GETARG_INT32(argno);
	if (v <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive id, not %d", name, v),
				 errdetail("Odoo record ids start at 1; pass NULL for no %s filter.", name)));
	return v;
}

/* SQL: retailflow.available_qty(product_id, location_id, lot_id, package_id, owner_id, strict, allow_negative) */
Datum
rf_available_qty(PG_FUNCTION_ARGS)
{
	int32		product_id = required_int_arg(fcinfo, 0, "product_id");
	int32		location_id = required_int_arg(fcinfo, 1, "location_id");
	int32		lot_id = optional_id_arg(fcinfo, 2, "lot_id");
	int32		package_id = optional_id_arg(fcinfo, 3, "package_id");
	int32		owner_id = optional_id_arg(fcinfo, 4, "owner_id");
	bool		strict = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	bool		allow_negative = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
	const RfOdoo *o;
	double		result;

	o = av_ensure(0, (1 << PART_LOC) | (1 << PART_PROD) | (1 << PART_RELS));
	result = available_qty_internal(o, product_id, location_id, lot_id, package_id, owner_id,
									strict, allow_negative);
	if (av.stale[PART_LOC])
	{
		/* a quant pointed at a location created after our cache: redo once */
		o = av_ensure(0, (1 << PART_LOC));
		result = available_qty_internal(o, product_id, location_id, lot_id, package_id, owner_id,
										strict, allow_negative);
	}
	PG_RETURN_FLOAT8(result);
}

/* SQL: retailflow.warehouse_available_qty(product_id, warehouse_id, lot_id, package_id, owner_id, allow_negative) */
Datum
rf_warehouse_available_qty(PG_FUNCTION_ARGS)
{
	int32		product_id = required_int_arg(fcinfo, 0, "product_id");
	int32		warehouse_id = required_int_arg(fcinfo, 1, "warehouse_id");
	int32		lot_id = optional_id_arg(fcinfo, 2, "lot_id");
	int32		package_id = optional_id_arg(fcinfo, 3, "package_id");
	int32		owner_id = optional_id_arg(fcinfo, 4, "owner_id");
	bool		allow_negative = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	const RfOdoo *o;
	int32		view_id;
	double		result;

	o = av_ensure(RF_MASK(RF_STOCK_WAREHOUSE),
				  (1 << PART_LOC) | (1 << PART_WH) | (1 << PART_PROD) | (1 << PART_RELS));
	view_id = lookup_warehouse(warehouse_id)->view_location_id;
	result = available_qty_internal(o, product_id, view_id, lot_id, package_id, owner_id,
									false, allow_negative);
	if (av.stale[PART_LOC])
	{
		o = av_ensure(0, (1 << PART_LOC));
		result = available_qty_internal(o, product_id, view_id, lot_id, package_id, owner_id,
										false, allow_negative);
	}
	PG_RETURN_FLOAT8(result);
}

/* ---------- product_quantities ---------- */

typedef struct RfCell
{
	uint64		key;			/* request index << 32 | target index */
	char		status;
	double		qty;
	double		reserved;
	double		incoming;
	double		outgoing;
} RfCell;

#define SH_PREFIX rfcell
#define SH_ELEMENT_TYPE RfCell
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) (murmurhash32((uint32) (k)) ^ murmurhash32((uint32) ((k) >> 32) + 0x9e3779b9))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct MatrixCtx
{
	int			ntargets;
	const RfLoc **targets;		/* subtree roots */
	int32	   *target_wh;		/* warehouse id per target, 0 if none */
	int		   *loc_first;		/* CSR: targets containing each cached location */
	int		   *loc_targets;
	int			nreq;
	int32	   *req_ids;		/* product ids in output order */
	int		   *req_of_prod;	/* cached product position -> request index, -1 */
	rfcell_hash *cells;			/* sparse cells, when the matrix is too big to index */
	int32	   *cellidx;		/* dense (request x target) -> position in cellv + 1 */
	RfCell	   *cellv;			/* the non-empty cells, in creation order */
	Size		ncells;
	Size		maxcells;
	uint64	   *want;			/* pairs mode, dense: bitmap of the wanted cells */
	bool		fixed;			/* pairs mode, sparse: only the pre-created cells count */
	struct PendingAdd *pend;	/* additions batched so cell lookups can be prefetched */
	int			npend;
	int		   *target_of_loc;	/* pairs mode: cached location position -> target, -1 */
} MatrixCtx;

/* One addition waiting in the batch. */
typedef struct PendingAdd
{
	int			req;
	int			target;
	double		qty, reserved, incoming, outgoing;
} PendingAdd;

#define MATRIX_BATCH 256

/* Largest request x target matrix indexed densely (4 bytes per cell). */
#define MATRIX_DENSE_MAX ((Size) 64 * 1024 * 1024)

/* Requests up to which quants and moves are read by index, product by product. */
#define MATRIX_INDEX_MAX_REQ 256

/* Deconstructs a nullable int4[] argument; errors on NULL elements. */
static int32 *
int_array_arg(ArrayType *arr, int *n, const char *name)
{
	Datum	   *elems;
	bool	   *nulls;
	int32	   *out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", name),
					 errdetail("Element %d of %s is null.", i + 1, name),
					 errhint("Remove the nulls, or pass NULL instead of the whole array to mean \"all\".")));
		out[i] = DatumGetInt32(elems[i]);
	}
	return out;
}

/* Position of cell (req, target) in the dense index and the want bitmap. */
static inline Size
matrix_pos(const MatrixCtx *m, int req, int target)
{
	return (Size) req * m->ntargets + target;
}

/* Returns (creating unless fixed) the accumulator cell for (request, target); NULL if not wanted. */
static inline RfCell *
matrix_cell(MatrixCtx *m, int req, int target)
{
	bool		found;
	RfCell	   *c;

	if (m->cellidx)
	{
		int32	   *idx = &m->cellidx[matrix_pos(m, req, target)];

		if (*idx == 0)
		{
			if (m->ncells == m->maxcells)
			{
				m->maxcells *= 2;
				m->cellv = repalloc_huge(m->cellv, sizeof(RfCell) * m->maxcells);
			}
			c = &m->cellv[m->ncells++];
			*idx = (int32) m->ncells;
			c->qty = c->reserved = c->incoming = c->outgoing = 0.0;
			return c;
		}
		return &m->cellv[*idx - 1];
	}
	if (m->fixed)
		return rfcell_lookup(m->cells, ((uint64) req << 32) | (uint32) target);
	c = rfcell_insert(m->cells, ((uint64) req << 32) | (uint32) target, &found);
	if (!found)
		c->qty = c->reserved = c->incoming = c->outgoing = 0.0;
	return c;
}

/* Returns the accumulated cell (request, target), or NULL when nothing was added to it. */
static inline RfCell *
matrix_lookup(MatrixCtx *m, int req, int target)
{
	if (m->cellidx)
	{
		int32		idx = m->cellidx[matrix_pos(m, req, target)];

		return idx ? &m->cellv[idx - 1] : NULL;
	}
	return rfcell_lookup(m->cells, ((uint64) req << 32) | (uint32) target);
}

/*
 * Applies the batched additions.  The cells of a big matrix are scattered over
 * tens of megabytes, so each lookup is a cache miss: prefetching the whole
 * batch first lets those misses overlap instead of being paid one by one.
 */
static void
matrix_flush(MatrixCtx *m)
{
	if (m->cellidx)
	{
		for (int i = 0; i < m->npend; i++)
			__builtin_prefetch(&m->cellidx[matrix_pos(m, m->pend[i].req, m->pend[i].target)]);
		for (int i = 0; i < m->npend; i++)
		{
			int32		idx = m->cellidx[matrix_pos(m, m->pend[i].req, m->pend[i].target)];

			if (idx)
				__builtin_prefetch(&m->cellv[idx - 1], 1);
		}
	}
	for (int i = 0; i < m->npend; i++)
	{
		PendingAdd *a = &m->pend[i];
		RfCell	   *c = matrix_cell(m, a->req, a->target);

		if (!c)
			continue;			/* a pair nobody asked for */
		c->qty += a->qty;
		c->reserved += a->reserved;
		c->incoming += a->incoming;
		c->outgoing += a->outgoing;
	}
	m->npend = 0;
}

/* True unless pairs mode (dense) knows that cell (req, target) is not wanted. */
static inline bool
matrix_wanted(const MatrixCtx *m, int req, int target)
{
	Size		pos;

	if (!m->want)
		return true;
	pos = matrix_pos(m, req, target);
	return (m->want[pos / 64] & ((uint64) 1 << (pos % 64))) != 0;
}

/* Queues an addition to cell (req, target), unless the cell is not wanted. */
static inline void
matrix_add(MatrixCtx *m, int req, int target, double qty, double reserved, double incoming, double outgoing)
{
	PendingAdd *a;

	if (!matrix_wanted(m, req, target))
		return;
	a = &m->pend[m->npend++];
	a->req = req;
	a->target = target;
	a->qty = qty;
	a->reserved = reserved;
	a->incoming = incoming;
	a->outgoing = outgoing;
	if (m->npend == MATRIX_BATCH)
		matrix_flush(m);
}

/* Adds one quant tuple (deformed up to product and location) to the matrix. */
static inline void
matrix_quant(MatrixCtx *m, TupleTableSlot *slot)
{
	int			ppos = idmap_get(&av.prodmap, RfSlotInt(slot, av.q_product));
	int			req, lpos, k;
	double		qty, res;

	if (ppos < 0 || (req = m->req_of_prod[ppos]) < 0)
		return;
	lpos = idmap_get(&av.locmap, RfSlotInt(slot, av.q_location));
	if (lpos < 0)
		return;
	for (k = m->loc_first[lpos]; k < m->loc_first[lpos + 1]; k++)
		if (matrix_wanted(m, req, m->loc_targets[k]))
			break;
	if (k == m->loc_first[lpos + 1])
		return;					/* in no target, or in no wanted cell */
	slot_getsomeattrs(slot, av.q_max);
	qty = RfSlotNum(slot, av.q_quantity);
	res = RfSlotNum(slot, av.q_reserved);
	for (int k = m->loc_first[lpos]; k < m->loc_first[lpos + 1]; k++)
		matrix_add(m, req, m->loc_targets[k], qty, res, 0.0, 0.0);
}


/* True if cached location position lpos lies in target t. */
static inline bool
loc_in_target(MatrixCtx *m, int lpos, int t)
{
	if (lpos < 0)
		return false;
	for (int k = m->loc_first[lpos]; k < m->loc_first[lpos + 1]; k++)
		if (m->loc_targets[k] == t)
			return true;
	return false;
}

/* Adds one stock_move tuple (deformed up to product) to the matrix (incoming/outgoing per target). */
static inline void
matrix_move(MatrixCtx *m, TupleTableSlot *slot)
{
	int			ppos = idmap_get(&av.prodmap, RfSlotInt(slot, av.m_product));
	int			req, src, dst;
	int32		dest_id;
	double		qty;

	if (ppos < 0 || (req = m->req_of_prod[ppos]) < 0)
		return;
	slot_getsomeattrs(slot, av.m_max);
	if (slot->tts_isnull[av.m_state - 1] || !RfMoveStateTodo(slot->tts_values[av.m_state - 1]))
		return;
	src = idmap_get(&av.locmap, RfSlotInt(slot, av.m_location));
	/* Odoo 18 judges a move in progress by its final destination when set */
	dest_id = (av.m_final != InvalidAttrNumber && !slot->tts_isnull[av.m_final - 1])
		? RfSlotInt(slot, av.m_final) : RfSlotInt(slot, av.m_dest);
	dst = idmap_get(&av.locmap, dest_id);
	qty = RfSlotNum(slot, av.m_qty);
	if (dst >= 0)
		for (int k = m->loc_first[dst]; k < m->loc_first[dst + 1]; k++)
		{
			int			t = m->loc_targets[k];

			if (!loc_in_target(m, src, t))
				matrix_add(m, req, t, 0.0, 0.0, qty, 0.0);
		}
	if (src >= 0)
		for (int k = m->loc_first[src]; k < m->loc_first[src + 1]; k++)
		{
			int			t = m->loc_targets[k];

			if (!loc_in_target(m, dst, t))
				matrix_add(m, req, t, 0.0, 0.0, 0.0, qty);
		}
}

/* Feeds every visible row of relid (or only those of the requested products), deformed up to keyatt, to fn. */
static void
matrix_scan(MatrixCtx *m, Oid relid, Oid indexoid, AttrNumber keyatt,
			void (*fn) (MatrixCtx *, TupleTableSlot *), bool by_index)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot = GetActiveSnapshot();
	uint64		n = 0;

	if (by_index && OidIsValid(indexoid))
	{
		Relation	irel = index_open(indexoid, AccessShareLock);
		IndexScanDesc scan = index_beginscan(rel, irel, snapshot, 1, 0);
		ScanKeyData key;

		for (int r = 0; r < m->nreq; r++)
		{
			ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(m->req_ids[r]));
			index_rescan(scan, &key, 1, NULL, 0);
			while (index_getnext_slot(scan, ForwardScanDirection, slot))
			{
				slot_getsomeattrs(slot, keyatt);
				fn(m, slot);
			}
			CHECK_FOR_INTERRUPTS();
		}
		index_endscan(scan);
		index_close(irel, AccessShareLock);
	}
	else
	{
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			slot_getsomeattrs(slot, keyatt);
			fn(m, slot);
			if ((++n & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		table_endscan(scan);
	}
	matrix_flush(m);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
}

/* Prepares an empty matrix for up to maxreq requests and maxtargets targets. */
static void
matrix_init(MatrixCtx *m, int maxreq, int maxtargets)
{
	memset(m, 0, sizeof(*m));
	m->req_of_prod = palloc(sizeof(int) * Max(av.nprods, 1));
	for (int i = 0; i < av.nprods; i++)
		m->req_of_prod[i] = -1;
	m->req_ids = palloc(sizeof(int32) * Max(maxreq, 1));
	m->targets = palloc(sizeof(RfLoc *) * Max(maxtargets, 1));
	m->target_wh = palloc(sizeof(int32) * Max(maxtargets, 1));
	m->pend = palloc(sizeof(PendingAdd) * MATRIX_BATCH);
}

/* Adds a product to the requests (checked; duplicates collapse) and returns its request index. */
static int
matrix_add_request(MatrixCtx *m, int32 product_id)
{
	int			ppos;

	lookup_product(product_id);
	ppos = idmap_get(&av.prodmap, product_id);
	if (m->req_of_prod[ppos] < 0)
	{
		m->req_of_prod[ppos] = m->nreq;
		m->req_ids[m->nreq++] = product_id;
	}
	return m->req_of_prod[ppos];
}

/* Adds target root (with its warehouse id) to the matrix and returns its index. */
static int
matrix_add_target(MatrixCtx *m, const RfLoc *root, int32 warehouse_id)
{
	m->targets[m->ntargets] = root;
	m->target_wh[m->ntargets] = warehouse_id;
	return m->ntargets++;
}

/* Returns the target of a location's subtree (checked), adding it the first time it is asked for. */
static int
matrix_location_target(MatrixCtx *m, int32 location_id)
{
	const RfLoc *l = lookup_location(location_id);
	int			lpos = l - av.locs;

	if (m->target_of_loc == NULL)
	{
		m->target_of_loc = palloc(sizeof(int) * Max(av.nlocs, 1));
		for (int i = 0; i < av.nlocs; i++)
			m->target_of_loc[i] = -1;
	}
	if (m->target_of_loc[lpos] < 0)
		m->target_of_loc[lpos] = matrix_add_target(m, l, l->warehouse_id);
	return m->target_of_loc[lpos];
}

/* Builds the CSR map cached location -> targets whose subtree contains it, and the cell storage. */
static void
matrix_prepare(MatrixCtx *m, MemoryContext work)
{
	int			total = 0;
	Size		ncells = (Size) m->nreq * m->ntargets;

	m->loc_first = palloc0(sizeof(int) * (av.nlocs + 1));
	for (int l = 0; l < av.nlocs; l++)
		for (int t = 0; t < m->ntargets; t++)
			if (loc_in_subtree(&av.locs[l], m->targets[t]))
				total++;
	m->loc_targets = palloc(sizeof(int) * Max(total, 1));
	total = 0;
	for (int l = 0; l < av.nlocs; l++)
	{
		m->loc_first[l] = total;
		for (int t = 0; t < m->ntargets; t++)
			if (loc_in_subtree(&av.locs[l], m->targets[t]))
				m->loc_targets[total++] = t;
	}
	m->loc_first[av.nlocs] = total;

	if (ncells <= MATRIX_DENSE_MAX)
	{
		/* dense index, compact cells: no hashing, sequential output */
		m->cellidx = MemoryContextAllocHuge(work, sizeof(int32) * Max(ncells, 1));
		memset(m->cellidx, 0, sizeof(int32) * Max(ncells, 1));
		m->maxcells = 1024;
		m->cellv = MemoryContextAllocHuge(work, sizeof(RfCell) * m->maxcells);
	}
	else
		m->cells = rfcell_create(work, 1024, NULL);
}

/* Marks cell (req, target) as wanted (pairs mode); returns false if it already was. */
static bool
matrix_want(MatrixCtx *m, int req, int target)
{
	if (m->cellidx)
	{
		Size		pos = matrix_pos(m, req, target);
		uint64		bit = (uint64) 1 << (pos % 64);

		if (!m->want)
			m->want = palloc0(sizeof(uint64) * (((Size) m->nreq * m->ntargets + 63) / 64));
		if (m->want[pos / 64] & bit)
			return false;
		m->want[pos / 64] |= bit;
		return true;
	}
	else
	{
		bool		found;
		RfCell	   *c = rfcell_insert(m->cells, ((uint64) req << 32) | (uint32) target, &found);

		m->fixed = true;
		if (!found)
			c->qty = c->reserved = c->incoming = c->outgoing = 0.0;
		return !found;
	}
}

/* Reads the quants and open moves of the requested products into the cells. */
static void
matrix_compute(MatrixCtx *m, const RfOdoo *o)
{
	bool		by_index = m->nreq <= MATRIX_INDEX_MAX_REQ;

	if (m->nreq == 0 || m->ntargets == 0)
		return;
	matrix_scan(m, o->rel[RF_STOCK_QUANT], av.quant_index, Max(av.q_product, av.q_location), matrix_quant, by_index);
	matrix_scan(m, o->rel[RF_STOCK_MOVE], av.move_index, av.m_product, matrix_move, by_index);
}

/* UoM rounding of the product of request r. */
static inline double
matrix_rounding(const MatrixCtx *m, int r)
{
	return av.prods[idmap_get(&av.prodmap, m->req_ids[r])].rounding;
}

/*
 * The result rows of the matrix (3 int4 and 6 float8 columns, warehouse_id
 * nullable) are written in place into a minimal tuple: the layout of each of
 * the two shapes (warehouse_id present or null) is taken from
 * heap_form_minimal_tuple once, and checked by writing a second set of values
 * at the computed offsets and comparing the bytes.  A dense matrix has
 * millions of rows; forming each through the generic code was a fifth of the
 * call.  Any other row type uses tuplestore_putvalues.
 */
typedef struct RowWriter
{
	bool		fast;
	Size		len[2];
	MinimalTuple tmpl[2];		/* [1]: warehouse_id null */
	int			off[2][9];		/* byte offset of each column, -1 when null */
	MinimalTuple buf;
	TupleTableSlot *slot;
} RowWriter;

/* Sets the two test rows' values (a distinct pattern per set). */
static void
rowwriter_sample(Datum *values, int set)
{
	for (int i = 0; i < 3; i++)
		values[i] = Int32GetDatum(set ? 0x0a0b0c0d + i : 0x01020304 + 7 * i);
	for (int i = 3; i < 9; i++)
		values[i] = Float8GetDatum(set ? -7.25 - i : 1.5 + i);
}

/* Stores the values at the offsets of shape v into buf (a copy of that shape's template). */
static inline void
rowwriter_fill(RowWriter *w, int v, MinimalTuple buf, const Datum *values)
{
	memcpy(buf, w->tmpl[v], w->len[v]);
	for (int i = 0; i < 9; i++)
	{
		if (w->off[v][i] < 0)
			continue;
		if (i < 3)
		{
			int32		x = DatumGetInt32(values[i]);

			memcpy((char *) buf + w->off[v][i], &x, sizeof(x));
		}
		else
		{
			float8		x = DatumGetFloat8(values[i]);

			memcpy((char *) buf + w->off[v][i], &x, sizeof(x));
		}
	}
}

/* Prepares the in-place writer for desc; w->fast stays false unless the layout checks out. */
static void
rowwriter_init(RowWriter *w, TupleDesc desc)
{
	memset(w, 0, sizeof(*w));
	if (desc->natts != 9)
		return;
	for (int i = 0; i < 9; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->atttypid != (i < 3 ? INT4OID : FLOAT8OID) || !a->attbyval || a->attisdropped)
			return;
	}
	for (int v = 0; v < 2; v++)
	{
		Datum		a[9], b[9];
		bool		nulls[9] = {false};
		MinimalTuple ta, tb, copy;
		int			hoff, off = 0;

		nulls[1] = v == 1;
		rowwriter_sample(a, 0);
		rowwriter_sample(b, 1);
		ta = heap_form_minimal_tuple(desc, a, nulls);
		tb = heap_form_minimal_tuple(desc, b, nulls);
		if (ta->t_len != tb->t_len)
			return;
		hoff = ta->t_hoff - MINIMAL_TUPLE_OFFSET;
		for (int i = 0; i < 9; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (nulls[i])
			{
				w->off[v][i] = -1;
				continue;
			}
			off = att_align_nominal(off, att->attalign);
			w->off[v][i] = hoff + off;
			off += att->attlen;
		}
		if ((Size) (hoff + off) != ta->t_len)
			return;
		w->tmpl[v] = ta;
		w->len[v] = ta->t_len;
		copy = palloc(ta->t_len);
		rowwriter_fill(w, v, copy, b);
		if (memcmp(copy, tb, tb->t_len) != 0)
			return;
		pfree(copy);
		pfree(tb);
	}
	w->buf = palloc(Max(w->len[0], w->len[1]));
	w->slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	w->fast = true;
}

/* Releases the writer's slot. */
static void
rowwriter_done(RowWriter *w)
{
	if (w->slot)
		ExecDropSingleTupleTableSlot(w->slot);
	w->slot = NULL;
}

/* Appends the output row of cell (r, t), c = NULL meaning nothing there, rounded to rnd (the product's UoM). */
static void
matrix_emit(ReturnSetInfo *rsinfo, RowWriter *w, const MatrixCtx *m, int r, int t, const RfCell *c, double rnd)
{
	Datum		values[9];
	bool		nulls[9] = {false};
	double		qty, res, in, out;

	qty = c ? c->qty : 0.0;
	res = c ? c->reserved : 0.0;
	in = c ? RfFloatRound(c->incoming, rnd) : 0.0;
	out = c ? RfFloatRound(c->outgoing, rnd) : 0.0;
	values[0] = Int32GetDatum(m->req_ids[r]);
	values[1] = Int32GetDatum(m->target_wh[t]);
	nulls[1] = m->target_wh[t] == 0;
	values[2] = Int32GetDatum(m->targets[t]->id);
	values[3] = Float8GetDatum(RfFloatRound(qty, rnd));
	values[4] = Float8GetDatum(RfFloatRound(res, rnd));
	values[5] = Float8GetDatum(RfFloatRound(qty - res, rnd));
	values[6] = Float8GetDatum(in);
	values[7] = Float8GetDatum(out);
	values[8] = Float8GetDatum(RfFloatRound(qty + in - out, rnd));
	if (w->fast)
	{
		rowwriter_fill(w, nulls[1] ? 1 : 0, w->buf, values);
		ExecStoreMinimalTuple(w->buf, w->slot, false);
		tuplestore_puttupleslot(rsinfo->setResult, w->slot);
	}
	else
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * SQL: retailflow.product_quantities(product_ids int[], warehouse_ids int[],
 * location_ids int[], include_zero bool): Odoo's qty_available, reserved,
 * free_qty, incoming_qty, outgoing_qty and virtual_available per product and
 * warehouse (or location subtree).
 */
Datum
rf_product_quantities(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		include_zero = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	MatrixCtx	m;
	RowWriter	writer;
	const RfOdoo *o;
	int			nprod_list = 0;
	int32	   *prod_list = NULL;
	int			ntarget_list;
	int32	   *target_list = NULL;
	MemoryContext work;
	MemoryContext old;

	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("warehouse_ids and location_ids cannot both be given"),
				 errdetail("Quantities are computed either per warehouse or per location subtree."),
				 errhint("Pass NULL for one of them.")));

	InitMaterializedSRF(fcinfo, 0);
	o = av_ensure(RF_MASK(RF_STOCK_WAREHOUSE) | RF_MASK(RF_STOCK_MOVE),
				  (1 << PART_LOC) | (1 << PART_WH) | (1 << PART_PROD) | (1 << PART_RELS));

	work = AllocSetContextCreate(CurrentMemoryContext, "retailflow product_quantities", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	if (!PG_ARGISNULL(0))
		prod_list = int_array_arg(PG_GETARG_ARRAYTYPE_P(0), &nprod_list, "product_ids");
	ntarget_list = av.nwhs;
	if (!PG_ARGISNULL(2))
		target_list = int_array_arg(PG_GETARG_ARRAYTYPE_P(2), &ntarget_list, "location_ids");
	else if (!PG_ARGISNULL(1))
		target_list = int_array_arg(PG_GETARG_ARRAYTYPE_P(1), &ntarget_list, "warehouse_ids");
	matrix_init(&m, PG_ARGISNULL(0) ? av.nprods : nprod_list, ntarget_list);

	/* products */
	if (PG_ARGISNULL(0))
	{
		for (int i = 0; i < av.nprods; i++)
			if (av.prods[i].kind == 'S' && av.prods[i].active)
			{
				m.req_of_prod[i] = m.nreq;
				m.req_ids[m.nreq++] = av.prods[i].id;
			}
	}
	else
		for (int i = 0; i < nprod_list; i++)
			matrix_add_request(&m, prod_list[i]);

	/* targets */
	if (!PG_ARGISNULL(2))
	{
		for (int i = 0; i < ntarget_list; i++)
		{
			const RfLoc *l = lookup_location(target_list[i]);

			matrix_add_target(&m, l, l->warehouse_id);
		}
	}
	else
	{
		for (int i = 0; i < ntarget_list; i++)
		{
			const RfWh *w = target_list ? lookup_warehouse(target_list[i]) : &av.whs[i];

			if (!target_list && !w->active)
				continue;
			if (idmap_get(&av.locmap, w->view_location_id) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("warehouse %d has a view location %d that does not exist", w->id, w->view_location_id),
						 errdetail("stock_warehouse.view_location_id must reference stock_location.")));
			matrix_add_target(&m, lookup_location(w->view_location_id), w->id);
		}
	}

	matrix_prepare(&m, work);
	matrix_compute(&m, o);

	MemoryContextSwitchTo(old);
	rowwriter_init(&writer, rsinfo->setDesc);
	for (int r = 0; r < m.nreq; r++)
	{
		double		rnd = matrix_rounding(&m, r);

		if (m.cellidx && r + 1 < m.nreq)
		{
			/* the next row's cells are scattered: start fetching them now */
			const int32 *next = &m.cellidx[matrix_pos(&m, r + 1, 0)];

			for (int t = 0; t < m.ntargets; t++)
				if (next[t])
					__builtin_prefetch(&m.cellv[next[t] - 1]);
		}
		for (int t = 0; t < m.ntargets; t++)
		{
			RfCell	   *c = matrix_lookup(&m, r, t);

			if (c || include_zero)
				matrix_emit(rsinfo, &writer, &m, r, t, c, rnd);
		}
	}
	rowwriter_done(&writer);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/*
 * SQL: retailflow.product_quantities_at(product_ids int[], location_ids int[]):
 * product_quantities() for the element-wise (product, location subtree) pairs
 * only, one row per distinct pair in the order of first appearance.
 */
Datum
rf_product_quantities_at(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MatrixCtx	m;
	RowWriter	writer;
	const RfOdoo *o;
	int			nprod, nloc, npairs = 0;
	int32	   *prod_list, *loc_list;
	int		   *pair_req, *pair_target;
	MemoryContext work;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("product_ids and location_ids must not be null"),
				 errdetail("product_quantities_at() needs one location for each product."),
				 errhint("Use product_quantities() for every product or warehouse.")));

	InitMaterializedSRF(fcinfo, 0);
	o = av_ensure(RF_MASK(RF_STOCK_WAREHOUSE) | RF_MASK(RF_STOCK_MOVE),
				  (1 << PART_LOC) | (1 << PART_WH) | (1 << PART_PROD) | (1 << PART_RELS));

	work = AllocSetContextCreate(CurrentMemoryContext, "retailflow product_quantities_at", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	prod_list = int_array_arg(PG_GETARG_ARRAYTYPE_P(0), &nprod, "product_ids");
	loc_list = int_array_arg(PG_GETARG_ARRAYTYPE_P(1), &nloc, "location_ids");
	if (nprod != nloc)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product_ids and location_ids must have the same length"),
				 errdetail("Got %d product ids and %d location ids.", nprod, nloc),
				 errhint("Element i of location_ids is the location of element i of product_ids.")));
	matrix_init(&m, nprod, nloc);

	/* requests = distinct products, targets = distinct locations */
	pair_req = palloc(sizeof(int) * Max(nprod, 1));
	pair_target = palloc(sizeof(int) * Max(nprod, 1));
	for (int i = 0; i < nprod; i++)
	{
		pair_req[i] = matrix_add_request(&m, prod_list[i]);
		pair_target[i] = matrix_location_target(&m, loc_list[i]);
	}

	matrix_prepare(&m, work);
	for (int i = 0; i < nprod; i++)
		if (matrix_want(&m, pair_req[i], pair_target[i]))
		{
			pair_req[npairs] = pair_req[i];
			pair_target[npairs++] = pair_target[i];
		}
	matrix_compute(&m, o);

	MemoryContextSwitchTo(old);
	rowwriter_init(&writer, rsinfo->setDesc);
	for (int i = 0; i < npairs; i++)
		matrix_emit(rsinfo, &writer, &m, pair_req[i], pair_target[i], matrix_lookup(&m, pair_req[i], pair_target[i]),
					matrix_rounding(&m, pair_req[i]));
	rowwriter_done(&writer);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/* ---------- replenishment ---------- */

/* numeric arithmetic for the replenishment rows (values keep their scale, as in SQL) */
#define NUM_OP2(fn, a, b) DatumGetNumeric(DirectFunctionCall2(fn, NumericGetDatum(a), NumericGetDatum(b)))
#define NUM_CMP(fn, a, b) DatumGetBool(DirectFunctionCall2(fn, NumericGetDatum(a), NumericGetDatum(b)))

/* Columns of the reordering rule query. */
enum
{
	RR_ID, RR_NAME, RR_PRODUCT, RR_LOCATION, RR_WAREHOUSE, RR_COMPANY,
	RR_MIN, RR_MAX, RR_MULTIPLE, RR_ROUNDING, RR_REF, RR_NCOLS
};

/* One reordering rule as read, with its matrix cell. */
typedef struct ReplenishRule
{
	Datum		v[RR_NCOLS];
	bool		isnull[RR_NCOLS];
	int			req;
	int			target;
} ReplenishRule;

/* qsort comparator: rules by id. */
static int
replenish_rule_cmp(const void *a, const void *b)
{
	int32		x = DatumGetInt32((*(ReplenishRule *const *) a)->v[RR_ID]);
	int32		y = DatumGetInt32((*(ReplenishRule *const *) b)->v[RR_ID]);

	return (x > y) - (x < y);
}

/* Returns quantity x (a multiple of the rounding already) as numeric: units counted in float8, times r. */
static Numeric
replenish_units(double x, Numeric r, double rd)
{
	double		k;

	if (rd == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_DIVISION_BY_ZERO),
				 errmsg("division by zero"),
				 errdetail("The unit of measure of a reordering rule's product has a rounding of 0.")));
	k = rint(x / rd);
	if (!(k > -9.2e18 && k < 9.2e18))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("quantity %g is out of range for its unit of measure", x)));
	return NUM_OP2(numeric_mul, int64_to_numeric((int64) k), r);
}

/* Adds "key": numeric to the jsonb object being built (NULL as json null). */
static void
replenish_json_num(JsonbParseState **st, const char *key, Numeric num)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
	if (num == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = num;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * The reordering rules (stock_warehouse_orderpoint; active, not snoozed at
 * as_of, storable active product) whose free or forecast quantity at the
 * rule's location subtree is below the minimum, with Odoo's quantity to
 * order: up to the maximum, rounded to the multiple (Odoo 18 rounds down when
 * a maximum is set).  The quantities come from the matrix of the rules' own
 * (product, location) pairs; the arithmetic is numeric, so every value has
 * the scale the Odoo columns give it.  In rule id order, either as
 * replenishment_needs() rows or, for the exception check, as its items with
 * the reason and data already built (no text round trip per number).
 */
static void
replenishment_rows(FunctionCallInfo fcinfo, bool items)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RfOdoo *o;
	MatrixCtx	m;
	MemoryContext work,
				rowcxt,
				old;
	Oid			argtype = TIMESTAMPTZOID;
	Datum		arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	const char *nsp;
	int			n;
	ReplenishRule *rules;
	ReplenishRule **order;
	Numeric		zero;
	bool		v18;
	StringInfoData reason;
	RfRunAs		ra;

	InitMaterializedSRF(fcinfo, 0);
	o = av_ensure(RF_MASK(RF_STOCK_WAREHOUSE) | RF_MASK(RF_STOCK_MOVE) | RF_MASK(RF_STOCK_WAREHOUSE_ORDERPOINT) |
				  RF_MASK(RF_PRODUCT_TEMPLATE) | RF_MASK(RF_UOM_UOM),
				  (1 << PART_LOC) | (1 << PART_WH) | (1 << PART_PROD) | (1 << PART_RELS));
	v18 = o->version >= 18;
	nsp = quote_identifier(get_namespace_name(o->nsp));

	work = AllocSetContextCreate(CurrentMemoryContext, "retailflow replenishment", ALLOCSET_DEFAULT_SIZES);
	rowcxt = AllocSetContextCreate(work, "retailflow replenishment row", ALLOCSET_DEFAULT_SIZES);
	RfOdooSpiConnect(&ra);
	if (SPI_execute_with_args(psprintf(
		"SELECT o.id, o.name::text, o.product_id, o.location_id, o.warehouse_id, o.company_id, "
		"       o.product_min_qty::numeric, o.product_max_qty::numeric, coalesce(o.qty_multiple, 0)::numeric, "
		"       u.rounding::numeric, coalesce(pp.default_code, pt.name ->> 'en_US', pp.id::text)::text "
		"FROM %s.stock_warehouse_orderpoint o "
		"JOIN %s.product_product pp ON pp.id = o.product_id "
		"JOIN %s.product_template pt ON pt.id = pp.product_tmpl_id "
		"JOIN %s.uom_uom u ON u.id = pt.uom_id "
		"WHERE coalesce(o.active, true) AND coalesce(pp.active, true) AND %s "
		"  AND (o.snoozed_until IS NULL "
		"       OR o.snoozed_until <= (coalesce($1, retailflow.now()) AT TIME ZONE 'UTC')::date)",
		nsp, nsp, nsp, nsp,
		v18 ? "(pt.type = 'consu' AND coalesce(pt.is_storable, false))" : "pt.type = 'product'"),
							  1, &argtype, &arg, PG_ARGISNULL(0) ? "n" : " ", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the reordering rules");
	n = (int) SPI_processed;

	/* each rule deformed once, then taken in id order */
	old = MemoryContextSwitchTo(work);
	rules = palloc(sizeof(ReplenishRule) * Max(n, 1));
	order = palloc(sizeof(ReplenishRule *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, rules[i].v, rules[i].isnull);
		order[i] = &rules[i];
	}
	qsort(order, n, sizeof(ReplenishRule *), replenish_rule_cmp);

	/* the rules' (product, location) pairs */
	matrix_init(&m, n, n);
	for (int i = 0; i < n; i++)
	{
		order[i]->req = matrix_add_request(&m, DatumGetInt32(order[i]->v[RR_PRODUCT]));
		order[i]->target = matrix_location_target(&m, DatumGetInt32(order[i]->v[RR_LOCATION]));
	}
	matrix_prepare(&m, work);
	for (int i = 0; i < n; i++)
		(void) matrix_want(&m, order[i]->req, order[i]->target);
	matrix_compute(&m, o);
	zero = int64_to_numeric(0);
	initStringInfo(&reason);

	for (int i = 0; i < n; i++)
	{
		ReplenishRule *rule = order[i];
		const RfCell *c = matrix_lookup(&m, rule->req, rule->target);
		double		rnd = matrix_rounding(&m, rule->req);
		double		qty = c ? c->qty : 0.0,
					res = c ? c->reserved : 0.0,
					in = c ? RfFloatRound(c->incoming, rnd) : 0.0,
					out = c ? RfFloatRound(c->outgoing, rnd) : 0.0;
		bool		null_mx = rule->isnull[RR_MAX];
		Numeric		mn, mx, mult, r, free, fc, q0, qto;
		double		rd;
		bool		fc_low;
		Datum		values[13];
		bool		nulls[13] = {false};

		if (rule->isnull[RR_MIN] || rule->isnull[RR_ROUNDING])
			continue;			/* "below NULL" is never true */
		MemoryContextSwitchTo(rowcxt);
		mn = DatumGetNumeric(rule->v[RR_MIN]);
		mx = null_mx ? NULL : DatumGetNumeric(rule->v[RR_MAX]);
		mult = DatumGetNumeric(rule->v[RR_MULTIPLE]);
		r = DatumGetNumeric(rule->v[RR_ROUNDING]);
		rd = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(r)));
		free = replenish_units(RfFloatRound(qty - res, rnd), r, rd);
		fc = replenish_units(RfFloatRound(qty + in - out, rnd), r, rd);
		fc_low = NUM_CMP(numeric_lt, fc, mn);
		if (!fc_low && !NUM_CMP(numeric_lt, free, mn))
		{
			MemoryContextReset(rowcxt);
			continue;
		}
		/* up to the larger of minimum and maximum (GREATEST keeps the first on a tie) */
		if (fc_low)
			q0 = NUM_OP2(numeric_sub, (!null_mx && NUM_CMP(numeric_gt, mx, mn)) ? mx : mn, fc);
		else
			q0 = zero;
		/* rounded to the multiple: up, or in Odoo 18 down when a maximum is set */
		if (NUM_CMP(numeric_le, q0, zero) || NUM_CMP(numeric_le, mult, zero) ||
			NUM_CMP(numeric_eq, NUM_OP2(numeric_mod, q0, mult), zero))
			qto = q0;
		else if (v18 && !null_mx && NUM_CMP(numeric_ne, mx, zero))
			qto = NUM_OP2(numeric_sub, q0, NUM_OP2(numeric_mod, q0, mult));
		else
			qto = NUM_OP2(numeric_add, q0, NUM_OP2(numeric_sub, mult, NUM_OP2(numeric_mod, q0, mult)));

		if (!items)
		{
			values[0] = rule->v[RR_ID];
			values[1] = rule->v[RR_NAME];
			nulls[1] = rule->isnull[RR_NAME];
			values[2] = rule->v[RR_PRODUCT];
			values[3] = rule->v[RR_REF];
			nulls[3] = rule->isnull[RR_REF];
			values[4] = rule->v[RR_LOCATION];
			values[5] = rule->v[RR_WAREHOUSE];
			nulls[5] = rule->isnull[RR_WAREHOUSE];
			values[6] = rule->v[RR_COMPANY];
			nulls[6] = rule->isnull[RR_COMPANY];
			values[7] = NumericGetDatum(free);
			values[8] = NumericGetDatum(fc);
			values[9] = NumericGetDatum(mn);
			values[10] = null_mx ? (Datum) 0 : NumericGetDatum(mx);
			nulls[10] = null_mx;
			values[11] = NumericGetDatum(mult);
			values[12] = NumericGetDatum(qto);
		}
		else
		{
			JsonbParseState *st = NULL;
			JsonbValue *obj;

			/* reason: '%s: free %s, forecast %s, minimum %s; order %s' */
			resetStringInfo(&reason);
			if (!rule->isnull[RR_REF])
				appendStringInfoString(&reason, TextDatumGetCString(rule->v[RR_REF]));
			appendStringInfoString(&reason, ": free ");
			appendStringInfoString(&reason, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(free))));
			appendStringInfoString(&reason, ", forecast ");
			appendStringInfoString(&reason, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(fc))));
			appendStringInfoString(&reason, ", minimum ");
			appendStringInfoString(&reason, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(mn))));
			appendStringInfoString(&reason, "; order ");
			appendStringInfoString(&reason, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(qto))));

			pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
			replenish_json_num(&st, "product_id", int64_to_numeric(DatumGetInt32(rule->v[RR_PRODUCT])));
			replenish_json_num(&st, "location_id", int64_to_numeric(DatumGetInt32(rule->v[RR_LOCATION])));
			replenish_json_num(&st, "free_qty", free);
			replenish_json_num(&st, "forecast_qty", fc);
			replenish_json_num(&st, "min_qty", mn);
			replenish_json_num(&st, "max_qty", mx);
			replenish_json_num(&st, "qty_multiple", mult);
			replenish_json_num(&st, "qty_to_order", qto);
			obj = pushJsonbValue(&st, WJB_END_OBJECT, NULL);

			values[0] = CStringGetTextDatum("stock.warehouse.orderpoint");
			values[1] = rule->v[RR_ID];
			values[2] = rule->v[RR_NAME];
			nulls[2] = rule->isnull[RR_NAME];
			nulls[3] = nulls[4] = nulls[5] = true;	/* since, user_id, team_id */
			values[6] = rule->v[RR_COMPANY];
			nulls[6] = rule->isnull[RR_COMPANY];
			values[7] = rule->v[RR_WAREHOUSE];
			nulls[7] = rule->isnull[RR_WAREHOUSE];
			values[8] = CStringGetTextDatum(reason.data);
			values[9] = JsonbPGetDatum(JsonbValueToJsonb(obj));
			values[10] = CStringGetTextDatum("critical");
			nulls[10] = !NUM_CMP(numeric_le, free, zero);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextReset(rowcxt);
		if ((i & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	RfOdooSpiFinish(&ra);
	MemoryContextDelete(work);
}

/* SQL: retailflow.replenishment_needs(as_of timestamptz): the rules below their minimum. */
Datum
rf_replenishment_needs(PG_FUNCTION_ARGS)
{
	replenishment_rows(fcinfo, false);
	return (Datum) 0;
}

/* SQL: retailflow.replenishment_items(as_of timestamptz): the same rules as the replenishment check's items. */
Datum
rf_replenishment_items(PG_FUNCTION_ARGS)
{
	replenishment_rows(fcinfo, true);
	return (Datum) 0;
}
