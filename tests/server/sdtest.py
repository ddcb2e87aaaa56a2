"""sdtest.py — what the `sd serve` tests share (Python standard library only): starting and stopping a server on
127.0.0.1, HTTP requests, PNG decoding and encoding (to compare pixels with the CLI's), rendering with the CLI, and
the tally the test runner reads ("ok NAME" / "FAIL NAME: why" lines)."""
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SD = os.environ.get("SD_BIN", os.path.join(ROOT, "build", "sd"))
DEMO = os.path.join(ROOT, "samples", "models", "shapes")
WORK = os.environ.get("SD_SERVER_WORK") or tempfile.mkdtemp(prefix="sd-server-test-")

passed = failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok   " + name, flush=True)


def fail(name, why):
    global failed
    failed += 1
    print("FAIL " + name + ": " + why, flush=True)


def note(text):
    print("    note: " + text, flush=True)


def check(name, cond, why=""):
    (ok if cond else lambda n: fail(n, why or "check failed"))(name)
    return cond


def run_case(fn):
    """Runs one test function; an exception is a failure with its message."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 — any error fails this case and the others still run
        import traceback
        traceback.print_exc()
        fail(fn.__name__, "%s: %s" % (type(e).__name__, e))


def finish(label):
    print("%s: %d passed, %d failed" % (label, passed, failed), flush=True)
    sys.exit(1 if failed else 0)


# ---- the server ----

class Server:
    def __init__(self, *args, name="server", env=None):
        self.log_path = os.path.join(WORK, name + ".log")
        self.port_file = os.path.join(WORK, name + ".port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e.pop("SD_API_KEY", None)
        e.pop("SD_API_AUTH", None)
        e.update(env or {})
        self.proc = subprocess.Popen([SD, "serve", "--port", "0", "--port-file", self.port_file] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        deadline = time.time() + 120
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("sd serve exited with %d: %s" % (self.proc.returncode, self.text()))
            if time.time() > deadline:
                raise RuntimeError("sd serve did not start: " + self.text())
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=300):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def peak_rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def request(self, method, path, body=None, headers=None, raw=None, timeout=600):
        """(status, headers dict (lower-case names), parsed JSON or the raw bytes)"""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        if "json" in hdrs.get("content-type", ""):
            try:
                return r.status, hdrs, json.loads(payload)
            except ValueError:
                pass
        return r.status, hdrs, payload

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)


# ---- PNG ----

def png_chunks(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, out = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def png_text(data):
    """The tEXt/iTXt chunks as {key: text}."""
    out = {}
    for kind, body in png_chunks(data):
        if kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"iTXt":
            k, rest = body.split(b"\0", 1)
            rest = rest[2:]
            _lang, rest = rest.split(b"\0", 1)
            _tk, text = rest.split(b"\0", 1)
            out[k.decode("latin-1")] = text.decode("utf-8")
    return out


def png_pixels(data):
    """(width, height, channels, bytes) of an 8-bit non-interlaced grey/RGB/RGBA PNG."""
    chunks = png_chunks(data)
    w, h, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or interlace or ctype not in (0, 2, 6):
        raise ValueError("unsupported PNG (depth %d, type %d, interlace %d)" % (depth, ctype, interlace))
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * ch
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, ch, bytes(out)


def png_encode(w, h, ch, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ctype = {1: 0, 3: 2, 4: 6}[ch]
    raw = b"".join(b"\0" + pixels[y * w * ch:(y + 1) * w * ch] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def same_pixels(a_png, b_png):
    """None when both PNGs have the same size and pixels, else a description of the first difference."""
    a, b = png_pixels(a_png), png_pixels(b_png)
    if a[:3] != b[:3]:
        return "size/channels %s vs %s" % (a[:3], b[:3])
    if a[3] != b[3]:
        diff = [abs(x - y) for x, y in zip(a[3], b[3])]
        return "%d of %d values differ, by up to %d" % (sum(1 for d in diff if d), len(diff), max(diff))
    return None


# ---- the CLI ----

def cli_render(out, *args):
    """Renders with `sd` into out (a PNG path; several images: out_1.png ...); returns the PNG bytes (a list when
    several)."""
    r = subprocess.run([SD] + list(args) + ["-o", out, "--overwrite"], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("sd %s: %s" % (" ".join(args), r.stderr.strip()))
    base, ext = os.path.splitext(out)
    if os.path.exists(out):
        return open(out, "rb").read()
    paths, i = [], 1
    while os.path.exists("%s_%d%s" % (base, i, ext)):
        paths.append(open("%s_%d%s" % (base, i, ext), "rb").read())
        i += 1
    return paths


def a1111_cli_args(prompt, seed, steps, w, h, cfg=7.0, sampler="euler", negative=""):
    """The `sd` flags that render what an A1111 request with these fields renders (k-diffusion samplers, GPU RNG)."""
    return ["-p", prompt, "-n", negative, "-s", str(seed), "--steps", str(steps), "-W", str(w), "-H", str(h),
            "--cfg-scale", str(cfg), "--sampling-method", sampler, "--schedule-convention", "kdiffusion"]


def b64png(s):
    import base64
    return base64.b64decode(s)
