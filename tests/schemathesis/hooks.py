"""schemathesis hooks for payhost.

A client makes one Idempotency-Key per logical request (a UUID). Generated keys repeat
(hypothesis favours short values), and a key repeated with another body is rightly refused
(422), so a schema-valid key is replaced by a fresh UUID before each call. Invalid keys
(negative cases) go out as generated and must be refused.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and VALID_KEY.match(str(headers[name])):
            headers[name] = str(uuid.uuid4())
