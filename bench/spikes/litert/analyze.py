# ruff: noqa
# List op codes in a .tflite: builtin names, Flex ops, custom ops (with counts).
import sys, collections
from tensorflow.lite.tools import flatbuffer_utils as fu
from tensorflow.lite.python import schema_py_generated as s

names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
m = fu.read_model(sys.argv[1])
cnt = collections.Counter()
for sg in m.subgraphs:
    for op in sg.operators:
        oc = m.operatorCodes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == s.BuiltinOperator.CUSTOM:
            cc = oc.customCode.decode()
            cnt[("FLEX" if cc.startswith("Flex") else "CUSTOM", cc)] += 1
        else:
            cnt[("builtin", names[code])] += 1
print("subgraphs:", len(m.subgraphs))
for (k, n), v in sorted(cnt.items()):
    if k != "builtin":
        print(f"  {k:7s} {n}: {v}")
print("  builtins:", ", ".join(f"{n}x{v}" for (k, n), v in sorted(cnt.items()) if k == "builtin"))
