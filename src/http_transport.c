/*
 * http_transport.c
 *	  Owns HTTP delivery with the libcurl multi interface: a fixed pool of
 *	  request slots (easy handles reused, connections kept alive in the
 *	  multi handle's cache, at most N per host), curl's sockets waited on in
 *	  one WaitEventSet together with the worker's latch and postmaster
 *	  death, and completed requests handed back as RfHttpResult.
 *	  Egress: every socket is opened by open_socket_cb, which refuses an
 *	  address in retailflow.webhook_denied_networks before the socket exists
 *	  (so not a packet is sent); prereq_cb checks the peer again before each
 *	  request, for connections kept alive across a policy change.  Proxies
 *	  are off (the policy must see the real peer), redirects unfollowed,
 *	  protocols http and https only.  A failed request reports curl's
 *	  category text ("Couldn't connect to server"), never addresses or
 *	  ports, and "denied by policy" for a refused address.
 *	  The curl callbacks never ereport or allocate: they only copy into
 *	  preallocated slots and tables and set flags; the WaitEventSet is
 *	  rebuilt (outside the callbacks) when curl's socket set changed.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <curl/curl.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "webhooks.h"

#define RF_MAX_SOCKETS 4096

typedef struct Slot
{
	bool		used;
	CURL	   *easy;
	struct curl_slist *hdrs;
	char	   *body;
	instr_time	start;
	RfHttpResult res;
	bool		denied;			/* the egress policy refused an address */
	char		denied_addr[INET6_ADDRSTRLEN];
	char		errbuf[CURL_ERROR_SIZE];
} Slot;

typedef struct SockEntry
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN/OUT/INOUT */
} SockEntry;

static CURLM *multi = NULL;
static Slot *slots = NULL;
static int	nslots = 0;
static int	nused = 0;

static SockEntry socks[RF_MAX_SOCKETS];
static int	nsocks = 0;
static bool socks_changed = true;
static bool socks_overflow = false;

static long timer_ms = -1;		/* curl's requested timeout, -1 none */
static instr_time timer_set_at;

static RfHttpResult *done = NULL;
static int	ndone = 0;

static WaitEventSet *wes = NULL;
static MemoryContext wes_cxt = NULL;

/* test-only CURLOPT_RESOLVE entries (retailflow.webhook_test_resolve), rebuilt when it changes */
static struct curl_slist *resolve_list = NULL;
static struct curl_slist *resolve_retired = NULL;	/* freed once no request is in flight */
static char *resolve_src = NULL;

/* curl socket callback: records what curl wants on the socket (no ereport). */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < nsocks; i++)
		if (socks[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < nsocks)
		{
			socks[i] = socks[nsocks - 1];
			nsocks--;
			socks_changed = true;
		}
		return 0;
	}
	if (i == nsocks)
	{
		if (nsocks >= RF_MAX_SOCKETS)
		{
			socks_overflow = true;
			return 0;
		}
		nsocks++;
		socks[i].fd = s;
		socks[i].what = 0;
	}
	if (socks[i].what != what)
	{
		socks[i].what = what;
		socks_changed = true;
	}
	return 0;
}

/* curl timer callback: remembers when curl wants to be called again (no ereport). */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	timer_ms = timeout_ms;
	INSTR_TIME_SET_CURRENT(timer_set_at);
	return 0;
}

/* Response body callback: discards the body. */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* Response header callback: copies Retry-After (delay-seconds form) into the slot. */
static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	Slot	   *slot = (Slot *) userdata;
	size_t		n = size * nitems;

	if (n > 12 && pg_strncasecmp(buffer, "retry-after:", 12) == 0)
	{
		size_t		i = 12;
		long		v = 0;
		bool		digits = false;

		while (i < n && (buffer[i] == ' ' || buffer[i] == '\t'))
			i++;
		while (i < n && buffer[i] >= '0' && buffer[i] <= '9' && v < 1000000000L)
		{
			v = v * 10 + (buffer[i] - '0');
			digits = true;
			i++;
		}
		if (digits)
			slot->res.retry_after = (int) v;
	}
	return n;
}

/*
 * curl open-socket callback: refuses an address the egress policy denies
 * (before any socket exists, so no packet is sent), else opens the socket.
 * No ereport, no allocation: the refusal is a flag and an address copied
 * into the slot.
 */
static curl_socket_t
open_socket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Slot	   *slot = (Slot *) clientp;

	if (RfEgressDenied(&address->addr))
	{
		slot->denied = true;
		if (address->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &address->addr)->sin_addr,
					  slot->denied_addr, sizeof(slot->denied_addr));
		else if (address->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &address->addr)->sin6_addr,
					  slot->denied_addr, sizeof(slot->denied_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/*
 * curl pre-request callback: checks the connection's peer once more before
 * the request is sent, for a kept-alive connection opened before the policy
 * changed.  No ereport, no allocation.
 */
static int
prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port, int conn_local_port)
{
	Slot	   *slot = (Slot *) clientp;

	if (RfEgressDeniedText(conn_primary_ip))
	{
		slot->denied = true;
		strlcpy(slot->denied_addr, conn_primary_ip ? conn_primary_ip : "?", sizeof(slot->denied_addr));
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* The test-only CURLOPT_RESOLVE list, rebuilt (outside the callbacks) when the setting changed. */
static struct curl_slist *
test_resolve_list(void)
{
	const char *src = RfEgressTestResolve();
	struct curl_slist *old = resolve_list;
	char	   *copy;
	char	   *tok;
	char	   *save;

	if (resolve_retired != NULL && nused == 0)
	{
		curl_slist_free_all(resolve_retired);
		resolve_retired = NULL;
	}
	if (resolve_src != NULL && strcmp(resolve_src, src) == 0)
		return resolve_list;
	resolve_list = NULL;
	/* forget what the previous entries put in curl's DNS cache: "-HOST:PORT" */
	if (resolve_src != NULL)
	{
		copy = pstrdup(resolve_src);
		for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
		{
			char	   *second = strchr(tok, ':');

			if (second && (second = strchr(second + 1, ':')) != NULL)
			{
				*second = '\0';
				resolve_list = curl_slist_append(resolve_list, psprintf("-%s", tok));
			}
		}
		pfree(copy);
		free(resolve_src);
	}
	copy = pstrdup(src);
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
		resolve_list = curl_slist_append(resolve_list, tok);
	pfree(copy);
	resolve_src = strdup(src);
	/* a request that has not started yet may still read the old list */
	if (old)
	{
		if (resolve_retired)
			curl_slist_free_all(resolve_retired);	/* older still: every request using it has started */
		resolve_retired = old;
	}
	return resolve_list;
}

/* Creates the multi handle and `capacity` request slots; false if curl fails. */
bool
RfHttpInit(int capacity, int max_host_connections)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		return false;
	multi = curl_multi_init();
	if (multi == NULL)
		return false;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) max_host_connections);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) Max(capacity, 16));
	slots = MemoryContextAllocZero(TopMemoryContext, sizeof(Slot) * capacity);
	done = MemoryContextAllocZero(TopMemoryContext, sizeof(RfHttpResult) * capacity);
	nslots = capacity;
	wes_cxt = AllocSetContextCreate(TopMemoryContext, "retailflow wait set", ALLOCSET_SMALL_SIZES);
	return true;
}

/* Changes the per-host connection limit (after a reload). */
void
RfHttpSetMaxHostConnections(int n)
{
	if (multi)
		curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) n);
}

/* Aborts every request and frees curl's handles. */
void
RfHttpShutdown(void)
{
	int			i;

	if (multi == NULL)
		return;
	for (i = 0; i < nslots; i++)
	{
		if (slots[i].used)
			curl_multi_remove_handle(multi, slots[i].easy);
		if (slots[i].easy)
			curl_easy_cleanup(slots[i].easy);
		if (slots[i].hdrs)
			curl_slist_free_all(slots[i].hdrs);
		if (slots[i].body)
			free(slots[i].body);
	}
	curl_multi_cleanup(multi);
	multi = NULL;
	nused = 0;
	ndone = 0;
}

/* Number of requests in flight. */
int
RfHttpInFlight(void)
{
	return nused;
}

/* Number of requests in flight to one endpoint. */
int
RfHttpInFlightFor(int endpoint_id)
{
	int			i,
				n = 0;

	for (i = 0; i < nslots; i++)
		if (slots[i].used && slots[i].res.endpoint_id == endpoint_id)
			n++;
	return n;
}

/* Fills ids/counts with the endpoints that have requests in flight; returns how many. */
int
RfHttpInFlightByEndpoint(int *ids, int *counts, int max)
{
	int			i,
				k,
				n = 0;

	for (i = 0; i < nslots; i++)
	{
		if (!slots[i].used)
			continue;
		for (k = 0; k < n; k++)
			if (ids[k] == slots[i].res.endpoint_id)
				break;
		if (k == n)
		{
			if (n == max)
				continue;
			ids[n] = slots[i].res.endpoint_id;
			counts[n++] = 0;
		}
		counts[k]++;
	}
	return n;
}

/* Starts one POST; takes ownership of req->body.  False when no slot is free. */
bool
RfHttpSubmit(const RfHttpRequest *req)
{
	Slot	   *slot = NULL;
	int			i;
	CURL	   *e;

	for (i = 0; i < nslots; i++)
		if (!slots[i].used)
		{
			slot = &slots[i];
			break;
		}
	if (slot == NULL)
		return false;
	if (slot->easy == NULL)
	{
		slot->easy = curl_easy_init();
		if (slot->easy == NULL)
			return false;
	}
	else
		curl_easy_reset(slot->easy);
	if (slot->hdrs)
		curl_slist_free_all(slot->hdrs);
	slot->hdrs = NULL;
	if (slot->body)
		free(slot->body);
	slot->body = (char *) req->body;
	memset(&slot->res, 0, sizeof(slot->res));
	slot->res.delivery_id = req->delivery_id;
	slot->res.endpoint_id = req->endpoint_id;
	slot->res.retry_after = -1;
	slot->res.created_epoch = req->created_epoch;
	slot->res.attempts = req->attempts;
	slot->denied = false;
	slot->denied_addr[0] = '\0';
	slot->errbuf[0] = '\0';
	for (i = 0; i < req->nheaders; i++)
		slot->hdrs = curl_slist_append(slot->hdrs, req->headers[i]);

	e = slot->easy;
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* egress: no proxy (the policy must see the real peer), every socket through the policy */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, slot);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, slot);
	if (RfEgressTestResolve()[0] != '\0' || resolve_src != NULL)
		curl_easy_setopt(e, CURLOPT_RESOLVE, test_resolve_list());
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, slot->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->bodylen);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, slot->hdrs);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->tls_verify ? 2L : 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, slot->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, slot);
	curl_easy_setopt(e, CURLOPT_PRIVATE, slot);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "retailflow-webhooks/1.0");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (curl_multi_add_handle(multi, e) != CURLM_OK)
		return false;
	INSTR_TIME_SET_CURRENT(slot->start);
	slot->used = true;
	nused++;
	return true;
}

/* Moves finished transfers from curl into the done list and frees their slots. */
static void
harvest(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		Slot	   *slot = NULL;
		instr_time	now;
		RfHttpResult *r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &slot);
		if (slot == NULL || !slot->used)
			continue;
		r = &slot->res;
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
		else if (slot->denied)
		{
			/* refused by the egress policy: nothing about the peer is reported */
			r->status = 0;
			r->denied = true;
			strlcpy(r->error, "denied by policy", sizeof(r->error));
			strlcpy(r->detail, slot->denied_addr, sizeof(r->detail));
		}
		else
		{
			/* curl's category only: the full text names addresses and ports (server log only) */
			r->status = 0;
			strlcpy(r->error, curl_easy_strerror(msg->data.result), sizeof(r->error));
			strlcpy(r->detail, slot->errbuf[0] ? slot->errbuf : r->error, sizeof(r->detail));
		}
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, slot->start);
		r->seconds = INSTR_TIME_GET_DOUBLE(now);
		r->done_epoch = ((double) GetCurrentTimestamp()) / 1000000.0 +
			((double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
		curl_multi_remove_handle(multi, msg->easy_handle);
		done[ndone++] = *r;
		slot->used = false;
		nused--;
		free(slot->body);
		slot->body = NULL;
	}
}

/* Rebuilds the WaitEventSet from the latch, postmaster death and curl's sockets. */
static void
rebuild_wait_set(void)
{
	int			i;

	if (wes)
		FreeWaitEventSet(wes);
	wes = NULL;
	MemoryContextReset(wes_cxt);
	wes = CreateWaitEventSet(wes_cxt, nsocks + 2);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < nsocks; i++)
	{
		uint32		ev = 0;

		if (socks[i].what & CURL_POLL_IN)
			ev |= WL_SOCKET_READABLE;
		if (socks[i].what & CURL_POLL_OUT)
			ev |= WL_SOCKET_WRITEABLE;
		if (ev == 0)
			continue;
		AddWaitEventToSet(wes, ev, socks[i].fd, NULL, (void *) (intptr_t) socks[i].fd);
	}
	socks_changed = false;
}

/*
 * Waits up to max_timeout_ms (or less when curl needs a timer) for the
 * latch or curl's sockets, drives curl and collects finished transfers.
 * The latch is reset here; the caller checks its interrupt flags.
 */
void
RfHttpWait(long max_timeout_ms, uint32 wait_event_info)
{
	WaitEvent	events[64];
	long		timeout = max_timeout_ms;
	int			n,
				i,
				running;

	if (multi == NULL)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, max_timeout_ms, wait_event_info);
		ResetLatch(MyLatch);
		return;
	}
	if (timer_ms >= 0)
	{
		instr_time	now;
		long		elapsed;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, timer_set_at);
		elapsed = (long) INSTR_TIME_GET_MILLISEC(now);
		timeout = Min(timeout, Max(0, timer_ms - elapsed));
	}
	if (socks_overflow)
		timeout = Min(timeout, 10);
	if (socks_changed || wes == NULL)
		rebuild_wait_set();
	n = WaitEventSetWait(wes, timeout, events, lengthof(events), wait_event_info);
	for (i = 0; i < n; i++)
	{
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			continue;
		}
		if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			mask = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				mask |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				mask |= CURL_CSELECT_OUT;
			curl_multi_socket_action(multi, (curl_socket_t) (intptr_t) events[i].user_data, mask, &running);
		}
	}
	/* fire curl's timer when it is due (or whenever the socket table overflowed) */
	if (timer_ms >= 0 || socks_overflow)
	{
		instr_time	now;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, timer_set_at);
		if (socks_overflow || (long) INSTR_TIME_GET_MILLISEC(now) >= timer_ms)
		{
			timer_ms = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
	}
	harvest();
}

/* Hands back up to max finished requests; returns how many. */
int
RfHttpCollect(RfHttpResult *out, int max)
{
	int			n = Min(max, ndone);

	memcpy(out, done, sizeof(RfHttpResult) * n);
	if (n < ndone)
		memmove(done, done + n, sizeof(RfHttpResult) * (ndone - n));
	ndone -= n;
	return n;
}
