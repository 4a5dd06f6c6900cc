/* SPDX-License-Identifier: MIT */
/*
 * Where things are by default, in one place: the broker's configuration and
 * its two sockets, as nfq-broker, nfq-agent, nfq-ctl and nfq-cni assume them
 * when told nothing else, and as systemd/nfq-broker.socket creates them
 * (RuntimeDirectory=nfq-broker: /run/nfq-broker).
 */
#ifndef NFQB_COMMON_PATHS_H
#define NFQB_COMMON_PATHS_H

#define NFQB_RUN_DIR          "/run/nfq-broker"
#define NFQB_PATH_AGENT_SOCK  NFQB_RUN_DIR "/agent.sock"
#define NFQB_PATH_CONTROL_SOCK NFQB_RUN_DIR "/control.sock"
/* nfq-broker without --config. */
#define NFQB_PATH_CONFIG      "/etc/nfq-broker/config.json"

#endif
