"""The command line every app shares: train, tune, evaluate, export, predict (and an app's own).

User mistakes (`UserError`, `DataError`) print one `error: ...` line and exit with status 2;
anything else is a bug and keeps its traceback. The training, export and tuning modules (and
with them TensorFlow) are imported by the subcommand that needs them, so `--help` and
mistakes in the arguments or the config answer at once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.core import config as config_lib
from apps.core.errors import UserError
from apps.core.output import to_json_ready, write_json
from pipelines.errors import DataError

if TYPE_CHECKING:
    from apps.core.app import App

EXIT_USER_ERROR = 2


def resolve_config(app: App, args: argparse.Namespace) -> Any:
    """Preset or `--config FILE`, then `--data`, then `--set` overrides, in that order."""
    if args.config:
        config = config_lib.load(app.config_class, args.config)
    else:
        config = app.make_config(args.preset)
    if getattr(args, "data", None):
        config.data.source = args.data
    return config_lib.apply_overrides(config, args.overrides)


def run_train(app: App, args: argparse.Namespace) -> None:
    from apps.core import training

    config = resolve_config(app, args)
    if args.strategy:
        config.training.strategy = args.strategy
    workdir = Path(args.workdir)
    training.train(app, config, workdir, overwrite=args.overwrite)
    print(f"trained: best checkpoint {workdir / training.MODEL_FILE}")


def run_tune(app: App, args: argparse.Namespace) -> None:
    from apps.core import tuning

    config = resolve_config(app, args)
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
    print(path)


def serving_function(app: App, model_path: Path):
    """`serving_default` and its named input specs, from a SavedModel or from a work dir."""
    import tensorflow as tf

    from apps.core import export, training

    saved_model = export.resolve_saved_model(model_path)
    if saved_model is not None:
        function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        return function, dict(function.structured_input_signature[1])
    if (model_path / training.CONFIG_FILE).is_file():
        config, model, assets = training.load_trained(app, model_path)
        function = app.serving.endpoints(model, config, assets).functions["serving_default"]
        return function, {spec.name: spec for spec in function.input_signature}
    raise UserError(f"--model {model_path}: neither a SavedModel, an export folder nor a work dir")


def run_predict(app: App, args: argparse.Namespace) -> None:
    model_path = Path(args.model)
    if not model_path.exists():
        raise UserError(f"--model {model_path}: no such file or folder")
    input_file = Path(args.input) if args.input else None
    if input_file is not None and not input_file.is_file():
        raise UserError(f"--input {input_file}: no such file")
    if input_file is None and not args.inputs:
        raise UserError("predict needs INPUT arguments or --input FILE")
    function, input_specs = serving_function(app, model_path)
    request = app.serving.read_inputs(args.inputs, input_file, input_specs)
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


def build_parser(app: App) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=app.command,
        description=app.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        type=int,
        default=10,
        help="trials in total, finished ones included (default: %(default)s; not hyperband)",
    )
    tune.add_argument(
        "--epochs", type=int, help="epochs per trial (default: the config's training.epochs)"
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
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.set_defaults(run=run_export)

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
    try:
        args.run(app, args)
    except (UserError, DataError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
