"""Schemathesis hooks for scripts/api-conformance (named in schemathesis.toml).

The proxy reads amounts (`amount_fen`) written with digits only: `1230`, never `1230.0`
or `1.23e3`, so that a float computed by a client (19.9 * 100) never becomes an amount.
JSON Schema compares values, to which `1230.0` is the integer 1230, so the document states
that rule in prose, and Schemathesis sends whole floats to see whether a server takes them.
This hook writes whole floats in request bodies as integers: the value, and so whether the
schema allows it, stays the same; only its spelling changes.
"""

import schemathesis


def _as_integers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_integers(item) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list, float)):
        case.body = _as_integers(case.body)
