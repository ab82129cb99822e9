# ruff: noqa
# Step 1: convert the ftk SavedModel as-is (keras-hub BertTokenizer graph) to TFLite.
import os, sys, time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf, tensorflow_text as tf_text

D = "/work/main/saved_models/sentiment_scorer/2"
c = tf.lite.TFLiteConverter.from_saved_model(D, signature_keys=["serving_default"])
c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
c.allow_custom_ops = True
t = time.time()
try:
    b = c.convert()
except Exception as e:
    print("CONVERT FAILED:", repr(e)[:3000])
    sys.exit(1)
print("converted in %.1fs, %d bytes" % (time.time() - t, len(b)))
open("sm_asis.tflite", "wb").write(b)
