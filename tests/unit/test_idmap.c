/*
 * test_idmap.c - the id -> pointer map: a table of operations with what
 * each must give, then many keys (growth), removal and reinsertion checked
 * against a plain array, a walk that removes as it goes, and keys that
 * collide in the table.
 */
#include "common/idmap.h"

#include <check.h>
#include <stdlib.h>

enum op { PUT, GET, DEL };

static const struct idmap_step {
	enum op op;
	uint64_t key;
	int val;     /* PUT: the value's index; GET/DEL: expected (-1: none) */
	int rc;      /* PUT: expected return */
	size_t count; /* entries after the step */
} idmap_steps[] = {
	{GET, 1, -1, 0, 0},        /* empty map */
	{DEL, 1, -1, 0, 0},
	{PUT, 1, 1, 0, 1},
	{PUT, 1, 2, -1, 1},        /* a key is there once */
	{GET, 1, 1, 0, 1},
	{PUT, 0, 0, 0, 2},         /* 0 is a key like any other */
	{PUT, UINT64_MAX, 3, 0, 3},
	{GET, 0, 0, 0, 3},
	{GET, UINT64_MAX, 3, 0, 3},
	{GET, 2, -1, 0, 3},
	{DEL, 1, 1, 0, 2},
	{GET, 1, -1, 0, 2},
	{DEL, 1, -1, 0, 2},        /* twice: nothing left to remove */
	{PUT, 1, 4, 0, 3},         /* reinserted with another value */
	{GET, 1, 4, 0, 3},
	{GET, 0, 0, 0, 3},
};

START_TEST(test_idmap_steps)
{
	struct idmap m = {0};
	int vals[5];
	for (size_t i = 0; i < sizeof(idmap_steps) / sizeof(idmap_steps[0]); i++) {
		const struct idmap_step *st = &idmap_steps[i];
		void *want = st->val < 0 ? NULL : &vals[st->val];
		switch (st->op) {
		case PUT:
			ck_assert_msg(idmap_put(&m, st->key, want) == st->rc, "step %zu", i);
			break;
		case GET:
			ck_assert_msg(idmap_get(&m, st->key) == want, "step %zu", i);
			break;
		case DEL:
			ck_assert_msg(idmap_del(&m, st->key) == want, "step %zu", i);
			break;
		}
		ck_assert_msg(m.count == st->count, "step %zu: %zu entries", i, m.count);
	}
	idmap_free(&m);
	ck_assert_ptr_null(idmap_get(&m, 1));
}
END_TEST

#define MANY 20000

/* Ids as relayd makes them (consecutive), spread ones, and removals in between. */
START_TEST(test_idmap_many)
{
	struct idmap m = {0};
	uint64_t *keys = malloc(MANY * sizeof(*keys));
	char *in = calloc(MANY, 1);
	int *vals = malloc(MANY * sizeof(*vals));
	for (size_t i = 0; i < MANY; i++)
		keys[i] = i % 2 ? i + 1 : (uint64_t)i * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < MANY; i++) {
		ck_assert_int_eq(idmap_put(&m, keys[i], &vals[i]), 0);
		in[i] = 1;
		/* Every third one goes again at once: markers pile up. */
		if (i % 3 == 0) {
			ck_assert_ptr_eq(idmap_del(&m, keys[i]), &vals[i]);
			in[i] = 0;
		}
	}
	/* Half of the rest go, then come back. */
	for (size_t i = 0; i < MANY; i += 2)
		if (in[i]) {
			ck_assert_ptr_eq(idmap_del(&m, keys[i]), &vals[i]);
			in[i] = 0;
		}
	for (size_t i = 0; i < MANY; i += 4) {
		ck_assert_int_eq(idmap_put(&m, keys[i], &vals[i]), 0);
		in[i] = 1;
	}
	size_t n = 0;
	for (size_t i = 0; i < MANY; i++) {
		ck_assert_ptr_eq(idmap_get(&m, keys[i]), in[i] ? &vals[i] : NULL);
		n += in[i];
	}
	ck_assert_uint_eq(m.count, n);
	/* The table holds its entries at no more than three quarters full. */
	ck_assert_uint_le(m.used * 4, m.cap * 3);
	idmap_free(&m);
	free(keys);
	free(in);
	free(vals);
}
END_TEST

/* A walk sees each entry once, and may remove the one it is at. */
START_TEST(test_idmap_walk_remove)
{
	struct idmap m = {0};
	int vals[300];
	int seen[300] = {0};
	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(idmap_put(&m, (uint64_t)i + 1000, &vals[i]), 0);
	size_t it = 0;
	int *v;
	while ((v = idmap_next(&m, &it)) != NULL) {
		int i = (int)(v - vals);
		seen[i]++;
		if (i % 2 == 0)
			ck_assert_ptr_eq(idmap_del(&m, (uint64_t)i + 1000), v);
	}
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(seen[i], 1);
		ck_assert_ptr_eq(idmap_get(&m, (uint64_t)i + 1000), i % 2 ? &vals[i] : NULL);
	}
	ck_assert_uint_eq(m.count, 150);
	/* Emptied by a walk, as a peer's sessions are when it goes. */
	it = 0;
	while ((v = idmap_next(&m, &it)) != NULL)
		idmap_del(&m, (uint64_t)(v - vals) + 1000);
	ck_assert_uint_eq(m.count, 0);
	it = 0;
	ck_assert_ptr_null(idmap_next(&m, &it));
	idmap_free(&m);
}
END_TEST

/* Keys that land in the same slot chain: a removal in the middle of a
 * chain must not hide the keys after it. */
START_TEST(test_idmap_collisions)
{
	struct idmap m = {0};
	int vals[64];
	/* Multiples of a large power of two share their low bits before mixing;
	 * many of them collide in a small table all the same. */
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(idmap_put(&m, (uint64_t)i << 40, &vals[i]), 0);
	for (int i = 0; i < 64; i += 3)
		ck_assert_ptr_eq(idmap_del(&m, (uint64_t)i << 40), &vals[i]);
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_eq(idmap_get(&m, (uint64_t)i << 40), i % 3 ? &vals[i] : NULL);
	idmap_free(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc = tcase_create("all");
	tcase_add_test(tc, test_idmap_steps);
	tcase_add_test(tc, test_idmap_many);
	tcase_add_test(tc, test_idmap_walk_remove);
	tcase_add_test(tc, test_idmap_collisions);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
