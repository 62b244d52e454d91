"""Two (or more) mail domains on one machine: network namespaces for the issue-8 tests.

One Lab is a small network of its own:

    namespace ptns-<pid>-<tok>-net ("the wire")
        bridge br0: 198.51.100.53/24, 2001:db8:53::53/64  <- dnsmasq, port 53
        |  h-a (veth)                        |  h-b (veth)
    namespace ptns-<pid>-<tok>-a         namespace ptns-<pid>-<tok>-b
        wire: 192.0.2.1/24, 2001:db8::1/64   wire: 192.0.2.2/24, 2001:db8::2/64
        mx.163.test                          mx.sina.test
        smtp-submit 25 (-m mx), 587 (-m submission), 465 (-m smtps),
        imapd 993 (-s), ipop3d 995 (-s), each under systemd-socket-activate --inetd,
        listening on the host's IPv4 and IPv6 address

The hosts reach each other over the bridge (one Ethernet segment) and the DNS server
through an on-link route to 198.51.100.0/24 and 2001:db8:53::/64.  Why a bridge rather
than one veth pair between the hosts: the DNS server lives outside both hosts, so a test
can take one host off the wire (Host.link(False): "the destination is down") while the
other still resolves its MX, and a third host (Postfix, issue 8 "Interop") is one more
add_host().  Nothing ever appears in the root namespace: each veth is created with its
two ends already in their namespaces.  Addresses are the documentation ranges (RFC 5737,
RFC 3849); two runs use the same ones in namespaces of their own.

Names: every namespace is ptns-<pid of the pytest process>-<6 hex>-<role>, its resolver
file /etc/netns/<name>/resolv.conf (ip netns exec bind-mounts it over /etc/resolv.conf).
Teardown (Lab.close(), always run by the fixtures and by a failed build) ends every
process in the namespaces, deletes them and their /etc/netns directories, stops the
daemons and removes the users.  sweep_stale(), called by conftest.py at the start of a
run, does the same for namespaces whose pytest process is gone (a worker killed with
SIGKILL runs no finalizer).

DNS: dnsmasq with a config this module writes (Dns): MX, A, AAAA and PTR of each host
(mx-host, host-record), TXT records tests set (Dns.set_txt; SPF, DKIM, DMARC), anything
else NXDOMAIN (local=/test/, no upstream).  Dns.reload() restarts it with the new file
(SIGHUP re-reads only hosts files, not mx-host/txt-record).

API (see the classes): Lab(workdir, binaries).add_host("a", "163.test", "192.0.2.1",
"2001:db8::1"), lab.start(); host.ns, .domain, .mx (mx.DOMAIN), .v4, .v6, .ca (the CA
of its certificate), .user (helpers.MailUser), .address(user), .smtp (helpers.SmtpDaemon:
.mx_port 25, .port 587, .tls_port 465, .log, .queue_list()), .imapd, .pop3d
(helpers.Daemon: .tls_port), host.run(argv) (ip netns exec), host.call(fn, *args) (fn in
a child process inside the namespace, resolving through the lab's DNS), host.swaks(...),
host.smtp_command(*args) (smtp-submit -c CONFIG ARGS inside the namespace), host.link(),
host.dig(*args); lab.dns (Dns: set_mx, set_host, set_txt, reload, log), lab.hosts,
lab.wire, lab.prefix, lab.close(), lab.leftovers().  Fixtures (conftest.py imports them):
lab (one two-domain lab per test module), make_lab(fail_at=None, two=True) (labs of the
test's own), netns_bins.  Users are helpers.MailUser accounts (pt + digits), so the
suite's sweep of an aborted run's accounts covers them.
"""

import ctypes
import os
import pickle
import re
import secrets
import shutil
import signal
import subprocess
import time
import traceback
from pathlib import Path

import helpers as h

NS_PREFIX = "ptns-"
NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
IP = "/sbin/ip"        # iproute2's own path (usr-merged or not)
DNSMASQ = "/usr/sbin/dnsmasq"
DIG = "/usr/bin/dig"

# The wire: the DNS server's addresses (RFC 5737 TEST-NET-2; an RFC 3849 /64 of its own)
DNS_V4 = "198.51.100.53"
DNS_V6 = "2001:db8:53::53"
HOST_NET_V4 = "192.0.2.0/24"
HOST_NET_V6 = "2001:db8::/64"
DNS_NET_V4 = "198.51.100.0/24"
DNS_NET_V6 = "2001:db8:53::/64"

# The services of a host: (name, port); all under systemd-socket-activate --inetd.
PORTS = {"mx": 25, "submission": 587, "smtps": 465, "imaps": 993, "pop3s": 995}

_NAME_RE = re.compile(re.escape(NS_PREFIX) + r"(\d+)-([0-9a-f]{6})-([a-z0-9]+)$")


def run(argv, check=True, timeout=60, **kw):
    return h.run([str(a) for a in argv], check=check, timeout=timeout, **kw)


def ns_argv(ns, argv):
    """argv run inside namespace ns (ip netns exec: also /etc/netns/NS/resolv.conf)."""
    return [IP, "netns", "exec", ns] + [str(a) for a in argv]


def ns_list():
    """Names of every named network namespace (ip netns list)."""
    try:
        return sorted(p.name for p in NETNS_RUN.iterdir())
    except FileNotFoundError:
        return []


def ns_pids(ns):
    """pids of the processes whose network namespace is ns."""
    r = run([IP, "netns", "pids", ns], check=False, timeout=30)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def root_links():
    """Interface names of the root network namespace (to prove nothing leaked there)."""
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def remove_namespace(ns):
    """End every process in ns, delete it and /etc/netns/ns.  Idempotent."""
    if ns in ns_list():
        for _ in range(3):
            procs = []
            for pid in ns_pids(ns):
                st = h.proc_stat(pid)
                if st:
                    procs.append((pid, st[1]))
            if not procs:
                break
            h.end_processes(procs, grace=2.0)
        run([IP, "netns", "delete", ns], check=False, timeout=30)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def _pid_alive(pid):
    return Path("/proc/%d" % pid).exists()


def sweep_stale():
    """Namespaces and /etc/netns directories of runs whose pytest process is gone: their
    processes ended, removed.  Returns the names removed."""
    names = set(ns_list())
    try:
        names |= {p.name for p in NETNS_ETC.iterdir()}
    except FileNotFoundError:
        pass
    gone = []
    for name in sorted(names):
        m = _NAME_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        remove_namespace(name)
        gone.append(name)
    _rmdir_etc_netns()
    return gone


def _rmdir_etc_netns():
    """/etc/netns once empty (ip netns makes it on demand; a concurrent Lab re-makes it:
    Lab._write_resolv retries)."""
    try:
        NETNS_ETC.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# Processes and sockets inside a namespace


def _listening(pid, ports, udp=False):
    """The ports of `ports` that something listens on in pid's network namespace."""
    found = set()
    for name in (("udp", "udp6") if udp else ("tcp", "tcp6")):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fld = line.split()
            port = int(fld[1].split(":")[1], 16)
            if port in ports and (udp or fld[3] == "0A"):
                found.add(port)
    return found


def wait_ns_listening(proc, ports, udp=False, timeout=15.0):
    """Wait until proc's namespace has listeners on all ports (proc must be running)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise h.PortError("%s exited with %s before listening on %s"
                              % (proc.args[4:6], proc.returncode, sorted(ports)))
        if _listening(proc.pid, set(ports), udp) == set(ports):
            return
        if time.monotonic() > deadline:
            raise h.PortError("nothing listens on %s in the namespace after %.0fs"
                              % (sorted(ports), timeout))
        time.sleep(0.05)


class NsLauncher(h.Launcher):
    """helpers.Launcher (stop() ends it and everything it spawned) of a command inside a
    namespace: `ip netns exec` execs it, so the pid is the command's own."""

    def __init__(self, ns, argv, ports, outfile, udp=False, env=None):
        super().__init__(ns_argv(ns, argv), [], outfile, env=env)
        self.ns = ns
        self.ports = list(ports)
        try:
            if ports:
                wait_ns_listening(self.proc, ports, udp=udp)
        except Exception:
            self.stop()
            raise


def ns_socket_activate(ns, binary, args, addrs, port, outfile):
    """systemd-socket-activate --inetd of binary ARGS on each address:port in ns."""
    keep = []
    for k in h.SANITIZER_ENV:
        if k in os.environ:
            keep += ["-E", k]
    listen = []
    for a in addrs:
        listen += ["-l", ("[%s]:%d" if ":" in a else "%s:%d") % (a, port)]
    argv = ["systemd-socket-activate", "--inetd", "-a"] + listen + keep + \
        [str(binary)] + list(args)
    return NsLauncher(ns, argv, [port], outfile)


# Running Python inside a namespace: fork, setns(2) into the namespace's network, and
# (as ip netns exec does) a mount namespace of its own with /etc/netns/NS/resolv.conf
# bound over /etc/resolv.conf, so getaddrinfo() and dnspython ask the lab's DNS.
_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SLAVE = 1 << 19


def _enter(ns):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(str(NETNS_RUN / ns), os.O_RDONLY)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns %s" % ns)
    os.close(fd)
    resolv = NETNS_ETC / ns / "resolv.conf"
    if resolv.exists():
        if libc.unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_SLAVE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rslave /")
        if libc.mount(str(resolv).encode(), b"/etc/resolv.conf", None, _MS_BIND,
                      None) != 0:
            raise OSError(ctypes.get_errno(), "bind %s" % resolv)


def ns_call(ns, fn, *args, timeout=120, **kw):
    """fn(*args, **kw) in a forked child inside namespace ns; its return value (pickled
    back), or its exception raised here with the child's traceback."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:       # the child: never returns
        os.close(rfd)
        try:
            signal.alarm(int(timeout))
            _enter(ns)
            out = (True, fn(*args, **kw))
        except BaseException as e:     # noqa: B902 - everything goes back to the parent
            out = (False, (e, traceback.format_exc()))
        try:
            data = pickle.dumps(out)
        except Exception as e:
            data = pickle.dumps((False, (RuntimeError("unpicklable result: %r" % e),
                                         traceback.format_exc())))
        with os.fdopen(wfd, "wb") as f:
            f.write(data)
        os._exit(0)
    h._managed.add(pid)
    os.close(wfd)
    try:
        with os.fdopen(rfd, "rb") as f:
            data = f.read()
    finally:
        os.waitpid(pid, 0)
        h._managed.discard(pid)
    if not data:
        raise RuntimeError("the child in %s died without an answer" % ns)
    ok, val = pickle.loads(data)
    if ok:
        return val
    exc, tb = val
    raise RuntimeError("in namespace %s:\n%s" % (ns, tb)) from exc


# --------------------------------------------------------------------------------------
# DNS: dnsmasq in the wire namespace


def _txt_chunks(value):
    """A TXT value as quoted dnsmasq strings of at most 255 bytes each (RFC 1035 3.3)."""
    raw = value.encode()
    parts = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    out = []
    for p in parts:
        s = p.decode("ascii")
        assert '"' not in s and "\\" not in s and "\n" not in s, "TXT value: %r" % value
        out.append('"%s"' % s)
    return ",".join(out)


class Dns:
    """dnsmasq answering for the lab's domains.  .records: {"mx": {domain: [(pref, name)]},
    "host": {name: [addresses]}, "txt": {name: [values]}}; change them with the setters,
    then reload()."""

    def __init__(self, ns, workdir):
        self.ns = ns
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "dnsmasq.conf"
        self.logfile = self.workdir / "dnsmasq.log"
        self.mx = {}
        self.hosts = {}
        self.txt = {}
        self.launcher = None
        self.servers = [DNS_V4, DNS_V6]

    # --- records
    def set_mx(self, domain, targets):
        """targets: [(preference, name)]; [] removes the domain's MX."""
        if targets:
            self.mx[domain] = list(targets)
        else:
            self.mx.pop(domain, None)

    def set_host(self, name, addresses):
        """A/AAAA and PTR of name ([] removes it)."""
        if addresses:
            self.hosts[name] = list(addresses)
        else:
            self.hosts.pop(name, None)

    def set_txt(self, name, values):
        """TXT of name: a string or a list of strings (each one record); None removes."""
        if values is None:
            self.txt.pop(name, None)
        else:
            self.txt[name] = [values] if isinstance(values, str) else list(values)

    def config_text(self):
        lines = [
            "# written by tests/integ/netns.py",
            "port=53",
            "listen-address=%s" % DNS_V4,
            "listen-address=%s" % DNS_V6,
            "bind-interfaces",
            "no-resolv", "no-hosts", "no-poll", "no-negcache",
            "cache-size=0",
            "local=/test/",
            "local=/2.0.192.in-addr.arpa/",
            "local=/8.b.d.0.1.0.0.2.ip6.arpa/",
            "log-queries",
            "log-facility=-",
            "pid-file=",
        ]
        for dom in sorted(self.mx):
            for pref, name in self.mx[dom]:
                lines.append("mx-host=%s,%s,%d" % (dom, name, pref))
        for name in sorted(self.hosts):
            lines.append("host-record=%s,%s" % (name, ",".join(self.hosts[name])))
        for name in sorted(self.txt):
            for v in self.txt[name]:
                lines.append("txt-record=%s,%s" % (name, _txt_chunks(v)))
        return "\n".join(lines) + "\n"

    def start(self):
        self.conf.write_text(self.config_text())
        argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=%s" % self.conf]
        self.launcher = NsLauncher(self.ns, argv, [53], self.logfile, udp=True)
        # UDP 53 bound means bound on both addresses (bind-interfaces binds each first)
        wait = time.monotonic() + 15
        while _listening(self.launcher.proc.pid, {53}, udp=False) != {53}:
            if time.monotonic() > wait:
                raise h.PortError("dnsmasq: no TCP 53")
            time.sleep(0.05)

    def reload(self):
        """Restart with the records as they are now (waits until it answers)."""
        self.stop()
        self.start()

    def stop(self):
        if self.launcher is not None:
            self.launcher.stop()
            self.launcher = None

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""


# --------------------------------------------------------------------------------------
# A host: its namespace, certificate, daemons and user


def config_supports(binary, key):
    """True if the daemon's config parser knows key (config.c refuses unknown keys:
    'unknown key'); the key table's names are strings in the binary."""
    try:
        data = Path(binary).read_bytes()
    except OSError:
        return False
    return re.search(rb"\0" + re.escape(key.encode()) + rb"\0", data) is not None


class Host:
    def __init__(self, lab, role, domain, v4, v6):
        self.lab = lab
        self.role = role
        self.domain = domain
        self.mx = "mx." + domain
        self.v4, self.v6 = v4, v6
        self.ns = "%s-%s" % (lab.prefix, role)
        self.workdir = lab.workdir / ("host-" + role)
        self.smtp = self.imapd = self.pop3d = None
        self.user = None
        self.users = []
        self.ca = None
        self.certdir = None

    def __repr__(self):
        return "<Host %s %s %s %s>" % (self.ns, self.mx, self.v4, self.v6)

    # --- running things inside
    def run(self, argv, check=True, timeout=60, **kw):
        """argv under ip netns exec (resolv.conf of the namespace)."""
        return run(ns_argv(self.ns, argv), check=check, timeout=timeout, **kw)

    def call(self, fn, *args, **kw):
        """fn(*args) in a child inside this host's namespace (see ns_call)."""
        return ns_call(self.ns, fn, *args, **kw)

    def dig(self, *args):
        """dig +short ARGS from this host: the answer lines."""
        r = self.run([DIG, "+short", "+time=3", "+tries=2"] + list(args), check=False)
        assert r.returncode == 0, "dig %s: %s%s" % (args, r.stdout, r.stderr)
        return [l for l in r.stdout.splitlines() if l.strip()]

    def swaks(self, *args, timeout=120):
        """swaks from this host with args (give --server, --port): (exit code, transcript)."""
        argv = ns_argv(self.ns, [h.SWAKS, "--timeout", "60", "--hide-informational"]
                       + [str(a) for a in args])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout + r.stderr

    def smtp_command(self, *args, timeout=120):
        """smtp-submit -c CONFIG ARGS (-q, -bp, -t) inside the namespace."""
        argv = ns_argv(self.ns, [self.smtp.binary, "-c", self.smtp.config_path]
                       + [str(a) for a in args])
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def address(self, user=None):
        return "%s@%s" % ((user or self.user).name, self.domain)

    def link(self, up=True):
        """Put this host on the wire or take it off (the bridge port in the wire ns)."""
        run(ns_argv(self.lab.wire, [IP, "link", "set", "h-" + self.role,
                                    "up" if up else "down"]))

    # --- building
    def build_net(self):
        lab = self.lab
        run([IP, "netns", "add", self.ns])
        lab.namespaces.append(self.ns)
        run([IP, "link", "add", "name", "wire", "netns", self.ns, "type", "veth", "peer",
             "name", "h-" + self.role, "netns", lab.wire])
        nx = lambda *a: run(ns_argv(self.ns, [IP] + list(a)))   # noqa: E731
        wx = lambda *a: run(ns_argv(lab.wire, [IP] + list(a)))  # noqa: E731
        wx("link", "set", "h-" + self.role, "master", "br0", "up")
        nx("link", "set", "lo", "up")
        nx("addr", "add", self.v4 + "/24", "dev", "wire")
        nx("-6", "addr", "add", self.v6 + "/64", "dev", "wire", "nodad")
        nx("link", "set", "wire", "up")
        nx("route", "add", DNS_NET_V4, "dev", "wire")
        nx("-6", "route", "add", DNS_NET_V6, "dev", "wire")
        lab.write_resolv(self.ns)

    def build_daemons(self, bins, san):
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        self.certdir = self.workdir / "tls"
        run(["sh", h.REPO / "mkcert.sh", "-d", self.certdir, self.mx, self.v4, self.v6],
            timeout=120)
        self.ca = self.certdir / "ca.crt"
        self.user = h.MailUser("maildir")
        self.users.append(self.user)

        self.smtp = h.SmtpDaemon(bins["smtp-submit"], self.workdir / "smtp",
                                 self.certdir, inetd_env_keep=san)
        self.smtp.configure(hostname=self.mx, local_domains=self.domain)
        if self.lab.dns_servers_key:
            self.smtp.configure(dns_servers=" ".join(self.lab.dns.servers))
        self.imapd = h.Daemon(bins["imapd"], self.workdir / "imapd", self.certdir,
                              inetd_env_keep=san, name="imapd")
        self.pop3d = h.Daemon(bins["ipop3d"], self.workdir / "ipop3d", self.certdir,
                              inetd_env_keep=san, name="ipop3d")
        addrs = [self.v4, self.v6]
        for d, mode, port in ((self.smtp, ["-m", "mx"], 25),
                              (self.smtp, ["-m", "submission"], 587),
                              (self.smtp, ["-m", "smtps"], 465),
                              (self.imapd, ["-s"], 993),
                              (self.pop3d, ["-s"], 995)):
            d.launchers.append(ns_socket_activate(
                self.ns, d.binary, mode + ["-c", str(d.config_path)], addrs, port,
                d.workdir / ("ssa-%d.out" % port)))
        self.smtp.mx_port, self.smtp.port, self.smtp.tls_port = 25, 587, 465
        self.imapd.tls_port = 993
        self.pop3d.tls_port = 995

    def stop(self):
        """Stop the daemons, remove the users; sanitizer reports of the launchers."""
        reports = []
        for d in (self.smtp, self.imapd, self.pop3d):
            if d is not None:
                reports += d.stop()
        for u in self.users:
            u.remove()
        self.users = []
        return reports


class Lab:
    """The network, the DNS and the hosts.  Build with add_host() then start(); always
    close() (the fixtures do; start() closes by itself when it fails).

    bins: {"smtp-submit": path, "imapd": path, "ipop3d": path}.  fail_at: a test hook,
    the name of a build step after which start() raises (see STEPS)."""

    STEPS = ("wire", "hosts", "dns", "daemons")

    def __init__(self, workdir, bins, san=False, fail_at=None):
        self.tok = secrets.token_hex(3)
        self.prefix = "%s%d-%s" % (NS_PREFIX, os.getpid(), self.tok)
        self.wire = self.prefix + "-net"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        self.bins = bins
        self.san = san
        self.fail_at = fail_at
        self.namespaces = []
        self.hosts = {}
        self.dns = Dns(self.wire, self.workdir / "dns")
        self.dns_servers_key = config_supports(bins["smtp-submit"], "dns_servers")
        self.closed = False
        self.at_failure = None

    def add_host(self, role, domain, v4, v6):
        """A host (role: a short name, [a-z0-9]) for domain: its MX mx.DOMAIN at v4, v6."""
        assert re.fullmatch(r"[a-z0-9]{1,8}", role), role
        host = Host(self, role, domain, v4, v6)
        self.hosts[role] = host
        self.dns.set_mx(domain, [(10, host.mx)])
        self.dns.set_host(host.mx, [v4, v6])
        return host

    def write_resolv(self, ns):
        text = "# tests/integ/netns.py\nnameserver %s\nnameserver %s\n" \
               "options timeout:2 attempts:2\n" % (DNS_V4, DNS_V6)
        for _ in range(20):       # a concurrent sweep may rmdir an empty /etc/netns
            try:
                (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
                (NETNS_ETC / ns / "resolv.conf").write_text(text)
                return
            except FileNotFoundError:
                time.sleep(0.01)
        raise RuntimeError("cannot write /etc/netns/%s/resolv.conf" % ns)

    def _step(self, name):
        if self.fail_at == name:
            # what exists at the failure, for the test that proves it is all removed
            self.at_failure = {
                "namespaces": [n for n in ns_list() if n.startswith(self.prefix)],
                "pids": [pid for pid, _ in self.processes()],
                "users": [u.name for hh in self.hosts.values() for u in hh.users],
            }
            raise RuntimeError("netns: injected failure after step %r" % name)

    def start(self, daemons=True):
        """Build it all (daemons=False: the network and the DNS only)."""
        try:
            run([IP, "netns", "add", self.wire])
            self.namespaces.append(self.wire)
            wx = lambda *a: run(ns_argv(self.wire, [IP] + list(a)))   # noqa: E731
            wx("link", "set", "lo", "up")
            wx("link", "add", "br0", "type", "bridge")
            wx("addr", "add", DNS_V4 + "/24", "dev", "br0")
            wx("-6", "addr", "add", DNS_V6 + "/64", "dev", "br0", "nodad")
            wx("link", "set", "br0", "up")
            wx("route", "add", HOST_NET_V4, "dev", "br0")
            wx("-6", "route", "add", HOST_NET_V6, "dev", "br0")
            self._step("wire")
            for host in self.hosts.values():
                host.build_net()
            self._step("hosts")
            self.dns.start()
            self._step("dns")
            if daemons:
                for host in self.hosts.values():
                    host.build_daemons(self.bins, self.san)
                self._step("daemons")
        except BaseException:
            self.close()
            raise
        return self

    def processes(self):
        """(pid, ns) of every process in the lab's namespaces."""
        return [(pid, ns) for ns in self.namespaces if ns in ns_list()
                for pid in ns_pids(ns)]

    def close(self):
        """Stop everything, delete the namespaces; sanitizer reports of the launchers."""
        if self.closed:
            return []
        self.closed = True
        reports = []
        errors = []
        for host in self.hosts.values():
            try:
                reports += host.stop()
            except Exception:
                errors.append(traceback.format_exc())
        try:
            self.dns.stop()
        except Exception:
            errors.append(traceback.format_exc())
        for ns in reversed(self.namespaces + [hh.ns for hh in self.hosts.values()]
                           + [self.wire]):
            try:
                remove_namespace(ns)
            except Exception:
                errors.append(traceback.format_exc())
        _rmdir_etc_netns()
        if errors:
            raise RuntimeError("netns teardown:\n" + "\n".join(errors))
        return reports

    def leftovers(self):
        """What of this lab is still there: namespaces, /etc/netns dirs (empty when clean)."""
        out = [n for n in ns_list() if n.startswith(self.prefix)]
        if NETNS_ETC.exists():
            out += [str(NETNS_ETC / n) for n in os.listdir(NETNS_ETC)
                    if n.startswith(self.prefix)]
        return out


def two_domains(workdir, bins, san=False, fail_at=None):
    """The classroom set-up: host a = 163.test (192.0.2.1, 2001:db8::1), host b =
    sina.test (192.0.2.2, 2001:db8::2), started.  Close it."""
    lab = Lab(workdir, bins, san=san, fail_at=fail_at)
    lab.add_host("a", "163.test", "192.0.2.1", "2001:db8::1")
    lab.add_host("b", "sina.test", "192.0.2.2", "2001:db8::2")
    return lab.start()


# --------------------------------------------------------------------------------------
# pytest fixtures (imported by conftest.py)

import pytest  # noqa: E402


def _san_new(san_dir, before):
    new = [p for p in sorted(Path(san_dir).iterdir()) if p.is_file() and p not in before]
    out = ["== %s\n%s" % (p.name, p.read_text(errors="replace")[:20000]) for p in new]
    for p in new:
        p.rename(p.with_name("seen-" + p.name))
    return out


def _san_files(san_dir):
    return {p for p in Path(san_dir).iterdir() if p.is_file()}


@pytest.fixture(scope="session")
def netns_bins(suite_env, spool_user):
    """The three daemons under test (POSTERN_SMTP_SUBMIT, POSTERN_IMAPD, POSTERN_IPOP3D)
    and whether any is a sanitizer build; skips where ip netns or dnsmasq is missing."""
    for tool in (IP, DNSMASQ, DIG, h.SWAKS):
        if not Path(tool).exists():
            pytest.skip("%s is missing: sh tests/install-deps.sh" % tool)
    bins = {}
    for name in ("smtp-submit", "imapd", "ipop3d"):
        b = h.binary_path(name)
        if not (b.is_file() and os.access(b, os.X_OK)):
            pytest.fail("no executable %s: build it first (make all, or make SAN=1 ...)" % b)
        bins[name] = b
    san = any(h.is_sanitizer_build(b) for b in bins.values())
    # network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN (a container without them:
    # skipped, with ip's own words)
    probe = "%s%d-%s-probe" % (NS_PREFIX, os.getpid(), secrets.token_hex(3))
    r = run([IP, "netns", "add", probe], check=False)
    remove_namespace(probe)
    if r.returncode != 0:
        pytest.skip("ip netns add fails here: %s" % (r.stderr.strip() or r.returncode))
    return bins, san


@pytest.fixture
def make_lab(netns_bins, suite_env, request):
    """make_lab(fail_at=None, two=True) -> a started Lab (two=True: two_domains(); else
    an empty Lab to add_host() and start() yourself).  Every lab is closed at teardown;
    sanitizer reports during the test fail it."""
    bins, san = netns_bins
    before = _san_files(suite_env.san)
    labs = []
    base = suite_env.root / ("n-" + request.node.name.replace("/", "_")[:80])

    def make(fail_at=None, two=True):
        lab = Lab(Path("%s-%d" % (base, len(labs))), bins, san=san, fail_at=fail_at)
        labs.append(lab)
        if not two:
            return lab
        lab.add_host("a", "163.test", "192.0.2.1", "2001:db8::1")
        lab.add_host("b", "sina.test", "192.0.2.2", "2001:db8::2")
        return lab.start()

    yield make
    reports = []
    for lab in labs:
        reports += lab.close()
    reports += _san_new(suite_env.san, before)
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture(scope="module")
def _two_domains_module(netns_bins, suite_env, request):
    bins, san = netns_bins
    lab = two_domains(suite_env.root / ("n-" + request.module.__name__), bins, san=san)
    yield lab
    reports = lab.close()
    if reports:
        pytest.fail("sanitizer reports of the lab's launchers:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture
def lab(_two_domains_module, suite_env):
    """The two-domain lab shared by a test module (163.test on host a, sina.test on host
    b; see two_domains()); sanitizer reports during a test fail that test."""
    before = _san_files(suite_env.san)
    yield _two_domains_module
    reports = _san_new(suite_env.san, before)
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)
