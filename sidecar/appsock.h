/*
 * The app channel's Unix-socket transport: the framed protocol of
 * docs/protocol.md over a stream socket, one connection per app process.
 * Used only by appchan.c.
 */
#ifndef SIDECAR_APPSOCK_H
#define SIDECAR_APPSOCK_H

struct appchan;
struct config_app;
struct ev_loop;

/*
 * Listens on |cfg|->socket and attaches every connection to |chan|.
 * Returns NULL after logging when the socket cannot be set up (see
 * appchan_new()). |cfg| and |instance_id| must outlive it.
 */
struct appsock *appsock_new(struct appchan *chan, struct ev_loop *,
    const struct config_app *cfg, const char *instance_id);
/* Stops accepting: closes the listening socket and removes its file.
 * Connections already accepted go on. */
void appsock_stop(struct appsock *);
/* Stops accepting and frees the listener; call it after the channel has
 * freed every app. */
void appsock_free(struct appsock *);

#endif
