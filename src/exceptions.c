/*
 * exceptions.c
 *	  Exception queue and scheduled checks: owns the GUCs that configure the
 *	  checks (their intervals, the thresholds of the built-in kinds and the
 *	  clock override used by deterministic tests).  The checks themselves are
 *	  SQL (sql/install/60_exceptions.sql); they read these settings with
 *	  current_setting().  Also retailflow.jsonb_identical(), the cheap change
 *	  test the checks use to compare an exception's stored data with the
 *	  current one.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "retailflow.h"

PG_FUNCTION_INFO_V1(rf_jsonb_identical);

static char *rf_now_override = NULL;
static char *rf_check_interval = NULL;
static char *rf_check_intervals = NULL;
static char *rf_order_sla = NULL;
static char *rf_partial_delivery_age = NULL;
static char *rf_return_stall = NULL;
static char *rf_exception_retention = NULL;

/* GUC check hook: the value must parse as a positive interval (without throwing). */
static bool
rf_check_interval_guc(char **newval, void **extra, GucSource source)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			dterr;
	struct pg_itm_in itm_in;
	Interval	iv;

	if (*newval == NULL)
		return true;
	memset(&itm_in, 0, sizeof(itm_in));
	dterr = ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm_in);
	if (dterr == DTERR_BAD_FORMAT)
	{
		memset(&itm_in, 0, sizeof(itm_in));
		dterr = DecodeISO8601Interval(*newval, &dtype, &itm_in);
	}
	if (dterr != 0 || dtype != DTK_DELTA || itmin2interval(&itm_in, &iv) != 0)
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		return false;
	}
	if (iv.month < 0 || iv.day < 0 || iv.time < 0 ||
		(iv.month == 0 && iv.day == 0 && iv.time == 0))
	{
		GUC_check_errdetail("The interval must be positive.");
		return false;
	}
	return true;
}

/* GUC check hook: empty (keep forever) or a positive interval. */
static bool
rf_check_retention_guc(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	return rf_check_interval_guc(newval, extra, source);
}

/* GUC check hook: empty, or a timestamp with time zone (without throwing). */
static bool
rf_check_now_override(char **newval, void **extra, GucSource source)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			dterr;
	int			tz;
	fsec_t		fsec;
	struct pg_tm tt;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	dterr = ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz);
	if (dterr != 0 || dtype != DTK_DATE)
	{
		GUC_check_errdetail("\"%s\" is not a timestamp with time zone.", *newval);
		return false;
	}
	return true;
}

/* Registers the exception and scheduled-check GUCs. */
void
ExceptionsInit(void)
{
	DefineCustomStringVariable("retailflow.now_override",
							   "Clock used by exception checks, KPIs and risk scores instead of now().",
							   "Empty means now(). Tests set it for deterministic results.",
							   &rf_now_override, "", PGC_SUSET, 0,
							   rf_check_now_override, NULL, NULL);
	DefineCustomStringVariable("retailflow.check_interval",
							   "Default interval between two runs of a scheduled exception check.",
							   NULL, &rf_check_interval, "1 min", PGC_SUSET, 0,
							   rf_check_interval_guc, NULL, NULL);
	DefineCustomStringVariable("retailflow.check_intervals",
							   "Per-check intervals, as a list kind=interval separated by commas.",
							   "Kinds not listed use retailflow.check_interval.",
							   &rf_check_intervals, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("retailflow.order_sla",
							   "Time after confirmation within which a sale order's deliveries must be done.",
							   NULL, &rf_order_sla, "2 days", PGC_SUSET, 0,
							   rf_check_interval_guc, NULL, NULL);
	DefineCustomStringVariable("retailflow.partial_delivery_age",
							   "Age after which a partially available delivery becomes an exception.",
							   NULL, &rf_partial_delivery_age, "1 day", PGC_SUSET, 0,
							   rf_check_interval_guc, NULL, NULL);
	DefineCustomStringVariable("retailflow.return_stall",
							   "Time after a return's receipt within which its refund must be posted.",
							   NULL, &rf_return_stall, "7 days", PGC_SUSET, 0,
							   rf_check_interval_guc, NULL, NULL);
	DefineCustomStringVariable("retailflow.exception_retention",
							   "How long closed exceptions and exception_log rows are kept.",
							   "Worker 0 removes older ones in batches. Empty keeps them forever.",
							   &rf_exception_retention, "180 days", PGC_SIGHUP, 0,
							   rf_check_retention_guc, NULL, NULL);
}

/*
 * retailflow.jsonb_identical(a, b): true if both jsonb values have the same
 * binary image.  jsonb keeps its keys sorted and deduplicated, so values
 * built the same way from the same data compare identical; a false answer
 * can also mean "equal but written differently" (1.0 and 1.00), which for
 * the exception checks only costs a harmless rewrite of the stored value.
 * A memcmp instead of jsonb's structural comparison.
 */
Datum
rf_jsonb_identical(PG_FUNCTION_ARGS)
{
	Jsonb	   *a = PG_GETARG_JSONB_P(0);
	Jsonb	   *b = PG_GETARG_JSONB_P(1);

	PG_RETURN_BOOL(VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0);
}
