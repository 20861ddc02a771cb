/*
 * retailflow.h
 *	  Declarations shared by retailflow's C files: the per-concern init
 *	  functions _PG_init delegates to, and the Odoo catalog API that every
 *	  concern uses to find Odoo's tables and columns.
 */
#ifndef RETAILFLOW_H
#define RETAILFLOW_H

#include "postgres.h"
#include "access/attnum.h"
#include "executor/tuptable.h"

#define RF_EXTENSION_NAME "retailflow"
#define RF_SCHEMA_NAME "retailflow"

/* Odoo tables the extension knows about (index into RfOdoo.rel[]). */
typedef enum RfTable
{
	RF_STOCK_QUANT = 0,
	RF_STOCK_LOCATION,
	RF_STOCK_WAREHOUSE,
	RF_STOCK_MOVE,
	RF_STOCK_MOVE_LINE,
	RF_STOCK_LOT,
	RF_PRODUCT_PRODUCT,
	RF_PRODUCT_TEMPLATE,
	RF_UOM_UOM,
	RF_SALE_ORDER,
	RF_SALE_ORDER_LINE,
	RF_IR_MODULE_MODULE,
	RF_STOCK_QUANT_PACKAGE,
	RF_RES_PARTNER,
	RF_STOCK_PICKING,
	RF_STOCK_PICKING_TYPE,
	RF_STOCK_WAREHOUSE_ORDERPOINT,
	RF_PURCHASE_ORDER,
	RF_PURCHASE_ORDER_LINE,
	RF_ACCOUNT_MOVE,
	RF_RES_USERS,
	RF_RES_GROUPS,
	RF_RES_GROUPS_USERS_REL,
	RF_RES_COMPANY,
	RF_PRODUCT_CATEGORY,
	RF_RES_PARTNER_CATEGORY_REL,
	RF_CRM_TEAM,
	RF_PRODUCT_SUPPLIERINFO,
	RF_NUM_TABLES
} RfTable;

/* What the catalog says about the Odoo database we run in. */
typedef struct RfOdoo
{
	Oid			nsp;			/* namespace of Odoo's tables, or InvalidOid */
	int			version;		/* 0 unknown/none, 16 (or older), 17, 18 */
	Oid			rel[RF_NUM_TABLES]; /* InvalidOid when missing */
	char		reason[256];	/* why version is what it is (for errors) */
	char		refused[RF_NUM_TABLES];	/* relkind of a non-table found under a table's name, else 0 */
} RfOdoo;

extern const char *const RfTableNames[RF_NUM_TABLES];

/* odoo_catalog.c */
extern void OdooCatalogInit(void);
extern const RfOdoo *RfOdooGet(void);
extern const RfOdoo *RfOdooRequire(uint32 table_mask);
extern void RfOdooCheckSelect(const RfOdoo *o, uint32 table_mask);
extern AttrNumber RfAttnum(RfTable table, const char *column, bool missing_ok);
extern Oid	RfFindLeadingIndex(Oid relid, AttrNumber attnum);

#define RF_MASK(t) (((uint32) 1) << (t))

/* run_as.c: who retailflow's code runs as */
typedef struct RfRunAs
{
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	bool		switched;		/* settings (and maybe role) to restore */
	bool		role_switched;	/* the role to restore */
	bool		counted;		/* an Odoo read in progress */
} RfRunAs;

extern void RunAsInit(void);
extern Oid	RfExtensionOwner(void);
extern Oid	RfOdooOwner(void);
extern void RfRunAsExtensionOwner(RfRunAs *ra);
extern void RfRunAsOdooReader(RfRunAs *ra);
extern void RfRunAsEnd(RfRunAs *ra);
extern int	RfPinSearchPath(void);
extern void RfUnpinSearchPath(int nestlevel);
extern void RfRefuseNonTable(Oid relid, char relkind) pg_attribute_noreturn();
extern void RfOdooSpiConnect(RfRunAs *ra);
extern void RfOdooSpiFinish(RfRunAs *ra);
extern void RfOwnSpiConnect(RfRunAs *ra);
extern void RfOwnSpiFinish(RfRunAs *ra);

/* odoo_float.c */
extern double RfNumericToDouble(Datum d);
extern double RfFloatRound(double value, double rounding);
extern bool RfFloatIsZero(double value, double rounding);
extern int	RfFloatCompare(double a, double b, double rounding);

/* Slot and text helpers shared by the heap scanners (slot deformed first). */

/* An int4 attribute of a deformed slot, 0 when NULL. */
static inline int32
RfSlotInt(TupleTableSlot *slot, AttrNumber att)
{
	return slot->tts_isnull[att - 1] ? 0 : DatumGetInt32(slot->tts_values[att - 1]);
}

/* A numeric attribute of a deformed slot as double, 0 when NULL. */
static inline double
RfSlotNum(TupleTableSlot *slot, AttrNumber att)
{
	return slot->tts_isnull[att - 1] ? 0.0 : RfNumericToDouble(slot->tts_values[att - 1]);
}

/* True if the varchar/text Datum equals the len bytes at s (no palloc for short values). */
static inline bool
RfTextEquals(Datum d, const char *s, int len)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);

	if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
		v = pg_detoast_datum_packed(v);
	return (int) VARSIZE_ANY_EXHDR(v) == len && memcmp(VARDATA_ANY(v), s, len) == 0;
}

/* True if a stock_move state Datum is one of Odoo's "to do" states (waiting, confirmed, assigned, partially_available). */
static inline bool
RfMoveStateTodo(Datum d)
{
	return RfTextEquals(d, "waiting", 7) || RfTextEquals(d, "confirmed", 9) ||
		RfTextEquals(d, "assigned", 8) || RfTextEquals(d, "partially_available", 19);
}

/* availability.c */
extern void AvailabilityInit(void);

/* conflicts.c */
extern void ConflictsInit(void);
/* approvals.c */
extern void ApprovalsInit(void);
/* webhooks (outbox_capture.c, worker.c) */
extern void OutboxCaptureInit(void);
extern void WebhookWorkerInit(void);
/* exceptions.c */
extern void ExceptionsInit(void);
/* egress.c: where webhook deliveries may connect */
extern void EgressInit(void);

/* audit_defer.c: audit rows queued past a rollback, appended by worker 0 */
#define RF_AUDIT_QUEUE_SLOTS 64
extern void AuditDeferInit(void);
extern bool RfAuditDeferPending(void);
extern int	RfAuditDeferAppend(uint64 *seqs, uint64 *dropped);
extern void RfAuditDeferRelease(const uint64 *seqs, int n, uint64 dropped);
extern void RfAuditDeferDiscard(void);
extern void RfWakeWorkerZero(void);

#endif							/* RETAILFLOW_H */
