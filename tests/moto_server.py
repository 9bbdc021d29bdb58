"""moto's server for the test suite, with one cost of its SQS model taken out.

moto (pinned in the Makefile) answers a lookup of one queue attribute by building the
whole attribute dict, and that dict counts every message in the queue three times
(moto/sqs/models.py, `Queue.attributes`). It does so for every message a receive
returns (`is_message_valid_based_on_retention_period` reads MessageRetentionPeriod
through `get_queue_attributes`) and several times for every message sent
(`_validate_message`, `send_message` and `Queue.add_message` read
ContentBasedDeduplication). `get_queue_attributes` builds the dict three times per
name asked, so a receive of ten from a queue of n messages scans about 90 n messages,
and enqueuing n messages costs O(n^2). SQS has no such cost; here, with
a few thousand messages queued, one receive holds moto's only busy core for up to a
second and every other call (the state store's, the quota's) waits behind it.

Inside those calls only, `Queue.attributes` is a view that works an attribute out
when it is read, exactly as moto would. Everything moto answers stays the same;
a GetQueueAttributes for "All" still builds the full dict.
"""

import functools
import json
import sys
import threading
from collections.abc import Mapping

import moto
from moto.core.utils import camelcase_to_underscores
from moto.server import main
from moto.sqs import models

# The version whose `Queue.attributes` the view below follows line by line.
FOLLOWS = "5.2.5"

_lazy = threading.local()


class _Attributes(Mapping):
    """`Queue.attributes`, one attribute at a time."""

    def __init__(self, queue):
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self._names = names

    def __contains__(self, name):
        return name in self._names

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        q = self._queue
        if name == "Policy" and q.policy:
            value = q.policy
        elif name == "RedrivePolicy" and q.redrive_policy:
            value = json.dumps(q.redrive_policy)
        else:
            value = getattr(q, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def _install():
    full = models.Queue.attributes

    def attributes(self):
        if getattr(_lazy, "on", False):
            return _Attributes(self)
        return full.fget(self)

    models.Queue.attributes = property(attributes)

    def lazily(fn, unless_all=False):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            names = ()
            if unless_all:
                names = kwargs.get("attribute_names", args[2] if len(args) > 2 else None) or ()
            was = getattr(_lazy, "on", False)
            _lazy.on = "All" not in names
            try:
                return fn(*args, **kwargs)
            finally:
                _lazy.on = was

        return wrapper

    backend = models.SQSBackend
    for name in (
        "is_message_valid_based_on_retention_period",
        "_validate_message",
        "send_message",
    ):
        setattr(backend, name, lazily(getattr(backend, name)))
    # Named attributes are read one by one; "All" is handed to the response whole.
    backend.get_queue_attributes = lazily(backend.get_queue_attributes, unless_all=True)


if __name__ == "__main__":
    if moto.__version__ == FOLLOWS:
        _install()
    else:
        print(
            f"moto {moto.__version__} is not {FOLLOWS}: SQS runs unpatched (slow with deep queues)",
            file=sys.stderr,
        )
    main(sys.argv[1:])
