/* SPDX-License-Identifier: MIT */
/*
 * A fake nfq-agent for the nfq-cni and nfq-holder unit tests, written to a
 * file and made executable by the test: it writes its --status-file the
 * way the real agent does (atomically: tmp + rename) in the state
 * FAKE_AGENT_MODE says — attached (default), refused, retry, or exit
 * (status 3 after "fake: boom" on stderr) — then lives for at most 30 s or
 * until SIGTERM.
 */
#ifndef TESTS_FAKE_AGENT_H
#define TESTS_FAKE_AGENT_H

static const char fake_agent[] =
	"#!/bin/sh\n"
	"st=\n"
	"while [ $# -gt 0 ]; do [ \"$1\" = --status-file ] && st=$2; shift; done\n"
	"put() { printf 'state=%s\\nattempts=%s\\nreason=%s\\n' \"$1\" \"$2\" \"$3\" >\"$st.tmp\" && mv \"$st.tmp\" \"$st\"; }\n"
	"trap 'exit 0' TERM\n"
	"case \"$FAKE_AGENT_MODE\" in\n"
	"refused) put refused 1 'no namespaces entry matches name \"p\"'; exit 1;;\n"
	"exit) echo 'fake: boom' >&2; exit 3;;\n"
	"retry) put retrying 3 'no broker socket at /x';;\n"
	"*) echo 'event=attached' >&2; put attached 1 '';;\n"
	"esac\n"
	"i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n";

#endif
