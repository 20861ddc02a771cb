/*
 * webhooks.h
 *	  Declarations shared by the webhook files: outbox_capture.c (capture
 *	  triggers, commit wake-up), payload.c (jansson JSON), signing.c
 *	  (Standard Webhooks HMAC), http_transport.c (libcurl multi),
 *	  egress.c (where deliveries may connect) and worker.c (background
 *	  workers, shared memory, GUCs).
 */
#ifndef RF_WEBHOOKS_H
#define RF_WEBHOOKS_H

#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"

#define RF_PAYLOAD_MAX_STRING 1024
#define RF_PAYLOAD_MAX_BODY 20480
#define RF_PAYLOAD_MAX_DEPTH 32
#define RF_MAX_WORKERS 16

/* payload.c */
extern char *RfPayloadCaptureData(const char *model, int32 id, const char *old_state,
								  const char *new_state, HeapTuple newtup, TupleDesc desc,
								  const char *const *fields, const char *extra_json);
extern char *RfPayloadBody(const char *event_type, const char *timestamp, const char *model,
						   int32 record_id, bool record_id_null, const char *data_json,
						   size_t *len, const char **err);

extern int	RfPayloadHeaders(const char *headers_json, const char **out, int n, int max);

/* signing.c */
extern bool RfSignSecretDecode(const char *secret, uint8 *key, int *keylen);
extern bool RfSignHeader(const char *const *secrets, int nsecrets, const char *msg_id,
						 int64 timestamp, const char *body, size_t bodylen,
						 char *out, size_t outlen);

/* egress.c */
struct sockaddr;
#define RF_URL_MAX 2048
extern bool RfEgressDenied(const struct sockaddr *sa);
extern bool RfEgressDeniedText(const char *ip);
extern bool RfEgressHostAllowed(const char *url);
extern const char *RfEgressTestResolve(void);

/* outbox_capture.c */
extern void OutboxCaptureInit(void);

/* worker.c */
extern void WebhookWorkerInit(void);
extern void RfWakeWorkers(void);

/* http_transport.c */
typedef struct RfHttpResult
{
	int64		delivery_id;
	int			endpoint_id;
	long		status;			/* HTTP status, 0 on transport error */
	int			retry_after;	/* seconds from Retry-After, -1 if none */
	double		seconds;		/* request duration */
	double		done_epoch;		/* completion time, Unix epoch seconds */
	double		created_epoch;	/* event creation time (copied from the request) */
	int			attempts;		/* attempt number (copied from the request) */
	bool		denied;			/* refused by the egress policy before connecting */
	char		error[256];		/* transport error: curl's category text, never an address */
	char		detail[256];	/* curl's full error text, or the denied address (server log only) */
} RfHttpResult;

typedef struct RfHttpRequest
{
	int64		delivery_id;
	int			endpoint_id;
	const char *url;
	const char *body;			/* malloc'd, taken over by the transport */
	size_t		bodylen;
	const char *const *headers; /* "Name: value" strings, copied */
	int			nheaders;
	long		timeout_ms;
	bool		tls_verify;
	double		created_epoch;
	int			attempts;
} RfHttpRequest;

extern bool RfHttpInit(int capacity, int max_host_connections);
extern void RfHttpSetMaxHostConnections(int n);
extern void RfHttpShutdown(void);
extern int	RfHttpInFlight(void);
extern int	RfHttpInFlightFor(int endpoint_id);
extern int	RfHttpInFlightByEndpoint(int *ids, int *counts, int max);
extern bool RfHttpSubmit(const RfHttpRequest *req);
extern void RfHttpWait(long max_timeout_ms, uint32 wait_event_info);
extern int	RfHttpCollect(RfHttpResult *out, int max);

#endif
