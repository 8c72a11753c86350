/*
 * Peer daemons (nsd, unbound) that a unit test runs on 127.0.0.1, in a
 * process group of their own under a watchdog child, their subreaper. The
 * watchdog runs `/bin/sh -c CMD` and waits for EOF on a pipe, which comes
 * when tu_group_stop closes it or when the test process dies in any way;
 * then it ends the whole group and reaps it, so no peer outlives the test
 * (header-only: each test is one program). Include after <cmocka.h>.
 */
#ifndef MXRELAY_PEERGROUP_H
#define MXRELAY_PEERGROUP_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/unit/testutil.h"

struct tu_group {
	pid_t pid; /* the watchdog, leader of the group; 0: none */
	int pipe;  /* our end: closing it ends the group */
};

/* The watchdog's life; when the test died rather than stopping the group, it
 * also removes dir (if not NULL): nobody else will. */
static inline void __attribute__((noreturn))
tu_group_watchdog(int rfd, const char *cmd, const char *dir)
{
	pid_t parent = getppid();
	char c;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (fork() == 0) {
		signal(SIGTERM, SIG_DFL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (read(rfd, &c, 1) < 0 && errno == EINTR)
		;
	kill(0, SIGTERM); /* the whole group, ourselves included: */
	for (int i = 0; i < 40 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
		usleep(50 * 1000);
	if (dir != NULL && getppid() != parent)
		tu_rmtree(dir);
	kill(0, SIGKILL);
	_exit(0);
}

/* Start cmd in a new group under its watchdog (see above). 0 / -1. */
static inline int
tu_group_start(struct tu_group *g, const char *cmd, const char *dir)
{
	int fds[2];

	g->pid = 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if ((g->pid = fork()) < 0) {
		g->pid = 0;
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (g->pid == 0) {
		setpgid(0, 0);
		signal(SIGTERM, SIG_IGN);
		close(fds[1]);
		tu_group_watchdog(fds[0], cmd, dir);
	}
	close(fds[0]);
	setpgid(g->pid, g->pid);
	g->pipe = fds[1];
	return 0;
}

/* Has the watchdog already ended (the group cannot be running)? It is reaped. */
static inline bool
tu_group_gone(struct tu_group *g)
{
	int status;

	if (g->pid <= 0 || waitpid(g->pid, &status, WNOHANG) != g->pid)
		return g->pid <= 0;
	g->pid = 0;
	close(g->pipe);
	return true;
}

/* End the group: EOF to the watchdog, 5 s for it to take the peers down,
 * then SIGKILL to the whole group. No-op when none runs. */
static inline void
tu_group_stop(struct tu_group *g)
{
	if (g->pid <= 0)
		return;
	close(g->pipe);
	for (int i = 0; i < 100; i++) {
		if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
			g->pid = 0;
			return;
		}
		usleep(50 * 1000);
	}
	kill(-g->pid, SIGKILL);
	waitpid(g->pid, NULL, 0);
	g->pid = 0;
}

#endif
