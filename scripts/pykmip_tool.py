#!/usr/bin/env python3
"""Inspect the PyKMIP test server with PyKMIP's own client (KMIP 1.1, mutual TLS 1.2).

Uses the lab's client identity, so it sees exactly the objects keyring_okv wrote with the
lab conf dir (PyKMIP's default policy lets only the owner, i.e. the client cert CN, see
an object). Every subcommand prints JSON on stdout; exit 0 on success, 1 on error (message
on stderr), 2 on usage errors.

  pykmip_tool.py list
  pykmip_tool.py find NAME
  pykmip_tool.py get UID
  pykmip_tool.py bench-get UID N
  pykmip_tool.py create-aes NAME BITS
  pykmip_tool.py destroy UID

Options: --port PORT (default: $KEYRING_OKV_PYKMIP_PORT, else the running lab instance's
port file), --certs DIR (ca.crt, client.crt, client.key; default: $KEYRING_OKV_PYKMIP_CERTS,
else the lab's certs), --host (default 127.0.0.1), --timeout SECONDS.
KEYRING_OKV_LAB and KEYRING_OKV_PYKMIP_NAME select the lab and instance as in pykmip.sh.
Run it with the lab venv's python; with another interpreter it re-executes itself under
the lab venv's python when PyKMIP is not importable.
"""

import argparse
import json
import logging
import os
import sys
import time
import warnings

warnings.simplefilter("ignore")  # cryptography deprecation warnings on PyKMIP import
logging.disable(logging.CRITICAL)  # PyKMIP logs to the root logger otherwise

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPT_DIR)


def lab_dir():
    root = os.environ.get("KEYRING_OKV_LAB") or os.path.join(REPO_ROOT, ".lab")
    return os.path.join(os.path.abspath(root), "pykmip")


def instance():
    """(state dir, env var prefix) of the selected instance, as pykmip.sh computes them."""
    name = os.environ.get("KEYRING_OKV_PYKMIP_NAME", "")
    if name in ("", "main"):
        return lab_dir(), "KEYRING_OKV_PYKMIP"
    return os.path.join(lab_dir(), "pykmip-" + name), "KEYRING_OKV_PYKMIP_" + name.upper()


try:
    from kmip import enums
    from kmip.core import exceptions as core_exceptions
    from kmip.core.factories import attributes as attr_factory
    from kmip.pie import client as pie_client
    from kmip.pie import exceptions as pie_exceptions
except ImportError:
    venv = os.path.join(lab_dir(), "venv")
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv) \
            and not os.environ.get("_PYKMIP_TOOL_REEXEC"):
        os.environ["_PYKMIP_TOOL_REEXEC"] = "1"
        os.execv(venv_python, [venv_python, "-W", "ignore", os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("pykmip_tool: PyKMIP is not importable; run scripts/pykmip.sh setup "
                     "and use the lab venv's python\n")
    sys.exit(1)


class ToolError(Exception):
    pass


def default_port():
    state, prefix = instance()
    env = os.environ.get(prefix + "_PORT")
    if env:
        return int(env)
    try:
        with open(os.path.join(state, "port")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        raise ToolError("no port: pass --port, set %s_PORT, or start the server "
                        "(scripts/pykmip.sh start)" % prefix)


def make_client(args):
    certs = args.certs or os.environ.get("KEYRING_OKV_PYKMIP_CERTS") or os.path.join(lab_dir(), "certs")
    paths = {k: os.path.join(certs, f) for k, f in
             (("cert", "client.crt"), ("key", "client.key"), ("ca", "ca.crt"))}
    for p in paths.values():
        if not os.path.isfile(p):
            raise ToolError("missing %s (run scripts/pykmip.sh setup or pass --certs)" % p)
    port = args.port if args.port is not None else default_port()
    c = pie_client.ProxyKmipClient(
        hostname=args.host,
        port=port,
        cert=paths["cert"],
        key=paths["key"],
        ca=paths["ca"],
        ssl_version="PROTOCOL_TLSv1_2",
        config_file=os.devnull,  # never read /etc/pykmip/pykmip.conf or ~/.pykmip
        kmip_version=enums.KMIPVersion.KMIP_1_1,
    )
    c.proxy.timeout = args.timeout
    return c


def enum_name(v):
    return v.name if hasattr(v, "name") else v


def describe(c, uid):
    """Object details from GetAttributes (all attributes)."""
    _, attrs = c.get_attributes(uid)
    d = {"uid": uid, "object_type": None, "names": [], "state": None,
         "algorithm": None, "length": None}
    for a in attrs:
        name = a.attribute_name.value
        val = a.attribute_value
        if name == "Name":
            d["names"].append(val.name_value.value)
        elif name == "Object Type":
            d["object_type"] = enum_name(val.value)
        elif name == "State":
            d["state"] = enum_name(val.value)
        elif name == "Cryptographic Algorithm":
            d["algorithm"] = enum_name(val.value)
        elif name == "Cryptographic Length":
            d["length"] = val.value
    return d


def uid_sort_key(uid):
    return (0, int(uid), uid) if uid.isdigit() else (1, 0, uid)


def cmd_list(c, args):
    return [describe(c, u) for u in sorted(c.locate(), key=uid_sort_key)]


def cmd_find(c, args):
    name_attr = attr_factory.AttributeFactory().create_attribute(enums.AttributeType.NAME, args.name)
    return [describe(c, u) for u in sorted(c.locate(attributes=[name_attr]), key=uid_sort_key)]


def cmd_get(c, args):
    obj = c.get(args.uid)
    out = {"uid": args.uid, "object_type": enum_name(obj.object_type)}
    for field, key in (("cryptographic_algorithm", "algorithm"), ("cryptographic_length", "length"),
                       ("data_type", "data_type"), ("opaque_type", "opaque_type")):
        if hasattr(obj, field):
            out[key] = enum_name(getattr(obj, field))
    value = getattr(obj, "value", None)
    out["value_hex"] = value.hex() if isinstance(value, (bytes, bytearray)) else None
    out["value_len"] = len(value) if isinstance(value, (bytes, bytearray)) else None
    # The pie object's names are client-side defaults, not what the server stores.
    d = describe(c, args.uid)
    out["names"], out["state"] = d["names"], d["state"]
    return out


def cmd_bench_get(c, args):
    if args.n < 1:
        raise ToolError("N must be >= 1")
    c.get(args.uid)  # warm-up: fails fast on a bad uid, not counted
    t0 = time.perf_counter()
    for _ in range(args.n):
        c.get(args.uid)
    s = time.perf_counter() - t0
    return {"ops": args.n, "seconds": round(s, 4), "ops_per_sec": round(args.n / s, 1),
            "ms_per_op": round(s * 1000.0 / args.n, 3)}


def cmd_create_aes(c, args):
    if args.bits not in (128, 192, 256):
        raise ToolError("BITS must be 128, 192 or 256")
    uid = c.create(enums.CryptographicAlgorithm.AES, args.bits, name=args.name)
    return describe(c, uid)


def cmd_destroy(c, args):
    d = describe(c, args.uid)
    revoked = False
    if d["state"] in ("ACTIVE", "SUSPENDED"):  # PyKMIP refuses to destroy an active object
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, args.uid)
        revoked = True
    c.destroy(args.uid)
    return {"uid": args.uid, "previous_state": d["state"], "revoked": revoked, "destroyed": True}


def cmd_revoke(c, args):
    d = describe(c, args.uid)
    if args.compromised:
        c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, args.uid,
                 compromise_occurrence_date=int(time.time()))
    else:
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, args.uid)
    return {"uid": args.uid, "previous_state": d["state"], "state": describe(c, args.uid)["state"]}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="pykmip_tool.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--certs", metavar="DIR")
    p.add_argument("--timeout", type=int, default=30, help="socket timeout in seconds")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="all objects owned by the client identity").set_defaults(fn=cmd_list)
    s = sub.add_parser("find", help="objects with this Name")
    s.add_argument("name")
    s.set_defaults(fn=cmd_find)
    s = sub.add_parser("get", help="object type and material (hex)")
    s.add_argument("uid")
    s.set_defaults(fn=cmd_get)
    s = sub.add_parser("bench-get", help="time N Gets on one connection")
    s.add_argument("uid")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_bench_get)
    s = sub.add_parser("create-aes", help="Create an AES key with a Name")
    s.add_argument("name")
    s.add_argument("bits", type=int)
    s.set_defaults(fn=cmd_create_aes)
    s = sub.add_parser("revoke", help="Revoke (Deactivated; Compromised with --compromised)")
    s.add_argument("uid")
    s.add_argument("--compromised", action="store_true")
    s.set_defaults(fn=cmd_revoke)
    s = sub.add_parser("destroy", help="Revoke (if active) and Destroy")
    s.add_argument("uid")
    s.set_defaults(fn=cmd_destroy)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        c = make_client(args)
        try:
            c.open()
        except Exception as e:
            raise ToolError("cannot connect to %s:%s: %s" % (args.host, c.proxy.port, e))
        try:
            result = args.fn(c, args)
        finally:
            try:
                c.close()
            except Exception:
                pass
    except ToolError as e:
        sys.stderr.write("pykmip_tool: %s\n" % e)
        return 1
    except pie_exceptions.KmipOperationFailure as e:
        sys.stderr.write("pykmip_tool: KMIP %s: %s: %s\n" % (
            enum_name(e.status), enum_name(e.reason), e.message))
        return 1
    except (core_exceptions.KmipError, pie_exceptions.ClientConnectionFailure, pie_exceptions.ClientConnectionNotOpen, OSError, ValueError, TypeError) as e:
        sys.stderr.write("pykmip_tool: %s: %s\n" % (type(e).__name__, e))
        return 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
