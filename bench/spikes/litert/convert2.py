# ruff: noqa
# Step 3a: raw-string model = LiteRT-friendly TF Text tokenizer + the export's own (frozen) model half.
# Converted with TFLITE_BUILTINS only + custom ops (no Flex).
import sys, time
from common import *

ref_tok, model = split_exported()
tokenize = make_litert_tokenizer()


class M(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        ids, seg, mask = tokenize(text)
        return {"values": model(ids, seg, mask)}


m = M()
cf = m.serve.get_concrete_function()
ops = sorted({n.op for n in cf.graph.as_graph_def().node})
print("tf ops in wrapper graph:", ops)
flex = "--flex" in sys.argv
quant = "--int8" in sys.argv
c = tf.lite.TFLiteConverter.from_concrete_functions([cf], m)
c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
    [tf.lite.OpsSet.SELECT_TF_OPS] if flex else []
)
c.allow_custom_ops = True
if quant:
    c.optimizations = [tf.lite.Optimize.DEFAULT]
t = time.time()
try:
    b = c.convert()
except Exception as e:
    print("CONVERT FAILED:", str(e)[:4000])
    sys.exit(1)
out = "raw_text_int8.tflite" if quant else ("raw_text_flex.tflite" if flex else "raw_text.tflite")
open(out, "wb").write(b)
print(f"converted in {time.time() - t:.1f}s -> {out}: {len(b) / 1e6:.1f} MB")
