/*
 * egress.c
 *	  Owns the webhook egress policy: where the delivery workers may send.
 *	  - retailflow.webhook_denied_networks: the networks no delivery may
 *	    connect to (CIDR list, keywords "default", "loopback", "private"),
 *	    parsed by the GUC check hook into a fixed array, so that the
 *	    connect-time check allocates nothing and cannot fail;
 *	  - RfEgressDenied(): that check, run by libcurl's open-socket and
 *	    pre-request callbacks (http_transport.c) on the address libcurl
 *	    actually resolved, before the socket exists; an IPv6 address that
 *	    embeds an IPv4 address (IPv4-mapped, NAT64) is checked as both;
 *	  - host literals in every spelling curl accepts (dotted, decimal, hex,
 *	    octal, shortened IPv4, bracketed IPv6): retailflow.webhook_host_address()
 *	    and retailflow.webhook_address_denied() for the endpoint validation
 *	    trigger (sql/install/30_webhooks.sql);
 *	  - retailflow.webhook_allowed_hosts, the host-name allowlist on top;
 *	  - retailflow.webhook_test_resolve, test-only CURLOPT_RESOLVE entries
 *	    (map a test host name to an address without touching DNS).
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <limits.h>
#include <sys/socket.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"

#include "retailflow.h"
#include "webhooks.h"

PG_FUNCTION_INFO_V1(rf_webhook_host_address);
PG_FUNCTION_INFO_V1(rf_webhook_address_denied);

/* One network: family (4 or 6), prefix length and address bytes. */
typedef struct RfNet
{
	uint8		family;
	uint8		bits;
	uint8		addr[16];
} RfNet;

/* The parsed retailflow.webhook_denied_networks (the GUC's "extra"). */
typedef struct RfNetList
{
	int			n;
	RfNet		nets[FLEXIBLE_ARRAY_MEMBER];
} RfNetList;

#define RF_DENIED_DEFAULT \
	"169.254.0.0/16, fe80::/10, 0.0.0.0/8, ::/128, 224.0.0.0/4, ff00::/8, " \
	"255.255.255.255/32, 100.100.100.200/32, fd00:ec2::254/128"
#define RF_DENIED_LOOPBACK "127.0.0.0/8, ::1/128"
#define RF_DENIED_PRIVATE "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7"
#define RF_MAX_NETS 256

static char *rf_denied_networks = NULL;
static char *rf_allowed_hosts = NULL;
static char *rf_test_resolve = NULL;
static RfNetList *denied = NULL;

/* Parses one "address[/bits]" into net; false (with *why) when malformed. */
static bool
parse_net(const char *s, RfNet *net, const char **why)
{
	char		buf[128];
	char	   *slash;
	int			maxbits;
	int			i;

	if (strlen(s) >= sizeof(buf))
	{
		*why = "is too long";
		return false;
	}
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1)
	{
		net->family = 4;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, buf, net->addr) == 1)
	{
		net->family = 6;
		maxbits = 128;
	}
	else
	{
		*why = "is not an IPv4 or IPv6 network";
		return false;
	}
	net->bits = maxbits;
	if (slash)
	{
		char	   *end;
		long		b;

		errno = 0;
		b = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || errno != 0 || b < 0 || b > maxbits)
		{
			*why = "has an invalid prefix length";
			return false;
		}
		net->bits = (uint8) b;
	}
	for (i = net->bits; i < maxbits; i++)
		if (net->addr[i / 8] & (0x80 >> (i % 8)))
		{
			*why = "has bits set to the right of its prefix length";
			return false;
		}
	return true;
}

/* Appends the networks of a comma/space-separated list (keywords expanded) to nets; false on error. */
static bool
parse_list(const char *list, RfNet *nets, int *n, int depth, char *bad, size_t badlen, const char **why)
{
	char	   *copy = pstrdup(list);
	char	   *tok;
	char	   *save;

	for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save))
	{
		const char *expand = NULL;

		if (pg_strcasecmp(tok, "default") == 0)
			expand = RF_DENIED_DEFAULT;
		else if (pg_strcasecmp(tok, "loopback") == 0)
			expand = RF_DENIED_LOOPBACK;
		else if (pg_strcasecmp(tok, "private") == 0)
			expand = RF_DENIED_PRIVATE;
		if (expand && depth == 0)
		{
			if (!parse_list(expand, nets, n, 1, bad, badlen, why))
				return false;
			continue;
		}
		if (*n >= RF_MAX_NETS)
		{
			strlcpy(bad, tok, badlen);
			*why = "is one network too many (at most 256)";
			return false;
		}
		if (!parse_net(tok, &nets[*n], why))
		{
			strlcpy(bad, tok, badlen);
			return false;
		}
		(*n)++;
	}
	pfree(copy);
	return true;
}

/* GUC check hook: parses the denied networks into a malloc'd RfNetList ("extra"). */
static bool
check_denied_networks(char **newval, void **extra, GucSource source)
{
	RfNet	   *nets = palloc(sizeof(RfNet) * RF_MAX_NETS);
	int			n = 0;
	char		bad[128];
	const char *why = NULL;
	RfNetList  *list;

	if (!parse_list(*newval ? *newval : "", nets, &n, 0, bad, sizeof(bad), &why))
	{
		GUC_check_errdetail("\"%s\" %s.", bad, why);
		GUC_check_errhint("List networks as CIDR (169.254.0.0/16, fe80::/10) or the keywords default, loopback and private, separated by commas.");
		pfree(nets);
		return false;
	}
	list = malloc(offsetof(RfNetList, nets) + sizeof(RfNet) * Max(n, 1));
	if (list == NULL)
	{
		pfree(nets);
		return false;
	}
	list->n = n;
	memcpy(list->nets, nets, sizeof(RfNet) * n);
	pfree(nets);
	*extra = list;
	return true;
}

/* GUC assign hook: the parsed list becomes the one the checks use. */
static void
assign_denied_networks(const char *newval, void *extra)
{
	denied = (RfNetList *) extra;
}

/* Does net contain the address (family 4 or 6, network byte order)? */
static bool
net_contains(const RfNet *net, int family, const uint8 *addr)
{
	int			full = net->bits / 8;
	int			rest = net->bits % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net->addr[full] ^ addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* The first denied network containing the address, or NULL (no allocation, no ereport). */
static const RfNet *
denied_net(int family, const uint8 *addr)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8 nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint8 *v4 = NULL;
	int			i;

	if (denied == NULL)
		return NULL;
	if (family == 6 && (memcmp(addr, mapped, 12) == 0 || memcmp(addr, nat64, 12) == 0))
		v4 = addr + 12;
	for (i = 0; i < denied->n; i++)
		if (net_contains(&denied->nets[i], family, addr) ||
			(v4 && net_contains(&denied->nets[i], 4, v4)))
			return &denied->nets[i];
	return NULL;
}

/*
 * Is the socket address in a denied network?  Called from libcurl's
 * callbacks: it allocates nothing and never raises.
 */
bool
RfEgressDenied(const struct sockaddr *sa)
{
	if (sa == NULL)
		return true;
	if (sa->sa_family == AF_INET)
		return denied_net(4, (const uint8 *) &((const struct sockaddr_in *) sa)->sin_addr) != NULL;
	if (sa->sa_family == AF_INET6)
		return denied_net(6, (const uint8 *) &((const struct sockaddr_in6 *) sa)->sin6_addr) != NULL;
	return true;				/* only IP sockets are ever opened for a webhook */
}

/* Is the numeric address text (as libcurl reports a connection's peer) denied?  No allocation. */
bool
RfEgressDeniedText(const char *ip)
{
	uint8		addr[16];

	if (ip == NULL)
		return true;
	if (inet_pton(AF_INET, ip, addr) == 1)
		return denied_net(4, addr) != NULL;
	if (inet_pton(AF_INET6, ip, addr) == 1)
		return denied_net(6, addr) != NULL;
	return true;
}

/*
 * The IPv4 address a URL host denotes in curl's reading (inet_aton rules:
 * one to four parts, each decimal, 0x hex or 0 octal, the last filling the
 * remaining bytes), written to addr; false for a host name.
 */
static bool
parse_ipv4_literal(const char *host, uint8 *addr)
{
	unsigned long parts[4];
	int			n = 0;
	const char *c = host;
	uint32		v;

	for (;;)
	{
		char	   *end;

		if (*c < '0' || *c > '9')
			return false;
		errno = 0;
		parts[n] = strtoul(c, &end, 0);
		if (errno != 0 || parts[n] > UINT_MAX)
			return false;
		c = end;
		if (*c == '.')
		{
			if (n == 3)
				return false;
			n++;
			c++;
			continue;
		}
		if (*c != '\0')
			return false;
		break;
	}
	switch (n)
	{
		case 0:
			v = (uint32) parts[0];
			break;
		case 1:
			if (parts[0] > 0xff || parts[1] > 0xffffff)
				return false;
			v = (uint32) (parts[0] << 24 | parts[1]);
			break;
		case 2:
			if (parts[0] > 0xff || parts[1] > 0xff || parts[2] > 0xffff)
				return false;
			v = (uint32) (parts[0] << 24 | parts[1] << 16 | parts[2]);
			break;
		default:
			if (parts[0] > 0xff || parts[1] > 0xff || parts[2] > 0xff || parts[3] > 0xff)
				return false;
			v = (uint32) (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]);
			break;
	}
	addr[0] = v >> 24;
	addr[1] = (v >> 16) & 0xff;
	addr[2] = (v >> 8) & 0xff;
	addr[3] = v & 0xff;
	return true;
}

/*
 * retailflow.webhook_host_address(host text) RETURNS inet: the address a
 * URL host denotes when it is an address literal in any spelling curl
 * accepts ("127.1", "2130706433", "0x7f000001", "0177.0.0.1",
 * "[::ffff:127.0.0.1]"), NULL for a host name.
 */
Datum
rf_webhook_host_address(PG_FUNCTION_ARGS)
{
	char	   *host = text_to_cstring(PG_GETARG_TEXT_PP(0));
	size_t		len = strlen(host);
	uint8		addr[16];
	char		out[INET6_ADDRSTRLEN];

	if (len > 2 && host[0] == '[' && host[len - 1] == ']')
	{
		host[len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, addr) != 1)
			PG_RETURN_NULL();
		inet_ntop(AF_INET6, addr, out, sizeof(out));
	}
	else
	{
		/* curl reads "127.0.0.1." as a name; inet_aton-style resolvers may not: treat it as the address */
		if (len > 1 && host[len - 1] == '.')
			host[len - 1] = '\0';
		if (!parse_ipv4_literal(host, addr))
			PG_RETURN_NULL();
		inet_ntop(AF_INET, addr, out, sizeof(out));
	}
	PG_RETURN_DATUM(DirectFunctionCall1(inet_in, CStringGetDatum(out)));
}

/*
 * retailflow.webhook_address_denied(address inet) RETURNS cidr: the network
 * of retailflow.webhook_denied_networks that contains the address, or NULL
 * when deliveries may go there.
 */
Datum
rf_webhook_address_denied(PG_FUNCTION_ARGS)
{
	inet	   *ip = PG_GETARG_INET_PP(0);
	const RfNet *net;
	char		txt[INET6_ADDRSTRLEN + 8];
	int			len;

	if (ip_family(ip) == PGSQL_AF_INET)
		net = denied_net(4, ip_addr(ip));
	else
		net = denied_net(6, ip_addr(ip));
	if (net == NULL)
		PG_RETURN_NULL();
	inet_ntop(net->family == 4 ? AF_INET : AF_INET6, net->addr, txt, INET6_ADDRSTRLEN);
	len = strlen(txt);
	snprintf(txt + len, sizeof(txt) - len, "/%d", net->bits);
	PG_RETURN_DATUM(DirectFunctionCall1(cidr_in, CStringGetDatum(txt)));
}

/* Is the host of url in retailflow.webhook_allowed_hosts (an empty list allows all)? */
bool
RfEgressHostAllowed(const char *url)
{
	const char *p = strstr(url, "://");
	char		host[256];
	int			n = 0;
	char	   *list;
	char	   *tok;
	char	   *save;
	bool		ok = false;

	if (rf_allowed_hosts == NULL || rf_allowed_hosts[0] == '\0')
		return true;
	if (p == NULL)
		return false;
	p += 3;
	if (*p == '[')
	{
		while (*p && *p != ']' && n < (int) sizeof(host) - 2)
			host[n++] = pg_tolower((unsigned char) *p++);
		if (*p == ']')
			host[n++] = *p;
	}
	else
		while (*p && *p != ':' && *p != '/' && *p != '?' && n < (int) sizeof(host) - 1)
			host[n++] = pg_tolower((unsigned char) *p++);
	host[n] = '\0';
	list = pstrdup(rf_allowed_hosts);
	for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		int			tl = strlen(tok);

		if (pg_strcasecmp(tok, host) == 0 ||
			(tok[0] == '.' && n > tl && pg_strcasecmp(host + n - tl, tok) == 0))
		{
			ok = true;
			break;
		}
	}
	pfree(list);
	return ok;
}

/* The test-only CURLOPT_RESOLVE entries (space-separated HOST:PORT:ADDRESS), "" when none. */
const char *
RfEgressTestResolve(void)
{
	return rf_test_resolve ? rf_test_resolve : "";
}

/* Registers the egress GUCs. */
void
EgressInit(void)
{
	DefineCustomStringVariable("retailflow.webhook_denied_networks",
							   "Networks webhooks may never connect to, checked on the resolved address (CIDR list; keywords default, loopback, private).",
							   "The default denies link-local (cloud metadata), 0.0.0.0/8, the unspecified address, multicast and broadcast; "
							   "add loopback and private to deny local services too.",
							   &rf_denied_networks, RF_DENIED_DEFAULT, PGC_SUSET, 0,
							   check_denied_networks, assign_denied_networks, NULL);
	DefineCustomStringVariable("retailflow.webhook_allowed_hosts",
							   "Comma-separated hosts webhooks may be sent to (\".example.com\" allows subdomains); empty allows every host.",
							   "Applies on top of retailflow.webhook_denied_networks.",
							   &rf_allowed_hosts, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("retailflow.webhook_test_resolve",
							   "Tests only: space-separated HOST:PORT:ADDRESS entries the workers give libcurl as CURLOPT_RESOLVE.",
							   "Maps a test host name to an address without DNS; the denied networks still apply to the address.",
							   &rf_test_resolve, "", PGC_SIGHUP, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
}
