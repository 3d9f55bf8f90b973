"""The command line every app shares: train, tune, evaluate, export, predict (and an app's own).

User mistakes (`UserError`, `DataError`) print one `error: ...` line and exit with status 2;
anything else is a bug and keeps its traceback. The training, export and tuning modules (and
with them TensorFlow) are imported by the subcommand that needs them, after the config is
read, so `--help` and mistakes in the arguments or the config answer at once. TensorFlow's
C++ log lines are hidden unless `--verbose` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.core import config as config_lib
from apps.core.errors import UserError
from apps.core.output import to_json_ready, write_json
from apps.core.workdir import prepare_workdir
from pipelines.errors import DataError

if TYPE_CHECKING:
    from apps.core.app import App

EXIT_USER_ERROR = 2

# TensorFlow's C++ info and warning lines (glog format: "I0000 00:00:17961.. 123 file.cc:31]"),
# the error line of a machine without a GPU ("failed call to cuInit"), and absl's notice about
# them. TF_CPP_MIN_LOG_LEVEL=3 hides most once the libraries are loaded; the filter the rest.
GLOG_PREFIX = rb"\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\]"
NATIVE_LOG_LINE = re.compile(
    rb"^([IW]" + GLOG_PREFIX + rb"|E" + GLOG_PREFIX + rb" failed call to cuInit"
    rb"|WARNING: All log messages before absl)"
)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@contextlib.contextmanager
def native_logs_hidden():
    """Hides TensorFlow's C++ log lines: sets TF_CPP_MIN_LOG_LEVEL (unless the user did) and
    passes standard error (file descriptor 2, which C++ writes to) through a filter thread that
    drops the lines printed before that setting applies and forwards everything else live."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                # A line ends at "\n", or at "\r" for progress bars that redraw in place.
                *lines, pending = re.split(rb"(?<=[\r\n])", pending + chunk)
                for line in lines:
                    if not NATIVE_LOG_LINE.match(line):
                        os.write(real_stderr, line)
            if pending and not NATIVE_LOG_LINE.match(pending):
                os.write(real_stderr, pending)

    thread = threading.Thread(target=forward, name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe's write end: the thread drains and ends
        thread.join(timeout=2)
        if not thread.is_alive():  # else a child process still holds the pipe: keep writing
            os.close(real_stderr)


def resolve_config(app: App, args: argparse.Namespace) -> Any:
    """Preset or `--config FILE`, then `--data`, then `--set` overrides, in that order, then
    what the app derives from the data (`App.complete_config`)."""
    if args.config:
        config = config_lib.load(app.config_class, args.config)
    else:
        config = app.make_config(args.preset)
    if getattr(args, "data", None):
        config.data.source = args.data
    return app.complete_config(config_lib.apply_overrides(config, args.overrides))


def run_train(app: App, args: argparse.Namespace) -> None:
    config = resolve_config(app, args)
    if args.strategy:
        config.training.strategy = args.strategy
    workdir = Path(args.workdir)
    prepare_workdir(config, workdir, args.overwrite, app.chosen_after_training_fields)  # before TF
    from apps.core import training

    training.train(app, config, workdir, overwrite=args.overwrite)
    print(f"trained: best checkpoint {workdir / training.MODEL_FILE}")


def run_tune(app: App, args: argparse.Namespace) -> None:
    config = resolve_config(app, args)
    from apps.core import tuning

    if args.epochs:
        config.training.epochs = args.epochs
    tuning.tune(
        app,
        config,
        Path(args.workdir),
        tuner_name=args.tuner,
        max_trials=args.max_trials,
        export_best=args.export_best,
        export_root=Path(args.export_dir) if args.export_dir else None,
        trials_per_process=args.trials_per_process,
    )


def data_suffix(source: str) -> str:
    """`-<stem>` of a `--data` file, folder or dataset name, safe in a file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source.rstrip("/\\")).stem).strip("-.")
    return f"-{stem or 'data'}"


def run_evaluate(app: App, args: argparse.Namespace) -> None:
    from apps.core import training
    from apps.core.app import EvaluationOutputs

    workdir = Path(args.workdir)
    for override in args.overrides:
        key = override.partition("=")[0].strip()
        if not key.startswith("data."):
            raise UserError(
                f"evaluate --set {key}: only data fields (data.*) can change after training; "
                f"the rest of the config is the trained model's"
            )
    if args.overrides and not args.data:
        raise UserError(
            "evaluate --set changes how --data FILE is read; the held-out split is read as "
            "it was trained"
        )
    config_lib.apply_overrides(app.config_class(), args.overrides)  # checked before loading
    config, model, assets = training.load_trained(app, workdir)
    outputs = EvaluationOutputs(workdir)
    if args.data:
        config.data.source = args.data
        config_lib.apply_overrides(config, args.overrides)
        outputs = EvaluationOutputs(workdir, data_suffix(args.data))
    datasets = app.data.load_data(config, assets, whole_as_test=bool(args.data))
    if datasets.test is None:
        raise UserError(
            f"{workdir} has no test split (trained with data.test_fraction=0); score a file "
            "with evaluate --data FILE"
        )
    metrics = app.evaluation.evaluate(model, config, datasets, outputs)
    metrics = {"data": config.data.source, **datasets.summary, **metrics}
    metrics_file = outputs.path("metrics.json")
    replaced = metrics_file.is_file()
    write_json(metrics, metrics_file)
    for key, value in metrics.items():
        print(f"{key}: {json.dumps(to_json_ready(value))}")
    print(f"wrote {metrics_file}" + (" (replacing the earlier one)" if replaced else ""))


def run_export(app: App, args: argparse.Namespace) -> None:
    from apps.core import export, training

    config, model, assets = training.load_trained(app, Path(args.workdir))
    export_root = Path(args.export_dir or config.export.export_dir)
    path = export.export(app, model, config, assets, export_root, version=args.version)
    if args.label:
        export.set_label(export_root, app.name, args.label, int(path.name))
        print(f"labelled version {path.name} {args.label!r}", file=sys.stderr)
    if args.keep:
        for version in export.prune_versions(export_root, app.name, args.keep):
            print(f"deleted version {version} (--keep {args.keep})", file=sys.stderr)
    print(path)


def run_label(app: App, args: argparse.Namespace) -> None:
    from apps.core import export

    export_root = Path(args.export_dir)
    export.set_label(export_root, app.name, args.label, args.version)
    print(f"{export_root / app.name}: {args.label!r} -> version {args.version}")


def serving_function(app: App, model_path: Path):
    """`serving_default` and its named input specs, from a SavedModel or from a work dir."""
    import tensorflow as tf

    from apps.core import export, training

    saved_model = export.resolve_saved_model(model_path)
    if saved_model is not None:
        check_export_app(app, model_path, export.read_metadata(saved_model))
        function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        return function, dict(function.structured_input_signature[1])
    if (model_path / training.CONFIG_FILE).is_file():
        config, model, assets = training.load_trained(app, model_path)
        function = export.serving_endpoints(app, model, config, assets).functions["serving_default"]
        return function, {spec.name: spec for spec in function.input_signature}
    raise UserError(f"--model {model_path}: neither a SavedModel, an export folder nor a work dir")


def check_export_app(app: App, model_path: Path, metadata: dict[str, Any] | None) -> None:
    """Refuses another app's export, naming its app, command and inputs."""
    if metadata is None or metadata["app"] == app.name:
        return
    inputs = ", ".join(metadata["signatures"]["serving_default"])
    raise UserError(
        f"--model {model_path}: an export of the {metadata['app']} app (inputs: {inputs}); "
        f"answer it with `{metadata['command']} predict`, or give {app.command} a {app.name} export"
    )


def batch_size(inputs: dict[str, Any]) -> int:
    return len(next(iter(inputs.values())))


def run_predict(app: App, args: argparse.Namespace) -> None:
    model_path = Path(args.model)
    if not model_path.exists():
        raise UserError(f"--model {model_path}: no such file or folder")
    input_file = Path(args.input) if args.input else None
    if input_file is not None and not input_file.is_file():
        raise UserError(f"--input {input_file}: no such file")
    if input_file is not None and not args.inputs and not input_file.read_bytes().strip():
        raise UserError(f"--input {input_file}: the file is empty; nothing to predict")
    if input_file is None and not args.inputs:
        raise UserError("predict needs INPUT arguments or --input FILE")
    function, input_specs = serving_function(app, model_path)
    request = app.serving.read_inputs(args.inputs, input_file, input_specs)
    if batch_size(request.inputs) == 0:
        raise UserError(f"--input {input_file}: no inputs in it; nothing to predict")
    outputs = {name: value.numpy() for name, value in function(**request.inputs).items()}
    output = Path(args.output) if args.output else None
    app.serving.write_predictions(app.serving.format_outputs(request, outputs), output)


def add_config_arguments(parser: argparse.ArgumentParser, app: App) -> None:
    parser.add_argument(
        "--preset",
        default=app.default_preset,
        choices=sorted(app.presets),
        help="named config to start from (default: %(default)s)",
    )
    parser.add_argument("--config", help="a config JSON file (e.g. a work dir's config.json)")
    parser.add_argument(
        "--data",
        help="a dataset name, tfds:NAME, or a path to your own file or folder",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.units=64 (repeatable)",
    )


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: every subcommand, an app's own included, takes `--verbose`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--verbose", action="store_true", help="show TensorFlow's own log lines too"
        )


def build_parser(app: App) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=app.command,
        description=app.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )

    train = commands.add_parser(
        "train",
        help="train a model into a work dir (rerun the same command to resume after a crash; "
        "a finished run is kept)",
    )
    train.add_argument("--workdir", required=True, help="folder for config, checkpoints, logs")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="when the work dir holds a finished run or one with another config, rename it to "
        "WORKDIR.old-<time> (nothing is deleted) and train anew; an interrupted run with the "
        "same config still resumes",
    )
    add_config_arguments(train, app)
    train.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi-worker"],
        help="one device, the GPUs of this machine, or the machines of TF_CONFIG (sets "
        "training.strategy; training.batch_size is per replica, see docs/scale-out.md)",
    )
    train.set_defaults(run=run_train)

    tune = commands.add_parser(
        "tune",
        help="search hyperparameters with KerasTuner; writes DIR/best_config.json "
        "(rerun the same command to resume)",
    )
    tune.add_argument("--workdir", required=True, help="folder for the trials, logs, results")
    add_config_arguments(tune, app)
    tune.add_argument(
        "--tuner",
        default="bayesian",
        choices=["random", "bayesian", "hyperband"],
        help="search algorithm (default: %(default)s)",
    )
    tune.add_argument(
        "--max-trials",
        type=positive_int,
        default=10,
        help="trials in total, finished ones included (default: %(default)s; not hyperband)",
    )
    tune.add_argument(
        "--epochs",
        type=positive_int,
        help="epochs per trial (default: the config's training.epochs)",
    )
    tune.add_argument(
        "--trials-per-process",
        type=int,
        default=1,
        help="run the trials this many at a time in fresh processes, so that memory does not "
        "grow over a long search (0: all in this process; default: %(default)s)",
    )
    tune.add_argument(
        "--export-best",
        action="store_true",
        help="retrain the best config into DIR/best and export it for TF Serving",
    )
    tune.add_argument("--export-dir", help="export root for --export-best (default: the config's)")
    tune.set_defaults(run=run_tune)

    evaluate = commands.add_parser(
        "evaluate",
        help="score the best checkpoint; writes DIR/metrics.json and plots (with --data FILE: "
        "DIR/metrics-FILE.json and plots named -FILE, beside them)",
    )
    evaluate.add_argument("--workdir", required=True, help="a trained work dir")
    evaluate.add_argument(
        "--data", help="evaluate on this dataset or file instead of the held-out test split"
    )
    evaluate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="how to read --data: a data field, e.g. --set data.text_column=review (repeatable)",
    )
    evaluate.set_defaults(run=run_evaluate)

    export = commands.add_parser(
        "export", help="write a SavedModel for TF Serving; prints the version path"
    )
    export.add_argument("--workdir", required=True, help="a trained work dir")
    export.add_argument(
        "--export-dir", help="export root (default: the config's, saved_models/ here)"
    )
    export.add_argument(
        "--version", type=positive_int, help="version number (default: the next free one)"
    )
    export.add_argument(
        "--label", help="give the new version this TF Serving label, e.g. stable or canary"
    )
    export.add_argument(
        "--keep",
        type=positive_int,
        help="then delete all but the KEEP newest versions (labelled versions are kept)",
    )
    export.set_defaults(run=run_export)

    label = commands.add_parser(
        "label",
        help="point a TF Serving version label (stable, canary, ...) at an exported version",
    )
    label.add_argument("version", type=positive_int, metavar="VERSION")
    label.add_argument("label", metavar="LABEL")
    label.add_argument(
        "--export-dir", default="saved_models", help="export root (default: %(default)s)"
    )
    label.set_defaults(run=run_label)

    predict = commands.add_parser(
        "predict", help="answer inputs with an exported SavedModel or a work dir"
    )
    predict.add_argument(
        "--model", required=True, help="a SavedModel version, an export folder or a work dir"
    )
    predict.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs on the command line")
    predict.add_argument("--input", help="a file of inputs (see the app's help)")
    predict.add_argument("--output", help="write the answers here instead of stdout")
    predict.set_defaults(run=run_predict)

    app.add_commands(commands)
    return parser


def main(app: App, argv: list[str] | None = None) -> int:
    args = build_parser(app).parse_args(argv)
    quiet = native_logs_hidden() if not args.verbose else contextlib.nullcontext()
    try:
        with quiet:
            args.run(app, args)
    except (UserError, DataError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
