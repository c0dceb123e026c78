#include <stdlib.h>

#include "base64.h"
#include "xmalloc.h"

/* The value of base64 digit |c|, standard or URL-safe; -1 if none. */
static int
digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int
base64_decode(const char *s, size_t n, uint8_t **out, size_t *len)
{
	uint8_t *buf;
	uint32_t acc = 0;
	size_t bits = 0, o = 0;
	int c;

	if (n % 4 == 0 && n > 0 && s[n - 1] == '=')
		n -= n > 1 && s[n - 2] == '=' ? 2 : 1;
	if (n % 4 == 1)
		return -1;
	buf = xmalloc(n * 3 / 4 + 1);
	for (size_t i = 0; i < n; i++) {
		if ((c = digit(s[i])) == -1) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (uint32_t)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	*out = buf;
	*len = o;
	return 0;
}
