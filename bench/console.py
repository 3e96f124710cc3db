#!/usr/bin/env python3
"""Timing for bench/console.sh (Python 3.8+, standard library only).

  console.py login CONSOLE ENROL_URL        enrol a local account through its
                                            link (password + TOTP computed
                                            here, RFC 6238) and print the
                                            session cookie
  console.py measure SPEC.json REPEAT       time each request of SPEC (a JSON
                                            list of {name, host, port, method,
                                            path, headers, body, rows, rows_re,
                                            total_re})
                                            REPEAT times, interleaved, each on
                                            its own kept-alive HTTPS connection,
                                            after one untimed first request of
                                            each; check every answer; print one
                                            line per request: name p50_ms
                                            p95_ms n total first_ms

Every answer must have status 200 and, where `rows` is given, that many
rows: JSON array items, or matches of `rows_re` in an HTML page; `rows`
naming another request: a page (50) of the total that one's `total_re`
found (the Orthanc searches must find what the console found).
"""

import base64
import hashlib
import hmac
import http.client
import json
import re
import ssl
import struct
import sys
import time
import urllib.parse

PASSWORD = "bench console password 1"


def die(msg):
    print(f"console.py: {msg}", file=sys.stderr)
    sys.exit(1)


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def connection(host, port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)


def login(console, enrol_url):
    host, port = console.rsplit(":", 1)
    path = enrol_url[enrol_url.index("/console/enrol/"):]
    c = connection(host, port)
    c.request("GET", path)
    page = c.getresponse().read().decode()
    m = re.search(r'id="secret">([^<]+)<', page)
    if not m:
        die("no TOTP key on the enrolment page")
    secret = "".join(m.group(1).split())
    body = urllib.parse.urlencode(
        {"password": PASSWORD, "repeat": PASSWORD, "code": totp(secret)})
    c.request("POST", path, body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"https://{console}"})
    r = c.getresponse()
    r.read()
    for name, value in r.getheaders():
        if name.lower() == "set-cookie" and value.startswith("__Host-pushgate_console="):
            print(value.split(";")[0])
            return
    die(f"enrolment answered {r.status} without a session")


def count_rows(spec, data):
    if "rows_re" in spec:
        return len(re.findall(spec["rows_re"], data.decode()))
    return len(json.loads(data))


def measure(spec_file, repeat):
    with open(spec_file) as f:
        specs = json.load(f)
    conns = [connection(s["host"], s["port"]) for s in specs]
    by_name = {s["name"]: s for s in specs}
    times = [[] for _ in specs]

    def one(i):
        s = specs[i]
        body = json.dumps(s["body"]) if "body" in s else None
        start = time.perf_counter()
        conns[i].request(s.get("method", "GET"), s["path"], body=body,
                         headers=s.get("headers", {}))
        r = conns[i].getresponse()
        data = r.read()
        elapsed = time.perf_counter() - start
        if r.status != 200:
            die(f"{s['name']}: status {r.status}: {data[:300]!r}")
        if "total_re" in s:
            m = re.search(s["total_re"], data.decode())
            if not m:
                die(f"{s['name']}: no total ({s['total_re']})")
            s["total"] = m.group(1)
        if "rows" in s:
            want = s["rows"]
            if isinstance(want, str):  # a page of the total another found
                want = min(50, int(by_name[want]["total"]))
            if count_rows(s, data) != want:
                die(f"{s['name']}: {count_rows(s, data)} rows, not {want}")
        return elapsed

    first = [one(i) for i in range(len(specs))]  # warm-up, reported apart
    for rep in range(repeat):
        order = range(len(specs)) if rep % 2 == 0 else reversed(range(len(specs)))
        for i in order:
            times[i].append(one(i))
    for s, t in zip(specs, times):
        t.sort()
        p50 = t[len(t) // 2] * 1000
        p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))] * 1000
        total = s.get("total", "-")
        print(f"{s['name']} {p50:.1f} {p95:.1f} {len(t)} {total} {first[specs.index(s)] * 1000:.1f}")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "login" and len(sys.argv) == 4:
        login(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 2 and sys.argv[1] == "measure" and len(sys.argv) == 4:
        measure(sys.argv[2], int(sys.argv[3]))
    else:
        die(__doc__)


if __name__ == "__main__":
    main()
