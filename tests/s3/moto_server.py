#!/usr/bin/env python3
"""Start moto's S3 on a free loopback port with SigV4 checking on, for the godwit S3 tests.

Stock `python3 -m moto.server` with INITIAL_NO_AUTH_ACTION_COUNT=0 rejects every key,
because moto only accepts access keys that exist in its own IAM. This launcher creates
an IAM user with an allow-all policy and an access key directly in moto's backend (no
HTTP, so no unauthenticated window), then switches authentication on and serves.

It prints one line once the socket listens, then serves until killed:

    READY <port> <access key id> <secret access key>

Usage: moto_server.py [--host 127.0.0.1] [--port 0]
"""
import argparse
import json
import logging
import os
import sys

# Read by moto at import time and at each request; 0 means every request is checked.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto import settings  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402



def canonical_query_as_s3():
    """Make moto's signature check canonicalise the query string as S3 does.

    moto verifies a signature over the request URL werkzeug rebuilt, whose query it has
    re-quoted with '/' left bare, and botocore's URL form takes the query as it finds it:
    ListObjectsV2 with prefix=a%2Fb%2F, signed correctly, then fails. S3 itself decodes
    each name and value and encodes it again (RFC 3986 unreserved characters bare), which
    this does, in this process only.
    """
    from urllib.parse import quote, unquote

    from botocore.auth import SigV4Auth

    def canonical(self, parts):
        pairs = []
        for pair in parts.query.split("&") if parts.query else []:
            key, _, value = pair.partition("=")
            pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
        return "&".join(f"{k}={v}" for k, v in sorted(pairs))

    SigV4Auth._canonical_query_string_url = canonical


ALLOW_ALL = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    canonical_query_as_s3()
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(region_name="us-east-1", user_name="godwit-test")
    iam.put_user_policy("godwit-test", "allow-all", ALLOW_ALL)
    key = iam.create_access_key("godwit-test")
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    # One log line per request would flood the test logs (listings make thousands).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_address[1]
    print(f"READY {port} {key.access_key_id} {key.secret_access_key}", flush=True)
    # The test stops us by PID (SIGTERM, then SIGKILL).
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
