/*
 * tools/spfeval: RFC 7208 check_host() (see tools/spfeval.h).
 *
 * Groundwork: the interface and the system DNS binding; the evaluator
 * itself answers permerror "not implemented" until it lands.
 */
#include "tools/spfeval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
	    [SPF_R_NONE] = "none",         [SPF_R_NEUTRAL] = "neutral",
	    [SPF_R_PASS] = "pass",         [SPF_R_FAIL] = "fail",
	    [SPF_R_SOFTFAIL] = "softfail", [SPF_R_TEMPERROR] = "temperror",
	    [SPF_R_PERMERROR] = "permerror",
	};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "permerror";
}

static enum dnsq_status
sys_txt(void *ctx, const char *name, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_txt(name, out);
}

static enum dnsq_status
sys_addrs(void *ctx, const char *name, int family, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_a(name, family, out);
}

static enum dnsq_status
sys_mx(void *ctx, const char *name, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_mx(name, out);
}

static enum dnsq_status
sys_ptr(void *ctx, const char *ip, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_ptr(ip, out);
}

const struct spf_dns *
spf_dns_system(void)
{
	static const struct spf_dns sys = {NULL, sys_txt, sys_addrs, sys_mx, sys_ptr};

	return &sys;
}

int
spf_eval(const struct spf_dns *dns, const struct spf_ip *ip, const char *sender,
         const char *helo, const struct spf_eval_opts *opts, struct spf_eval *out)
{
	(void)dns;
	(void)ip;
	(void)sender;
	(void)helo;
	(void)opts;
	memset(out, 0, sizeof *out);
	out->result = SPF_R_PERMERROR;
	snprintf(out->why, sizeof out->why, "not implemented yet");
	return 0;
}

void
spf_eval_free(struct spf_eval *out)
{
	for (size_t i = 0; i < out->ntrace; i++)
		free(out->trace[i]);
	out->ntrace = 0;
	out->trace_dropped = 0;
}
