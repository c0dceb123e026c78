/*
 * The exposition-format reader: one pass over the lines, leaving through
 * longjmp at the first line that breaks a rule.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/promcheck.h"
#include "sidecar/xmalloc.h"

#define NAME_MAX_LEN 256
#define LABELS_MAX 32

struct expo {
	jmp_buf fail;
	char err[256];
	int line;
	char family[NAME_MAX_LEN];
	char type[16]; /* "" until the family's TYPE line */
	char **families;
	size_t nfamilies;
	char **series; /* "name{labels}" seen, for duplicates */
	size_t nseries;
	size_t samples;
	/* The histogram series being read: its labels without le. */
	char *hkey;
	int hstate; /* 0: none, 1: buckets, 2: after _sum, 3: after _count */
	double hle, hcum;
	/* Buffers of the line being read, freed by promcheck(). */
	char *text, *key, *le, *full;
};

static void __attribute__((format(printf, 2, 3), noreturn))
expo_fail(struct expo *e, const char *fmt, ...)
{
	int n = snprintf(e->err, sizeof e->err, "line %d: ", e->line);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err + n, sizeof e->err - (size_t)n, fmt, ap);
	va_end(ap);
	longjmp(e->fail, 1);
}

static bool
expo_name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* Reads [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' for labels) into |out|. */
static const char *
expo_name(struct expo *e, const char *p, bool colon, char *out, size_t cap)
{
	size_t n = 0;

	if (!expo_name_char(*p, true, colon))
		expo_fail(e, "bad name at \"%.40s\"", p);
	while (expo_name_char(*p, false, colon)) {
		if (n + 1 >= cap)
			expo_fail(e, "name too long");
		out[n++] = *p++;
	}
	out[n] = '\0';
	return p;
}

/* Checks a value: a float in Go's syntax, or with |count| an integer. */
static double
expo_value(struct expo *e, const char *s, bool count)
{
	char *end;
	double v;

	if (count && (*s == '\0' || strspn(s, "0123456789") != strlen(s)))
		expo_fail(e, "count \"%s\" is not an integer", s);
	if (strcmp(s, "+Inf") == 0)
		return INFINITY;
	if (strcmp(s, "-Inf") == 0)
		return -INFINITY;
	if (strcmp(s, "NaN") == 0)
		return NAN;
	/* strtod also reads hex, "inf" and "nan", which are not spelled so
	 * here. */
	if (*s == '\0' || strpbrk(s, "xXpPiInN \t") != NULL)
		expo_fail(e, "bad value \"%s\"", s);
	v = strtod(s, &end);
	if (*end != '\0')
		expo_fail(e, "bad value \"%s\"", s);
	if (fabs(v) < 1e15 && v == (double)(long long)v &&
	    strpbrk(s, ".eE") != NULL)
		expo_fail(
		    e, "integral value \"%s\" not printed as an integer", s);
	return v;
}

/* Ends the histogram series being read, which must be complete. */
static void
expo_end_series(struct expo *e)
{
	if (e->hstate != 0 && e->hstate != 3)
		expo_fail(e, "histogram series {%s} ends incomplete", e->hkey);
	e->hstate = 0;
}

/* Starts family |name| at its HELP or TYPE line. */
static void
expo_family(struct expo *e, const char *name)
{
	expo_end_series(e);
	for (size_t i = 0; i < e->nfamilies; i++) {
		if (strcmp(e->families[i], name) == 0)
			expo_fail(e, "family %s appears twice", name);
	}
	e->families =
	    xreallocarray(e->families, e->nfamilies + 1, sizeof *e->families);
	e->families[e->nfamilies++] = xstrdup(name);
	snprintf(e->family, sizeof e->family, "%s", name);
	e->type[0] = '\0';
}

static void
expo_help(struct expo *e, const char *p)
{
	char name[NAME_MAX_LEN];

	p = expo_name(e, p, true, name, sizeof name);
	if (*p++ != ' ')
		expo_fail(e, "no space after the HELP name");
	expo_family(e, name);
	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
			expo_fail(e, "bad escape in HELP");
		if (*p == '\\')
			p++;
	}
}

static void
expo_type(struct expo *e, const char *p)
{
	char name[NAME_MAX_LEN];
	size_t len;

	p = expo_name(e, p, true, name, sizeof name);
	len = strlen(name);
	if (*p++ != ' ')
		expo_fail(e, "no space after the TYPE name");
	/* After a HELP line, TYPE names the same family. */
	if (strcmp(name, e->family) != 0 || e->type[0] != '\0')
		expo_family(e, name);
	if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 &&
	    strcmp(p, "histogram") != 0)
		expo_fail(e, "unexpected type \"%s\"", p);
	if (strcmp(p, "counter") == 0 &&
	    (len < 6 || strcmp(name + len - 6, "_total") != 0))
		expo_fail(e, "counter %s without _total", name);
	snprintf(e->type, sizeof e->type, "%s", p);
}

/*
 * Reads {name="value",...} into e->key (all but le, as written) and e->le
 * (the value of le, unescaped). Both have room for the whole line, which
 * holds them.
 */
static const char *
expo_labels(struct expo *e, const char *p)
{
	char names[LABELS_MAX][NAME_MAX_LEN];
	size_t nnames = 0, klen = 0, n;

	e->key[0] = e->le[0] = '\0';
	if (*p != '{')
		return p;
	for (p++; *p != '}';) {
		char lname[NAME_MAX_LEN];
		const char *val;

		p = expo_name(e, p, false, lname, sizeof lname);
		for (size_t i = 0; i < nnames; i++) {
			if (strcmp(names[i], lname) == 0)
				expo_fail(e, "label %s twice", lname);
		}
		if (nnames == LABELS_MAX)
			expo_fail(e, "too many labels");
		snprintf(names[nnames++], sizeof names[0], "%s", lname);
		if (p[0] != '=' || p[1] != '"')
			expo_fail(e, "label %s without =\"", lname);
		for (val = p += 2; *p != '"'; p++) {
			if (*p == '\0')
				expo_fail(e, "unterminated label value");
			if (*p == '\\' && p[1] != '\\' && p[1] != '"' &&
			    p[1] != 'n')
				expo_fail(e, "bad escape in label value");
			if (*p == '\\')
				p++;
		}
		n = (size_t)(p - val);
		p++;
		if (strcmp(lname, "le") == 0) {
			memcpy(e->le, val, n);
			e->le[n] = '\0';
		} else
			klen += (size_t)sprintf(e->key + klen, "%s%s=\"%.*s\"",
			    klen > 0 ? "," : "", lname, (int)n, val);
		if (*p == ',' && p[1] != '}')
			p++;
		else if (*p != '}')
			expo_fail(e, "expected , or } after label %s", lname);
	}
	return p + 1;
}

/* Follows a histogram series: buckets in increasing le with cumulative
 * counts up to +Inf, then _sum, then _count equal to the +Inf bucket. */
static void
expo_histogram(struct expo *e, const char *suffix, const char *value)
{
	if (strcmp(suffix, "_bucket") == 0) {
		double bound, cum = expo_value(e, value, true);

		if (e->hstate == 0 || strcmp(e->key, e->hkey) != 0) {
			expo_end_series(e);
			free(e->hkey);
			e->hkey = xstrdup(e->key);
			e->hstate = 1;
			e->hle = -INFINITY;
			e->hcum = 0;
		} else if (e->hstate != 1 || isinf(e->hle))
			expo_fail(e, "bucket after +Inf");
		if (e->le[0] == '\0')
			expo_fail(e, "bucket without le");
		bound = expo_value(e, e->le, false);
		if (!(bound > e->hle))
			expo_fail(e, "le=\"%s\" does not increase", e->le);
		if (cum < e->hcum)
			expo_fail(e, "bucket counts are not cumulative");
		e->hle = bound;
		e->hcum = cum;
		return;
	}
	if (e->le[0] != '\0')
		expo_fail(e, "le on %s", suffix);
	if (e->hstate == 0 || strcmp(e->key, e->hkey) != 0)
		expo_fail(e, "%s without buckets", suffix);
	if (strcmp(suffix, "_sum") == 0) {
		if (e->hstate != 1 || !isinf(e->hle))
			expo_fail(e, "_sum before the +Inf bucket");
		expo_value(e, value, false);
		e->hstate = 2;
		return;
	}
	if (e->hstate != 2)
		expo_fail(e, "_count before _sum");
	if (expo_value(e, value, true) != e->hcum)
		expo_fail(e, "_count differs from the +Inf bucket");
	e->hstate = 3;
}

static void
expo_sample(struct expo *e, const char *p)
{
	char name[NAME_MAX_LEN];
	size_t flen = strlen(e->family);
	const char *suffix;

	if (e->type[0] == '\0')
		expo_fail(e, "sample before its family's TYPE");
	p = expo_name(e, p, true, name, sizeof name);
	p = expo_labels(e, p);
	if (*p++ != ' ')
		expo_fail(e, "expected a space before the value");
	e->samples++;

	if (strncmp(name, e->family, flen) != 0)
		expo_fail(e, "sample %s outside family %s", name, e->family);
	suffix = name + flen;
	sprintf(e->full, "%s{%s%sle=%s}", name, e->key,
	    e->key[0] != '\0' ? "," : "", e->le);
	for (size_t i = 0; i < e->nseries; i++) {
		if (strcmp(e->series[i], e->full) == 0)
			expo_fail(e, "series %s twice", e->full);
	}
	e->series = xreallocarray(e->series, e->nseries + 1, sizeof *e->series);
	e->series[e->nseries++] = xstrdup(e->full);

	if (strcmp(e->type, "histogram") == 0) {
		if (strcmp(suffix, "_bucket") != 0 &&
		    strcmp(suffix, "_sum") != 0 &&
		    strcmp(suffix, "_count") != 0)
			expo_fail(e, "histogram sample %s", name);
		expo_histogram(e, suffix, p);
		return;
	}
	if (*suffix != '\0' || e->le[0] != '\0')
		expo_fail(e, "sample %s in %s %s", name, e->type, e->family);
	if (!(expo_value(e, p, false) >= 0) && strcmp(e->type, "counter") == 0)
		expo_fail(e, "counter value %s", p);
}

/* Reads every line of e->text. */
static void
expo_read(struct expo *e)
{
	char *line = e->text, *nl;

	while (*line != '\0') {
		e->line++;
		if ((nl = strchr(line, '\n')) == NULL)
			expo_fail(e, "last line without a newline");
		*nl = '\0';
		if (strncmp(line, "# HELP ", 7) == 0)
			expo_help(e, line + 7);
		else if (strncmp(line, "# TYPE ", 7) == 0)
			expo_type(e, line + 7);
		else if (line[0] == '#' || line[0] == '\0')
			expo_fail(e, "unexpected line \"%.60s\"", line);
		else
			expo_sample(e, line);
		line = nl + 1;
	}
	expo_end_series(e);
}

int
promcheck(const char *text, size_t *families, size_t *samples, char *err,
    size_t errlen)
{
	struct expo *e = xcalloc(1, sizeof *e);
	size_t len = strlen(text);
	int rc;

	e->text = xstrdup(text);
	/* Whatever a line holds fits in buffers the size of the text. */
	e->key = xmalloc(len + 1);
	e->le = xmalloc(len + 1);
	e->full = xmalloc(2 * len + 16);
	if (setjmp(e->fail) == 0) {
		expo_read(e);
		if (families != NULL)
			*families = e->nfamilies;
		if (samples != NULL)
			*samples = e->samples;
	}
	snprintf(err, errlen, "%s", e->err);
	rc = e->err[0] == '\0' ? 0 : -1;
	for (size_t i = 0; i < e->nfamilies; i++)
		free(e->families[i]);
	for (size_t i = 0; i < e->nseries; i++)
		free(e->series[i]);
	free(e->families);
	free(e->series);
	free(e->hkey);
	free(e->text);
	free(e->key);
	free(e->le);
	free(e->full);
	free(e);
	return rc;
}

int
promcheck_value(const char *text, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *line;

	for (line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
		if (strchr(line, '\n') == NULL)
			return -1;
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			*v = strtod(line + n + 1, NULL);
			return 0;
		}
	}
	return -1;
}
