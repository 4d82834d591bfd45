#!/usr/bin/env python3
"""What PyKMIP 0.11's engine spends per object, without TLS or TTLV: the floor under any
listing of a PyKMIP server, batched or not.

    .lab/pykmip/venv/bin/python -W ignore scripts/pykmip_costs.py [N]

Builds a throw-away database of N Active AES keys (default 10,000) in a temporary directory,
then times, in this process, the engine calls a listing makes: Locate with the filters a
listing could send, and Get Attributes for 1,000 objects with the attribute sets of a listing
and of one request per object. The engine is set up as pykmip-server sets it up (operation
policies in a multiprocessing.Manager dict, which every access check asks), so the numbers are
the server's own CPU per object.
"""

import copy
import multiprocessing
import os
import sys
import tempfile
import time

from kmip.core import enums
from kmip.core import policy as operation_policy
from kmip.core.factories import attributes as attribute_factory
from kmip.core.messages import payloads
from kmip.pie import objects
from kmip.services.server import engine as kmip_engine


def make_engine(path, policies):
    e = kmip_engine.KmipEngine(policies=policies, database_path=path)
    e._client_identity = ["client", None]
    return e


def fill(e, n):
    session = e._data_store_session_factory()
    for i in range(n):
        key = objects.SymmetricKey(
            enums.CryptographicAlgorithm.AES, 256, os.urandom(32),
            name="mysql-keyring::costs-%05d" % i)
        key.state = enums.State.ACTIVE
        key.operation_policy_name = "default"
        key._owner = "client"
        session.add(key)
    session.commit()
    session.close()


def timed(e, run):
    with e._data_store_session_factory() as session:
        e._data_session = session
        started = time.perf_counter()
        result = run()
        return result, time.perf_counter() - started


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    manager = multiprocessing.Manager()
    policies = manager.dict()
    for name, policy in copy.deepcopy(operation_policy.policies).items():
        policies[name] = policy
    with tempfile.TemporaryDirectory() as tmp:
        e = make_engine(os.path.join(tmp, "costs.db"), policies)
        started = time.perf_counter()
        fill(e, n)
        print("PyKMIP 0.11 engine, in process, %d Active AES keys (made in %.1f s)"
              % (n, time.perf_counter() - started))
        f = attribute_factory.AttributeFactory()
        symmetric = f.create_attribute(
            enums.AttributeType.OBJECT_TYPE, enums.ObjectType.SYMMETRIC_KEY)
        active = f.create_attribute(enums.AttributeType.STATE, enums.State.ACTIVE)
        dates = [f.create_attribute(enums.AttributeType.INITIAL_DATE, 0),
                 f.create_attribute(enums.AttributeType.INITIAL_DATE, 2 ** 40)]
        uids = None
        for label, attributes in (
                ("Locate, no filter", []),
                ("Locate, Object Type", [symmetric]),
                ("Locate, Object Type + Initial Date range", [symmetric] + dates),
                ("Locate, Object Type + State Active", [symmetric, active])):
            answer, took = timed(e, lambda: e._process_locate(
                payloads.LocateRequestPayload(attributes=attributes)))
            uids = uids or answer.unique_identifiers
            print("  %-44s %6.2f s  %.3f ms per object"
                  % (label, took, took * 1e3 / n))
        sample = uids[:1000]
        for label, names in (
                ("Get Attributes, a listing's five", [
                    "Name", "State", "Object Type", "Cryptographic Length",
                    "Initial Date"]),
                ("Get Attributes, Name + State", ["Name", "State"])):
            _, took = timed(e, lambda: [
                e._process_get_attributes(payloads.GetAttributesRequestPayload(
                    unique_identifier=u, attribute_names=names)) for u in sample])
            print("  %-44s %6.2f s  %.3f ms per object (%d objects)"
                  % (label, took, took * 1e3 / len(sample), len(sample)))
    manager.shutdown()


if __name__ == "__main__":
    main()
