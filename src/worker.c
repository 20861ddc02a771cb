/*
 * worker.c
 *	  Owns webhook delivery by static background workers: the GUCs, the
 *	  shared memory holding each worker's PGPROC number (so committing
 *	  backends can set the workers' latches), and the worker main loop:
 *	  claim pending deliveries with a lease (FOR UPDATE SKIP LOCKED), sign
 *	  and send them through http_transport.c, record results in one
 *	  transaction per batch (success, retry with backoff and jitter,
 *	  Retry-After, 410 disables the endpoint, dead letter), the circuit
 *	  breaker per endpoint (the egress policy is egress.c's, applied by
 *	  http_transport.c at connect time) and batched retention.  Worker 0
 *	  also runs the scheduled jobs: retention, queued audit rows, exception
 *	  checks, approval escalation and the audit checkpoint
 *	  (retailflow.audit_checkpoint_interval).
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "retailflow.h"
#include "webhooks.h"

PGDLLEXPORT void RfWebhookWorkerMain(Datum arg);

#define RF_TRANSPORT_CAPACITY 1024

/* Shared state: which PGPROC each worker runs in, and a work-pending counter. */
typedef struct RfWebhookShared
{
	pg_atomic_uint32 wakeups;
	int			procno[RF_MAX_WORKERS];
} RfWebhookShared;

static RfWebhookShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* GUCs */
static char *rf_database = NULL;
static int	rf_workers = 1;
static int	rf_batch_size = 200;
static int	rf_max_in_flight = 128;
static int	rf_endpoint_max_in_flight = 64;
static int	rf_max_host_connections = 32;
static int	rf_max_attempts = 12;
static int	rf_backoff_base_ms = 1000;
static int	rf_backoff_max_ms = 3600000;
static int	rf_max_age = 259200;
static int	rf_lease_margin_ms = 10000;
static int	rf_circuit_failures = 10;
static int	rf_circuit_open_seconds = 30;
static int	rf_retention = 604800;
static int	rf_scheduler_tick_ms = 5000;
static int	rf_poll_ms = 1000;
static int	rf_checkpoint_s = 3600;

static int	my_index = -1;
static MemoryContext loop_cxt = NULL;	/* reset every loop iteration */

/* Reserves the shared struct. */
static void
webhook_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RfWebhookShared)));
}

/* Creates or attaches the shared struct. */
static void
webhook_shmem_startup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("retailflow webhooks", sizeof(RfWebhookShared), &found);
	if (!found)
	{
		pg_atomic_init_u32(&shared->wakeups, 0);
		for (i = 0; i < RF_MAX_WORKERS; i++)
			shared->procno[i] = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Sets one running worker's latch (called at commit by capture). */
void
RfWakeWorkers(void)
{
	uint32		n;
	int			i;

	if (shared == NULL)
		return;
	/* wake one worker, round robin; busy workers claim on their own */
	n = pg_atomic_fetch_add_u32(&shared->wakeups, 1);
	for (i = 0; i < RF_MAX_WORKERS; i++)
	{
		int			p = shared->procno[(n + i) % RF_MAX_WORKERS];

		if (p >= 0 && p < (int) ProcGlobal->allProcCount)
		{
			SetLatch(&ProcGlobal->allProcs[p].procLatch);
			return;
		}
	}
}

/* Sets worker 0's latch (it appends queued audit rows and runs the scheduler). */
void
RfWakeWorkerZero(void)
{
	int			p;

	if (shared == NULL)
		return;
	p = shared->procno[0];
	if (p >= 0 && p < (int) ProcGlobal->allProcCount)
		SetLatch(&ProcGlobal->allProcs[p].procLatch);
}

/* GUCs, shared memory hooks and (when preloaded) the static workers. */
void
WebhookWorkerInit(void)
{
	BackgroundWorker bgw;
	int			i;

	DefineCustomStringVariable("retailflow.database", "Database the webhook workers connect to (empty: workers idle).",
							   NULL, &rf_database, "", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_workers", "Number of webhook delivery background workers.",
							NULL, &rf_workers, 1, 0, RF_MAX_WORKERS, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_batch_size", "Deliveries claimed per transaction by a worker.",
							NULL, &rf_batch_size, 200, 1, 10000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_max_in_flight", "HTTP requests in flight per worker.",
							NULL, &rf_max_in_flight, 128, 1, RF_TRANSPORT_CAPACITY, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_endpoint_max_in_flight", "HTTP requests in flight per endpoint and worker.",
							NULL, &rf_endpoint_max_in_flight, 64, 1, RF_TRANSPORT_CAPACITY, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_max_host_connections", "Kept-alive connections per host and worker.",
							NULL, &rf_max_host_connections, 32, 1, 1024, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_max_attempts", "Attempts before a delivery is dead-lettered.",
							NULL, &rf_max_attempts, 12, 1, 1000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_backoff_base", "First retry delay (doubles each attempt, with jitter).",
							NULL, &rf_backoff_base_ms, 1000, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_backoff_max", "Longest retry delay.",
							NULL, &rf_backoff_max_ms, 3600000, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_max_age", "Age after which a failing delivery is dead-lettered.",
							NULL, &rf_max_age, 259200, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_lease_margin", "Lease of a claimed delivery beyond its endpoint timeout.",
							NULL, &rf_lease_margin_ms, 10000, 100, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_circuit_failures", "Consecutive failures that open an endpoint's circuit.",
							NULL, &rf_circuit_failures, 10, 1, INT_MAX, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_circuit_open", "How long an open circuit stops deliveries before a probe.",
							NULL, &rf_circuit_open_seconds, 30, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.scheduler_tick", "How often worker 0 runs the due scheduled checks (exceptions, approval SLA escalation); 0 disables them.",
							"Each check's own interval comes from retailflow.check_interval / retailflow.check_intervals.",
							&rf_scheduler_tick_ms, 5000, 0, 3600000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.audit_checkpoint_interval",
							"How often webhook worker 0 emits the audit chain head as a signed audit.checkpoint event; 0 disables.",
							"Receivers that subscribe keep the head outside the database; verify_audit_log(checkpoint) checks the log still extends it.",
							&rf_checkpoint_s, 3600, 0, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_retention", "How long delivered events are kept.",
							NULL, &rf_retention, 604800, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("retailflow.webhook_poll_interval", "Longest sleep of an idle worker (wake-ups come at commit).",
							NULL, &rf_poll_ms, 1000, 10, 60000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = webhook_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = webhook_shmem_startup;

	for (i = 0; i < rf_workers; i++)
	{
		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = 5;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, "retailflow");
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "RfWebhookWorkerMain");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "retailflow webhook worker %d", i);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "retailflow webhook worker");
		bgw.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&bgw);
	}
}

/* Clears this worker's slot in shared memory at exit. */
static void
worker_detach_shmem(int code, Datum arg)
{
	if (shared && my_index >= 0)
		shared->procno[my_index] = -1;
	RfHttpShutdown();
}

/* Starts a worker transaction with SPI and a snapshot. */
static void
begin_tx(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "retailflow: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

/* Commits the worker transaction and reports statistics. */
static void
end_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* commit leaves TopMemoryContext current: go back to the per-iteration context */
	if (loop_cxt)
		MemoryContextSwitchTo(loop_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Is the extension installed in this database (checked inside a transaction)? */
static bool
extension_present(void)
{
	return OidIsValid(get_extension_oid(RF_EXTENSION_NAME, true));
}

/* Is someone dropping (or otherwise locking out) our database? */
static bool
database_being_dropped(void)
{
	LOCKTAG		tag;
	LockAcquireResult r;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	r = LockAcquire(&tag, AccessShareLock, true, true);
	if (r == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr record_plan = NULL;

/* A plan prepared once and kept (the plan cache re-plans it after DDL). */
static SPIPlanPtr
saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "retailflow: could not prepare a worker query: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}

/* Text of column i (1-based) of row r of the SPI result, or NULL. */
static char *
col(int r, int i)
{
	return SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i);
}

/* A delivery that could not be sent at all (recorded as dead with this error). */
typedef struct Refused
{
	int64		id;
	int			endpoint_id;
	char		error[128];
} Refused;

/*
 * Claims up to `want` deliveries with id >= *scan_from, builds, signs and
 * submits them, and advances *scan_from past them.  Returns the number
 * claimed.  The caller resets *scan_from to 0 on the poll interval so that
 * retries, redeliveries and late-committed lower ids are found again.
 */
static int
claim_and_submit(int want, Refused *refused, int *nrefused, int64 *scan_from)
{
	static const char *sql =
		"WITH cand AS ("
		" SELECT d.id FROM retailflow.endpoint e"
		" LEFT JOIN retailflow.endpoint_health h ON h.endpoint_id = e.id"
		" CROSS JOIN LATERAL ("
		"  SELECT d.id FROM retailflow.delivery d"
		"  WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.id >= $8 AND d.next_attempt_at <= now()"
		"    AND (d.lease_until IS NULL OR d.lease_until < now())"
		"    AND NOT EXISTS (SELECT 1 FROM retailflow.delivery p"
		"                    WHERE p.endpoint_id = d.endpoint_id AND p.model = d.model"
		"                      AND p.record_id = d.record_id AND p.state = 'pending' AND p.id < d.id)"
		"  ORDER BY d.id"
		"  LIMIT greatest(0, CASE WHEN coalesce(h.consecutive_failures, 0) >= $5 THEN 1 ELSE $2 END"
		"        - coalesce((SELECT u.n FROM unnest($3::int[], $4::int[]) u(eid, n) WHERE u.eid = e.id), 0))"
		"  FOR UPDATE OF d SKIP LOCKED) d"
		" WHERE e.active AND (h.circuit_open_until IS NULL OR h.circuit_open_until <= now())"
		" LIMIT $1)"
		" UPDATE retailflow.delivery d"
		" SET lease_until = clock_timestamp() + make_interval(secs => (e.timeout_ms + $6) / 1000.0),"
		"     lease_owner = $7, attempts = d.attempts + 1, last_attempt_at = now()"
		" FROM cand, retailflow.endpoint e, retailflow.outbox o"
		" WHERE d.id = cand.id AND e.id = d.endpoint_id AND o.id = d.event_id"
		" RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, o.event_type, o.model, o.record_id,"
		"  o.data::text, to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		"  extract(epoch FROM o.created_at)::float8, e.url, e.secret, e.old_secrets::text[], e.headers::text,"
		"  e.timeout_ms, e.tls_verify";
	Oid			types[8] = {INT4OID, INT4OID, INT4ARRAYOID, INT4ARRAYOID, INT4OID, INT4OID, INT4OID, INT8OID};
	Datum		values[8];
	int			ret;
	uint64		r;
	int			neps = 0;
	Datum	   *eids;
	Datum	   *ecnt;
	int64		now_s = (int64) time(NULL);

	/* in-flight counts per endpoint, so that one slow endpoint cannot take every slot */
	{
		int			ids[256];
		int			counts[256];
		int			i;

		neps = RfHttpInFlightByEndpoint(ids, counts, lengthof(ids));
		eids = palloc(sizeof(Datum) * (neps + 1));
		ecnt = palloc(sizeof(Datum) * (neps + 1));
		for (i = 0; i < neps; i++)
		{
			eids[i] = Int32GetDatum(ids[i]);
			ecnt[i] = Int32GetDatum(counts[i]);
		}
	}
	values[0] = Int32GetDatum(want);
	values[1] = Int32GetDatum(rf_endpoint_max_in_flight);
	values[2] = PointerGetDatum(construct_array(eids, neps, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(ecnt, neps, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = Int32GetDatum(rf_circuit_failures);
	values[5] = Int32GetDatum(rf_lease_margin_ms);
	values[6] = Int32GetDatum(my_index);
	values[7] = Int64GetDatum(*scan_from);
	ret = SPI_execute_plan(saved_plan(&claim_plan, sql, 8, types), values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "retailflow: claim failed: %s", SPI_result_code_string(ret));

	for (r = 0; r < SPI_processed; r++)
	{
		RfHttpRequest req;
		int64		id = strtoi64(col(r, 1), NULL, 10);
		int			endpoint_id = atoi(col(r, 2));
		char	   *event_id = col(r, 3);
		char	   *record = col(r, 7);
		char	   *url = col(r, 11);
		const char *err = NULL;
		size_t		bodylen = 0;
		char	   *body;
		const char *secrets[16];
		int			nsecrets = 0;
		const char *hdrs[80];
		int			nh = 0;
		char		msgid[64];
		char		sig[1200];
		bool		isnull;
		Datum		old;

		/* the next claim starts after what this one took (dead index entries below are skipped) */
		if (id + 1 > *scan_from)
			*scan_from = id + 1;
		body = RfPayloadBody(col(r, 5), col(r, 9), col(r, 6), record ? atoi(record) : 0,
							 record == NULL, col(r, 8), &bodylen, &err);
		if (body != NULL && strlen(url) > RF_URL_MAX)
			err = "url longer than 2048 characters";
		else if (body != NULL && !RfEgressHostAllowed(url))
			err = "host not in retailflow.webhook_allowed_hosts";
		if (body == NULL || err != NULL)
		{
			if (body)
				free(body);
			refused[*nrefused].id = id;
			refused[*nrefused].endpoint_id = endpoint_id;
			strlcpy(refused[*nrefused].error, err, sizeof(refused[*nrefused].error));
			(*nrefused)++;
			continue;
		}
		secrets[nsecrets++] = col(r, 12);
		old = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 13, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			ne,
						k;

			deconstruct_array(DatumGetArrayTypeP(old), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &ne);
			for (k = 0; k < ne && nsecrets < 16; k++)
				if (!nulls[k])
					secrets[nsecrets++] = TextDatumGetCString(elems[k]);
		}
		snprintf(msgid, sizeof(msgid), "msg_%s", event_id);
		if (!RfSignHeader(secrets, nsecrets, msgid, now_s, body, bodylen, sig, sizeof(sig)))
		{
			free(body);
			refused[*nrefused].id = id;
			refused[*nrefused].endpoint_id = endpoint_id;
			strlcpy(refused[*nrefused].error, "could not sign: malformed secret", sizeof(refused[*nrefused].error));
			(*nrefused)++;
			continue;
		}
		hdrs[nh++] = "Content-Type: application/json";
		hdrs[nh++] = "Expect:";
		hdrs[nh++] = psprintf("webhook-id: %s", msgid);
		hdrs[nh++] = psprintf("webhook-timestamp: " INT64_FORMAT, now_s);
		hdrs[nh++] = psprintf("webhook-signature: %s", sig);
		nh = RfPayloadHeaders(col(r, 14), hdrs, nh, lengthof(hdrs));
		req.delivery_id = id;
		req.endpoint_id = endpoint_id;
		req.url = url;
		req.body = body;
		req.bodylen = bodylen;
		req.headers = hdrs;
		req.nheaders = nh;
		req.timeout_ms = atol(col(r, 15));
		req.tls_verify = strcmp(col(r, 16), "t") == 0;
		req.created_epoch = strtod(col(r, 10), NULL);
		req.attempts = atoi(col(r, 4));
		if (!RfHttpSubmit(&req))
		{
			free(body);
			refused[*nrefused].id = id;
			refused[*nrefused].endpoint_id = endpoint_id;
			strlcpy(refused[*nrefused].error, "could not start the HTTP request", sizeof(refused[*nrefused].error));
			(*nrefused)++;
		}
	}
	return (int) SPI_processed;
}

/* Retry delay in ms for the given attempt: exponential, capped, with jitter (50-100%). */
static double
backoff_ms(int attempts)
{
	double		d = (double) rf_backoff_base_ms * pow(2.0, Max(0, attempts - 1));

	if (d > rf_backoff_max_ms)
		d = rf_backoff_max_ms;
	return d * (0.5 + 0.5 * ((double) random() / 2147483647.0));
}

/* What one batch of results means for one endpoint (its health row). */
typedef struct EndpointOutcome
{
	int			id;
	int			succ;
	int			fail;
	int			status;			/* last failing HTTP status */
	bool		gone;			/* a 410: disable the endpoint */
	char	   *err;			/* last error */
} EndpointOutcome;

/* qsort comparator: endpoint outcomes by endpoint id. */
static int
endpoint_outcome_cmp(const void *a, const void *b)
{
	int			x = ((const EndpointOutcome *) a)->id;
	int			y = ((const EndpointOutcome *) b)->id;

	return (x > y) - (x < y);
}

static void record_tx(int n, Datum *ids, Datum *status, Datum *errs, bool *errnull, Datum *outcome,
					  Datum *delay, Datum *latency, Datum *done_at, EndpointOutcome *eps, int neps);

/* qsort comparator: results by delivery id. */
static int
result_cmp(const void *a, const void *b)
{
	int64		x = ((const RfHttpResult *) a)->delivery_id;
	int64		y = ((const RfHttpResult *) b)->delivery_id;

	return (x > y) - (x < y);
}

/* qsort comparator: refusals by delivery id. */
static int
refused_cmp(const void *a, const void *b)
{
	int64		x = ((const Refused *) a)->id;
	int64		y = ((const Refused *) b)->id;

	return (x > y) - (x < y);
}

/*
 * Records finished requests and refusals in one transaction (deliveries and
 * endpoint health).  Its locks are taken in one fixed order, so that workers
 * recording at the same time never deadlock: the deliveries by id (the
 * arrays are sorted, so every plan of the UPDATE meets them in one order),
 * then each endpoint's health row (and a 410's endpoint row) by endpoint id.
 * A deadlock with another session (an administrator deleting an endpoint)
 * or a serialization failure is retried, not fatal to the worker.
 */
static void
record_results(RfHttpResult *res, int nres, Refused *refused, int nrefused)
{
	int			n = nres + nrefused;
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *status = palloc(sizeof(Datum) * n);
	Datum	   *errs = palloc(sizeof(Datum) * n);
	bool	   *errnull = palloc(sizeof(bool) * n);
	Datum	   *outcome = palloc(sizeof(Datum) * n);
	Datum	   *delay = palloc(sizeof(Datum) * n);
	Datum	   *latency = palloc(sizeof(Datum) * n);
	Datum	   *done_at = palloc(sizeof(Datum) * n);
	int			neps = 0;
	EndpointOutcome *eps = palloc0(sizeof(EndpointOutcome) * n);
	int			i,
				k;
	double		now_epoch = ((double) GetCurrentTimestamp()) / 1000000.0 +
		((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
	int			attempt;

	/* the callers pass results or refusals, never both: each sorted is all sorted */
	qsort(res, nres, sizeof(RfHttpResult), result_cmp);
	qsort(refused, nrefused, sizeof(Refused), refused_cmp);
	for (i = 0; i < n; i++)
	{
		int			eid;
		bool		ok = false;
		const char *o;
		char	   *err = NULL;
		long		st = 0;

		if (i < nres)
		{
			RfHttpResult *r = &res[i];

			eid = r->endpoint_id;
			st = r->status;
			ids[i] = Int64GetDatum(r->delivery_id);
			ok = (st >= 200 && st < 300);
			if (ok)
				o = "delivered";
			else if (st == 410 || r->denied)
				o = "dead";
			else if (r->attempts >= rf_max_attempts || now_epoch - r->created_epoch > rf_max_age)
				o = "dead";
			else
				o = "pending";
			if (!ok)
				err = st ? psprintf("HTTP %ld", st) : pstrdup(r->error);
			/* what the endpoint's manager reads says less than the server log */
			if (r->denied)
				ereport(LOG,
						(errmsg("retailflow: delivery " INT64_FORMAT " to endpoint %d denied by policy", r->delivery_id, eid),
						 errdetail("The address %s is in retailflow.webhook_denied_networks; nothing was sent to it.", r->detail)));
			else if (!ok && st == 0)
				elog(DEBUG1, "retailflow: delivery " INT64_FORMAT " to endpoint %d failed: %s", r->delivery_id, eid, r->detail);
			latency[i] = Float8GetDatum(ok ? (r->done_epoch - r->created_epoch) * 1000.0 : 0);
			done_at[i] = Float8GetDatum(r->done_epoch);
			if (!ok && (st == 429 || st == 503) && r->retry_after >= 0)
				delay[i] = Float8GetDatum(Min((double) r->retry_after * 1000.0, (double) rf_backoff_max_ms));
			else
				delay[i] = Float8GetDatum(ok ? 0 : backoff_ms(r->attempts));
		}
		else
		{
			Refused    *f = &refused[i - nres];

			eid = f->endpoint_id;
			ids[i] = Int64GetDatum(f->id);
			o = "dead";
			err = pstrdup(f->error);
			latency[i] = Float8GetDatum(0);
			done_at[i] = Float8GetDatum(now_epoch);
			delay[i] = Float8GetDatum(0);
		}
		status[i] = Int32GetDatum((int32) st);
		outcome[i] = CStringGetTextDatum(o);
		errnull[i] = (err == NULL);
		errs[i] = err ? CStringGetTextDatum(err) : (Datum) 0;
		for (k = 0; k < neps; k++)
			if (eps[k].id == eid)
				break;
		if (k == neps)
			eps[neps++].id = eid;
		if (ok)
			eps[k].succ++;
		else if (i < nres)
		{
			eps[k].fail++;
			eps[k].status = (int) st;
			eps[k].err = err;
			if (st == 410)
				eps[k].gone = true;
		}
		else
			eps[k].err = err;
	}
	/* health rows (and endpoints) by endpoint id */
	qsort(eps, neps, sizeof(EndpointOutcome), endpoint_outcome_cmp);

	for (attempt = 1;; attempt++)
	{
		MemoryContext cxt = CurrentMemoryContext;
		volatile bool retry = false;

		PG_TRY();
		{
			record_tx(n, ids, status, errs, errnull, outcome, delay, latency, done_at, eps, neps);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (attempt >= 3 || (edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED &&
								 edata->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE))
				PG_RE_THROW();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(cxt);
			ereport(LOG,
					(errmsg("retailflow: recording webhook results: %s", edata->message),
					 errdetail("Attempt %d of 3; the results are recorded again.", attempt)));
			FreeErrorData(edata);
			retry = true;
		}
		PG_END_TRY();
		if (!retry)
			break;
	}
}

/* The transaction of record_results(): deliveries by id, then health rows by endpoint id. */
static void
record_tx(int n, Datum *ids, Datum *status, Datum *errs, bool *errnull, Datum *outcome, Datum *delay,
		  Datum *latency, Datum *done_at, EndpointOutcome *eps, int neps)
{
	int			dims[1];
	int			lbs[1] = {1};
	int			k;

	begin_tx("retailflow: record webhook results");
	if (extension_present())
	{
		static const char *upd =
			"UPDATE retailflow.delivery d SET state = r.outcome,"
			" lease_until = NULL, lease_owner = NULL, last_status = nullif(r.status, 0), last_error = r.err,"
			" delivered_at = CASE WHEN r.outcome = 'delivered' THEN to_timestamp(r.done_at) END,"
			" latency_ms = CASE WHEN r.outcome = 'delivered' THEN r.latency END,"
			" next_attempt_at = CASE WHEN r.outcome = 'pending' THEN clock_timestamp() + r.delay * interval '1 ms'"
			"                   ELSE d.next_attempt_at END"
			" FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[])"
			"   AS r(id, status, err, outcome, delay, latency, done_at)"
			" WHERE d.id = r.id AND d.state = 'pending'";
		Oid			t[7] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
		Datum		v[7];
		int			ret;

		dims[0] = n;
		v[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
		v[1] = PointerGetDatum(construct_array(status, n, INT4OID, 4, true, TYPALIGN_INT));
		v[2] = PointerGetDatum(construct_md_array(errs, errnull, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
		v[3] = PointerGetDatum(construct_array(outcome, n, TEXTOID, -1, false, TYPALIGN_INT));
		v[4] = PointerGetDatum(construct_array(delay, n, FLOAT8OID, 8, true, TYPALIGN_DOUBLE));
		v[5] = PointerGetDatum(construct_array(latency, n, FLOAT8OID, 8, true, TYPALIGN_DOUBLE));
		v[6] = PointerGetDatum(construct_array(done_at, n, FLOAT8OID, 8, true, TYPALIGN_DOUBLE));
		ret = SPI_execute_plan(saved_plan(&record_plan, upd, 7, t), v, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "retailflow: recording results failed: %s", SPI_result_code_string(ret));

		for (k = 0; k < neps; k++)
		{
			static const char *health =
				"INSERT INTO retailflow.endpoint_health AS h (endpoint_id, consecutive_failures, last_status,"
				"  last_error, last_error_at, last_success_at)"
				" SELECT $1, $3, nullif($4, 0), $5, CASE WHEN $3 > 0 OR $5 IS NOT NULL THEN now() END,"
				"        CASE WHEN $2 > 0 THEN now() END"
				" WHERE EXISTS (SELECT 1 FROM retailflow.endpoint e WHERE e.id = $1)"
				" ON CONFLICT (endpoint_id) DO UPDATE SET"
				"  consecutive_failures = CASE WHEN $2 > 0 THEN 0 ELSE h.consecutive_failures + $3 END,"
				"  circuit_open_until = CASE WHEN $2 > 0 THEN NULL"
				"     WHEN h.consecutive_failures + $3 >= $6 THEN now() + $7 * interval '1 s'"
				"     ELSE h.circuit_open_until END,"
				"  last_status = coalesce(nullif($4, 0), h.last_status),"
				"  last_error = coalesce($5, h.last_error),"
				"  last_error_at = coalesce(EXCLUDED.last_error_at, h.last_error_at),"
				"  last_success_at = coalesce(EXCLUDED.last_success_at, h.last_success_at)"
				" WHERE $3 > 0 OR $5 IS NOT NULL OR h.consecutive_failures <> 0"
				"    OR h.last_success_at IS NULL OR h.last_success_at < now() - interval '1 s'";
			Oid			ht[7] = {INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID, INT4OID, INT4OID};
			Datum		hv[7];
			char		hn[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

			hv[0] = Int32GetDatum(eps[k].id);
			hv[1] = Int32GetDatum(eps[k].succ);
			hv[2] = Int32GetDatum(eps[k].fail);
			hv[3] = Int32GetDatum(eps[k].status);
			if (eps[k].err && eps[k].succ == 0)
				hv[4] = CStringGetTextDatum(eps[k].err);
			else
				hn[4] = 'n';
			hv[5] = Int32GetDatum(rf_circuit_failures);
			hv[6] = Int32GetDatum(rf_circuit_open_seconds);
			SPI_execute_with_args(health, 7, ht, hv, hn, false, 0);
			if (eps[k].gone)
			{
				Oid			gt[1] = {INT4OID};
				Datum		gv[1] = {Int32GetDatum(eps[k].id)};

				SPI_execute_with_args("UPDATE retailflow.endpoint SET active = false,"
									  " disabled_reason = 'HTTP 410 Gone at ' || now()::text"
									  " WHERE id = $1 AND active", 1, gt, gv, NULL, false, 0);
			}
		}
	}
	end_tx();
}

/* Removes delivered rows past the retention in batches (worker 0 only). */
static void
run_retention(void)
{
	int			loops;

	for (loops = 0; loops < 20; loops++)
	{
		int64		removed = 0;

		begin_tx("retailflow: webhook retention");
		if (extension_present())
		{
			if (SPI_execute("SELECT retailflow.purge(5000)", false, 0) == SPI_OK_SELECT && SPI_processed == 1)
				removed = strtoi64(col(0, 1), NULL, 10);
		}
		end_tx();
		if (removed < 5000)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * After a job's error was caught: rolls its transaction back, goes back to
 * the loop's context and logs what failed as a WARNING (the worker goes on).
 */
static void
job_failed(MemoryContext cxt, const char *what_failed, const char *detail)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	if (loop_cxt)
		MemoryContextSwitchTo(loop_cxt);
	ereport(WARNING,
			(errmsg("retailflow: %s: %s", what_failed, edata->message),
			 errdetail("%s", detail)));
	FreeErrorData(edata);
}

/*
 * Runs one scheduled SQL job in its own transaction.  A failing job is logged
 * and rolled back; it must not take the delivery worker down with it.
 */
static void
run_scheduled(const char *what, const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	/* formed before the job: the catch block must not allocate in a context the abort frees */
	char	   *failed = psprintf("scheduled job \"%s\" failed", what);

	begin_tx(what);
	PG_TRY();
	{
		if (extension_present() && !RecoveryInProgress())
			SPI_execute(sql, false, 0);
		end_tx();
	}
	PG_CATCH();
	{
		job_failed(cxt, failed, "The job runs again at the next scheduler tick.");
	}
	PG_END_TRY();
}

/*
 * Appends the audit rows other sessions queued past their rollback (worker 0
 * only), in one transaction; the queue slots are freed after it commits.
 */
static void
run_audit_queue(void)
{
	uint64		seqs[RF_AUDIT_QUEUE_SLOTS];
	uint64		dropped = 0;
	volatile int n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	if (!RfAuditDeferPending())
		return;
	begin_tx("retailflow: queued audit rows");
	PG_TRY();
	{
		bool		gone = !extension_present();

		if (!gone && !RecoveryInProgress())
			n = RfAuditDeferAppend(seqs, (uint64 *) &dropped);
		end_tx();
		if (gone)
			RfAuditDeferDiscard();	/* the extension was dropped: nowhere to write them */
		else
			RfAuditDeferRelease(seqs, n, dropped);
	}
	PG_CATCH();
	{
		job_failed(cxt, "could not append the queued audit rows",
				   "They stay queued and are tried again shortly.");
	}
	PG_END_TRY();
}

/* Releases leases this worker held before a crash or restart. */
static void
release_own_leases(void)
{
	begin_tx("retailflow: release leases");
	if (extension_present())
	{
		Oid			t[1] = {INT4OID};
		Datum		v[1] = {Int32GetDatum(my_index)};

		SPI_execute_with_args("UPDATE retailflow.delivery SET lease_until = NULL, lease_owner = NULL,"
							  " attempts = greatest(attempts - 1, 0)"
							  " WHERE lease_owner = $1 AND state = 'pending'", 1, t, v, NULL, false, 0);
	}
	end_tx();
}

/* Worker main: connect, then claim/send/record until SIGTERM. */
void
RfWebhookWorkerMain(Datum arg)
{
	TimestampTz last_claim = 0;
	TimestampTz last_drop_check = 0;
	TimestampTz last_retention = 0;
	TimestampTz last_schedule = 0;
	TimestampTz last_checkpoint_check = 0;
	uint32		seen_wakeups = 0;
	bool		more = true;
	bool		leases_released = false;
	int			nacc = 0;
	TimestampTz first_result = 0;
	TimestampTz last_full_scan = 0;
	int64		scan_from = 0;
	RfHttpResult *results;
	Refused    *refused;

	my_index = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (rf_database == NULL || rf_database[0] == '\0')
	{
		/* nothing configured: idle quietly until shutdown */
		for (;;)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
		}
	}

	BackgroundWorkerInitializeConnection(rf_database, NULL, 0);
	/* a lost commit only re-sends with the same webhook-id: no need to wait for the WAL flush */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_OVERRIDE);
	/* the claim and record queries are written for READ COMMITTED, whatever the database's default */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_USERSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", MyBgworkerEntry->bgw_name, PGC_USERSET, PGC_S_OVERRIDE);
	/*
	 * Odoo's role owns the database and may ALTER DATABASE ... SET
	 * search_path: the worker's own SQL resolves names in pg_catalog only
	 * (retailflow's objects are always qualified).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	on_shmem_exit(worker_detach_shmem, (Datum) 0);
	if (shared)
		shared->procno[my_index] = MyProc->pgprocno;
	if (!RfHttpInit(RF_TRANSPORT_CAPACITY, rf_max_host_connections))
		ereport(ERROR, (errmsg("retailflow: could not initialise libcurl")));
	srandom((unsigned int) (MyProcPid ^ GetCurrentTimestamp()));
	results = MemoryContextAlloc(TopMemoryContext, sizeof(RfHttpResult) * RF_TRANSPORT_CAPACITY);
	refused = MemoryContextAlloc(TopMemoryContext, sizeof(Refused) * (RF_TRANSPORT_CAPACITY + 10000));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "retailflow worker loop", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz now;
		int			nres;
		int			nrefused = 0;
		long		timeout;
		uint32		w;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			RfHttpSetMaxHostConnections(rf_max_host_connections);
		}
		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		now = GetCurrentTimestamp();

		if (RecoveryInProgress())
		{
			RfHttpWait(1000, PG_WAIT_EXTENSION);
			continue;
		}
		if (TimestampDifferenceExceeds(last_drop_check, now, 250))
		{
			last_drop_check = now;
			if (database_being_dropped())
			{
				ereport(LOG, (errmsg("retailflow webhook worker %d exiting: database \"%s\" is locked by DROP DATABASE or a similar command",
									 my_index, rf_database)));
				proc_exit(1);
			}
		}
		if (!leases_released)
		{
			release_own_leases();
			leases_released = true;
		}

		/*
		 * Record what finished, in batches: when half a batch is done, when
		 * nothing else is in flight, or when the oldest result waited 5 ms.
		 */
		nres = RfHttpCollect(results + nacc, RF_TRANSPORT_CAPACITY - nacc);
		if (nres > 0 && nacc == 0)
			first_result = now;
		nacc += nres;
		if (nacc > 0 && (nacc >= Max(1, rf_batch_size / 2) || RfHttpInFlight() == 0 ||
						 TimestampDifferenceExceeds(first_result, now, 5)))
		{
			record_results(results, nacc, refused, 0);
			nacc = 0;
			more = true;
		}

		/* claim more when woken, when the last claim was full, or on the poll interval */
		w = shared ? pg_atomic_read_u32(&shared->wakeups) : 0;
		if (RfHttpInFlight() < rf_max_in_flight &&
			(w != seen_wakeups || more || TimestampDifferenceExceeds(last_claim, now, rf_poll_ms)))
		{
			int			want = Min(rf_batch_size, rf_max_in_flight - RfHttpInFlight());
			int			got = 0;

			seen_wakeups = w;
			last_claim = now;
			begin_tx("retailflow: claim webhook deliveries");
			if (TimestampDifferenceExceeds(last_full_scan, now, rf_poll_ms))
			{
				scan_from = 0;
				last_full_scan = now;
			}
			if (extension_present())
				got = claim_and_submit(want, refused, &nrefused, &scan_from);
			end_tx();
			more = (got == want && got > 0);
			if (nrefused > 0)
				record_results(results, 0, refused, nrefused);
		}

		/* worker 0, every 10 s: retention of delivered events and of exception history */
		if (my_index == 0 && TimestampDifferenceExceeds(last_retention, now, 10000))
		{
			last_retention = now;
			if (rf_retention >= 0)
				run_retention();
			run_scheduled("retailflow: exception retention", "SELECT retailflow.purge_exceptions(5000)");
		}

		if (my_index == 0)
			run_audit_queue();

		/* worker 0 anchors the audit chain head outside the database (when due) */
		if (my_index == 0 && rf_checkpoint_s > 0 &&
			TimestampDifferenceExceeds(last_checkpoint_check, now, Min(rf_checkpoint_s * 1000, 10000)))
		{
			char		sql[128];

			last_checkpoint_check = now;
			snprintf(sql, sizeof(sql), "SELECT retailflow.audit_checkpoint(make_interval(secs => %d))", rf_checkpoint_s);
			run_scheduled("retailflow: audit checkpoint", sql);
		}

		/* worker 0 also runs the scheduled checks, so no Odoo cron is needed */
		if (my_index == 0 && rf_scheduler_tick_ms > 0 &&
			TimestampDifferenceExceeds(last_schedule, now, rf_scheduler_tick_ms))
		{
			last_schedule = now;
			run_scheduled("retailflow: exception checks", "SELECT count(*) FROM retailflow.run_due_checks()");
			run_scheduled("retailflow: approval escalation", "SELECT retailflow.escalate_overdue()");
		}

		timeout = rf_poll_ms;
		if (nacc > 0)
			timeout = 5;
		if (more && RfHttpInFlight() < rf_max_in_flight)
			timeout = 0;
		RfHttpWait(timeout, PG_WAIT_EXTENSION);
	}
}
