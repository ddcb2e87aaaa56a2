# make.py — the --from-png fixtures of tests/cli_test.sh (run here): an 8x8 grey PNG whose "sd" zTXt chunk holds settings sd refuses.
import json, struct, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
def png(path, params):
    raw = b''.join(b'\0' + b'\x80\x80\x80' * 8 for _ in range(8))
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 8, 8, 2, 0, 0, 0))
    data += chunk(b'zTXt', b'sd\0\0' + zlib.compress(json.dumps(params).encode(), 9))
    open(path, 'wb').write(data + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
base = {"prompt": "a castle", "width": 64, "height": 64, "steps": 2, "sampler": "euler"}
png('bad-sampler.png', dict(base, sampler="Foo Bar"))
png('width-63.png', dict(base, width=63))
png('long-prompt.png', dict(base, prompt="a" * 200000))
png('alias-sampler.png', dict(base, sampler="k_euler", width=32, height=32))  # a name only the library knows: accepted
# AUTOMATIC1111 PNGs (a 64x64 picture, one tEXt "parameters"): settings read as A1111 means them, warnings for the rest
def a1111(path, text):
    raw = b''.join(b'\0' + b'\x80\x80\x80' * 64 for _ in range(64))
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 64, 64, 8, 2, 0, 0, 0))
    data += chunk(b'tEXt', b'parameters\0' + text.encode('latin-1'))
    open(path, 'wb').write(data + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
a1111('a1111-karras.png', 'a red circle\nSteps: 2, Sampler: DPM++ 2M Karras, CFG scale: 3, Seed: 5, Size: 64x64')  # before 1.9
a1111('a1111-unipc-karras.png', 'a red circle\nSteps: 2, Sampler: UniPC, Schedule type: Karras, CFG scale: 3, Seed: 5, Size: 64x64')
a1111('a1111-unsupported.png', 'a red circle\nSteps: 2, Sampler: Euler, CFG scale: 3, Seed: 5, Size: 64x64, '
      'Seed resize from: 128x128, ENSD: 31337, Version: v1.10.1')
