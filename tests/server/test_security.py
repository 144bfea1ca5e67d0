"""Bearer-token auth and TLS, on real servers sharing the package's engine."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import numpy as np
import pytest
from ella_client import Client, Unauthenticated
from ella_server.embedded import EmbeddedServer

from .support import LOGISTIC, logistic_tasks

TOKEN = "s3cret-token-for-tests"


def test_token_auth_rejects_without_and_accepts_with(engine):
    tasks = logistic_tasks(2)
    with EmbeddedServer(engine, "127.0.0.1", 0, token=TOKEN) as srv:
        for token in (None, "wrong"):
            with Client(srv.target, token=token, timeout=10) as c:
                with pytest.raises(Unauthenticated) as info:
                    c.list_models()
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
                with pytest.raises(Unauthenticated):  # streaming RPCs too
                    c.train_stream("auth", tasks)
                assert c.health() == "SERVING"  # probes need no token
        with Client(srv.target, token=TOKEN, timeout=30) as c:
            c.create_model("auth", **LOGISTIC)
            c.train_stream("auth", tasks)
            assert c.predict("auth", tasks[0][0], tasks[0][1]).shape == (len(tasks[0][2]),)
            assert c.list_tasks("auth") == [t[0] for t in tasks]
            c.delete_model("auth")


def self_signed_cert() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ella-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_round_trip_with_a_self_signed_certificate(engine):
    cert, key = self_signed_cert()
    tasks = logistic_tasks(2)
    with EmbeddedServer(engine, "127.0.0.1", 0, tls_cert=cert, tls_key=key, token=TOKEN) as srv:
        with Client(srv.target, token=TOKEN, root_certificates=cert, timeout=30) as c:
            c.create_model("tls", **LOGISTIC)
            acks = c.train_stream("tls", tasks)
            assert acks[-1].n_tasks == 2
            tid, X, _ = tasks[1]
            np.testing.assert_array_equal(c.predict("tls", tid, X), engine.predict("tls", tid, X))
            c.delete_model("tls")
        # a plaintext client cannot talk to the TLS port
        with Client(srv.target, token=TOKEN, timeout=5, retries=0) as plain:
            with pytest.raises(Exception) as info:
                plain.list_models()
            assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
