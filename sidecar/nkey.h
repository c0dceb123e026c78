/*
 * NATS NKeys: nats.c signs with a user seed but wants the public key
 * beside it; this derives it (Ed25519 through OpenSSL), so a mounted seed
 * file is all the configuration needs.
 */
#ifndef SIDECAR_NKEY_H
#define SIDECAR_NKEY_H

/*
 * Reads the first user seed ("SU...") from |path| and returns its public
 * key ("U..."), which the caller frees; NULL after logging why.
 */
char *nkey_public_from_seed_file(const char *path);

#endif
