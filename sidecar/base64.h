/*
 * Base64 decoding (RFC 4648), as JSON bodies carry bytes: the JetStream
 * API's message data and headers, proto3 JSON's bytes fields.
 */
#ifndef SIDECAR_BASE64_H
#define SIDECAR_BASE64_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the |n| characters at |s|, standard or URL-safe, padded or not.
 * Returns 0 and an allocated buffer in |*out| (the caller frees it) of
 * |*len| bytes, or -1 when |s| is not base64 (nothing allocated).
 */
int base64_decode(const char *s, size_t n, uint8_t **out, size_t *len);

#endif
