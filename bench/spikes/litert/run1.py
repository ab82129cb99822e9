# ruff: noqa
# Step 1b: run the as-is converted model with the Python interpreter + TF Text registrar (+ Flex via pip TF).
import os, sys, time, numpy as np

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf, tensorflow_text as tf_text

path = sys.argv[1] if len(sys.argv) > 1 else "sm_asis.tflite"
from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

it = InterpreterWithCustomOps(
    model_path=path, custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS, num_threads=1
)
print(it.get_signature_list())
r = it.get_signature_runner("serving_default")
for batch in (["great movie", "awful"], ["great movie"]):
    try:
        print(r(text=np.array(batch, dtype=object)))
    except Exception as e:
        print("RUN FAILED:", repr(e)[:2000])
