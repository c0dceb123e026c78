/*
 * The serial filter (filters/serial.c): per-key serial delivery. A
 * subscription's `serial_key` puts it first in the chain; it can also be
 * listed among the filters as `- serial: {key: header:NAME}`.
 */
#ifndef FILTERS_SERIAL_H
#define FILTERS_SERIAL_H

struct serial_options {
	char *key; /* "header:NAME" */
};

extern const struct filter_ops serial_filter;

#endif
