#!/usr/bin/perl
# mailspf_worker: Mail::SPF (libmail-spf-perl) as a second SPF opinion for
# test/integration/spfsuite.py. Reads JSON lines [ip, sender, helo] on stdin,
# writes one JSON line {"result": ..., "explanation": ...} per request.
# Run inside the test's network namespace: Net::DNS reads its resolv.conf.
# An empty sender is the null reverse path: the HELO identity (RFC 7208 2.4).
use strict;
use warnings;
use JSON::PP;
use Mail::SPF;

$| = 1;
my $json = JSON::PP->new->utf8(1)->ascii(1)->canonical(1);
my $server = Mail::SPF::Server->new(max_void_dns_lookups => 2);

sub evaluate {
	my ($ip, $sender, $helo) = @_;
	my $scope = $sender eq '' ? 'helo' : 'mfrom';
	my $identity = $sender eq '' ? $helo : $sender;
	my $res = eval {
		my $req = Mail::SPF::Request->new(
			versions => [1], scope => $scope, identity => $identity,
			ip_address => $ip, helo_identity => $helo);
		$server->process($req);
	};
	if (!defined $res) {
		my $err = "$@";
		$err =~ s/\s+$//;
		return { result => 'exception', explanation => $err };
	}
	my $exp = '';
	if ($res->can('authority_explanation')) {
		$exp = eval { $res->authority_explanation } // '';
	}
	return { result => $res->code, explanation => "$exp" };
}

while (my $line = <STDIN>) {
	my ($ip, $sender, $helo) = @{ $json->decode($line) };
	print $json->encode(evaluate($ip, $sender, $helo)), "\n";
}
