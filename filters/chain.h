/*
 * The chain runner: one subscription's filter instances, in configuration
 * order, and the carrying of deliveries through them.
 *
 * Inbound, a delivery runs through every filter's on_delivery until one
 * answers anything but FILTER_DELIVER; after the app's result it runs
 * through every filter's on_result, each seeing and possibly changing the
 * outcome. A filter may answer FILTER_HOLD in either phase: the delivery
 * is parked (d->chain_pos names the holder, d->verdict is the hold) until
 * the filter calls its host's release(), which resumes the chain from the
 * next filter and, when the phase ends, reports the final verdict through
 * struct chain_events. A phase that ends without a hold is reported only
 * by the return value, never through the events.
 *
 * Releases run synchronously, inside whichever hook the filter calls them
 * from, so every hook and event handler may be re-entered: an event
 * handler may call chain_deliver(), chain_result() or chain_done() for any
 * delivery, but not chain_free(). Hooks resumed by a release get the `now`
 * of the latest call into the runner. Releasing a delivery that the
 * releasing filter does not hold, or with FILTER_HOLD, is a programming
 * error and ends the process through fatalx().
 */
#ifndef FILTERS_CHAIN_H
#define FILTERS_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "filters/filter.h"

struct config_filters;
struct config_subscription;
struct delivery;
struct metrics;
struct publication;

/* How held deliveries come back; |arg| is passed to both. */
struct chain_events {
	/* The inbound phase of a released delivery ended with |v|: DELIVER
	 * (to the app), ACK, RETRY or DEAD_LETTER. */
	void (*inbound_done)(
	    void *arg, struct delivery *, struct filter_verdict v);
	/* The outcome phase of a released delivery ended with |v|. */
	void (*outcome_done)(
	    void *arg, struct delivery *, struct filter_verdict v);
	void *arg;
};

/*
 * Builds the chain described by |filters| (ops->init and ops->free are
 * required; every hook is optional) for |subscription|, handing each
 * filter |services| and |subscription| through its host. |events| and
 * |services| are copied; |subscription| and what |services| points to
 * must outlive the chain. Returns NULL if a filter's init fails (it logged
 * why), after freeing the filters already built.
 */
struct chain *chain_new(const struct config_filters *filters,
    const struct config_subscription *subscription,
    const struct filter_services *services, const struct chain_events *events);
/* Frees every filter, last first. Deliveries still held are not touched:
 * call chain_done() for each first. */
void chain_free(struct chain *);

/*
 * Runs on_delivery from d->chain_pos (0 for a new delivery) on, with
 * d->state set to DELIVERY_CHAIN. Returns FILTER_DELIVER when every filter
 * passed it (d->chain_pos is then the chain length), FILTER_HOLD when one
 * parked it, else the first other verdict (d->chain_pos names the filter
 * that gave it). d->verdict holds the same verdict.
 */
struct filter_verdict chain_deliver(
    struct chain *, struct delivery *, int64_t now);
/*
 * Runs on_result of every filter in order on the outcome |v| (ACK, RETRY
 * or DEAD_LETTER), with d->state set to DELIVERY_OUTCOME. Returns the final
 * outcome, or FILTER_HOLD if a filter parked it. A filter that turns the
 * outcome into FILTER_DELIVER, or releases it so, is a programming error.
 */
struct filter_verdict chain_result(
    struct chain *, struct delivery *, struct filter_verdict v, int64_t now);
/* Runs on_turn of every filter: once per loop turn. */
void chain_turn(struct chain *, int64_t now);
/* Runs on_done of every filter: |d| leaves the sidecar, held or not. */
void chain_done(struct chain *, struct delivery *);
/* Runs on_publish in order; returns the first verdict other than
 * FILTER_DELIVER, or FILTER_DELIVER. */
struct filter_verdict chain_publish(
    struct chain *, struct publication *, int64_t now);

size_t chain_length(const struct chain *);
/* The name of the filter at |i| < chain_length(). */
const char *chain_filter_name(const struct chain *, size_t i);

#endif
