#!/usr/bin/env python3
"""Helpers for bench/retrieve.sh (Python 3.8+, standard library only).

  retrieve.py multipart FILE HEADERS   check a multipart/related DICOM body:
                                       prints "parts bytes syntax part-type"
  retrieve.py json-array FILE          prints the length of a JSON array whose
                                       items are DICOM JSON datasets
  retrieve.py zip FILE                 check a ZIP: CRCs, DICOM members;
                                       prints "dicom-members dicomdir(0/1)"
  retrieve.py rss STOPFILE PID         sample VmRSS every 50 ms until STOPFILE
                                       exists; prints "max-VmRSS-kB VmHWM-kB"
  retrieve.py latency ...              C-STORE-RSP -> retrievable latency
                                       (see `latency --help`)

The latency probe speaks DICOM upper layer itself (A-ASSOCIATE, P-DATA,
A-RELEASE) instead of using pynetdicom: it then takes the time the moment
the C-STORE-RSP has been read from the socket, with nothing in between (no
DIMSE thread, no queue), and the benchmark needs nothing from PyPI.
"""

import argparse
import http.client
import json
import mmap
import os
import random
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import zipfile


def die(msg):
    print(f"retrieve.py: {msg}", file=sys.stderr)
    sys.exit(1)


# ------------------------------------------------------------------ DICOM files

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC",
            b"UN", b"UR", b"UT", b"UV"}


def read_meta(buf, start=0):
    """File meta of a Part 10 file at buf[start:]: (dict tag->bytes, end offset)."""
    if buf[start + 128:start + 132] != b"DICM":
        raise ValueError("no DICM prefix")
    pos = start + 132
    meta = {}
    end = None
    while end is None or pos < end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            break
        vr = bytes(buf[pos + 4:pos + 6])
        if vr in LONG_VRS:
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            value_at = pos + 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            value_at = pos + 8
        value = bytes(buf[value_at:value_at + length])
        meta[(group, elem)] = value
        if elem == 0x0000:
            end = value_at + length + struct.unpack("<I", value)[0]
        pos = value_at + length
    return meta, pos


def uid(value):
    return value.rstrip(b"\0 ").decode("ascii")


# ------------------------------------------------------------ response checks

def boundary_of(headers_file):
    """The boundary of the last response's Content-Type in a curl -D file."""
    content_type = None
    with open(headers_file, "rb") as f:
        for line in f.read().decode("latin-1").splitlines():
            if line.lower().startswith("content-type:"):
                content_type = line.split(":", 1)[1].strip()
    if not content_type:
        raise ValueError("no Content-Type")
    params = {}
    for piece in content_type.split(";")[1:]:
        if "=" in piece:
            k, v = piece.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    if "boundary" not in params:
        raise ValueError(f"no boundary in Content-Type {content_type!r}")
    return content_type, params["boundary"].encode("latin-1")


def split_multipart(buf, boundary):
    """Yields (part headers, start, end) of each part; raises on bad framing."""
    delim = b"--" + boundary
    pos = buf.find(delim)
    if pos < 0:
        raise ValueError("boundary not found")
    while True:
        after = pos + len(delim)
        if buf[after:after + 2] == b"--":
            return  # close delimiter
        if buf[after:after + 2] != b"\r\n":
            raise ValueError(f"bad delimiter line at {pos}")
        head_end = buf.find(b"\r\n\r\n", after)
        if head_end < 0:
            raise ValueError("part without header end")
        headers = bytes(buf[after + 2:head_end]).decode("latin-1")
        body_start = head_end + 4
        nxt = buf.find(b"\r\n" + delim, body_start)
        if nxt < 0:
            raise ValueError("body ends without close delimiter (truncated?)")
        yield headers, body_start, nxt
        pos = nxt + 2


def cmd_multipart(args):
    content_type, boundary = boundary_of(args.headers)
    size = os.path.getsize(args.file)
    if size == 0:
        die("empty body")
    with open(args.file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        parts = 0
        syntaxes = set()
        part_types = set()
        for headers, start, end in split_multipart(buf, boundary):
            parts += 1
            for line in headers.splitlines():
                if line.lower().startswith("content-type:"):
                    part_types.add(line.split(":", 1)[1].strip())
            try:
                meta, _ = read_meta(buf, start)
            except (ValueError, struct.error) as e:
                die(f"part {parts} is not a DICOM file: {e}")
            syntaxes.add(uid(meta.get((2, 0x10), b"?")))
    main_type = content_type.split(";")[0].strip()
    print(parts, size, ",".join(sorted(syntaxes)) or "-",
          (" | ".join(sorted(part_types)) or main_type).replace(" ", ""))


def cmd_json_array(args):
    with open(args.file, "rb") as f:
        data = json.load(f)
    if not isinstance(data, list):
        die("not a JSON array")
    for item in data:
        if not isinstance(item, dict):
            die("an item is not a JSON object")
    print(len(data))


def cmd_zip(args):
    with zipfile.ZipFile(args.file) as z:
        bad = z.testzip()
        if bad is not None:
            die(f"CRC error in member {bad}")
        dicom = 0
        dicomdir = 0
        for info in z.infolist():
            if info.is_dir():
                continue
            with z.open(info) as m:
                head = m.read(132)
            if head[128:132] == b"DICM":
                if os.path.basename(info.filename).upper() == "DICOMDIR":
                    dicomdir = 1
                else:
                    dicom += 1
    print(dicom, dicomdir)


def cmd_rss(args):
    """Peak of the summed VmRSS of the pids (a server and its TLS proxy's
    workers), and the largest sum of their VmHWM, sampled every 50 ms."""
    statuses = [f"/proc/{pid}/status" for pid in args.pid]
    peak = 0
    hwm = 0

    def read():
        nonlocal peak, hwm
        rss_now = hwm_now = 0
        for status in statuses:
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss_now += int(line.split()[1])
                        elif line.startswith("VmHWM:"):
                            hwm_now += int(line.split()[1])
            except OSError:
                pass
        peak = max(peak, rss_now)
        hwm = max(hwm, hwm_now)

    while not os.path.exists(args.stopfile):
        read()
        time.sleep(0.05)
    read()
    print(peak, hwm)


# --------------------------------------------------------------- DICOM upper layer

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPL_CLASS = b"1.2.826.0.1.3680043.10.1133.1"  # any: identifies the probe


def item(kind, payload):
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def pad_uid(value):
    b = value.encode("ascii") if isinstance(value, str) else value
    return b + b"\0" if len(b) % 2 else b


def ae(title):
    return title.encode("ascii").ljust(16)[:16]


class Association:
    """One association with one presentation context, for C-STORE."""

    def __init__(self, host, port, called, sop_class, syntax, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.message_id = 0
        pc = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, sop_class.encode())
                  + item(0x40, syntax.encode()))
        user = item(0x50, item(0x51, struct.pack(">I", 262144)) + item(0x52, IMPL_CLASS))
        body = (struct.pack(">HH", 1, 0) + ae(called) + ae("RETRIEVEBENCH") + bytes(32)
                + item(0x10, APP_CONTEXT) + pc + user)
        self.sock.sendall(struct.pack(">BBI", 1, 0, len(body)) + body)
        kind, pdu = self.read_pdu()
        if kind != 2:
            raise RuntimeError(f"association refused by {called} (PDU type {kind}: {pdu[:10].hex()})")
        self.max_pdu = 16384
        accepted = False
        pos = 68
        while pos < len(pdu):
            t, _, length = struct.unpack_from(">BBH", pdu, pos)
            value = pdu[pos + 4:pos + 4 + length]
            if t == 0x21 and value[0] == 1 and value[2] == 0:
                accepted = True
            elif t == 0x50:
                sub = 0
                while sub < len(value):
                    st, _, sl = struct.unpack_from(">BBH", value, sub)
                    if st == 0x51:
                        (m,) = struct.unpack_from(">I", value, sub + 4)
                        self.max_pdu = m if m else 1 << 20
                    sub += 4 + sl
            pos += 4 + length
        if not accepted:
            raise RuntimeError(f"{called} did not accept {sop_class} in {syntax}")
        self.sop_class = sop_class

    def read_exact(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise RuntimeError("connection closed by the peer")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_pdu(self):
        kind, _, length = struct.unpack(">BBI", self.read_exact(6))
        return kind, self.read_exact(length)

    def send_pdv(self, flags, data):
        # one PDV per PDU, each within the peer's maximum PDU length
        room = max(self.max_pdu - 6, 1024)
        out = []
        for start in range(0, max(len(data), 1), room):
            chunk = data[start:start + room]
            last = start + room >= len(data)
            pdv = struct.pack(">IBB", len(chunk) + 2, 1, flags | (2 if last else 0)) + chunk
            out.append(struct.pack(">BBI", 4, 0, len(pdv)) + pdv)
        self.sock.sendall(b"".join(out))

    def store(self, sop_instance, dataset):
        """Sends one C-STORE-RQ; returns (status, time the RSP was read)."""
        self.message_id = (self.message_id % 65535) + 1

        def el(tag_elem, value):
            return struct.pack("<HHI", 0, tag_elem, len(value)) + value

        elements = (el(0x0002, pad_uid(self.sop_class)) + el(0x0100, struct.pack("<H", 1))
                    + el(0x0110, struct.pack("<H", self.message_id))
                    + el(0x0700, struct.pack("<H", 0)) + el(0x0800, struct.pack("<H", 0))
                    + el(0x1000, pad_uid(sop_instance)))
        command = el(0x0000, struct.pack("<I", len(elements))) + elements
        self.send_pdv(1, command)
        self.send_pdv(0, dataset)
        response = b""
        while True:
            kind, pdu = self.read_pdu()
            if kind != 4:
                raise RuntimeError(f"unexpected PDU type {kind} while waiting for C-STORE-RSP")
            pos = 0
            done = False
            while pos < len(pdu):
                (length,) = struct.unpack_from(">I", pdu, pos)
                header = pdu[pos + 5]
                response += pdu[pos + 6:pos + 4 + length]
                done = done or (header & 3) == 3
                pos += 4 + length
            if done:
                break
        at = time.perf_counter()
        pos = 0
        status = None
        while pos < len(response):
            g, e, length = struct.unpack_from("<HHI", response, pos)
            if (g, e) == (0, 0x0900):
                (status,) = struct.unpack_from("<H", response, pos + 8)
            pos += 8 + length
        return status, at

    def release(self):
        try:
            self.sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))
            self.read_pdu()
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def replace_uid(dataset, group, elem, new, explicit):
    """Replaces the value of the first (group,elem) UI element, same length."""
    tag = struct.pack("<HH", group, elem)
    pos = dataset.find(tag + b"UI") if explicit else dataset.find(tag)
    if pos < 0:
        raise ValueError(f"({group:04X},{elem:04X}) not found")
    if explicit:
        (length,) = struct.unpack_from("<H", dataset, pos + 6)
        at = pos + 8
    else:
        (length,) = struct.unpack_from("<I", dataset, pos + 4)
        at = pos + 8
    old = dataset[at:at + length]
    value = new.encode("ascii")
    if len(value) != len(old.rstrip(b"\0")):
        raise ValueError("new UID must have the old one's length")
    dataset[at:at + len(value)] = value
    return uid(old)


def same_length_uid(length, rng):
    """A 2.25 UUID-derived UID of exactly `length` characters."""
    digits = length - len("2.25.")
    if digits < 8:
        raise ValueError("UID too short to replace")
    return "2.25." + str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))


class Web:
    """A kept-alive HTTP(S) connection that GETs one URL path at a time."""

    def __init__(self, base_url, headers):
        u = urllib.parse.urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.headers = headers
        self.reconnects = -1
        self.conn = None

    def connect(self):
        if self.https:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the daemon's self-signed certificate
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=30)
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reconnects += 1

    def get(self, path):
        for attempt in (1, 2):
            if self.conn is None:
                self.connect()
            try:
                self.conn.request("GET", self.prefix + path, headers=self.headers)
                r = self.conn.getresponse()
                body = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheader("content-type", ""), body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def one_part(content_type, body):
    """True if body is a multipart/related with exactly one DICOM part."""
    params = {}
    for piece in content_type.split(";")[1:]:
        if "=" in piece:
            k, v = piece.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    b = params.get("boundary")
    if not b:
        return False
    try:
        parts = list(split_multipart(body, b.encode("latin-1")))
        return len(parts) == 1 and body[parts[0][1] + 128:parts[0][1] + 132] == b"DICM"
    except ValueError:
        return False


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def cmd_latency(args):
    with open(args.file, "rb") as f:
        raw = f.read()
    meta, end = read_meta(raw)
    syntax = uid(meta[(2, 0x10)])
    sop_class = uid(meta[(2, 0x02)])
    if syntax == "1.2.840.10008.1.2.1.99":
        die("deflated data sets are not supported by the probe")
    explicit = syntax != "1.2.840.10008.1.2"
    template = bytearray(raw[end:])
    rng = random.Random(args.seed)
    sop_len = len(uid(meta[(2, 3)]))

    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    targets = []
    for spec in args.target:
        # NAME,HOST:PORT,AET,BASE_URL[,BEARER]
        fields = spec.split(",")
        if len(fields) not in (4, 5):
            die(f"bad --target {spec!r}")
        name, hostport, aet, base = fields[:4]
        host, port = hostport.rsplit(":", 1)
        headers = {"Accept": accept}
        if len(fields) == 5:
            headers["Authorization"] = f"Bearer {fields[4]}"
        targets.append({"name": name, "host": host, "port": int(port), "aet": aet,
                        "web": Web(base, headers), "lat": [], "retries": 0, "first_ok": 0})
    study = args.study
    # A new series in the same study: the grant covers the whole study,
    # later arrivals included.
    series_len = len(args.series_template)
    new_series = same_length_uid(series_len, rng)
    for t in targets:
        t["assoc"] = Association(t["host"], t["port"], t["aet"], sop_class, syntax)

    def one(t, i, timed):
        ds = bytearray(template)
        sop = same_length_uid(sop_len, rng)
        replace_uid(ds, 0x0008, 0x0018, sop, explicit)
        got_series = replace_uid(ds, 0x0020, 0x000E, new_series, explicit)
        if got_series != args.series_template:
            die(f"series UID in {args.file} is {got_series}, expected {args.series_template}")
        path = f"/studies/{study}/series/{new_series}/instances/{sop}"
        status, at = t["assoc"].store(sop, bytes(ds))
        if status != 0:
            die(f"{t['name']}: C-STORE failed with status {status!r} for instance {i}")
        tries = 0
        while True:
            code, ctype, body = t["web"].get(path)
            if code == 200:
                done = time.perf_counter()
                break
            if code != 404:
                die(f"{t['name']}: GET {path} answered {code}: {body[:200]!r}")
            tries += 1
            if time.perf_counter() - at > 10:
                die(f"{t['name']}: instance {i} still 404 10 s after its C-STORE-RSP")
        if not one_part(ctype, body):
            die(f"{t['name']}: instance {i}: not one DICOM part ({ctype}, {len(body)} bytes)")
        if timed:
            t["lat"].append(done - at)
            t["retries"] += tries
            if tries == 0:
                t["first_ok"] += 1

    for t in targets:  # warm-up: connection, TLS session, first-request costs
        one(t, -1, False)
    for i in range(args.count):
        order = targets if i % 2 == 0 else targets[::-1]  # interleaved, alternating
        for t in order:
            one(t, i, True)
    for t in targets:
        t["assoc"].release()
        lat = sorted(t["lat"])
        ms = lambda v: f"{v * 1000:.2f}"  # noqa: E731
        print(t["name"], len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[-1]),
              t["first_ok"], t["retries"], max(t["web"].reconnects, 0))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("multipart")
    s.add_argument("file")
    s.add_argument("headers")
    s = sub.add_parser("json-array")
    s.add_argument("file")
    s = sub.add_parser("zip")
    s.add_argument("file")
    s = sub.add_parser("rss")
    s.add_argument("stopfile")
    s.add_argument("pid", nargs="+")
    s = sub.add_parser("latency", help="C-STORE-RSP to retrievable, per instance",
                       description="Sends COUNT copies of FILE (new SOP Instance UIDs, one new "
                       "series in the same study) one by one to each target, interleaved; after "
                       "each C-STORE-RSP success GETs the instance over a kept-alive connection "
                       "(again at once on 404) and times RSP -> complete 200. Prints per target: "
                       "name n p50_ms p99_ms max_ms first_try_200 retries_404 reconnects")
    s.add_argument("--file", required=True, help="a Part 10 file of the study")
    s.add_argument("--study", required=True)
    s.add_argument("--series-template", required=True, help="FILE's Series Instance UID")
    s.add_argument("--count", type=int, default=200)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--target", action="append", required=True,
                   help="NAME,HOST:PORT,AET,DICOMWEB_BASE_URL[,BEARER]")
    args = p.parse_args()
    {"multipart": cmd_multipart, "json-array": cmd_json_array, "zip": cmd_zip,
     "rss": cmd_rss, "latency": cmd_latency}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, RuntimeError, OSError, struct.error, zipfile.BadZipFile, EOFError) as e:
        die(str(e))
