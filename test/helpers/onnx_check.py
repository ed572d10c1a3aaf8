# Checks a written .onnx file with the onnx package (Debian's python3-onnx), a reader independent of ours:
# onnx.checker accepts it, and against the original every node, attribute, input, output and initializer
# name, type and shape is the same. Prints JSON: {"checker": null or the error, "structure": [differences],
# "changed": {initializer: number of elements that differ}}. Usage: onnx_check.py ORIGINAL WRITTEN
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
    try:
        onnx.checker.check_model(b)
        checker = None
    except Exception as err:  # the checker's own exception types vary across versions
        checker = str(err)
    structure = []
    if [str(n) for n in a.graph.node] != [str(n) for n in b.graph.node]:
        structure.append("nodes")
    for part in ("input", "output", "value_info"):
        if [str(v) for v in getattr(a.graph, part)] != [str(v) for v in getattr(b.graph, part)]:
            structure.append(part)
    if [str(o) for o in a.opset_import] != [str(o) for o in b.opset_import]:
        structure.append("opset_import")
    changed = {}
    if [t.name for t in a.graph.initializer] != [t.name for t in b.graph.initializer]:
        structure.append("initializer names")
    else:
        for ta, tb in zip(a.graph.initializer, b.graph.initializer):
            if list(ta.dims) != list(tb.dims) or ta.data_type != tb.data_type:
                structure.append(f"initializer {ta.name} type or shape")
                continue
            va, vb = numpy_helper.to_array(ta), numpy_helper.to_array(tb)
            n = int(np.sum(va != vb))
            if n:
                changed[ta.name] = n
    print(json.dumps({"checker": checker, "structure": structure, "changed": changed}))


main()
