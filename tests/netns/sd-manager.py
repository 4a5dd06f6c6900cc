#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plays systemd for one daemon: a notify socket (NOTIFY_SOCKET) whose
messages are recorded one line each, and listening sockets it creates,
holds and passes (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), across restarts.

  sd-manager.py --notify LOG [--listen NAME:TYPE:PATH[:MODE]]... [--no-names]
                [--journal] [--pidfile F] [--restarts N --trigger F] [--timeout S]
                -- CMD...

--journal: the daemon's stderr (ours) is "the journal": JOURNAL_STREAM names
its device:inode, as systemd sets it. Every message line goes to LOG as "RUN LINE" (RUN counts the daemon's starts
from 1). After the daemon exits, with restarts left, it waits for the file F
(--trigger) to appear, removes it and starts the daemon again on the same
sockets. Exits with the last run's status (128+N for a signal), 124 on
--timeout. Each start's pid is appended to --pidfile.
"""
import argparse
import os
import select
import socket
import stat
import sys
import time

TYPES = {"seqpacket": socket.SOCK_SEQPACKET, "stream": socket.SOCK_STREAM,
         "dgram": socket.SOCK_DGRAM}


def listen(spec):
    name, kind, path, *mode = spec.split(":")
    s = socket.socket(socket.AF_UNIX, TYPES[kind])
    s.bind(path)
    os.chmod(path, int(mode[0], 8) if mode else 0o600)
    if kind != "dgram":
        s.listen(128)
    return name, s, os.lstat(path).st_ino


def start(socks, names, notify_path, run):
    pid = os.fork()
    if pid:
        return pid
    try:
        env = dict(os.environ)
        if notify_path:
            env["NOTIFY_SOCKET"] = notify_path
        if ARGS.journal:
            st = os.fstat(2)
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        if socks:
            # fds 3.. in order, without close-on-exec, as systemd passes them
            fds = [os.dup(s.fileno()) for _, s, _ in socks]
            for i, fd in enumerate(fds):
                os.dup2(fd, 3 + i, inheritable=True)
            env["LISTEN_FDS"] = str(len(socks))
            env["LISTEN_PID"] = str(os.getpid())
            if names:
                env["LISTEN_FDNAMES"] = ":".join(n for n, _, _ in socks)
        os.execvpe(ARGS.cmd[0], ARGS.cmd, env)
    except Exception as e:  # noqa: BLE001 - anything is fatal in the child
        print(f"sd-manager: run {run}: {e}", file=sys.stderr)
    os._exit(127)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--notify")
    p.add_argument("--listen", action="append", default=[])
    p.add_argument("--no-names", action="store_true")
    p.add_argument("--journal", action="store_true")
    p.add_argument("--pidfile")
    p.add_argument("--restarts", type=int, default=0)
    p.add_argument("--trigger")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("cmd", nargs="+")
    ARGS = p.parse_args()
    end = time.monotonic() + ARGS.timeout

    nsock, notify_path = None, None
    if ARGS.notify:
        notify_path = ARGS.notify + ".sock"
        nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        nsock.bind(notify_path)
        nsock.setblocking(False)
    socks = [listen(s) for s in ARGS.listen]
    log = open(ARGS.notify, "a", buffering=1) if ARGS.notify else None

    run, status = 0, 0
    while True:
        run += 1
        pid = start(socks, not ARGS.no_names, notify_path, run)
        if ARGS.pidfile:
            with open(ARGS.pidfile, "a") as f:
                f.write(f"{pid}\n")
        while True:
            if nsock:
                r, _, _ = select.select([nsock], [], [], 0.05)
                while r:
                    try:
                        msg = nsock.recv(4096).decode(errors="replace")
                    except BlockingIOError:
                        break
                    for line in msg.split("\n"):
                        if line:
                            log.write(f"{run} {line}\n")
            else:
                time.sleep(0.05)
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
                status = 128 - status if status < 0 else status
                break
            if time.monotonic() > end:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return 124
        if run > ARGS.restarts:
            break
        while not os.path.exists(ARGS.trigger):
            if time.monotonic() > end:
                return 124
            time.sleep(0.05)
        os.unlink(ARGS.trigger)
    # What the daemon left of our sockets: the files must still be ours.
    for name, s, ino in socks:
        path = s.getsockname()
        try:
            st = os.lstat(path)
            ok = stat.S_ISSOCK(st.st_mode) and st.st_ino == ino
        except FileNotFoundError:
            ok = False
        print(f"sd-manager: socket {name} {path} {'kept' if ok else 'GONE'}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
