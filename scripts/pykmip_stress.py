#!/usr/bin/env python3
"""Concurrent load against one PyKMIP lab instance, to reproduce (or rule out) server crashes.

Starts PROCS worker processes with THREADS client threads each. Every thread has its own
PyKMIP ProxyKmipClient (the lab's client identity, KMIP 1.1, TLS 1.2) and loops until the
time is up: Create an AES-256 key with a unique Name, Locate it by Name, GetAttributes, Get,
Activate, Revoke, Destroy; every LOCATE_ALL-th round it also Locates every object the identity
owns (the server then loads all rows, the operation seen crashing). Every RECONNECT-th round a
thread closes and reopens its connection, so TLS handshakes run beside requests. A request
that fails on the connection (a crashed server) reopens the connection and carries on.

Optional load of other shapes, each seen in the test suite: --abort resets a connection while
the server works on a Locate of everything, --probe makes bare TCP connects (readiness
probes), --idle keeps connections that sit idle past the server's 10 s socket timeout between
Gets (mysqld's pooled connections), --cli runs our own client (keyring-okv generate, list
with batched Get Attributes, fetch, remove), --freeze stops the server with SIGSTOP for a
while (tests/plugin/ops_mysql.rs).

Before the load, BASE keys named stress-base are created (kept for later runs) so that
Locate has rows to load. The run is bounded by --seconds, every request by --timeout.

Crashes are counted from the instance's console log: scripts/pykmip.sh restarts a server that
dies of a signal and writes "server died with status N" there, after faulthandler's
traceback. The report (JSON on stdout) gives operations, errors by kind, crashes and the
first lines of each traceback. Exit status: 0 no crash, 1 at least one crash, 2 usage or
setup error.

  KEYRING_OKV_PYKMIP_NAME=stress scripts/pykmip.sh start
  KEYRING_OKV_PYKMIP_NAME=stress .lab/pykmip/venv/bin/python scripts/pykmip_stress.py \
      --procs 3 --threads 4 --idle 2 --abort 5 --probe 4 --seconds 600 \
      [--cli target/debug/keyring-okv] [--freeze 4]

Options: --port (default: the selected instance's port file), --certs DIR, --console FILE
(default: the selected instance's console.log). KEYRING_OKV_LAB and KEYRING_OKV_PYKMIP_NAME
select the lab and instance as in pykmip.sh. Only 127.0.0.1 is ever contacted.
"""

import argparse
import collections
import json
import logging
import multiprocessing
import os
import random
import signal
import re
import socket
import struct
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPT_DIR)
HOST = "127.0.0.1"


def lab_dir():
    root = os.environ.get("KEYRING_OKV_LAB") or os.path.join(REPO_ROOT, ".lab")
    return os.path.join(os.path.abspath(root), "pykmip")


def state_dir():
    name = os.environ.get("KEYRING_OKV_PYKMIP_NAME", "")
    if name in ("", "main"):
        return lab_dir()
    return os.path.join(lab_dir(), "pykmip-" + name)


try:
    from kmip import enums
    from kmip.core.factories import attributes as attr_factory
    from kmip.pie import client as pie_client
except ImportError:
    venv = os.path.join(lab_dir(), "venv")
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv) \
            and not os.environ.get("_PYKMIP_STRESS_REEXEC"):
        os.environ["_PYKMIP_STRESS_REEXEC"] = "1"
        os.execv(venv_python, [venv_python, "-W", "ignore", os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("pykmip_stress: PyKMIP is not importable; run scripts/pykmip.sh setup\n")
    sys.exit(2)

DIED = re.compile(r"server died with status (\d+)")


def make_client(args):
    c = pie_client.ProxyKmipClient(
        hostname=HOST,
        port=args.port,
        cert=os.path.join(args.certs, "client.crt"),
        key=os.path.join(args.certs, "client.key"),
        ca=os.path.join(args.certs, "ca.crt"),
        ssl_version="PROTOCOL_TLSv1_2",
        config_file=os.devnull,
        kmip_version=enums.KMIPVersion.KMIP_1_1,
    )
    c.proxy.timeout = args.timeout
    return c


def name_attr(name):
    return attr_factory.AttributeFactory().create_attribute(enums.AttributeType.NAME, name)


class Aborted(Exception):
    pass


def hard_close(sock):
    """Close with RST (SO_LINGER 0) instead of a TLS close_notify and FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class Worker:
    """One client thread: its own connection, its own counters."""

    def __init__(self, args, tag, deadline):
        self.args, self.tag, self.deadline = args, tag, deadline
        self.ops = collections.Counter()
        self.errors = collections.Counter()
        self.first_error = {}
        self.client = None

    def connect(self):
        self.close()
        c = make_client(self.args)
        c.open()
        self.client = c

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None

    def op(self, label, fn, *a, **kw):
        r = fn(*a, **kw)
        self.ops[label] += 1
        return r

    def round(self, i):
        c = self.client
        name = "stress-%s-%d" % (self.tag, i)
        uid = self.op("create", c.create, enums.CryptographicAlgorithm.AES, 256, name=name)
        found = self.op("locate", c.locate, attributes=[name_attr(name)])
        if found != [uid]:
            raise AssertionError("Locate(%s) gave %r, expected [%r]" % (name, found, uid))
        self.op("get_attributes", c.get_attributes, uid)
        self.op("get", c.get, uid)
        self.op("activate", c.activate, uid)
        self.op("revoke", c.revoke, enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        self.op("destroy", c.destroy, uid)
        if self.args.locate_all and i % self.args.locate_all == 0:
            self.op("locate_all", c.locate)
        if self.args.abort and i % self.args.abort == 0:
            self.abort_locate_all()
        if self.args.probe and i % self.args.probe == 0:
            self.probe()

    def abort_locate_all(self):
        """Send a Locate of everything and reset the connection before the answer."""
        proxy = self.client.proxy

        def send_only(request):
            proxy._send_message(request)
            raise Aborted()

        proxy._send_and_receive_message = send_only
        try:
            self.client.locate()
        except Aborted:
            pass
        hard_close(proxy.socket)
        self.client = None
        self.ops["aborted_locate_all"] += 1

    def probe(self):
        """A bare TCP connect and reset, as a readiness probe does."""
        s = socket.create_connection((HOST, self.args.port), timeout=self.args.timeout)
        hard_close(s)
        self.ops["tcp_probe"] += 1

    def run(self):
        i = 0
        while time.monotonic() < self.deadline:
            i += 1
            try:
                if self.client is None or (self.args.reconnect and i % self.args.reconnect == 0):
                    self.connect()
                self.round(i)
            except Exception as e:
                self.errors[type(e).__name__] += 1
                self.first_error.setdefault(type(e).__name__, "%s" % e)
                # The connection may be dead (crashed server): start over on a new one.
                self.close()
                time.sleep(0.05)
        self.close()


class IdleWorker(Worker):
    """A pooled connection as mysqld keeps one: a Get now and then, idle in between for
    longer than the server's 10 s socket timeout."""

    def run(self):
        rnd = random.Random(self.tag)
        uid = None
        while time.monotonic() < self.deadline:
            try:
                if self.client is None:
                    self.connect()
                if uid is None:
                    uid = self.op("create", self.client.create, enums.CryptographicAlgorithm.AES,
                                  256, name="stress-idle-" + self.tag)
                self.op("idle_get", self.client.get, uid)
            except Exception as e:
                self.errors[type(e).__name__] += 1
                self.first_error.setdefault(type(e).__name__, "%s" % e)
                self.close()
            pause = min(rnd.uniform(8.0, 14.0), max(0.0, self.deadline - time.monotonic()))
            time.sleep(pause)
        self.close()


class CliWorker(Worker):
    """Our own client through the admin CLI (keyring-okv with the instance's conf dir):
    generate, list (batched Get Attributes), fetch, remove."""

    def run(self):
        import subprocess
        conf = os.path.join(state_dir(), "confdir")
        i = 0
        while time.monotonic() < self.deadline:
            i += 1
            key = "stress-cli-%s-%d" % (self.tag, i)
            for label, argv in (("cli_generate", ["generate", key, "AES", "32"]),
                                ("cli_list", ["list"]),
                                ("cli_fetch", ["fetch", key]),
                                ("cli_remove", ["remove", key])):
                try:
                    r = subprocess.run([self.args.cli, "--conf-dir", conf] + argv,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       timeout=3 * self.args.timeout + 30)
                except subprocess.TimeoutExpired:
                    self.errors[label + "_timeout"] += 1
                    continue
                if r.returncode == 0:
                    self.ops[label] += 1
                else:
                    self.errors["%s_exit_%d" % (label, r.returncode)] += 1
                    self.first_error.setdefault(label, r.stderr.decode("utf-8", "replace")[-300:])


def process_main(args, pidx, deadline, queue):
    workers = [Worker(args, "%d-%d-%d" % (os.getpid(), pidx, t), deadline)
               for t in range(args.threads)]
    workers += [IdleWorker(args, "%d-%d-idle%d" % (os.getpid(), pidx, t), deadline)
                for t in range(args.idle)]
    if args.cli:
        workers += [CliWorker(args, "%d-%d-cli%d" % (os.getpid(), pidx, t), deadline)
                    for t in range(args.cli_threads)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 3 * args.timeout + 10)
    ops, errors, first = collections.Counter(), collections.Counter(), {}
    for w in workers:
        ops.update(w.ops)
        errors.update(w.errors)
        for k, v in w.first_error.items():
            first.setdefault(k, v[:300])
    queue.put((dict(ops), dict(errors), first))


def ensure_base_keys(args):
    if args.base <= 0:
        return 0
    c = make_client(args)
    c.open()
    try:
        have = len(c.locate(attributes=[name_attr("stress-base")]))
        for _ in range(have, args.base):
            c.create(enums.CryptographicAlgorithm.AES, 256, name="stress-base")
        return len(c.locate())
    finally:
        c.close()


def console_crashes(path, offset):
    """(exit statuses, traceback excerpts) appended to the console log after offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return [], []
    statuses = [int(m.group(1)) for m in DIED.finditer(text)]
    excerpts = []
    for block in re.split(r"(?=^Fatal Python error)", text, flags=re.M):
        if block.startswith("Fatal Python error"):
            excerpts.append([ln for ln in block.splitlines() if ln.strip()][:14])
    return statuses, excerpts


def default_port():
    with open(os.path.join(state_dir(), "port")) as f:
        return int(f.read().strip())


def parse_args(argv):
    p = argparse.ArgumentParser(prog="pykmip_stress.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int)
    p.add_argument("--certs", metavar="DIR")
    p.add_argument("--console", metavar="FILE")
    p.add_argument("--procs", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--threads", type=int, default=4, help="client threads per process (default 4)")
    p.add_argument("--seconds", type=float, default=180.0, help="length of the run (default 180)")
    p.add_argument("--timeout", type=int, default=20, help="socket timeout per request (default 20)")
    p.add_argument("--base", type=int, default=200, help="long-lived keys for Locate to load (default 200)")
    p.add_argument("--locate-all", type=int, default=5, metavar="K",
                   help="Locate everything every K-th round (0: never; default 5)")
    p.add_argument("--reconnect", type=int, default=10, metavar="K",
                   help="reconnect every K-th round (0: never; default 10)")
    p.add_argument("--abort", type=int, default=0, metavar="K",
                   help="every K-th round, reset the connection during a Locate of everything (0: never)")
    p.add_argument("--idle", type=int, default=0, metavar="N",
                   help="per process, N more connections that Get every 8-14 s (0: none)")
    p.add_argument("--cli", metavar="PATH",
                   help="also drive our own client: this keyring-okv binary with the instance's conf dir")
    p.add_argument("--cli-threads", type=int, default=1, metavar="N",
                   help="per process, N threads running --cli in a loop (default 1)")
    p.add_argument("--freeze", type=float, default=0.0, metavar="S",
                   help="every 20 s, stop the server's process group with SIGSTOP for S seconds "
                        "(as tests/plugin/ops_mysql.rs does; needs the instance's pid file; 0: never)")
    p.add_argument("--probe", type=int, default=0, metavar="K",
                   help="every K-th round, a bare TCP connect and reset (0: never)")
    a = p.parse_args(argv)
    if a.procs < 1 or a.threads < 1 or not 0 < a.seconds <= 3600:
        p.error("need procs >= 1, threads >= 1, 0 < seconds <= 3600")
    a.certs = a.certs or os.path.join(lab_dir(), "certs")
    a.console = a.console or os.path.join(state_dir(), "console.log")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.port is None:
            args.port = default_port()
        objects = ensure_base_keys(args)
    except Exception as e:
        sys.stderr.write("pykmip_stress: setup against %s:%s failed: %s: %s\n"
                         % (HOST, args.port, type(e).__name__, e))
        return 2
    try:
        offset = os.path.getsize(args.console)
    except OSError:
        offset = 0
    start = time.monotonic()
    deadline = start + args.seconds
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=process_main, args=(args, i, deadline, queue))
             for i in range(args.procs)]
    for p in procs:
        p.start()
    freezes = 0
    if args.freeze > 0:
        with open(os.path.join(state_dir(), "pid")) as f:
            pgid = int(f.read().strip())
        while time.monotonic() + 20 + args.freeze < deadline:
            time.sleep(20)
            os.killpg(pgid, signal.SIGSTOP)
            try:
                time.sleep(args.freeze)
            finally:
                os.killpg(pgid, signal.SIGCONT)
            freezes += 1
    ops, errors, first = collections.Counter(), collections.Counter(), {}
    for _ in procs:
        try:
            o, e, f = queue.get(timeout=max(0.0, deadline - time.monotonic()) + 3 * args.timeout + 30)
        except Exception:
            errors["worker_process_lost"] += 1
            continue
        ops.update(o)
        errors.update(e)
        for k, v in f.items():
            first.setdefault(k, v)
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    elapsed = time.monotonic() - start
    statuses, excerpts = console_crashes(args.console, offset)
    report = {
        "port": args.port, "procs": args.procs, "threads": args.threads,
        "seconds": round(elapsed, 1), "objects_at_start": objects,
        "ops": dict(sorted(ops.items())), "ops_total": sum(ops.values()),
        "ops_per_sec": round(sum(ops.values()) / elapsed, 1),
        "errors": dict(sorted(errors.items())),
        "first_error_of_each_kind": first,
        "freezes": freezes,
        "crashes": len(statuses), "crash_statuses": statuses,
        "tracebacks": excerpts[:5],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if statuses else 0


if __name__ == "__main__":
    sys.exit(main())
