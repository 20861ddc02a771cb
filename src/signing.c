/*
 * signing.c
 *	  Owns Standard Webhooks signing: decoding "whsec_<base64>" secrets and
 *	  building the webhook-signature header value
 *	  "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", one space-separated
 *	  signature per secret (current secret first, then the ones being
 *	  rotated out).  Uses PostgreSQL's own HMAC and base64 (no libcrypto).
 *	  No ereport: it runs in the delivery worker's send path.
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"

#include "webhooks.h"

/* Decodes a whsec_ secret into key (at least 64 bytes); false when malformed. */
bool
RfSignSecretDecode(const char *secret, uint8 *key, int *keylen)
{
	const char *b64;
	int			len;
	int			n;

	if (secret == NULL || strncmp(secret, "whsec_", 6) != 0)
		return false;
	b64 = secret + 6;
	len = strlen(b64);
	if (len == 0 || pg_b64_dec_len(len) > 96)
		return false;
	n = pg_b64_decode(b64, len, (char *) key, 96);
	if (n <= 0)
		return false;
	*keylen = n;
	return true;
}

/* One v1 signature of id.timestamp.body appended to out; false on failure. */
static bool
sign_one(const char *secret, const char *prefix, size_t prefixlen, const char *body, size_t bodylen,
		 char *out, size_t outlen)
{
	uint8		key[96];
	int			keylen;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		b64[64];
	int			n;
	pg_hmac_ctx *ctx;
	size_t		used = strlen(out);

	if (!RfSignSecretDecode(secret, key, &keylen))
		return false;
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		return false;
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) prefix, prefixlen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, bodylen) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		pg_hmac_free(ctx);
		return false;
	}
	pg_hmac_free(ctx);
	n = pg_b64_encode((const char *) mac, sizeof(mac), b64, sizeof(b64) - 1);
	if (n <= 0)
		return false;
	b64[n] = '\0';
	if (used + n + 5 >= outlen)
		return false;
	snprintf(out + used, outlen - used, "%sv1,%s", used > 0 ? " " : "", b64);
	return true;
}

/*
 * The webhook-signature header value for msg_id/timestamp/body signed with
 * every secret, written to out; false when a secret is malformed.
 */
bool
RfSignHeader(const char *const *secrets, int nsecrets, const char *msg_id, int64 timestamp,
			 const char *body, size_t bodylen, char *out, size_t outlen)
{
	char		prefix[128];
	int			plen;
	int			i;

	plen = snprintf(prefix, sizeof(prefix), "%s." INT64_FORMAT ".", msg_id, timestamp);
	if (plen <= 0 || plen >= (int) sizeof(prefix) || outlen == 0)
		return false;
	out[0] = '\0';
	for (i = 0; i < nsecrets; i++)
		if (!sign_one(secrets[i], prefix, plen, body, bodylen, out, outlen))
			return false;
	return nsecrets > 0;
}
