/*
 * outbox_capture.c
 *	  Owns the capture side of the transactional outbox: the C row trigger
 *	  retailflow.capture_trigger(kind, model) that turns Odoo state changes
 *	  into outbox events (state changes of sale_order, stock_picking and
 *	  purchase_order, posted refunds of account_move, stock.low on
 *	  stock_quant), the per-backend cache of which event types an active
 *	  endpoint consumes (a change nobody consumes costs no query and writes
 *	  nothing) and of the products that have a reordering rule, the fan-out
 *	  of each event to the matching endpoints, and the commit callback that
 *	  wakes the delivery workers when a transaction that wrote deliveries
 *	  commits.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "catalog/pg_collation.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "catalog/namespace.h"

#include "retailflow.h"
#include "webhooks.h"

PG_FUNCTION_INFO_V1(rf_capture_trigger);
PG_FUNCTION_INFO_V1(rf_wake_workers_at_commit);

/* Did the current transaction write deliveries?  Reset at end of transaction. */
static bool wake_at_commit = false;

static SPIPlanPtr enqueue_plan = NULL;
static SPIPlanPtr low_plan = NULL;
static char *low_plan_schema = NULL;

/* Column numbers of a captured table (the triggers have no WHEN clause: the filter is here). */
typedef struct CaptureCols
{
	Oid			relid;
	AttrNumber	state;			/* text or varchar */
	AttrNumber	move_type;
	AttrNumber	quantity;		/* numeric */
	AttrNumber	reserved;
} CaptureCols;

#define CAPTURE_RELS 8
static CaptureCols capture_cols[CAPTURE_RELS];

/*
 * Who consumes what, per backend: the active endpoints and their filters,
 * the registered event types and the disabled subscriptions.  Statement
 * triggers on those tables invalidate it (cache_invalidate_trigger()).
 */
typedef struct Consumers
{
	bool		valid;
	Oid			rels[3];		/* endpoint, subscription, event_type */
	MemoryContext cxt;
	int			nendpoints;
	int32	   *ep_id;
	int		   *ep_nfilters;
	char	 ***ep_filters;
	int			ntypes;
	char	  **types;			/* registered and not disabled */
} Consumers;

static Consumers consumers;

/* Products with an active reordering rule, sorted (stock.low only looks at those). */
static struct
{
	bool		valid;
	Oid			rel;
	MemoryContext cxt;
	int			n;
	int32	   *ids;
} orderpoints;

/* Forgets the column numbers of a table that changed, and the caches that depend on it. */
static void
capture_relcache_callback(Datum arg, Oid relid)
{
	for (int i = 0; i < CAPTURE_RELS; i++)
		if (!OidIsValid(relid) || capture_cols[i].relid == relid)
			capture_cols[i].relid = InvalidOid;
	for (int i = 0; i < 3; i++)
		if (!OidIsValid(relid) || consumers.rels[i] == relid)
			consumers.valid = false;
	if (!OidIsValid(relid) || orderpoints.rel == relid)
		orderpoints.valid = false;
}

/* Whether name matches pattern, where "*" matches any run of characters (endpoint filters). */
static bool
filter_glob(const char *pattern, const char *name)
{
	const char *star = NULL;
	const char *resume = NULL;

	while (*name)
	{
		if (*pattern == '*')
		{
			star = pattern++;
			resume = name;
		}
		else if (*pattern == *name)
		{
			pattern++;
			name++;
		}
		else if (star)
		{
			pattern = star + 1;
			name = ++resume;
		}
		else
			return false;
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

/* Loads the consumers cache from retailflow's tables, as the extension's owner. */
static void
consumers_load(void)
{
	RfRunAs		ra;
	Oid			nsp = get_namespace_oid(RF_SCHEMA_NAME, false);
	MemoryContext old;

	if (consumers.cxt == NULL)
		consumers.cxt = AllocSetContextCreate(CacheMemoryContext, "retailflow consumers", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(consumers.cxt);
	consumers.valid = false;
	consumers.rels[0] = get_relname_relid("endpoint", nsp);
	consumers.rels[1] = get_relname_relid("subscription", nsp);
	consumers.rels[2] = get_relname_relid("event_type", nsp);
	RfOwnSpiConnect(&ra);
	if (SPI_execute("SELECT e.id, e.event_filters FROM retailflow.endpoint e WHERE e.active ORDER BY e.id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the webhook endpoints");
	old = MemoryContextSwitchTo(consumers.cxt);
	consumers.nendpoints = (int) SPI_processed;
	consumers.ep_id = palloc0(sizeof(int32) * Max(SPI_processed, 1));
	consumers.ep_nfilters = palloc0(sizeof(int) * Max(SPI_processed, 1));
	consumers.ep_filters = palloc0(sizeof(char **) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		f;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		consumers.ep_id[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		f = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(f), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		consumers.ep_filters[i] = palloc0(sizeof(char *) * Max(n, 1));
		for (int k = 0; k < n; k++)
			if (!nulls[k])
				consumers.ep_filters[i][consumers.ep_nfilters[i]++] = TextDatumGetCString(elems[k]);
	}
	MemoryContextSwitchTo(old);
	if (SPI_execute("SELECT t.name FROM retailflow.event_type t "
					"WHERE NOT EXISTS (SELECT 1 FROM retailflow.subscription s "
					"WHERE s.event_type OPERATOR(pg_catalog.=) t.name AND NOT s.enabled)",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not read the event types");
	old = MemoryContextSwitchTo(consumers.cxt);
	consumers.ntypes = (int) SPI_processed;
	consumers.types = palloc0(sizeof(char *) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
		consumers.types[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	MemoryContextSwitchTo(old);
	RfOwnSpiFinish(&ra);
	consumers.valid = true;
}

/*
 * The active endpoints that receive event_type (ids into *ids, in id order);
 * 0 when the type is unknown, its subscription disabled, or nobody listens.
 */
static int
consumers_of(const char *event_type, int32 **ids)
{
	bool		known = false;
	int			n = 0;

	AcceptInvalidationMessages();
	if (!consumers.valid)
		consumers_load();
	for (int i = 0; i < consumers.ntypes && !known; i++)
		known = strcmp(consumers.types[i], event_type) == 0;
	if (!known)
		return 0;
	*ids = palloc(sizeof(int32) * Max(consumers.nendpoints, 1));
	for (int i = 0; i < consumers.nendpoints; i++)
		for (int k = 0; k < consumers.ep_nfilters[i]; k++)
			if (filter_glob(consumers.ep_filters[i][k], event_type))
			{
				(*ids)[n++] = consumers.ep_id[i];
				break;
			}
	return n;
}

/* qsort/bsearch comparator of int32. */
static int
int32_cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Whether product has an active reordering rule (the set is loaded once per backend, as Odoo's reader). */
static bool
product_has_orderpoint(const RfOdoo *odoo, int32 product)
{
	if (!orderpoints.valid || orderpoints.rel != odoo->rel[RF_STOCK_WAREHOUSE_ORDERPOINT])
	{
		RfRunAs		ra;
		MemoryContext old;

		if (orderpoints.cxt == NULL)
			orderpoints.cxt = AllocSetContextCreate(CacheMemoryContext, "retailflow orderpoints",
													ALLOCSET_SMALL_SIZES);
		MemoryContextReset(orderpoints.cxt);
		orderpoints.rel = odoo->rel[RF_STOCK_WAREHOUSE_ORDERPOINT];
		RfOdooSpiConnect(&ra);
		if (SPI_execute(psprintf("SELECT DISTINCT op.product_id FROM %s.stock_warehouse_orderpoint op "
								 "WHERE op.active IS NOT FALSE AND op.product_id IS NOT NULL",
								 quote_identifier(get_namespace_name(odoo->nsp))), true, 0) != SPI_OK_SELECT)
			elog(ERROR, "retailflow: could not read the reordering rules");
		old = MemoryContextSwitchTo(orderpoints.cxt);
		orderpoints.n = (int) SPI_processed;
		orderpoints.ids = palloc(sizeof(int32) * Max(SPI_processed, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			orderpoints.ids[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
															 &isnull));
		}
		MemoryContextSwitchTo(old);
		RfOdooSpiFinish(&ra);
		qsort(orderpoints.ids, orderpoints.n, sizeof(int32), int32_cmp);
		orderpoints.valid = true;
	}
	return orderpoints.n > 0 &&
		bsearch(&product, orderpoints.ids, orderpoints.n, sizeof(int32), int32_cmp) != NULL;
}

/* The column numbers of rel, found once per relation (0 when missing or of another type). */
static const CaptureCols *
capture_columns(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	td = RelationGetDescr(rel);
	CaptureCols *c = NULL;

	for (int i = 0; i < CAPTURE_RELS; i++)
		if (capture_cols[i].relid == relid)
			return &capture_cols[i];
	for (int i = 0; i < CAPTURE_RELS && c == NULL; i++)
		if (!OidIsValid(capture_cols[i].relid))
			c = &capture_cols[i];
	if (c == NULL)
		c = &capture_cols[relid % CAPTURE_RELS];
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		bool		text = a->atttypid == TEXTOID || a->atttypid == VARCHAROID;

		if (a->attisdropped)
			continue;
		if (strcmp(NameStr(a->attname), "state") == 0 && text)
			c->state = a->attnum;
		else if (strcmp(NameStr(a->attname), "move_type") == 0 && text)
			c->move_type = a->attnum;
		else if (strcmp(NameStr(a->attname), "quantity") == 0 && a->atttypid == NUMERICOID)
			c->quantity = a->attnum;
		else if (strcmp(NameStr(a->attname), "reserved_quantity") == 0 && a->atttypid == NUMERICOID)
			c->reserved = a->attnum;
	}
	c->relid = relid;
	return c;
}

/* True if the text attribute att is equal (both NULL included) in the two tuples. */
static bool
capture_same_text(HeapTuple a, HeapTuple b, TupleDesc td, AttrNumber att)
{
	bool		na,
				nb;
	Datum		va = heap_getattr(a, att, td, &na);
	Datum		vb = heap_getattr(b, att, td, &nb);

	if (na || nb)
		return na == nb;
	return DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, va, vb));
}

/* A numeric attribute as double, 0 when NULL. */
static double
capture_num(HeapTuple tup, TupleDesc td, AttrNumber att)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, att, td, &isnull);

	return isnull ? 0.0 : RfNumericToDouble(v);
}

/*
 * Whether an update can produce an event (the triggers' former WHEN
 * clauses): the state changed (state, refund: to posted, on a credit note),
 * or the quant's free quantity went down (low).
 */
static bool
capture_wanted(const char *kind, const CaptureCols *c, HeapTuple oldtup, HeapTuple newtup, TupleDesc td)
{
	if (strcmp(kind, "low") == 0)
	{
		if (c->quantity == 0 || c->reserved == 0)
			return false;
		return capture_num(newtup, td, c->quantity) - capture_num(newtup, td, c->reserved) <
			capture_num(oldtup, td, c->quantity) - capture_num(oldtup, td, c->reserved);
	}
	if (c->state == 0 || capture_same_text(oldtup, newtup, td, c->state))
		return false;
	return true;
}

/* Commit callback: wakes the workers once the transaction's events are visible. */
static void
capture_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				RfWakeWorkers();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/* Registers the commit callback. */
void
OutboxCaptureInit(void)
{
	RegisterXactCallback(capture_xact_callback, NULL);
	CacheRegisterRelcacheCallback(capture_relcache_callback, (Datum) 0);
}

/* SQL: retailflow.wake_workers_at_commit(): wake the workers when this transaction commits. */
Datum
rf_wake_workers_at_commit(PG_FUNCTION_ARGS)
{
	wake_at_commit = true;
	PG_RETURN_VOID();
}

/*
 * Writes one event and its deliveries to the endpoints ids[0..n-1] (from
 * consumers_of()), as the extension's owner (the caller may not write
 * retailflow's tables).
 */
static void
enqueue(const char *event_type, const char *model, int32 id, const char *data, const int32 *ids, int n)
{
	Datum		values[5];
	Datum	   *elems = palloc(sizeof(Datum) * n);
	int			ret;
	RfRunAs		ra;

	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(ids[i]);
	RfOwnSpiConnect(&ra);
	if (enqueue_plan == NULL)
	{
		Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4ARRAYOID};
		SPIPlanPtr	p = SPI_prepare(
			"WITH ev AS ("
			" INSERT INTO retailflow.outbox (event_type, model, record_id, data)"
			" VALUES ($1, $2, $3, $4::pg_catalog.jsonb) RETURNING id)"
			" INSERT INTO retailflow.delivery (event_id, endpoint_id, model, record_id)"
			" SELECT ev.id, e, $2, $3 FROM ev, pg_catalog.unnest($5) e",
			5, types);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the outbox insert: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		enqueue_plan = p;
	}
	values[0] = CStringGetTextDatum(event_type);
	values[1] = CStringGetTextDatum(model);
	values[2] = Int32GetDatum(id);
	values[3] = CStringGetTextDatum(data);
	values[4] = PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	ret = SPI_execute_plan(enqueue_plan, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "retailflow: outbox insert failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
		wake_at_commit = true;
	RfOwnSpiFinish(&ra);
}

/* The event-type suffix of an Odoo state value (sale -> confirmed, cancel -> cancelled). */
static const char *
state_suffix(const char *model, const char *state)
{
	if (strcmp(state, "cancel") == 0)
		return "cancelled";
	if (strcmp(state, "sale") == 0 && strcmp(model, "sale.order") == 0)
		return "confirmed";
	if (strcmp(state, "purchase") == 0 && strcmp(model, "purchase.order") == 0)
		return "confirmed";
	if (strcmp(state, "to approve") == 0)
		return "to_approve";
	return state;
}

/* The text value of column `col` of a tuple, or NULL. */
static char *
column_text(HeapTuple tup, TupleDesc desc, const char *col)
{
	int			attno = SPI_fnumber(desc, col);

	if (attno <= 0)
		return NULL;
	return SPI_getvalue(tup, desc, attno);
}

/* stock.low: for each orderpoint of the product in the quant's warehouse, emit when free qty crosses below min. */
static void
capture_low(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	const RfOdoo *odoo = RfOdooGet();
	const char *schema = GetConfigOption("retailflow.odoo_schema", true, false);
	char	   *product = column_text(newtup, desc, "product_id");
	char	   *location = column_text(newtup, desc, "location_id");
	Datum		values[2];
	uint64		i;
	uint64		n;
	int			ret;
	RfRunAs		ra;
	int32	   *op;
	int32	   *wh;
	double	   *minq;
	double	   *freeq;

	int32	   *eps = NULL;
	int			neps;

	if (!OidIsValid(odoo->rel[RF_STOCK_WAREHOUSE_ORDERPOINT]) || product == NULL || location == NULL)
		return;
	neps = consumers_of("stock.low", &eps);
	if (neps == 0 || !product_has_orderpoint(odoo, atoi(product)))
		return;					/* nobody listens, or no reordering rule: no query */
	if (schema == NULL || schema[0] == '\0')
		schema = "public";
	RfOdooSpiConnect(&ra);
	if (low_plan == NULL || strcmp(low_plan_schema, schema) != 0)
	{
		Oid			types[2] = {INT4OID, INT4OID};
		const char *s = quote_identifier(schema);
		char	   *q = psprintf(
			"SELECT op.id, op.warehouse_id, op.product_min_qty::float8,"
			" (SELECT coalesce(sum(sq.quantity - sq.reserved_quantity), 0)::float8"
			"  FROM %s.stock_quant sq JOIN %s.stock_location sl ON sl.id = sq.location_id"
			"  WHERE sq.product_id = $1 AND sl.usage = 'internal'"
			"    AND sl.parent_path LIKE vl.parent_path || '%%') AS free_qty"
			" FROM %s.stock_warehouse_orderpoint op"
			" JOIN %s.stock_warehouse w ON w.id = op.warehouse_id"
			" JOIN %s.stock_location vl ON vl.id = w.view_location_id"
			" JOIN %s.stock_location ql ON ql.id = $2"
			" WHERE op.product_id = $1 AND op.active IS NOT FALSE"
			"   AND ql.usage = 'internal' AND ql.parent_path LIKE vl.parent_path || '%%'"
			" ORDER BY op.id", s, s, s, s, s, s);
		SPIPlanPtr	p = SPI_prepare(q, 2, types);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare the stock.low query: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		if (low_plan)
			SPI_freeplan(low_plan);
		low_plan = p;
		if (low_plan_schema)
			pfree(low_plan_schema);
		low_plan_schema = MemoryContextStrdup(TopMemoryContext, schema);
	}
	values[0] = Int32GetDatum(atoi(product));
	values[1] = Int32GetDatum(atoi(location));
	ret = SPI_execute_plan(low_plan, values, NULL, false, 0);	/* fresh snapshot: sees this row */
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "retailflow: stock.low query failed: %s", SPI_result_code_string(ret));
	/* copied out of SPI's memory: the results outlive the connection */
	n = SPI_processed;
	op = SPI_palloc(sizeof(int32) * Max(n, 1));
	wh = SPI_palloc(sizeof(int32) * Max(n, 1));
	minq = SPI_palloc(sizeof(double) * Max(n, 1));
	freeq = SPI_palloc(sizeof(double) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		SPITupleTable *tt = SPI_tuptable;
		bool		isnull;

		op[i] = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		wh[i] = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		minq[i] = DatumGetFloat8(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));
		freeq[i] = DatumGetFloat8(SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &isnull));
	}
	RfOdooSpiFinish(&ra);
	if (n == 0)
		return;
	{
		double		newfree = atof(column_text(newtup, desc, "quantity")) - atof(column_text(newtup, desc, "reserved_quantity"));
		double		oldfree = atof(column_text(oldtup, desc, "quantity")) - atof(column_text(oldtup, desc, "reserved_quantity"));

		for (i = 0; i < n; i++)
		{
			double		before = freeq[i] - newfree + oldfree;
			char	   *extra;
			char	   *data;

			if (!(before >= minq[i] && freeq[i] < minq[i]))
				continue;
			extra = psprintf("{\"warehouse_id\":%d,\"orderpoint_id\":%d,\"product_min_qty\":%.15g,"
							 "\"free_qty\":%.15g,\"previous_free_qty\":%.15g}",
							 wh[i], op[i], minq[i], freeq[i], before);
			{
				static const char *const fields[] = {"product_id", "location_id", NULL};

				data = RfPayloadCaptureData("stock.quant", atoi(column_text(newtup, desc, "id")), NULL, NULL,
											newtup, desc, fields, extra);
			}
			enqueue("stock.low", "product.product", atoi(product), data, eps, neps);
		}
	}
}

/* Trigger retailflow.capture_trigger(kind, model): writes outbox events for watched changes. */
Datum
rf_capture_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	const char *kind;
	const char *model;
	char	   *idtext;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("retailflow.capture_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		td->tg_trigger->tgnargs != 2)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("retailflow.capture_trigger() must be an AFTER UPDATE row trigger with two arguments"),
						errdetail("The arguments are the capture kind (state, refund or low) and the Odoo model.")));
	kind = td->tg_trigger->tgargs[0];
	model = td->tg_trigger->tgargs[1];
	desc = td->tg_relation->rd_att;
	oldtup = td->tg_trigtuple;
	newtup = td->tg_newtuple;
	if (!capture_wanted(kind, capture_columns(td->tg_relation), oldtup, newtup, desc))
		return PointerGetDatum(NULL);

	idtext = column_text(newtup, desc, "id");
	if (idtext == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("table \"%s\" has no id column", RelationGetRelationName(td->tg_relation))));

	if (strcmp(kind, "state") == 0)
	{
		static const char *const fields[] = {"name", "partner_id", "company_id", "amount_total",
			"currency_id", "origin", "picking_type_id", "scheduled_date", "date_order", "client_order_ref",
		"user_id", NULL};
		char	   *old_state = column_text(oldtup, desc, "state");
		char	   *new_state = column_text(newtup, desc, "state");

		if (new_state != NULL && (old_state == NULL || strcmp(old_state, new_state) != 0))
		{
			char	   *type = psprintf("%s.%s", model, state_suffix(model, new_state));
			int32	   *eps = NULL;
			int			neps = consumers_of(type, &eps);

			if (neps > 0)
				enqueue(type, model, atoi(idtext),
						RfPayloadCaptureData(model, atoi(idtext), old_state, new_state, newtup, desc, fields, NULL),
						eps, neps);
		}
	}
	else if (strcmp(kind, "refund") == 0)
	{
		static const char *const fields[] = {"name", "move_type", "partner_id", "company_id",
			"amount_total", "currency_id", "reversed_entry_id", "invoice_origin", "invoice_date", "ref", NULL};
		char	   *old_state = column_text(oldtup, desc, "state");
		char	   *new_state = column_text(newtup, desc, "state");
		char	   *move_type = column_text(newtup, desc, "move_type");

		if (new_state && strcmp(new_state, "posted") == 0 &&
			(old_state == NULL || strcmp(old_state, "posted") != 0) &&
			move_type && (strcmp(move_type, "out_refund") == 0 || strcmp(move_type, "in_refund") == 0))
		{
			int32	   *eps = NULL;
			int			neps = consumers_of("account.move.refund_posted", &eps);

			if (neps > 0)
				enqueue("account.move.refund_posted", model, atoi(idtext),
						RfPayloadCaptureData(model, atoi(idtext), old_state, new_state, newtup, desc, fields, NULL),
						eps, neps);
		}
	}
	else if (strcmp(kind, "low") == 0)
		capture_low(oldtup, newtup, desc);
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("unknown capture kind \"%s\"", kind),
						errdetail("Capture kinds are state, refund and low.")));
	return PointerGetDatum(NULL);
}
