/*
 * Unit tests for mta/shared/provider.c: real replies of the large providers
 * (as their pages and bounces show them) classify into the right reason
 * code, group and rate-limit flag; look-alikes (the same enhanced code with
 * another text, another code with a similar text) do not; MX host names
 * map to their provider group by suffix only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mta/shared/provider.h"

struct cls_case {
	const char *label, *text;
	const char *code; /* NULL: not a known reply */
	enum provider_group group;
	bool rate_limit;
};

static const struct cls_case cls_cases[] = {
    {"ms 4.7.650",
     "451 4.7.650 The mail server [192.0.2.9] has been temporarily rate limited due to IP "
     "reputation. For e-mail delivery information, see https://postmaster.live.com (S843)",
     "ms_ip_throttled", PROVIDER_MICROSOFT, true},
    {"ms 4.7.651", "451 4.7.651 The mail server [192.0.2.9] has been temporarily rate limited",
     "ms_ip_throttled", PROVIDER_MICROSOFT, true},
    {"ms 5.7.606",
     "550 5.7.606 Access denied, banned sending IP [192.0.2.9]. To request removal from this "
     "list please visit https://sender.office.com/ and follow the directions.",
     "ms_banned_ip", PROVIDER_MICROSOFT, false},
    {"ms 5.7.515",
     "550 5.7.515 Access denied, sending domain [example.com] doesn't meet the required "
     "authentication level.",
     "ms_auth_required", PROVIDER_MICROSOFT, false},
    {"ms 5.7.68",
     "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from "
     "unauthorized sources",
     "ms_direct_send_rejected", PROVIDER_MICROSOFT, false},
    {"gmail 4.7.28 multi-line joined",
     "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP "
     "421 4.7.28 address. x12si - gsmtp",
     "gmail_rate_limited", PROVIDER_GOOGLE, true},
    {"gmail 5.7.26",
     "550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail "
     "requires all senders to authenticate with either SPF or DKIM. - gsmtp",
     "gmail_unauthenticated", PROVIDER_GOOGLE, false},
    {"gmail no message-id",
     "550-5.7.1 Messages missing a valid Message-ID header are not accepted. 550 5.7.1 gsmtp",
     "gmail_no_message_id", PROVIDER_GOOGLE, false},
    {"gmail old messageId spelling",
     "550 5.7.1 Messages missing a valid messageId header are not accepted.",
     "gmail_no_message_id", PROVIDER_GOOGLE, false},
    {"yahoo TSS04",
     "421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to unexpected volume "
     "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     "yahoo_tss04", PROVIDER_YAHOO, true},
    {"5.7.1 other text", "550 5.7.1 Relaying denied", NULL, PROVIDER_NONE, false},
    {"5.7.26 other text", "550 5.7.26 Multiple authentication checks failed", NULL,
     PROVIDER_NONE, false},
    {"4.7.6500 is not 4.7.650", "451 4.7.6500 something", NULL, PROVIDER_NONE, false},
    {"code in the text only", "451 4.7.1 see 4.7.650 elsewhere", NULL, PROVIDER_NONE, false},
    {"no enhanced code", "421 Service not available", NULL, PROVIDER_NONE, false},
    {"empty", "", NULL, PROVIDER_NONE, false},
    {"plain 250", "250 2.0.0 OK", NULL, PROVIDER_NONE, false},
    {"a 2xx with the pattern", "250 2.0.0 OK [TSS04]", NULL, PROVIDER_NONE, false},
};

static void
test_classify(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cls_cases) / sizeof(cls_cases[0]); i++) {
		const struct cls_case *c = &cls_cases[i];
		const struct provider_reply *pr = provider_classify(c->text);
		print_message("case: %s\n", c->label);
		if (c->code == NULL) {
			assert_null(pr);
			continue;
		}
		assert_non_null(pr);
		assert_string_equal(pr->code, c->code);
		assert_int_equal(pr->group, c->group);
		assert_int_equal(pr->rate_limit, c->rate_limit);
		assert_string_equal(provider_reply_of(pr->reason)->code, pr->code);
		assert_true(strlen(pr->fix) > 20);
	}
	assert_null(provider_classify(NULL));
}

static void
test_fix_pages(void **state)
{
	(void)state;
	/* the delisting page, and the DNS check for the authentication failures */
	assert_non_null(strstr(provider_reply_of(PRV_MS_BANNED_IP)->fix, "https://sender.office.com"));
	assert_non_null(strstr(provider_reply_of(PRV_MS_AUTH_REQUIRED)->fix, "mxrelayctl dns check"));
	assert_non_null(
	    strstr(provider_reply_of(PRV_MS_DIRECT_SEND_REJECTED)->fix, "docs/deployment.md"));
	assert_non_null(
	    strstr(provider_reply_of(PRV_GMAIL_UNAUTHENTICATED)->fix, "mxrelayctl dns check"));
	for (int r = 0; r < PRV__COUNT; r++)
		assert_int_equal(provider_reply_of((enum provider_reason)r)->reason, r);
}

static const struct {
	const char *host;
	enum provider_group g;
} host_cases[] = {
    {"contoso-com.mail.protection.outlook.com", PROVIDER_MICROSOFT},
    {"contoso-com.mail.protection.outlook.com.", PROVIDER_MICROSOFT},
    {"HOTMAIL-COM.OLC.PROTECTION.OUTLOOK.COM", PROVIDER_MICROSOFT},
    {"aspmx.l.google.com", PROVIDER_GOOGLE},
    {"gmail-smtp-in.l.google.com", PROVIDER_GOOGLE},
    {"alt1.aspmx.l.googlemail.com", PROVIDER_GOOGLE},
    {"mta5.am0.yahoodns.net", PROVIDER_YAHOO},
    {"protection.outlook.com", PROVIDER_NONE}, /* the suffix alone is no host of it */
    {"evilgoogle.com", PROVIDER_NONE},
    {"google.com.example.net", PROVIDER_NONE},
    {"mx.example.net", PROVIDER_NONE},
    {"", PROVIDER_NONE},
};

static void
test_groups(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(host_cases) / sizeof(host_cases[0]); i++) {
		print_message("host: %s\n", host_cases[i].host);
		assert_int_equal(provider_group_of_host(host_cases[i].host), host_cases[i].g);
	}
	assert_int_equal(provider_group_of_host(NULL), PROVIDER_NONE);
	assert_string_equal(provider_group_name(PROVIDER_GOOGLE), "google");
	assert_string_equal(provider_group_name(PROVIDER_NONE), "none");
}

#define MS650 "451 4.7.650 The mail server [192.0.2.9] has been temporarily rate limited"
#define TSS04 "421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred"
#define MSMX "a-com.mail.protection.outlook.com[192.0.2.7]:25"

/* provider_classify_from: only the provider's own host; quoted replies read with their host. */
static const struct {
	const char *label, *text, *relay, *code;
} from_cases[] = {
    {"direct, Microsoft's MX", MS650, MSMX, "ms_ip_throttled"},
    {"direct, another MX", MS650, "mx.example.net[192.0.2.8]:25", NULL},
    {"no relay, bare reply (a local text)", MS650, NULL, NULL},
    {"stored with its host", "host " MSMX " said: " MS650, NULL, "ms_ip_throttled"},
    {"stored, another host", "host mx.example.net[192.0.2.8]:25 said: " MS650, NULL, NULL},
    {"all MX failed, last Microsoft's",
     "451 4.4.1 all MX hosts of a.com failed; last: host " MSMX " said: " MS650, NULL,
     "ms_ip_throttled"},
    {"all MX failed, last a Yahoo look-alike",
     "451 4.4.1 all MX hosts of t.com failed; last: host mx.t.com[192.0.2.8]:25 said: " TSS04,
     NULL, NULL},
    {"all MX failed, last no reply (refused connection)",
     "451 4.4.1 all MX hosts of a.com failed; last: connection refused", NULL, NULL},
    {"a remote's text cannot name a host of its own",
     "host mx.example.net[192.0.2.8]:25 said: 451 4.4.1 x; last: host " MSMX " said: " MS650,
     NULL, NULL},
    {"not 4xx/5xx", "host " MSMX " said: 250 2.0.0 4.7.650 ok", NULL, NULL},
};

static void
test_classify_from(void **state)
{
	char buf[300];

	(void)state;
	for (size_t i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		const struct provider_reply *pr =
		    provider_classify_from(from_cases[i].text, from_cases[i].relay);
		print_message("from: %s\n", from_cases[i].label);
		if (from_cases[i].code == NULL)
			assert_null(pr);
		else
			assert_string_equal(pr ? pr->code : "(none)", from_cases[i].code);
	}
	assert_null(provider_classify_from(NULL, MSMX));
	provider_said(buf, sizeof(buf), MSMX, MS650);
	assert_string_equal(buf, "host " MSMX " said: " MS650);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test(test_fix_pages),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_classify_from),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
