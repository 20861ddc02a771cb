/*
 * payload.c
 *	  Owns the JSON of webhook events, built with jansson: the "data" object
 *	  capture triggers store in the outbox (model, id, old and new state and
 *	  the record's key fields, long strings truncated) and the Standard
 *	  Webhooks body the workers send: {"type", "timestamp", "data"}.
 *	  Rule on size: strings in captured key fields are cut to
 *	  RF_PAYLOAD_MAX_STRING bytes (marked with a trailing "..."), emit() refuses data over
 *	  16 kB, and a body over RF_PAYLOAD_MAX_BODY bytes is never sent (the
 *	  delivery is dead-lettered with that reason).
 *	  Rule on shape (retailflow.validate_event_data(), called by emit()):
 *	  the data is a JSON object nested at most RF_PAYLOAD_MAX_DEPTH levels,
 *	  whose numbers jansson carries (64-bit integers, finite normal doubles)
 *	  and (in a database not in UTF-8) which jansson parses as the worker
 *	  will: what emit() accepts can always be sent.
 */
#include "postgres.h"

#include <float.h>
#include <jansson.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "lib/stringinfo.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "retailflow.h"
#include "webhooks.h"

/*
 * The postgres executable exports its own json_object() (the SQL function),
 * which would win symbol resolution over jansson's; build empty objects
 * with json_pack() instead, which has no namesake in the server.
 */
#define rf_json_new_object() json_pack("{}")

PG_FUNCTION_INFO_V1(rf_validate_event_data);

/* Adds column `col` of the tuple to obj under the column's name, typed as JSON allows. */
static void
add_column(json_t *obj, HeapTuple tup, TupleDesc desc, const char *col)
{
	int			attno = SPI_fnumber(desc, col);
	bool		isnull;
	Datum		d;
	Oid			typ;

	if (attno <= 0)
		return;
	d = heap_getattr(tup, attno, desc, &isnull);
	if (isnull)
	{
		json_object_set_new(obj, col, json_null());
		return;
	}
	typ = SPI_gettypeid(desc, attno);
	switch (typ)
	{
		case INT2OID:
			json_object_set_new(obj, col, json_integer(DatumGetInt16(d)));
			break;
		case INT4OID:
			json_object_set_new(obj, col, json_integer(DatumGetInt32(d)));
			break;
		case INT8OID:
			json_object_set_new(obj, col, json_integer(DatumGetInt64(d)));
			break;
		case BOOLOID:
			json_object_set_new(obj, col, json_boolean(DatumGetBool(d)));
			break;
		case NUMERICOID:
			json_object_set_new(obj, col, json_real(RfNumericToDouble(d)));
			break;
		case FLOAT8OID:
			json_object_set_new(obj, col, json_real(DatumGetFloat8(d)));
			break;
		default:
			{
				char	   *s = SPI_getvalue(tup, desc, attno);
				json_t	   *parsed = NULL;

				if (typ == JSONBOID || typ == JSONOID)
					parsed = json_loads(s, JSON_DECODE_ANY, NULL);
				if (parsed != NULL && json_dumpb(parsed, NULL, 0, JSON_COMPACT) <= RF_PAYLOAD_MAX_STRING)
					json_object_set_new(obj, col, parsed);
				else
				{
					int			len = strlen(s);

					if (parsed)
						json_decref(parsed);
					if (len > RF_PAYLOAD_MAX_STRING)
					{
						/* cut on a character boundary and mark the cut */
						len = pg_mbcliplen(s, len, RF_PAYLOAD_MAX_STRING - 3);
						s[len] = '\0';
						s = psprintf("%s...", s);
						len += 3;
					}
					json_object_set_new(obj, col, json_stringn(s, len));
				}
			}
			break;
	}
}

/*
 * The outbox "data" of a captured row change: model, id, old/new state and
 * the key fields (NULL-terminated list) read from the new tuple.  palloc'd.
 */
char *
RfPayloadCaptureData(const char *model, int32 id, const char *old_state, const char *new_state,
					 HeapTuple newtup, TupleDesc desc, const char *const *fields, const char *extra_json)
{
	json_t	   *obj = rf_json_new_object();
	char	   *s;
	char	   *out;
	int			i;

	json_object_set_new(obj, "model", json_string(model));
	json_object_set_new(obj, "id", json_integer(id));
	if (old_state || new_state)
	{
		json_object_set_new(obj, "old_state", old_state ? json_string(old_state) : json_null());
		json_object_set_new(obj, "new_state", new_state ? json_string(new_state) : json_null());
	}
	for (i = 0; fields && fields[i]; i++)
		add_column(obj, newtup, desc, fields[i]);
	if (extra_json)
	{
		json_t	   *extra = json_loads(extra_json, 0, NULL);

		if (extra)
		{
			json_object_update(obj, extra);
			json_decref(extra);
		}
	}
	s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(obj);
	if (s == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not build the event payload")));
	out = pstrdup(s);
	free(s);
	return out;
}

/*
 * The Standard Webhooks body {"type","timestamp","data"} of one event, in a
 * malloc'd buffer (NULL with *err set when the data is not a JSON object or
 * the body exceeds RF_PAYLOAD_MAX_BODY).  "model" and "id" are added to data
 * when the emitter did not set them.
 */
char *
RfPayloadBody(const char *event_type, const char *timestamp, const char *model, int32 record_id,
			  bool record_id_null, const char *data_json, size_t *len, const char **err)
{
	json_error_t jerr;
	json_t	   *data = json_loads(data_json, 0, &jerr);
	json_t	   *obj;
	char	   *s;

	*err = NULL;
	if (data == NULL || !json_is_object(data))
	{
		if (data)
			json_decref(data);
		*err = "event data is not a JSON object";
		return NULL;
	}
	if (json_object_get(data, "model") == NULL)
		json_object_set_new(data, "model", json_string(model));
	if (json_object_get(data, "id") == NULL)
		json_object_set_new(data, "id", record_id_null ? json_null() : json_integer(record_id));
	obj = rf_json_new_object();
	json_object_set_new(obj, "type", json_string(event_type));
	json_object_set_new(obj, "timestamp", json_string(timestamp));
	json_object_set_new(obj, "data", data);
	s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(obj);
	if (s == NULL)
	{
		*err = "could not serialise the event";
		return NULL;
	}
	*len = strlen(s);
	if (*len > RF_PAYLOAD_MAX_BODY)
	{
		free(s);
		*err = "webhook body exceeds 20480 bytes";
		return NULL;
	}
	return s;
}

/* Appends "Name: value" strings (palloc'd) for a JSON object of string headers; returns the new count. */
int
RfPayloadHeaders(const char *headers_json, const char **out, int n, int max)
{
	json_t	   *h = json_loads(headers_json, 0, NULL);
	const char *k;
	json_t	   *v;

	if (h && json_is_object(h))
	{
		json_object_foreach(h, k, v)
		{
			if (n < max && json_is_string(v))
				out[n++] = psprintf("%s: %s", k, json_string_value(v));
		}
	}
	if (h)
		json_decref(h);
	return n;
}

/* One level of the path to the value being checked: a key or an array index. */
typedef struct PathStep
{
	bool		array;
	int			index;			/* next element's index, arrays */
	const char *key;			/* current key, objects */
	int			keylen;
} PathStep;

/* The path of the current value for messages, e.g. data.lines[2].qty (capped at 200 bytes). */
static char *
data_path(PathStep *steps, int depth)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "data");
	for (i = 1; i <= depth && buf.len < 200; i++)
	{
		if (steps[i].array)
			appendStringInfo(&buf, "[%d]", steps[i].index - 1);
		else if (steps[i].key)
			appendStringInfo(&buf, ".%.*s", Min(steps[i].keylen, 64), steps[i].key);
	}
	return buf.data;
}

/*
 * Does jansson carry this number as the worker reads it?  The worker parses
 * the jsonb text, where numeric prints 1e20 as 100000000000000000000: a
 * number without a fraction must fit int64, one with a fraction must be a
 * finite, normal double.
 */
static bool
number_carried(Numeric num, char **text)
{
	char	   *s = DatumGetCString(OidFunctionCall1(F_NUMERIC_OUT, NumericGetDatum(num)));

	*text = s;
	errno = 0;
	if (strpbrk(s, ".eE") != NULL)
	{
		double		d = strtod(s, NULL);

		return errno != ERANGE && isfinite(d);
	}
	(void) strtoll(s, NULL, 10);
	return errno != ERANGE;
}

/* Counts an element of the array at this level (for the path). */
static void
path_next(PathStep *steps, int depth)
{
	if (depth > 0 && steps[depth].array)
		steps[depth].index++;
}

/*
 * retailflow.validate_event_data(data jsonb) RETURNS void: refuses (22023)
 * event data a webhook could not carry: not an object, nested deeper than
 * RF_PAYLOAD_MAX_DEPTH, numbers outside jansson's range, or text jansson
 * would not parse.  emit() calls it, so a delivery never fails on its data.
 */
Datum
rf_validate_event_data(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	PathStep	steps[RF_PAYLOAD_MAX_DEPTH + 1];
	int			depth = 0;
	char	   *text;
	json_t	   *parsed;
	json_error_t jerr;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event data must be a json object, not %s",
						JB_ROOT_IS_SCALAR(jb) ? "a scalar" : "an array"),
				 errdetail("The data becomes the \"data\" member of the webhook payload.")));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
				path_next(steps, depth);
				if (depth + 1 > RF_PAYLOAD_MAX_DEPTH)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("event data is nested too deeply at %s", data_path(steps, depth)),
							 errdetail("Event data may nest objects and arrays %d levels deep, the data object itself being the first.",
									   RF_PAYLOAD_MAX_DEPTH),
							 errhint("Send identifiers and key fields; receivers fetch the rest from Odoo.")));
				depth++;
				steps[depth].array = (tok == WJB_BEGIN_ARRAY);
				steps[depth].index = 0;
				steps[depth].key = NULL;
				steps[depth].keylen = 0;
				break;
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				depth--;
				break;
			case WJB_KEY:
				steps[depth].key = v.val.string.val;
				steps[depth].keylen = v.val.string.len;
				break;
			case WJB_ELEM:
			case WJB_VALUE:
				if (tok == WJB_ELEM)
					path_next(steps, depth);
				if (v.type == jbvNumeric && !number_carried(v.val.numeric, &text))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("event data number at %s is out of range for webhooks", data_path(steps, depth)),
							 errdetail("Webhook JSON carries whole numbers from -9223372036854775808 to 9223372036854775807 "
									   "and numbers with a fraction of magnitude 2.2250738585072014e-308 to 1.7976931348623157e308; "
									   "%.40s%s is neither.",
									   text, strlen(text) > 40 ? "..." : ""),
							 errhint("Send such numbers as strings.")));
				break;
			default:
				break;
		}
	}
	/*
	 * In a UTF-8 database the walk above covers everything jansson could
	 * refuse in jsonb's text (valid UTF-8, no NUL, escaped control
	 * characters, paired surrogates).  Elsewhere the text is in the server
	 * encoding: parse it as the worker will, with the same flags.
	 */
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
		parsed = json_loads(text, 0, &jerr);
		if (parsed == NULL || !json_is_object(parsed))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event data cannot be sent as a webhook"),
					 errdetail("The webhook JSON library refuses it: %s.", parsed ? "not an object" : jerr.text),
					 errhint("Webhook bodies are UTF-8; in a database of another encoding, send non-ASCII text escaped.")));
		json_decref(parsed);
	}
	PG_RETURN_VOID();
}
