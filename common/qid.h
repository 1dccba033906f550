/*
 * qid.h - queue ids and RFC 5322 dates: the identity and time stamps that
 * intake (for new mail) and the queue (for bounces) both write.
 */
#ifndef RELAYD_QID_H
#define RELAYD_QID_H

#include <stddef.h>
#include <stdint.h>

/* 16 upper-case hex digits and a NUL. */
#define QID_LEN 17

/* A fresh queue id from the kernel's random pool (64 bits). */
void qid_new(char dst[QID_LEN]);
/* "Sun, 22 Nov 2026 05:33:01 +0000": English names whatever the locale. */
void qid_date(int64_t t, char *dst, size_t dstsz);

#endif
