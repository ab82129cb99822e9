# ruff: noqa
import os, collections

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf, tensorflow_text

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
D = "/work/main/saved_models/sentiment_scorer/2"
m = tf.saved_model.load(D)
print(list(m.signatures.keys()))
f = m.signatures["serving_default"]
print(f.structured_input_signature, f.structured_outputs)
gd = f.graph.as_graph_def()
ops = collections.Counter(n.op for n in gd.node)
for fn in gd.library.function:
    for n in fn.node_def:
        ops[n.op] += 1
print(sorted(ops.items()))
print(f(text=tf.constant(["great movie", "awful"])))
