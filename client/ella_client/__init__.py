"""Python client of the ella-dist gRPC service (numpy, grpcio and protobuf only).

>>> from ella_client import Client                                  # doctest: +SKIP
>>> with Client("127.0.0.1:50051", token=None, timeout=10.0) as c:  # doctest: +SKIP
...     c.create_model("mines", loss="logistic", k=2)
...     c.train("mines", "mine-0", X, y)
...     c.predict("mines", "mine-0", X)
"""

from .client import MAX_MESSAGE_BYTES, MAX_ROWS_PER_CHUNK, Client, TrainAck
from .errors import (
    AlreadyExists,
    DeadlineExceeded,
    EllaError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from .remote import RemoteELLA

__all__ = [
    "Client",
    "RemoteELLA",
    "TrainAck",
    "MAX_MESSAGE_BYTES",
    "MAX_ROWS_PER_CHUNK",
    "EllaError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "DeadlineExceeded",
]
