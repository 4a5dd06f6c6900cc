/* SPDX-License-Identifier: MIT */
#include "nfqb/version.h"

const char *nfqb_version(void)
{
	return NFQB_VERSION_STRING;
}
