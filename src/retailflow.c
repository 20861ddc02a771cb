/*
 * retailflow.c
 *	  Module entry point.  Owns nothing but the module magic and _PG_init,
 *	  which delegates to each concern's XxxInit() and then reserves the
 *	  "retailflow." GUC prefix.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "retailflow.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Load-time initialisation: each concern registers its GUCs, hooks and workers. */
void
_PG_init(void)
{
	OdooCatalogInit();
	RunAsInit();
	AvailabilityInit();
	ConflictsInit();
	ApprovalsInit();
	OutboxCaptureInit();
	EgressInit();
	WebhookWorkerInit();
	ExceptionsInit();
	AuditDeferInit();

	MarkGUCPrefixReserved(RF_EXTENSION_NAME);
}
