#!/usr/bin/env python3
"""A tiny in-memory S3 with fault injection, for the godwit S3 client's error-path tests.

Speaks path-style S3 over HTTP/1.1 (keep-alive): PUT/GET/HEAD/DELETE object (GET with
Range), ListObjectsV2 (prefix, max-keys, continuation-token), PUT bucket, and multipart
upload (create, upload part, complete, abort). It checks no signature, but it does check
x-amz-content-sha256 against the body, so a client that hashes the wrong bytes (say, on
a retry) fails. Standard library only.

Faults are rules, each a comma-separated list of key=value:

  method=PUT        only this method (default: any)
  match=partNumber  only requests whose path?query contains this text (default: any)
  skip=N            let the first N matching requests through first (default 0)
  count=N           then apply to N requests (default 1; 0 = every one after skip)
  action=...        what to do instead of (or to) the normal answer:
      503, 500, 429, 403, 400, 404, ...  that status with an S3 <Error> body
      reset         close the connection without answering
      delay:SECONDS answer normally after sleeping (logged as "delaying" first)
      die           SIGKILL this server (a crash), before answering
      badrange      a 206 whose Content-Range starts one byte late
      fullbody      ignore Range: 200 with the whole object
      loop-token    ListObjectsV2 truncated, with the same token every time
      error200      200 with an <Error><Code>InternalError</Code> body
      noetag        answer normally without the ETag header
      hugelength    a 200 that claims a 1 GiB body, then closes
      outage:SECONDS  the server is down for SECONDS from this request on: every request
                    (this one included) has its connection closed without an answer,
                    then service resumes with every object intact (a restart of a
                    server that keeps its data)
  code=NAME         the S3 error Code for a status action (default by status)
  region=NAME       add <Region>NAME</Region> to that error, as S3 does for a wrong region
  retry-after=V     add a Retry-After: V header to that error (seconds, or an HTTP date)

Rules can also be added while the server runs: POST /_fault/rules with a SPEC as the
body (unsigned, answered 204) appends one, so a test can arm a fault at the moment it
wants (say, "the next pack upload starts an outage").

Every request is appended to --log as "METHOD PATH?QUERY STATUS" (STATUS "-" when the
connection was dropped). Prints "READY <port>" once listening.

Usage: fault_server.py [--host 127.0.0.1] [--port 0] [--log FILE] [--rule SPEC]...
                       [--tls-cert PEM --tls-key PEM]
"""
import argparse
import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

DEFAULT_CODES = {400: "InvalidArgument", 403: "AccessDenied", 404: "NoSuchKey",
                 409: "OperationAborted", 429: "TooManyRequests", 500: "InternalError",
                 501: "NotImplemented", 503: "SlowDown"}


class Rule:
    def __init__(self, spec):
        kv = dict(p.split("=", 1) for p in spec.split(","))
        self.method = kv.get("method", "*")
        self.match = kv.get("match", "")
        self.skip = int(kv.get("skip", "0"))
        self.count = int(kv.get("count", "1"))
        self.action = kv["action"]
        self.code = kv.get("code")
        self.region = kv.get("region")
        self.retry_after = kv.get("retry-after")
        self.seen = 0

    def fires(self, method, target):
        """Whether this rule applies to the request; counts it if it matches."""
        if self.method not in ("*", method) or self.match not in target:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        return self.count == 0 or self.seen <= self.skip + self.count


class State:
    def __init__(self, rules, log_path):
        self.lock = threading.Lock()
        self.rules = rules
        self.log_path = log_path
        self.buckets = {}   # name -> {key: bytes}
        self.uploads = {}   # upload id -> (bucket, key, {part number: bytes})
        self.next_upload = 1
        self.down_until = 0.0  # time.monotonic() until which an outage lasts

    def log(self, line):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(line + "\n")

    def fault(self, method, target):
        """The first rule that fires; every rule sees (and counts) every request."""
        with self.lock:
            fired = [r for r in self.rules if r.fires(method, target)]
        return fired[0] if fired else None


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def etag_of(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *args):  # quiet: the --log file is the record
        pass

    def send(self, status, body=b"", headers=None, length=None):
        # Log first: the client may read the log as soon as it has the answer.
        self.state.log(f"{self.command} {self.path} {status}")
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code=None, message="injected or real error", region=None,
              retry_after=None):
        code = code or DEFAULT_CODES.get(status, "InternalError")
        extra = f"<Region>{region}</Region>" if region else ""
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                '<Message>%s</Message><Resource>%s</Resource>%s<RequestId>fault-1</RequestId>'
                '</Error>' % (code, xml_escape(message), xml_escape(self.path), extra)).encode()
        headers = {"Content-Type": "application/xml"}
        if retry_after:
            headers["Retry-After"] = retry_after
        self.send(status, body, headers)

    def drop(self):
        self.state.log(f"{self.command} {self.path} -")
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.command == "POST" and self.path == "/_fault/rules":
            with self.state.lock:
                self.state.rules.append(Rule(body.decode()))
            return self.send(204)
        rule = self.state.fault(self.command, self.path)
        action = rule.action if rule else ""
        if action.startswith("outage:"):
            with self.state.lock:
                self.state.down_until = time.monotonic() + float(action.split(":", 1)[1])
        with self.state.lock:
            down = time.monotonic() < self.state.down_until
        if down:
            return self.drop()
        if action == "die":
            self.state.log(f"{self.command} {self.path} die")
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "reset":
            return self.drop()
        if action.startswith("delay:"):
            self.state.log(f"{self.command} {self.path} delaying")
            time.sleep(float(action.split(":", 1)[1]))
        if action.isdigit():
            return self.error(int(action), rule.code, region=rule.region,
                              retry_after=rule.retry_after)
        want = self.headers.get("x-amz-content-sha256")
        if want and want != "UNSIGNED-PAYLOAD" and want != hashlib.sha256(body).hexdigest():
            return self.error(400, "XAmzContentSHA256Mismatch", "body does not match its hash")
        path, _, query = self.path.partition("?")
        q = dict(parse_qsl(query, keep_blank_values=True))
        parts = path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0])
        key = unquote(parts[1]) if len(parts) > 1 else None
        with self.state.lock:
            if self.command == "PUT" and key is None:
                self.state.buckets.setdefault(bucket, {})
                objs = self.state.buckets[bucket]
            else:
                objs = self.state.buckets.get(bucket)
        if objs is None:
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist")
        if key is None:
            if self.command == "PUT":
                return self.send(200)
            if self.command == "GET" and q.get("list-type") == "2":
                return self.list_objects(objs, q, action)
            return self.error(405, "MethodNotAllowed")
        return self.object_op(objs, bucket, key, q, body, action)

    def list_objects(self, objs, q, action):
        prefix = q.get("prefix", "")
        max_keys = int(q.get("max-keys", "1000"))
        token = q.get("continuation-token", "")
        after = "" if action == "loop-token" else bytes.fromhex(token).decode()
        with self.state.lock:
            keys = sorted(k for k in objs if k.startswith(prefix) and k > after)
            page = [(k, len(objs[k])) for k in keys[:max_keys]]
        truncated = len(keys) > max_keys or action == "loop-token"
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
               'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
               f"<Prefix>{xml_escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
               f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"]
        for k, size in page:
            out.append(f"<Contents><Key>{xml_escape(k)}</Key><Size>{size}</Size>"
                       "<StorageClass>STANDARD</StorageClass></Contents>")
        if truncated:
            token = "loop" if action == "loop-token" else page[-1][0].encode().hex()
            out.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
        out.append("</ListBucketResult>")
        self.send(200, "".join(out).encode(), {"Content-Type": "application/xml"})

    def object_op(self, objs, bucket, key, q, body, action):
        st = self.state
        if self.command == "POST" and "uploads" in q:
            with st.lock:
                uid = "upload-%d" % st.next_upload
                st.next_upload += 1
                st.uploads[uid] = (bucket, key, {})
            return self.send(200, ('<?xml version="1.0" encoding="UTF-8"?>\n'
                                   "<InitiateMultipartUploadResult><Bucket>%s</Bucket>"
                                   "<Key>%s</Key><UploadId>%s</UploadId>"
                                   "</InitiateMultipartUploadResult>"
                                   % (bucket, xml_escape(key), uid)).encode())
        if "uploadId" in q:
            with st.lock:
                up = st.uploads.get(q["uploadId"])
            if up is None:
                return self.error(404, "NoSuchUpload")
            if self.command == "PUT":
                up[2][int(q["partNumber"])] = body
                hdrs = {} if action == "noetag" else {"ETag": etag_of(body)}
                return self.send(200, b"", hdrs)
            if self.command == "DELETE":
                with st.lock:
                    st.uploads.pop(q["uploadId"], None)
                return self.send(204)
            if self.command == "POST":
                if action == "error200":
                    return self.send(200, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                                     b"<Code>InternalError</Code><Message>try again</Message>"
                                     b"</Error>")
                listed = re.findall(rb"<PartNumber>(\d+)</PartNumber><ETag>([^<]*)</ETag>", body)
                data = b""
                for num, tag in listed:
                    part = up[2].get(int(num))
                    if part is None or etag_of(part).encode() != tag.replace(b"&quot;", b'"'):
                        return self.error(400, "InvalidPart")
                    data += part
                if self.headers.get("If-None-Match") == "*" and key in objs:
                    return self.error(412, "PreconditionFailed")
                with st.lock:
                    objs[key] = data
                    st.uploads.pop(q["uploadId"], None)
                return self.send(200, ("<CompleteMultipartUploadResult><Key>%s</Key>"
                                       "</CompleteMultipartUploadResult>" % xml_escape(key))
                                 .encode())
        if self.command == "PUT":
            if self.headers.get("If-None-Match") == "*" and key in objs:
                return self.error(412, "PreconditionFailed")
            with st.lock:
                objs[key] = body
            return self.send(200, b"", {} if action == "noetag" else {"ETag": etag_of(body)})
        if self.command == "DELETE":
            with st.lock:
                objs.pop(key, None)
            return self.send(204)
        with st.lock:
            data = objs.get(key)
        if data is None:
            if self.command == "HEAD":
                return self.send(404)
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        if action == "hugelength":
            st.log(f"{self.command} {self.path} 200")
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return None
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng or "")
        if self.command == "HEAD" or not m or action == "fullbody":
            return self.send(200, data, {"ETag": etag_of(data)}, length=len(data))
        first, last = int(m.group(1)), int(m.group(2))
        if first >= len(data):
            return self.error(416, "InvalidRange")
        last = min(last, len(data) - 1)
        shift = 1 if action == "badrange" else 0
        return self.send(206, data[first:last + 1],
                         {"Content-Range": f"bytes {first + shift}-{last + shift}/{len(data)}"})

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    ap.add_argument("--tls-key", help="... and this PEM private key")
    args = ap.parse_args()
    Handler.state = State([Rule(r) for r in args.rule], args.log)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
