#!/usr/bin/env python3
"""make_pt_fixtures.py: small PyTorch checkpoints in torch's exact on-disk layout, without torch.

The engine reads `torch.save` files (rosa__pt_load), but torch is too heavy to install in CI, so
this script writes such files itself and the outputs are committed under tests/data/pt/.

  * data.pkl comes from Python's own pickle.Pickler, as in torch.save, with stand-ins registered as
    `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, ... and torch's persistent_id
    tuple ('storage', <Type>Storage, key, location, numel); the opcode stream is therefore the one
    torch emits (compare `python3 -m pickletools` on a real file).
  * the zip is written the way torch's PyTorchStreamWriter (miniz) writes it: stored records,
    local headers with zero sizes and an "FB" extra field padding the data to 64 bytes, data
    descriptors, a central directory, and zip64 end records even for small files.

Two styles: torch 1.x (folder named after the file stem, records in lexicographic key order, no
byteorder) and torch 2.x (folder "archive", .format_version, .storage_alignment, byteorder,
numeric key order, version, .data/serialization_id).  Every fixture that should load has a
`<name>.safetensors` twin holding the same tensors, for a byte-for-byte comparison in C.

Usage: tools/make_pt_fixtures.py [outdir]   (default: tests/data/pt beside this script)
"""
import collections
import json
import os
import pickle
import struct
import sys
import types
import zlib

# ---- stand-ins for the torch names a checkpoint pickle refers to ----------------------------

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    raise RuntimeError("stand-in only")


def _rebuild_parameter(data, requires_grad, backward_hooks):
    raise RuntimeError("stand-in only")


for fn in (_rebuild_tensor_v2, _rebuild_parameter):
    fn.__module__ = "torch._utils"
    setattr(torch_utils, fn.__name__, fn)
torch._utils = torch_utils

STORAGE_TYPES = {}
for tname, fmt, size in (("FloatStorage", "f", 4), ("HalfStorage", "e", 2), ("BFloat16Storage", "bf16", 2),
                         ("LongStorage", "q", 8)):
    cls = type(tname, (), {"__module__": "torch"})
    setattr(torch, tname, cls)
    STORAGE_TYPES[tname] = (cls, fmt, size)
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils

ST_DTYPE = {"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16"}


class Storage:
    """One torch storage: a flat array of numel elements of one type."""

    def __init__(self, tname, values):
        self.tname = tname
        self.cls, fmt, self.esize = STORAGE_TYPES[tname]
        self.numel = len(values)
        if fmt == "bf16":  # values are chosen exactly representable: truncation is exact
            self.data = b"".join(struct.pack("<f", v)[2:] for v in values)
            assert all(struct.unpack("<f", b"\0\0" + self.data[2 * i:2 * i + 2])[0] == v for i, v in enumerate(values))
        else:
            self.data = struct.pack("<%d%s" % (len(values), fmt), *values)
        self.key = None


class Tensor:
    """A view (offset, size, stride) of a Storage, reduced exactly as torch.Tensor is."""

    def __init__(self, storage, size, stride=None, offset=0, parameter=False):
        self.storage, self.size, self.offset, self.parameter = storage, tuple(size), offset, parameter
        if stride is None:
            stride, acc = [], 1
            for d in reversed(size):
                stride.insert(0, acc)
                acc *= d
        self.stride = tuple(stride)

    def __reduce_ex__(self, proto):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        if self.parameter:
            inner = Tensor(self.storage, self.size, self.stride, self.offset)
            return (_rebuild_parameter, (inner, False, collections.OrderedDict()))
        return (_rebuild_tensor_v2, args)

    def contiguous_bytes(self):
        """The tensor's elements in row-major order (for the safetensors twin)."""
        es, out = self.storage.esize, bytearray()
        n = 1
        for d in self.size:
            n *= d
        for flat in range(n):
            idx, rem = self.offset, flat
            for d, s in zip(reversed(self.size), reversed(self.stride)):
                idx += (rem % d) * s
                rem //= d
            out += self.storage.data[idx * es:(idx + 1) * es]
        return bytes(out)


def pickle_checkpoint(obj, protocol):
    """data.pkl and the storages in key order, as torch.serialization._save makes them."""
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                if o.key is None:
                    o.key = str(len(storages))
                    storages[o.key] = o
                return ("storage", o.cls, o.key, "cpu", o.numel)
            return None

    import io
    buf = io.BytesIO()
    Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue(), storages


# ---- the zip layout of torch's PyTorchStreamWriter (miniz) -----------------------------------

class TorchZip:
    def __init__(self, force_zip64=False):
        self.out = bytearray()
        self.central = []
        self.force_zip64 = force_zip64

    def record(self, name, data):
        name_b = name.encode()
        off = len(self.out)
        start = off + 30 + len(name_b) + 4
        pad = (64 - start % 64) % 64
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        self.out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(name_b), len(extra))
        self.out += name_b + extra
        assert len(self.out) % 64 == 0
        self.out += data
        crc = zlib.crc32(data) & 0xFFFFFFFF
        self.out += struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        self.central.append((name_b, crc, len(data), off))

    def finish(self):
        cd_off = len(self.out)
        for name_b, crc, size, off in self.central:
            if self.force_zip64:  # what miniz writes for records past 4 GiB, forced here
                x = struct.pack("<HHQQQ", 0x0001, 24, size, size, off)
                self.out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 0x2D, 0x0808, 0, 0, 0, crc,
                                        0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(x), 0, 0, 0, 0, 0xFFFFFFFF)
                self.out += name_b + x
            else:
                self.out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc, size, size,
                                        len(name_b), 0, 0, 0, 0, 0, off)
                self.out += name_b
        cd_size = len(self.out) - cd_off
        n = len(self.central)
        z64 = len(self.out)
        self.out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x2D, 0, 0, n, n, cd_size, cd_off)
        self.out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        self.out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off, 0)
        return bytes(self.out)


def self_check(path):
    """The archive must read back with Python's zipfile (CRCs included), its data records must be
    64-byte aligned as torch aligns them, and data.pkl must parse as a pickle."""
    import pickletools
    import zipfile
    raw = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None, path
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            nlen, xlen = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + nlen + xlen) % 64 == 0, (path, info.filename)
            if info.filename.endswith("/data.pkl"):
                with open(os.devnull, "w") as null:
                    pickletools.dis(z.read(info), out=null)


def torch_save(path, obj, style, protocol=2, force_zip64=False):
    pkl, storages = pickle_checkpoint(obj, protocol)
    stem = os.path.splitext(os.path.basename(path))[0]
    z = TorchZip(force_zip64)
    if style == 1:
        z.record(stem + "/data.pkl", pkl)
        for key in sorted(storages):
            z.record("%s/data/%s" % (stem, key), storages[key].data)
        z.record(stem + "/version", b"3\n")
    else:
        z.record("archive/data.pkl", pkl)
        z.record("archive/.format_version", b"1")
        z.record("archive/.storage_alignment", b"64")
        z.record("archive/byteorder", b"little")
        for key in sorted(storages, key=int):
            z.record("archive/data/%s" % key, storages[key].data)
        z.record("archive/version", b"3\n")
        z.record("archive/.data/serialization_id", b"0636457737946401051300000024591131452734")
    with open(path, "wb") as f:
        f.write(z.finish())
    self_check(path)


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous_bytes()
        header[name] = {"dtype": ST_DTYPE[t.storage.tname], "shape": list(t.size), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def vals(n, scale=0.25, base=-1.0):
    return [base + scale * i for i in range(n)]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "pt")
    os.makedirs(out, exist_ok=True)

    # torch 1.x style: plain dict; f32, f16, bf16 and a 0-dim tensor
    t1 = {
        "layer.weight.f32": Tensor(Storage("FloatStorage", vals(6)), (2, 3)),
        "layer.bias.f16": Tensor(Storage("HalfStorage", vals(4, 0.5)), (4,)),
        "layer.rosa_e0.bf16": Tensor(Storage("BFloat16Storage", vals(4, 0.125, 2.0)), (2, 2)),
        "scale": Tensor(Storage("FloatStorage", [3.5]), ()),
    }
    torch_save(os.path.join(out, "torch1_dict.pt"), t1, style=1)
    save_safetensors(os.path.join(out, "torch1_dict.safetensors"), t1)

    # torch 2.x style: a state_dict (OrderedDict with _metadata, so REDUCE, SETITEMS, BUILD), two
    # views into one shared storage (the second at a storage offset), and an nn.Parameter
    shared = Storage("FloatStorage", vals(10, 1.0))
    t2 = collections.OrderedDict()
    t2["w.bf16"] = Tensor(Storage("BFloat16Storage", vals(12, 0.0625)), (3, 4))
    t2["shared.head"] = Tensor(shared, (4,))
    t2["shared.tail"] = Tensor(shared, (2, 3), offset=4)
    t2["row.f16"] = Tensor(Storage("HalfStorage", vals(5, 0.5)), (1, 5))
    t2["param.f32"] = Tensor(Storage("FloatStorage", vals(3, 2.0)), (3,), parameter=True)
    t2._metadata = collections.OrderedDict([("", {"version": 1}), ("w", {"version": 1})])
    torch_save(os.path.join(out, "torch2_ordered.pt"), t2, style=2)
    save_safetensors(os.path.join(out, "torch2_ordered.safetensors"), t2)

    # torch.save(..., pickle_protocol=4): FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL
    t3 = {"p4.a": Tensor(Storage("BFloat16Storage", vals(8, 0.25)), (2, 2, 2)),
          "p4.b": Tensor(Storage("HalfStorage", vals(3)), (3,))}
    torch_save(os.path.join(out, "torch2_proto4.pt"), t3, style=2, protocol=4)
    save_safetensors(os.path.join(out, "torch2_proto4.safetensors"), t3)

    # zip64 central directory entries (sizes and offsets in the 0x0001 extra field), as torch
    # writes them for records beyond 4 GiB
    t4 = {"z64.a": Tensor(Storage("FloatStorage", vals(5)), (5,)),
          "z64.b": Tensor(Storage("BFloat16Storage", vals(6, 0.5)), (1, 2, 3))}
    torch_save(os.path.join(out, "zip64_extras.pt"), t4, style=2, force_zip64=True)
    save_safetensors(os.path.join(out, "zip64_extras.safetensors"), t4)

    # must be refused: a transposed (non-contiguous) view
    t5 = {"ok": Tensor(Storage("FloatStorage", vals(2)), (2,)),
          "t.transposed": Tensor(Storage("FloatStorage", vals(6)), (3, 2), stride=(1, 3))}
    torch_save(os.path.join(out, "noncontig.pt"), t5, style=1)

    # must be refused: an int64 tensor
    t6 = {"step": Tensor(Storage("LongStorage", [7]), ())}
    torch_save(os.path.join(out, "long_storage.pt"), t6, style=2)


if __name__ == "__main__":
    main()
