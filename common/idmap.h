/*
 * idmap.h - a map from a 64-bit id to a pointer: the one way relayd finds
 * an object by the id a message names (a session by its sid, a job by its
 * job id). Open addressing with linear probing; it grows as it fills.
 *
 * A zeroed struct idmap is an empty map. Values are never NULL. While
 * walking it (idmap_next), entries may be removed, none added.
 */
#ifndef RELAYD_IDMAP_H
#define RELAYD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
	uint64_t key;
	void *val; /* NULL: never used; idmap_tomb: removed */
};

struct idmap {
	struct idmap_slot *slots;
	size_t cap;   /* a power of two, or 0 */
	size_t count; /* entries */
	size_t used;  /* entries and removed slots */
};

void idmap_free(struct idmap *m);
void *idmap_get(const struct idmap *m, uint64_t key);
/* Adds key; -1 (and nothing changes) when it is there already. */
int idmap_put(struct idmap *m, uint64_t key, void *val);
/* Removes key; its value, or NULL when it was not there. */
void *idmap_del(struct idmap *m, uint64_t key);
/* Walks the entries: *iter starts at 0; returns the next value, or NULL at the end. */
void *idmap_next(const struct idmap *m, size_t *iter);

#endif
