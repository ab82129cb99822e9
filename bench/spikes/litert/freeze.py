# ruff: noqa
# Freeze serving_default (inlines functions) and list nodes around the tokenizer/model boundary.
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf, tensorflow_text
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
m = tf.saved_model.load("/work/main/saved_models/sentiment_scorer/2")
f = m.signatures["serving_default"]
fr = convert_variables_to_constants_v2(f)
gd = fr.graph.as_graph_def()
print(len(gd.node), len(gd.library.function))
tf.io.write_graph(gd, ".", "frozen.pbtxt", as_text=True)
with open("frozen.pb", "wb") as fh:
    fh.write(gd.SerializeToString())
print([i.name for i in fr.inputs], [o.name for o in fr.outputs])
for n in gd.node:
    if n.op not in ("Const",) and (
        "preprocessor" in n.name.lower() or n.op in ("RaggedTensorToTensor", "Placeholder")
    ):
        pass
for n in gd.node:
    if n.op in (
        "RaggedTensorToTensor",
        "Placeholder",
        "Cast",
        "Equal",
        "NotEqual",
        "ZerosLike",
        "OnesLike",
    ):
        print(n.op, n.name, list(n.input)[:4])
