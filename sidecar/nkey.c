#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "nkey.h"
#include "xmalloc.h"

#define NKEY_PREFIX_SEED (18 << 3)
#define NKEY_PREFIX_USER (20 << 3)
#define NKEY_SEED_CHARS 58 /* base32 of 2 prefix + 32 key + 2 CRC bytes */
#define NKEY_RAW 32

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* CRC-16/XMODEM, as the NKey encoding uses. */
static uint16_t
crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0;

	while (n-- > 0) {
		crc ^= (uint16_t)(*p++ << 8);
		for (int i = 0; i < 8; i++)
			crc = (crc & 0x8000) ? (uint16_t)(crc << 1 ^ 0x1021)
					     : (uint16_t)(crc << 1);
	}
	return crc;
}

/* Decodes unpadded base32; returns the byte count or -1. */
static int
b32_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	unsigned bits = 0, acc = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		const char *p = strchr(b32, s[i]);

		if (s[i] == '\0' || p == NULL)
			return -1;
		acc = acc << 5 | (unsigned)(p - b32);
		if ((bits += 5) >= 8) {
			if (n == cap)
				return -1;
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)n;
}

static void
b32_encode(const uint8_t *p, size_t n, char *out)
{
	unsigned bits = 0, acc = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | p[i];
		for (bits += 8; bits >= 5; bits -= 5)
			*out++ = b32[(acc >> (bits - 5)) & 31];
	}
	if (bits > 0)
		*out++ = b32[(acc << (5 - bits)) & 31];
	*out = '\0';
}

/* Finds the seed in the file's text, which may be a bare seed or a
 * creds-style file with other lines around it. */
static int
read_seed(const char *path, char seed[NKEY_SEED_CHARS + 1])
{
	char line[512];
	int found = -1;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		log_warn("nats.nkey", "cannot open nkey seed file %s", path);
		return -1;
	}
	while (found == -1 && fgets(line, sizeof line, f) != NULL) {
		char *p = line;

		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "SU", 2) == 0 &&
		    strspn(p, b32) == NKEY_SEED_CHARS) {
			memcpy(seed, p, NKEY_SEED_CHARS);
			seed[NKEY_SEED_CHARS] = '\0';
			found = 0;
		}
	}
	OPENSSL_cleanse(line, sizeof line);
	fclose(f);
	if (found == -1)
		log_errorx(
		    "nats.nkey", "%s holds no user nkey seed (SU...)", path);
	return found;
}

char *
nkey_public_from_seed_file(const char *path)
{
	char seed[NKEY_SEED_CHARS + 1], *out = NULL;
	uint8_t raw[40], pub[3 + NKEY_RAW];
	size_t publen = NKEY_RAW;
	EVP_PKEY *key = NULL;
	uint16_t crc;
	int n;

	if (read_seed(path, seed) == -1)
		return NULL;
	n = b32_decode(seed, NKEY_SEED_CHARS, raw, sizeof raw);
	if (n != 2 + NKEY_RAW + 2 || (raw[0] & 0xf8) != NKEY_PREFIX_SEED ||
	    ((raw[0] & 7) << 5 | raw[1] >> 3) != NKEY_PREFIX_USER ||
	    crc16(raw, 34) != (uint16_t)(raw[34] | raw[35] << 8)) {
		log_errorx(
		    "nats.nkey", "%s: the seed is not a valid user seed", path);
		goto out;
	}
	key = EVP_PKEY_new_raw_private_key(
	    EVP_PKEY_ED25519, NULL, raw + 2, NKEY_RAW);
	if (key == NULL ||
	    EVP_PKEY_get_raw_public_key(key, pub + 1, &publen) != 1) {
		log_errorx(
		    "nats.nkey", "%s: cannot derive the public key", path);
		goto out;
	}
	pub[0] = NKEY_PREFIX_USER;
	crc = crc16(pub, 1 + NKEY_RAW);
	pub[1 + NKEY_RAW] = (uint8_t)crc;
	pub[2 + NKEY_RAW] = (uint8_t)(crc >> 8);
	out = xmalloc(64);
	b32_encode(pub, sizeof pub, out);
out:
	EVP_PKEY_free(key);
	OPENSSL_cleanse(raw, sizeof raw);
	OPENSSL_cleanse(seed, sizeof seed);
	return out;
}
