/*
 * odoo_float.c
 *	  Owns Odoo's float arithmetic as used by stock code (float_round,
 *	  float_compare, float_is_zero from odoo/tools/float_utils.py) and a fast
 *	  decoder from PostgreSQL's on-disk numeric format to double, so scans
 *	  over millions of quants do not go through numeric's text conversion.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "retailflow.h"

/* numeric's on-disk header bits (stable: they are the disk format) */
#define RF_NUMERIC_SIGN_MASK	0xC000
#define RF_NUMERIC_NEG			0x4000
#define RF_NUMERIC_SHORT		0x8000
#define RF_NUMERIC_SPECIAL		0xC000
#define RF_NUMERIC_SHORT_SIGN_MASK			0x2000
#define RF_NUMERIC_SHORT_WEIGHT_SIGN_MASK	0x0040
#define RF_NUMERIC_SHORT_WEIGHT_MASK		0x003F

static const double pow10000[] = {1.0, 1e4, 1e8, 1e12, 1e16, 1e20};

/* Converts a numeric Datum (possibly short-header or toasted) to double. */
double
RfNumericToDouble(Datum d)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);
	const char *p;
	int			len;
	uint16		header;
	int			weight;
	bool		neg;
	int			ndigits;
	double		acc = 0.0;
	int			exp;

	if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
		v = pg_detoast_datum_packed(v);
	p = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);
	memcpy(&header, p, sizeof(uint16));
	if ((header & RF_NUMERIC_SIGN_MASK) == RF_NUMERIC_SPECIAL)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, PointerGetDatum(v)));
	if ((header & RF_NUMERIC_SIGN_MASK) == RF_NUMERIC_SHORT)
	{
		neg = (header & RF_NUMERIC_SHORT_SIGN_MASK) != 0;
		weight = (header & RF_NUMERIC_SHORT_WEIGHT_MASK);
		if (header & RF_NUMERIC_SHORT_WEIGHT_SIGN_MASK)
			weight |= ~RF_NUMERIC_SHORT_WEIGHT_MASK;
		p += sizeof(uint16);
		len -= sizeof(uint16);
	}
	else
	{
		int16		w;

		neg = (header & RF_NUMERIC_SIGN_MASK) == RF_NUMERIC_NEG;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		p += sizeof(uint16) + sizeof(int16);
		len -= sizeof(uint16) + sizeof(int16);
	}
	ndigits = len / (int) sizeof(int16);
	if (ndigits == 0)
		return 0.0;
	if (ndigits > 4)
		/* more than 16 significant digits: let numeric do it exactly */
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, PointerGetDatum(v)));
	for (int i = 0; i < ndigits; i++)
	{
		int16		digit;

		memcpy(&digit, p + i * sizeof(int16), sizeof(int16));
		acc = acc * 10000.0 + digit;
	}
	exp = weight - (ndigits - 1);
	if (exp < 0)
		acc = (-exp <= 5) ? acc / pow10000[-exp] : acc / pow(10000.0, -exp);
	else if (exp > 0)
		acc = (exp <= 5) ? acc * pow10000[exp] : acc * pow(10000.0, exp);
	return neg ? -acc : acc;
}

/* Odoo's float_round(value, precision_rounding=rounding), HALF-UP method. */
double
RfFloatRound(double value, double rounding)
{
	double		normalized;
	double		epsilon;

	if (rounding <= 0.0 || value == 0.0)
		return rounding <= 0.0 ? value : 0.0;
	normalized = value / rounding;
	/* Odoo's 2 ** (log2(|x|) - 52), i.e. |x| * 2^-52, without pow/log2; a power-of-two product is exact, as ldexp */
	epsilon = fabs(normalized) * 0x1p-52;
	normalized += copysign(epsilon, normalized);
	/* Python's round() ties to even, as nearbyint() does by default */
	return nearbyint(normalized) * rounding;
}

/* Odoo's float_is_zero(value, precision_rounding=rounding). */
bool
RfFloatIsZero(double value, double rounding)
{
	if (value == 0.0)
		return true;
	if (rounding <= 0.0)
		return false;
	return fabs(RfFloatRound(value, rounding)) < rounding;
}

/* Odoo's float_compare(a, b, precision_rounding=rounding): -1, 0 or 1. */
int
RfFloatCompare(double a, double b, double rounding)
{
	double		delta;

	if (a == b)
		return 0;				/* equal values round equally: delta 0 */
	a = RfFloatRound(a, rounding);
	b = RfFloatRound(b, rounding);
	delta = a - b;
	if (RfFloatIsZero(delta, rounding))
		return 0;
	return delta < 0.0 ? -1 : 1;
}
