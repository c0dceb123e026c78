/*
 * Structured logging: one JSON object per line on stderr, with time, level,
 * event (a fixed, machine-readable name such as "nats.reconnected") and a
 * human-readable msg, plus message context where it applies. Safe to call
 * from any thread: each line is written with a single write(2).
 * Never pass payloads or secrets.
 */
#ifndef SIDECAR_LOG_H
#define SIDECAR_LOG_H

#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Context of one message; NULL or 0 members are left out of the line. */
struct log_ctx {
	const char *subscription;
	const char *subject;
	uint64_t stream_seq;
	const char *msg_id;
	const char *trace_id;
};

void log_set_level(enum log_level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn" or "error"; returns 0, or -1 if unknown. */
int log_level_parse(const char *, enum log_level *);
const char *log_level_name(enum log_level);
/* Sends lines to |fd| instead of stderr (tests). */
void log_set_fd(int fd);

void log_emit(enum log_level, const struct log_ctx *, const char *event,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_debug(event, ...)                                                  \
	log_emit(LOG_LEVEL_DEBUG, NULL, event, __VA_ARGS__)
#define log_info(event, ...) log_emit(LOG_LEVEL_INFO, NULL, event, __VA_ARGS__)
#define log_warnx(event, ...) log_emit(LOG_LEVEL_WARN, NULL, event, __VA_ARGS__)
#define log_errorx(event, ...)                                                 \
	log_emit(LOG_LEVEL_ERROR, NULL, event, __VA_ARGS__)

/* As log_warnx, with ": strerror(errno)" appended to msg. */
void log_warn(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Logs at error level and exits with status 1. */
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* As fatalx, with ": strerror(errno)" appended. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
