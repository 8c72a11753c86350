/*
 * ctl: the sub-commands of mxrelayctl. Each takes the arguments after
 * "mxrelayctl" (argv[0] is the sub-command's name) and returns the process
 * exit status: 0 done, 1 failed (one line on stderr says why), 2 usage error.
 */
#ifndef MXRELAY_TOOLS_CTL_H
#define MXRELAY_TOOLS_CTL_H

#include <stdio.h>

int ctl_passwd(int argc, char **argv);
/* The synopsis lines of `passwd`, for mxrelayctl's usage and its own. */
void ctl_passwd_usage(FILE *f);

#endif
