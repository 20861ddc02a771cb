/*
 * audit_defer.c
 *	  Owns the audit rows that must outlive the transaction that writes them:
 *	    retailflow.audit_after_rollback(action, entity, entity_id, odoo_user_id, after)
 *	        queues one audit row in shared memory; the refusing transaction
 *	        then raises its error and rolls back, the row stays queued
 *	    RfAuditDeferDrain()  webhook worker 0 appends the queued rows of its
 *	        database to retailflow.audit_log through retailflow.audit()
 *
 *	  The enforcement trigger in block mode uses it: the refusal is an error,
 *	  so an audit row written in the same transaction would vanish with it.
 *	  The queue is a fixed ring of slots guarded by one LWLock; a slot is
 *	  freed only after the worker's transaction that appended it committed.
 *	  A queued row is lost if the server stops or crashes before the worker
 *	  drains it (the refusal is also in the server log, as a LOG line), and a
 *	  full ring counts the rows it could not take; the next drain records that
 *	  count as an audit row of its own.  Rows queued in a database whose
 *	  extension was dropped meanwhile are discarded with a WARNING.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "catalog/pg_type.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_audit_after_rollback);

#define AD_SLOTS		RF_AUDIT_QUEUE_SLOTS
#define AD_AFTER_MAX	3000

/* One queued audit row. */
typedef struct AdSlot
{
	uint64		seq;			/* 0 = free */
	Oid			dboid;
	TimestampTz at;
	int64		entity_id;
	bool		has_entity_id;
	int32		odoo_user_id;
	bool		has_user;
	NameData	role;			/* the role the refusing session acted as */
	char		appname[NAMEDATALEN];	/* its application_name */
	int32		pid;			/* its backend pid */
	char		action[64];
	char		entity[64];
	char		after[AD_AFTER_MAX];	/* jsonb text, or "" */
} AdSlot;

typedef struct AdShared
{
	LWLock	   *lock;
	pg_atomic_uint32 used;		/* slots in use, read without the lock by the worker loop */
	uint64		next_seq;
	uint64		dropped;
	Oid			dropped_db;
	AdSlot		slots[AD_SLOTS];
} AdShared;

static AdShared *ad = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Reserves the ring and its lock. */
static void
ad_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AdShared)));
	RequestNamedLWLockTranche("retailflow audit queue", 1);
}

/* Creates or attaches the ring. */
static void
ad_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ad = ShmemInitStruct("retailflow audit queue", sizeof(AdShared), &found);
	if (!found)
	{
		memset(ad, 0, sizeof(AdShared));
		ad->lock = &(GetNamedLWLockTranche("retailflow audit queue"))->lock;
		pg_atomic_init_u32(&ad->used, 0);
		ad->next_seq = 1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Installs the shared memory hooks when loaded through shared_preload_libraries. */
void
AuditDeferInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ad_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ad_shmem_startup;
}

/* Copies a text argument into a fixed buffer, refusing what does not fit. */
static void
ad_copy_arg(char *dst, Size cap, text *t, const char *what)
{
	char	   *s = text_to_cstring(t);

	if (strlen(s) >= cap)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("audit %s is too long to queue: %zu bytes", what, strlen(s)),
				 errdetail("Rows queued past a rollback hold at most %zu bytes of %s.", cap - 1, what)));
	strlcpy(dst, s, cap);
}

/*
 * retailflow.audit_after_rollback(action, entity, entity_id, odoo_user_id,
 * after): queues an audit row that survives this transaction's rollback.
 * Returns false when it cannot be queued (no shared memory because the
 * library is not preloaded, no webhook worker serving this database, or the
 * ring is full: that is counted and recorded later).
 */
Datum
rf_audit_after_rollback(PG_FUNCTION_ARGS)
{
	const char *db = GetConfigOption("retailflow.database", true, false);
	char	   *mydb;
	AdSlot		s;
	int			free_slot = -1;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit action and entity must not be null"),
				 errdetail("Every audit row says what was done (action) to what (entity).")));
	memset(&s, 0, sizeof(s));
	ad_copy_arg(s.action, sizeof(s.action), PG_GETARG_TEXT_PP(0), "action");
	ad_copy_arg(s.entity, sizeof(s.entity), PG_GETARG_TEXT_PP(1), "entity");
	if (s.action[0] == '\0' || s.entity[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit action and entity must not be empty"),
				 errdetail("Every audit row says what was done (action) to what (entity).")));
	s.has_entity_id = !PG_ARGISNULL(2);
	s.entity_id = s.has_entity_id ? PG_GETARG_INT64(2) : 0;
	s.has_user = !PG_ARGISNULL(3);
	s.odoo_user_id = s.has_user ? PG_GETARG_INT32(3) : 0;
	if (!PG_ARGISNULL(4))
	{
		char	   *j = JsonbToCString(NULL, &PG_GETARG_JSONB_P(4)->root, VARSIZE(PG_GETARG_JSONB_P(4)));

		if (strlen(j) >= sizeof(s.after))
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("audit after value is too long to queue: %zu bytes", strlen(j)),
					 errdetail("Rows queued past a rollback hold at most %zu bytes of json.", sizeof(s.after) - 1)));
		strlcpy(s.after, j, sizeof(s.after));
	}
	namestrcpy(&s.role, GetUserNameFromId(GetOuterUserId(), false));
	strlcpy(s.appname, application_name ? application_name : "", sizeof(s.appname));
	s.pid = MyProcPid;
	s.at = GetCurrentTimestamp();
	s.dboid = MyDatabaseId;

	mydb = get_database_name(MyDatabaseId);
	if (ad == NULL || db == NULL || mydb == NULL || strcmp(db, mydb) != 0)
		PG_RETURN_BOOL(false);

	LWLockAcquire(ad->lock, LW_EXCLUSIVE);
	for (int i = 0; i < AD_SLOTS && free_slot < 0; i++)
		if (ad->slots[i].seq == 0)
			free_slot = i;
	if (free_slot < 0)
	{
		ad->dropped++;
		ad->dropped_db = MyDatabaseId;
		LWLockRelease(ad->lock);
		ereport(WARNING,
				(errmsg("retailflow: the audit queue is full; this row is only in the server log"),
				 errdetail("%s %s %lld could not be queued for the audit log.", s.action, s.entity,
						   (long long) s.entity_id)));
		PG_RETURN_BOOL(false);
	}
	s.seq = ad->next_seq++;
	memcpy(&ad->slots[free_slot], &s, sizeof(s));
	pg_atomic_fetch_add_u32(&ad->used, 1);
	LWLockRelease(ad->lock);
	RfWakeWorkerZero();
	PG_RETURN_BOOL(true);
}

/* True if rows of this database wait in the queue. */
bool
RfAuditDeferPending(void)
{
	bool		any = false;

	/* the worker asks on every loop: an empty queue costs one atomic read */
	if (ad == NULL || (pg_atomic_read_u32(&ad->used) == 0 && ad->dropped == 0))
		return false;
	LWLockAcquire(ad->lock, LW_SHARED);
	for (int i = 0; i < AD_SLOTS && !any; i++)
		any = ad->slots[i].seq != 0 && ad->slots[i].dboid == MyDatabaseId;
	any = any || (ad->dropped > 0 && ad->dropped_db == MyDatabaseId);
	LWLockRelease(ad->lock);
	return any;
}

/*
 * Appends the queued rows of this database to the audit log, inside the
 * caller's transaction and SPI connection, and returns the sequence numbers
 * taken (in seqs, at most AD_SLOTS); the caller frees them after commit with
 * RfAuditDeferRelease().
 */
int
RfAuditDeferAppend(uint64 *seqs, uint64 *dropped)
{
	AdSlot	   *copy = palloc(sizeof(AdSlot) * AD_SLOTS);
	int			n = 0;

	*dropped = 0;
	LWLockAcquire(ad->lock, LW_SHARED);
	for (int i = 0; i < AD_SLOTS; i++)
		if (ad->slots[i].seq != 0 && ad->slots[i].dboid == MyDatabaseId)
			memcpy(&copy[n++], &ad->slots[i], sizeof(AdSlot));
	if (ad->dropped_db == MyDatabaseId)
		*dropped = ad->dropped;
	LWLockRelease(ad->lock);

	/* in the order they were queued */
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && copy[k - 1].seq > copy[k].seq; k--)
		{
			AdSlot		t = copy[k];

			copy[k] = copy[k - 1];
			copy[k - 1] = t;
		}
	for (int i = 0; i < n; i++)
	{
		Datum		v[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		AdSlot	   *s = &copy[i];

		v[0] = CStringGetTextDatum(s->action);
		v[1] = CStringGetTextDatum(s->entity);
		v[2] = Int64GetDatum(s->entity_id);
		nulls[2] = s->has_entity_id ? ' ' : 'n';
		v[3] = Int32GetDatum(s->odoo_user_id);
		nulls[3] = s->has_user ? ' ' : 'n';
		v[4] = s->after[0] ? DirectFunctionCall1(jsonb_in, CStringGetDatum(s->after)) : (Datum) 0;
		nulls[4] = s->after[0] ? ' ' : 'n';
		v[5] = TimestampTzGetDatum(s->at);
		/* the refusing session's role, application, pid and time go into the row, since the worker writes it */
		if (SPI_execute_with_args("SELECT retailflow.audit_queued($1, $2, $3, $5, $4, $7::name, $8, $9, $6)",
								  9, (Oid[]) {TEXTOID, TEXTOID, INT8OID, INT4OID, JSONBOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID},
								  (Datum[]) {v[0], v[1], v[2], v[3], v[4], v[5], CStringGetTextDatum(NameStr(s->role)),
								  CStringGetTextDatum(s->appname), Int32GetDatum(s->pid)},
								  (char[]) {nulls[0], nulls[1], nulls[2], nulls[3], nulls[4], ' ', ' ', ' ', ' '},
								  false, 0) != SPI_OK_SELECT)
			elog(ERROR, "retailflow: could not append a queued audit row");
		seqs[i] = s->seq;
	}
	if (*dropped > 0 &&
		SPI_execute_with_args("SELECT retailflow.audit('audit.queue_overflow', 'retailflow.audit_log', NULL, NULL, "
							  "jsonb_build_object('rows_not_queued', $1))",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum((int64) *dropped)}, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "retailflow: could not record the audit queue overflow");
	pfree(copy);
	return n;
}

/* Frees the slots appended by a committed RfAuditDeferAppend(). */
void
RfAuditDeferRelease(const uint64 *seqs, int n, uint64 dropped)
{
	LWLockAcquire(ad->lock, LW_EXCLUSIVE);
	for (int i = 0; i < AD_SLOTS; i++)
		for (int k = 0; k < n; k++)
			if (ad->slots[i].seq == seqs[k])
			{
				ad->slots[i].seq = 0;
				pg_atomic_fetch_sub_u32(&ad->used, 1);
				break;
			}
	if (dropped > 0 && ad->dropped_db == MyDatabaseId)
		ad->dropped -= Min(dropped, ad->dropped);
	LWLockRelease(ad->lock);
}

/* Drops the queued rows of this database (its extension is gone), with a WARNING naming how many. */
void
RfAuditDeferDiscard(void)
{
	int			n = 0;

	LWLockAcquire(ad->lock, LW_EXCLUSIVE);
	for (int i = 0; i < AD_SLOTS; i++)
		if (ad->slots[i].seq != 0 && ad->slots[i].dboid == MyDatabaseId)
		{
			ad->slots[i].seq = 0;
			pg_atomic_fetch_sub_u32(&ad->used, 1);
			n++;
		}
	if (ad->dropped_db == MyDatabaseId)
		ad->dropped = 0;
	LWLockRelease(ad->lock);
	if (n > 0)
		ereport(WARNING,
				(errmsg("retailflow: discarded %d queued audit rows", n),
				 errdetail("The retailflow extension is no longer installed in this database; the rows are in the server log.")));
}
