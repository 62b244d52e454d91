#!/usr/bin/python3
"""bench/imap_ab.py: server CPU of two (or more) imapd binaries, A/B, on one mailbox.

For before/after figures of an optimisation: each binary runs under its own
systemd-socket-activate in a cgroup of its own (as imapbench.py does) on the same
Maildir INBOX of AB_N corpus messages, and the sessions alternate between the binaries
in rounds, so that a change in the (shared) machine's load falls on all alike.  Per
round and binary: a cold session (imapd's index files removed first: the index and
cache are rebuilt) and AB_WARM warm sessions of
  LOGIN, SELECT INBOX, UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE), LOGOUT
or, with AB_CMD, another command.  Prints the median server CPU of each.
  python3 bench/imap_ab.py BIN_A BIN_B [...]      (as root)
Environment: AB_N (20000), AB_ROUNDS (5), AB_WARM (2), AB_CMD.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402
import imapbench as I  # noqa: E402
import pop3bench as pb  # noqa: E402


def main():
    bins = sys.argv[1:]
    n = int(os.environ.get("AB_N", "20000"))
    rounds = int(os.environ.get("AB_ROUNDS", "5"))
    warm = int(os.environ.get("AB_WARM", "2"))
    cmd = os.environ.get("AB_CMD", "UID FETCH 1:* " + I.FETCH_ITEMS.decode()).encode()
    tmp = Path(tempfile.mkdtemp(prefix="postern-imapab."))
    B.CLEANUP.push("rm tmp", lambda: shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    try:
        user = "pabimap1"
        pw, _, _ = B.make_user(user)
        md, _ = I.make_maildir_folder(user, n)
        d = tmp / "tls"
        B.run(["sh", str(B.REPO / "mkcert.sh"), "-d", str(d), "-t", "ecdsa", "localhost",
               "127.0.0.1"])
        os.chmod(d, 0o755)
        empty = tmp / "hosts.empty"
        empty.write_text("")
        os.chmod(empty, 0o644)
        srvs = []
        for i, b in enumerate(bins):
            conf = tmp / ("c%d.conf" % i)
            conf.write_text(
                "[global]\ntls_cert = {d}/postern.crt\ntls_key = {d}/postern.key\n"
                "log = {t}/imapd{i}.log\nstate_dir = {t}/state{i}\nhosts_allow = {e}\n"
                "hosts_deny = {e}\nmin_uid = 1000\nlogin_fail_delay_ms = 0\n"
                "throttle_ip_max = 0\nthrottle_net_max = 0\nthrottle_user_max = 0\n"
                "mail_location = maildir:~/Maildir\n".format(d=d, t=tmp, e=empty, i=i))
            I.IMAPD = Path(b)
            s = I.Imapd("ab%d" % i, B.Cgroup("imapab%d-%d" % (i, os.getpid())),
                        B.free_port(), conf, tmp / ("imapd%d.log" % i))
            s.start()
            srvs.append(s)
        ctx = pb.make_context(str(d / "ca.crt"))
        for s in srvs:
            I.login_once(s.port, ctx, user, pw)
            s.baseline()
        cold = {s.label: [] for s in srvs}
        hot = {s.label: [] for s in srvs}
        for r in range(rounds):
            order = srvs if r % 2 == 0 else list(reversed(srvs))
            for s in order:
                for f in md.glob("postern-index*"):
                    f.unlink()
                x = I.measured_session(s, ctx, (user, pw), "INBOX", cmd)
                cold[s.label].append(x["cpu_s"])
                for _ in range(warm):
                    x = I.measured_session(s, ctx, (user, pw), "INBOX", cmd)
                    hot[s.label].append(x["cpu_s"])
        for s, b in zip(srvs, bins):
            print("%-36s cold: median %.3f s CPU (%s)   warm: median %.3f s CPU (%s)"
                  % (b, statistics.median(cold[s.label]),
                     " ".join("%.2f" % v for v in cold[s.label]),
                     statistics.median(hot[s.label]),
                     " ".join("%.2f" % v for v in hot[s.label])))
        sys.stdout.flush()
        for s in srvs:
            s.stop()
        time.sleep(0.2)
    finally:
        B.CLEANUP.run()


if __name__ == "__main__":
    main()
