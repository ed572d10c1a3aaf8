"""Compares two HDF5 files (or two .keras archives) with h5py (an independent reader): every object, attribute and dataset.

Prints JSON: {"structure": [...differences in names, types, shapes, dtypes or attributes...],
"datasets": {path: {"channels": [last-axis indices that differ], "zero": bool (those slices are all 0 in
the second file)}}}. Run with Debian's /usr/bin/python3 (python3-h5py).
"""
import io
import json
import sys
import zipfile

import h5py
import numpy as np


def walk(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


def same_attrs(a, b):
    if sorted(a.attrs.keys()) != sorted(b.attrs.keys()):
        return False
    for k in a.attrs.keys():
        x, y = a.attrs[k], b.attrs[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
        elif x != y:
            return False
    return True


def open_h5(path):
    """A .keras archive is compared through its model.weights.h5 (the other entries must be identical)."""
    if path.endswith(".keras"):
        return h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
    return h5py.File(path, "r")


structure, datasets = [], {}
if sys.argv[1].endswith(".keras"):
    za, zb = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2])
    if za.namelist() != zb.namelist():
        structure.append("archive entries differ")
    for n in za.namelist():
        if n != "model.weights.h5" and n in zb.namelist() and za.read(n) != zb.read(n):
            structure.append(f"archive entry {n} differs")
    if zb.testzip() is not None:
        structure.append("archive CRC check fails")
with open_h5(sys.argv[1]) as fa, open_h5(sys.argv[2]) as fb:
    a, b = walk(fa), walk(fb)
    if not same_attrs(fa, fb):
        structure.append("/: attributes differ")
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            structure.append(f"{name}: only in one file")
            continue
        x, y = a[name], b[name]
        if type(x) is not type(y):
            structure.append(f"{name}: object types differ")
            continue
        if not same_attrs(x, y):
            structure.append(f"{name}: attributes differ")
        if isinstance(x, h5py.Dataset):
            if x.shape != y.shape or x.dtype != y.dtype or x.chunks != y.chunks or x.compression != y.compression:
                structure.append(f"{name}: shape, dtype or storage differs")
                continue
            vx, vy = x[()], y[()]
            if np.array_equal(vx, vy):
                continue
            if vx.ndim == 0:
                structure.append(f"{name}: scalar value differs")
                continue
            axes = tuple(range(vx.ndim - 1))
            differ = np.any(vx != vy, axis=axes) if axes else vx != vy
            channels = [int(i) for i in np.nonzero(differ)[0]]
            zero = bool(np.all(vy[..., channels] == 0))
            datasets[name] = {"channels": channels, "zero": zero}
    print(json.dumps({"structure": structure, "datasets": datasets}))
