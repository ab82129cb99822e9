"""Texts on which keras-hub's BERT tokenizer is hard to reproduce in another runtime's ops. The
raw-text artifacts built outside TensorFlow Text's own graph (`export.onnx_text`, text
`export.litert`) are run on them before publishing; how many answer differently from Keras is
recorded in `ftk_export.json` and the model card, and does not stop the export."""

EDGE_CASES = [
    "",
    " ",
    "   \t\n ",
    "!!!",
    "[CLS] [SEP] [PAD] [MASK] [UNK]",
    "Café crème brûlée, naïve façade, jalapeño, Ångström, Øresund, Æsir, Straße",
    "ÉCOLE NORMALE SUPÉRIEURE — ÇA VA?",
    "Łódź, Kraków, Gdańsk; Dvořák, Čapek, Škoda, Žižek; İstanbul, Şişli",
    "Ελληνικά ΑΘΗΝΑ Σωκράτης Русский язык МОСКВА Ёлка",
    "日本語のテキスト、東京。中文测试：你好，世界！한국어 텍스트 서울",
    "This movie was great 😀😀 10/10 👍 I ❤️ NY :-) <3",
    "mixed中文English混合text",
    "ﬁne ﬂower ½ ² ™ № ℃ ㎏ Ⅻ ｆｕｌｌｗｉｄｔｈ ＡＢＣ！",
    "“curly quotes” ‘single’ «guillemets» „low“ ellipsis… en–dash em—dash",
    "zero\u200bwidth soft\u00adhyphen non\u00a0breaking\u2009thin",
    "tab\tnew\nline\r\ncarriage \x07bell",
    "text after a NUL byte \x00 is dropped by keras-hub",
    "\ufeffBOM at start",
    "supercalifragilisticexpialidocious " + "x" * 120,
    "Ǆ ǅ ǆ ΐ ŉ ǰ ẞ İ Nguyễn Việt Nam tiếng Việt",
    "שלום עולם مرحبا بالعالم नमस्ते दुनिया",
    "CFD´s don´t e-mail@example.com $1,000 £500 €20 50% 3.14",
    "Long sentence with many words. " * 20,
]
