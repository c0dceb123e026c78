/* A blocking HTTP GET against a loopback port, for tests of the daemon's
 * /metrics and probes. */
#ifndef TESTS_HARNESS_HTTPGET_H
#define TESTS_HARNESS_HTTPGET_H

/*
 * GETs |path| from 127.0.0.1:|port| (waiting at most 5 s). Returns the
 * status code and stores the body in |*body| (the caller frees it), or
 * returns -1 with |*body| NULL.
 */
int httpget(int port, const char *path, char **body);

#endif
