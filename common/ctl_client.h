/*
 * ctl_client.h - the client side of control.sock: one command sent, its
 * answer printed. relayctl is this and its usage; sendmail -bp and -q
 * are `queue` and `flush` through it.
 */
#ifndef RELAYD_CTL_CLIENT_H
#define RELAYD_CTL_CLIENT_H

/*
 * Reads state-dir from the config at path, sends argv (argv[0] the
 * command, checked by the caller), prints the answer (errors prefixed
 * with prog). Returns CTL_EXIT_OK or CTL_EXIT_FAIL (or the daemon's
 * usage status).
 */
int ctl_client_run(const char *prog, const char *path, int argc, char **argv);

#endif
