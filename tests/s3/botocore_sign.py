#!/usr/bin/env python3
"""Sign one S3 request with botocore's S3SigV4Auth at a fixed time; print the Authorization header.

The reference the godwit signer (transport/sigv4.c) is compared with, byte for byte.
The request is built the way botocore's own S3 client builds it: the raw key is
percent-encoded with botocore.utils.percent_encode(safe='/~'), the query with
percent_encode_sequence, and botocore itself adds host, x-amz-date,
x-amz-content-sha256 (hashing the body) and x-amz-security-token.

Usage:
  botocore_sign.py METHOD SCHEME HOST RAW_PATH AMZ_DATE ACCESS_KEY SECRET_KEY TOKEN REGION
                   BODY_HEX [-q NAME VALUE]... [-H NAME VALUE]...
TOKEN "" means none. Prints the Authorization value on stdout. Exit 3 if botocore cannot be
imported (the caller then skips).
"""
import datetime
import sys
import types

try:
    import botocore.auth as auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode, percent_encode_sequence
except ImportError as e:  # pragma: no cover
    print(f"botocore not importable: {e}", file=sys.stderr)
    sys.exit(3)


def pin_clock(fixed):
    """Make botocore's signer see `fixed` as now, in old (1.29) and new (1.3x+) releases."""
    if hasattr(auth, "get_current_datetime"):
        auth.get_current_datetime = lambda *a, **k: fixed
        return

    class FixedDateTime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

        @classmethod
        def now(cls, tz=None):
            return fixed

    shim = types.ModuleType("datetime_pinned")
    shim.__dict__.update(datetime.__dict__)
    shim.datetime = FixedDateTime
    auth.datetime = shim


def main(argv):
    (method, scheme, host, raw_path, amz_date, ak, sk, token, region, body_hex) = argv[1:11]
    query, headers = [], []
    rest = argv[11:]
    while rest:
        flag, name, value = rest[0], rest[1], rest[2]
        rest = rest[3:]
        (query if flag == "-q" else headers).append((name, value))

    pin_clock(datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    url = f"{scheme}://{host}{percent_encode(raw_path, safe='/~')}"
    if query:
        url += "?" + percent_encode_sequence(query)
    body = bytes.fromhex(body_hex)
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    signer = auth.S3SigV4Auth(Credentials(ak, sk, token or None), "s3", region)
    signer.add_auth(req)
    print(req.headers["Authorization"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
