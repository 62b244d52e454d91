#!/usr/bin/python3
"""bench/ab.py: server CPU per POP3S login of two or more ipop3d binaries, A/B.

For finding where a login's CPU goes: each binary runs under its own
systemd-socket-activate in a cpuacct cgroup of its own (as bench.py does), and the
logins alternate between them in rounds, so a change in the (shared) machine's load
falls on all of them alike.  Uses bench.py's account, certificate and cgroup code.
  python3 bench/ab.py BIN_A BIN_B [...]     (as root)
A BIN may be "path,VAR=value,...": that environment is passed to ipop3d (instrumented
test builds read knobs from it).  Makes a throwaway account pabcpu1 and removes it.
Environment: AB_N (logins per round, 20), AB_ROUNDS (6), AB_KT (ecdsa|rsa), AB_PERF (a
directory: then also `perf record -g` of AB_N more logins per binary), AB_STRACE (a
directory: run each launcher under `strace -f`).
"""
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402
import pop3bench as pb  # noqa: E402


class Bin(B.Ipop3d):
    def __init__(self, label, cg, port, conf, logpath, binary):
        super().__init__(label, cg, port, conf, logpath)
        self.binary = binary

    def start(self):
        # BIN may be "path,VAR=value,...": the environment ipop3d gets (through the
        # launcher's -E: systemd-socket-activate passes nothing else on)
        parts = str(self.binary).split(",")
        pre = []
        if os.environ.get("AB_STRACE"):   # a directory: strace -f every server
            pre = ["strace", "-f", "-tt", "-T", "-o",
                   "%s/%s.strace" % (os.environ["AB_STRACE"], self.label)]
        env = []
        for kv in parts[1:]:
            env += ["-E", kv]
        self._spawn(pre + ["systemd-socket-activate", "--accept", "--inetd"] + env +
                    ["-l", "127.0.0.1:%d" % self.port, parts[0], "-c", str(self.conf),
                     "-s"], self.logpath.with_suffix(".launcher.log"))


class Perf(B.Perf):
    def prefix(self):
        return ["perf", "record", "-g", "-e", "cpu-clock", "-F", "4999", "-q", "-D", "-1",
                "--control", "fifo:%s,%s" % (self.ctl, self.ack), "-o", str(self.out), "--"]


def main():
    bins = sys.argv[1:]
    n = int(os.environ.get("AB_N", "20"))
    rounds = int(os.environ.get("AB_ROUNDS", "6"))
    kt = os.environ.get("AB_KT", "ecdsa")
    pdir = os.environ.get("AB_PERF")   # a directory: also profile AB_N logins each
    tmp = Path(B.tempfile.mkdtemp(prefix="postern-ab."))
    B.CLEANUP.push("rm tmp", lambda: B.shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    try:
        user = "pabcpu1"
        pw, _, _ = B.make_user(user)
        B.make_maildir(user, B.LOGIN_MSGS, B.LOGIN_MSG_SIZE)
        d = tmp / "tls"
        B.run(["sh", str(B.REPO / "mkcert.sh"), "-d", str(d), "-t", kt, "localhost",
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
                "log = {t}/ipop3d{i}.log\nstate_dir = {t}/state{i}\nhosts_allow = {e}\n"
                "hosts_deny = {e}\nmin_uid = 1000\nlogin_fail_delay_ms = 0\n"
                "throttle_ip_max = 0\nthrottle_net_max = 0\nthrottle_user_max = 0\n"
                .format(d=d, t=tmp, e=empty, i=i))
            s = Bin("ab%d" % i, B.Cgroup("ab%d-%d" % (i, os.getpid())), B.free_port(),
                    conf, tmp / ("ipop3d%d.log" % i), b)
            if pdir:
                s.perf = Perf(tmp, s.label)
            s.start()
            srvs.append(s)
        ctx = pb.make_context(str(d / "ca.crt"))
        for s in srvs:
            pb.login_loop(s.port, ctx, user, pw, 3)
            s.baseline()
        per = {s.label: [] for s in srvs}
        for r in range(rounds):
            order = srvs if r % 2 == 0 else list(reversed(srvs))
            for s in order:
                (lat, errs), wall, cpu = B.measure(s, lambda s=s: pb.login_loop(
                    s.port, ctx, user, pw, n))
                if errs:
                    print("errors", s.label, errs[:3])
                per[s.label].append(cpu * 1000 / n)
        for s, b in zip(srvs, bins):
            x = per[s.label]
            print("%-40s mean %6.2f  median %6.2f  min %6.2f ms CPU/login  (%s)"
                  % (b, statistics.mean(x), statistics.median(x), min(x),
                     " ".join("%.1f" % v for v in x)))
        sys.stdout.flush()
        for s in srvs if pdir else []:
            s.settle()
            s.perf.command("enable")
            pb.login_loop(s.port, ctx, user, pw, n)
            s.settle()
            s.perf.command("disable")
            s.perf.close()
            s.stop()
            B.shutil.copyfile(s.perf.out, Path(pdir) / (s.label + ".perf.data"))
    finally:
        B.CLEANUP.run()


if __name__ == "__main__":
    main()
