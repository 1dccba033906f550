/*
 * proctitle.h - process titles as `ps -o args` shows them ("relayd: queue").
 */
#ifndef RELAYD_PROCTITLE_H
#define RELAYD_PROCTITLE_H

/* Call once at start with main's argv; moves the environment aside. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *title);

#endif
