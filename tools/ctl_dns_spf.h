/*
 * ctl_dns_spf: the before/after evaluation table of `mxrelayctl dns spf`
 * (tools/ctl_dns_spf_table.c), private to tools/ctl_dns.c.
 */
#ifndef MXRELAY_TOOLS_CTL_DNS_SPF_H
#define MXRELAY_TOOLS_CTL_DNS_SPF_H

#include <stdio.h>

#include "tools/spf.h"

struct spf_table;

/*
 * Evaluate through tools/spfeval, for each relay address, for a sample
 * address of each include (and redirect) of after, and for one address
 * nobody authorises (192.0.2.1): "before" with before_record (NULL: what
 * DNS publishes at domain, which is what receivers answer today) and
 * "after" with the record to be printed. With several sources (the
 * records DNS publishes), each is evaluated alone too. NULL when out of
 * memory. join (or NULL): its _spfN.DOMAIN records, when joined by
 * inclusion, are answered from memory for "after", as if published. Free
 * with ctl_spf_table_free.
 */
struct spf_table *ctl_spf_table_eval(const char *domain, const char *before_record,
                                     char *const *sources, size_t nsources, const char *after,
                                     const struct spf_join *join, const struct spf_ip *ips,
                                     size_t nips);

/*
 * 0 when no sample is worse after: one that passed before (or under any
 * source record alone) passes after. -1 after writing to err the first
 * one that would not: the merge must not be printed.
 */
int ctl_spf_table_check(const struct spf_table *t, FILE *err);

/* The table, one row per sample. */
void ctl_spf_table_print(const struct spf_table *t, FILE *f);

void ctl_spf_table_free(struct spf_table *t);

#endif
