/*
 * mxrelayctl dns spf-eval: RFC 7208 check_host() for one address and
 * sender, through tools/spfeval, over the config's dns_servers.
 *
 *   mxrelayctl dns spf-eval [-c CONF] [--helo NAME] [--record TEXT]
 *                           [--trace] IP SENDER
 *
 * SENDER is local@domain, a bare domain (postmaster@domain), or "" (the
 * null reverse path: postmaster@HELO). Output, on stdout:
 *   line 1: the result word (none, neutral, pass, fail, softfail,
 *           temperror, permerror)
 *   line 2: "why: " and the deciding term or the reason
 *   line 3 (fail with an exp= explanation only): "explanation: " and it
 *   then, with --trace, one "trace: " line per lookup and match.
 * Exit status 0 whatever the result; 1 for a config or DNS setup error, 2
 * for a usage error.
 *
 * Groundwork: the command is declared; it lands with the evaluator.
 */
#include "tools/ctl.h"
#include "tools/spfeval.h"

#include <stdio.h>

int
ctl_dns_spf_eval(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mxrelayctl dns spf-eval: not implemented yet\n");
	return 1;
}
