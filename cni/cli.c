/* SPDX-License-Identifier: MIT */
/* nfq-cni's entry point; the plugin is cni_main() (main.c). */
#include "cni.h"

int main(int argc, char **argv)
{
	return cni_main(argc, argv);
}
