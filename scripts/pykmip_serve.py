#!/usr/bin/env python3
"""Runs PyKMIP's server (pykmip-server) on a listening socket that outlives the server process.

The lab's PyKMIP server has been seen to die of SIGSEGV under concurrent load (docs/pykmip.md,
"Stability"). It is started again at once, but while it starts (a second or two) its port would
refuse connections, and every test that connects at that moment would fail as if the KMIP
server were down. So this supervisor binds and listens on the port itself and keeps the socket:
each server process it starts serves the inherited socket, and connections made while a new one
starts wait in the socket's queue instead of being refused. Requests in flight at a crash still
fail, as with any server that dies.

  pykmip_serve.py HOST PORT PYKMIP_SERVER_SCRIPT -f CONF -l LOG
  pykmip_serve.py child FD PYKMIP_SERVER_SCRIPT -f CONF -l LOG     (run by the supervisor)

With KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1 in its environment the server refuses a Create or a
Register under a Name that an object it holds already carries (Object Already Exists), as key
managers that keep names unique do; PyKMIP itself does not. The tests and benchmarks of the
create race rule's no-wait path use it (docs/keys.md, "Create races between processes").

Exit status: the server's when it ends other than by a crash (SIGINT from `pykmip.sh stop`
ends both); a crash (SIGSEGV, SIGABRT, SIGBUS, SIGFPE) starts a new server process and says so
on stderr.
"""

import os
import runpy
import signal
import socket
import ssl
import subprocess
import sys

CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE}


def adopt_orphans():
    """Makes the processes a crashed server leaves behind (its policy monitor and
    multiprocessing manager, which do not end by themselves) children of this one."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def end_orphans():
    """Kills and reaps the processes a crashed server left behind, now this one's children."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                ppid = f.read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == me:
            try:
                os.kill(int(entry), signal.SIGKILL)
                os.waitpid(int(entry), 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def supervise(host, port, server_args):
    adopt_orphans()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    stopping = False

    def stop(signum, _frame):
        # The process group gets the signal too (pykmip.sh signals the group): the server
        # ends by itself; this process waits for it and then ends.
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        child = subprocess.Popen(
            [sys.executable, "-W", "ignore", os.path.abspath(__file__), "child", str(fd)]
            + server_args,
            pass_fds=(fd,),
        )
        rc = child.wait()
        crashed = rc < 0 and -rc in CRASH_SIGNALS
        if stopping or not crashed:
            sys.exit(rc if rc >= 0 else 128 - rc)
        print(
            f"pykmip: server died with status {128 - rc}; restarting it on the same port",
            file=sys.stderr,
            flush=True,
        )
        end_orphans()


def keep_names_unique():
    """Refuses a Name that an object already carries before PyKMIP sets it on a new object.

    PyKMIP's engine handles one request at a time (process_request holds its lock), so the
    look-up and the insert that follows cannot interleave with another connection's."""
    from kmip.core import enums, exceptions
    from kmip.pie import objects, sqltypes
    from kmip.services.server import engine as engine_module

    engine_class = engine_module.KmipEngine
    set_attribute = engine_class._set_attribute_on_managed_object

    def set_attribute_if_name_free(self, managed_object, attribute):
        if attribute[0] == "Name":
            for name in attribute[1]:
                value = name.name_value.value
                # Through the objects: PyKMIP's Destroy deletes an object with a bulk delete,
                # which leaves its rows of names behind.
                in_use = (
                    self._data_session.query(objects.ManagedObject.unique_identifier)
                    .filter(
                        objects.ManagedObject._names.any(sqltypes.ManagedObjectName.name == value)
                    )
                    .first()
                )
                if in_use is not None:
                    raise exceptions.KmipError(
                        status=enums.ResultStatus.OPERATION_FAILED,
                        reason=enums.ResultReason.OBJECT_ALREADY_EXISTS,
                        message="An object with this Name already exists.",
                    )
        return set_attribute(self, managed_object, attribute)

    engine_class._set_attribute_on_managed_object = set_attribute_if_name_free


def serve_inherited(fd, server_script, args):
    if os.environ.get("KEYRING_OKV_PYKMIP_UNIQUE_NAMES") == "1":
        keep_names_unique()
    inherited = socket.socket(fileno=fd)
    bound = inherited.getsockname()

    class InheritedSSLSocket(ssl.SSLSocket):
        """PyKMIP binds and listens itself: the inherited socket already does both."""

        def bind(self, address):
            if (socket.gethostbyname(address[0]), int(address[1])) != bound:
                raise OSError(f"the inherited socket is bound to {bound}, not {address}")

        def listen(self, backlog=None):
            pass

    ssl.SSLContext.sslsocket_class = InheritedSSLSocket

    class SocketModule:
        """PyKMIP's server module's `socket`, whose socket() gives the inherited socket once."""

        def __init__(self):
            self.handed = False

        def __getattr__(self, name):
            return getattr(socket, name)

        def socket(self, *a, **kw):
            if not self.handed:
                self.handed = True
                # PyKMIP sets a default timeout just before, so that accept() returns now and
                # then and a stop is noticed: the inherited socket was made before it.
                inherited.settimeout(socket.getdefaulttimeout())
                return inherited
            return socket.socket(*a, **kw)

    import kmip.services.server.server as server_module

    server_module.socket = SocketModule()
    sys.argv = [server_script] + args
    runpy.run_path(server_script, run_name="__main__")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "child":
        serve_inherited(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    elif len(sys.argv) >= 4:
        supervise(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
