"""Shared test helpers: the one way to start each peer, and the data and tools the tests share.

Test modules import from here (``from helpers.scp import RecordingSCP``) or use the fixtures of
``tests/conftest.py``; no test module imports another test module.

Modules:
    process    free ports, start a process and wait until it listens, stop it by its PID, run the CLI,
               our own ``main.py scp`` as a peer process
    config     seed-style config dicts with short timeouts
    data       pydicom's test files, pydicom-data, UID shorthands, unique copies of test files
    scp        RecordingSCP: the in-process pynetdicom Storage SCP (policies, rejects, aborts, max PDU,
               storage commitment) and what it recorded
    strict     StrictSCP: the strict receiver (structural walk and strict parse under the negotiated
               syntax, comparison with the source)
    dcmtk      DCMTK storescp (plain, +xi, -xf configuration file, +tls)
    orthanc    Orthanc with a temporary configuration and storage, REST helpers
    badpeers   a scripted misbehaving SCP (silence, aborts, stalls, malformed PDUs) and a raw TCP peer
    casegen    the field cases' inputs (c01 ...), generated with pydicom
    tls_pki    a test PKI (CA, server and client certificates) for TLS peers
    gui        driving the main window offscreen
"""
