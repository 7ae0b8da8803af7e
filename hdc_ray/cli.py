"""``hdc-ray``: train, sweep, analyse.

    hdc-ray train tiny                                   # in-process, seconds on a CPU
    hdc-ray train synthetic --set train.method=supervised --out runs/sup
    hdc-ray train synthetic --workers 2                  # Ray Train, DDP over 2 workers
    hdc-ray validate search_spaces/loss_weights.yaml     # check a config or a sweep spec
    hdc-ray sweep smoke --results results                # Ray Tune + Optuna, Parquet results
    hdc-ray report results                               # Markdown/HTML report with plots
    hdc-ray export ~/ray_results/my-sweep                # rebuild Parquet from a Tune experiment
    hdc-ray compact results/my-sweep                     # one Parquet file per table (done at a sweep's end)
    hdc-ray predict runs/tiny scans/ --out masks/        # masks for new images, at their native size
    hdc-ray predict results/demo --best --labels 4 data/ --out masks/   # the best trial at 4 labels (by validation)
    hdc-ray evaluate runs/tiny --split test              # score a checkpoint (challenge conventions + as training does)
    hdc-ray evaluate data/fugc2025 masks/                # score predicted masks against references (nnU-Net's summary.json)
    hdc-ray export-fugc runs/fugc --out submission/      # FUGC 2025 code submission: model.py (numpy + torch) + weights

Heavy imports (torch, ray) happen inside the commands, so ``--help`` and ``validate`` are instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hdc_ray.errors import UserError  # no imports of its own: --help stays instant


def _add_overrides(p: argparse.ArgumentParser, example: str = "override a config value, e.g. --set train.epochs=3") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=f"{example} (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdc-ray", description="Train and tune HDC semi-supervised ultrasound segmentation on Ray.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-epoch lines and Ray's own log lines (also HDC_RAY_VERBOSE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train one configuration (in-process, or on Ray Train with --workers)")
    p.add_argument("config", help="packaged config name (tiny, synthetic, fugc, psfh) or a YAML path")
    _add_overrides(p)
    p.add_argument("--out", default=None, help="output folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--workers", type=int, default=None, help="run on Ray Train with N DDP workers")
    p.add_argument("--gpu", action="store_true", help="one GPU per Ray Train worker (NCCL)")
    p.add_argument("--address", default=None, help="Ray cluster address: auto or HOST:PORT (default: start a local one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")

    p = sub.add_parser("validate", help="check a config or a sweep spec and print the resolved values")
    p.add_argument("path", help="config name/path or search-space spec name/path")
    _add_overrides(p)

    p = sub.add_parser("sweep", help="run a Ray Tune + Optuna sweep described by a search-space spec")
    p.add_argument("spec", help="spec name in search_spaces/ (smoke, loss_weights, ...) or a YAML path")
    p.add_argument("--name", default=None, help="sweep name (default: the spec's name)")
    p.add_argument("--address", default=None, help="Ray cluster address: auto or HOST:PORT (default: start a local one)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted sweep of the same name")
    p.add_argument("--results", default="results", help="results folder or URI (s3://, gs://); Parquet lands in RESULTS/NAME/")
    p.add_argument("--trials", type=int, default=None, help="override the spec's number of trials")
    p.add_argument("--accept-spec-change", action="store_true", help="with --resume: run the remaining trials with a changed spec (base/overrides/resources), recorded in RESULTS/NAME/spec_changes.yaml")
    _add_overrides(p, "override a spec value, e.g. --set overrides.train.epochs=8 or --set seeds=[0]")

    p = sub.add_parser("report", help="write a Markdown/HTML report with plots from sweep results")
    p.add_argument("results", help="results folder holding <sweep>/trials.parquet")
    p.add_argument("--sweep", action="append", default=None, help="only these sweeps (repeatable)")
    p.add_argument("--out", default=None, help="report folder (default: RESULTS/report)")
    p.add_argument("--target-dice", type=float, default=None, metavar="D", help="also answer: labelled images each method needs to reach Dice D")

    p = sub.add_parser("export", help="rebuild trials/history Parquet from a Tune experiment folder")
    p.add_argument("experiment", help="the Tune experiment folder (RESULTS/NAME/tune or any storage path)")
    p.add_argument("--out", default=None, help="where to write the Parquet files (default: next to the experiment)")
    p.add_argument("--spec", default=None, help="the sweep's spec (default: spec.yaml next to the experiment)")

    p = sub.add_parser("compact", help="rewrite a sweep's trials/history Parquet folders as one file each")
    p.add_argument("folder", help="the sweep's results folder (RESULTS/NAME)")

    p = sub.add_parser("predict", help="segment a folder of images with a trained checkpoint (masks at native size)")
    p.add_argument("source", help="a train output folder, a checkpoint file (.pt), or a sweep's results folder (with --trial or --best)")
    p.add_argument("input", help="a folder of images (PNG/JPEG/TIFF/BMP/.mha), one image, or a dataset root in the FUGC or PSFH layout")
    p.add_argument("--out", required=True, help="output folder for the masks (refused if it exists and is not empty, unless --overwrite)")
    _add_source_choice(p)
    p.add_argument("--overlays", action="store_true", help="also write a coloured overlay PNG per image under OUT/overlays/")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder (only once every mask is written)")
    p.add_argument("--save-probabilities", action="store_true", help="also write each mask's softmax probabilities: <mask name>.npz, nnU-Net's 'probabilities' (classes, H, W) float32")
    p.add_argument("--continue-on-error", action="store_true", help="skip unreadable images (listed in OUT/errors.json; exit status 3) instead of stopping at the first")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (default: cuda when available)")
    p.add_argument("--address", default=None, help="run on Ray Data on this cluster (auto or HOST:PORT; 'local' starts one here)")
    p.add_argument("--workers", type=int, default=2, help="with --address: predictor actors (default 2)")
    p.add_argument("--gpu", action="store_true", help="with --address: one GPU per predictor actor")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("export-fugc", help="write a FUGC 2025 code submission from a checkpoint: model.py (numpy + torch only) and its weights")
    p.add_argument("source", help="a train output folder, a checkpoint file (.pt), or a sweep's results folder (with --trial or --best)")
    p.add_argument("--out", required=True, help="folder for model.py and hdc_ray_fugc.pt (refused if it exists and is not empty, unless --overwrite)")
    _add_source_choice(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    p = sub.add_parser("evaluate", help="score a checkpoint on labelled images, or a folder of predicted masks against references (REF PRED)")
    p.add_argument("source", help="MODEL: a train output folder, a checkpoint file (.pt), or a sweep's results folder (with --trial or --best); "
                                  "or REF, a folder of reference masks (FUGC root, PSFH root or plain folder), when PRED follows")  # fmt: skip
    p.add_argument("prediction", nargs="?", default=None, metavar="PRED", help="a folder of predicted masks to score against REF, matched by file stem")
    _add_overrides(p, "MODEL: change the run's data config, e.g. --set data.root=/data/fugc2025 (layout detected)")
    p.add_argument("--split", choices=("test", "val", "all"), default=None,
                   help="MODEL: the run's test or validation split, or all labelled images (default: test on the run's own data, all on another folder)")  # fmt: skip
    p.add_argument("--task", choices=("cervix", "psfh"), default=None, help="REF PRED: whose challenge metrics to add when neither folder is a dataset layout")
    p.add_argument("--out", default=None, help="folder for cases.csv and summary.json (default: MODEL: next to the checkpoint, evaluate-SPLIT; REF PRED: PRED-evaluate)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    _add_source_choice(p)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list the packaged configs and the shipped search-space specs")
    return parser


def _add_source_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trial", action="append", default=[], metavar="ID", help="with a sweep: this trial (repeat for an ensemble)")
    p.add_argument("--best", action="store_true", help="with a sweep: the trial with the best validation score (never a test score)")
    p.add_argument("--top", type=int, default=None, metavar="K", help="with a sweep: average the K trials with the best validation scores (an ensemble)")
    p.add_argument("--labels", type=int, default=None, metavar="N", help="with --best: only trials trained with N labelled images")
    p.add_argument("--ensemble", action="append", default=[], metavar="SOURCE", help="another checkpoint or train folder to average with (repeatable)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average with the horizontally flipped image")


def _cmd_train(args: argparse.Namespace) -> int:
    from hdc_ray.config import load_config

    cfg = load_config(args.config, args.overrides)
    out = Path(args.out or Path("runs") / cfg.name)
    from hdc_ray.train.run import final_line

    if args.workers is not None or args.gpu or args.address:
        from hdc_ray.distributed.launch import train_distributed

        summary, run_dir = train_distributed(cfg, out, workers=args.workers, gpu=args.gpu, address=args.address, resume=args.resume)
        outputs = f"{run_dir}/ (metrics.json, checkpoint_*/ with state.pt)"
    else:
        from hdc_ray.train.run import run_local

        _, summary = run_local(cfg, out, resume=args.resume, progress=not args.no_progress)
        outputs = f"{out}/ (metrics.json, history.csv, best.pt, checkpoints/)"
    print(final_line(summary))  # one summary line, in-process or on Ray Train
    print(f"outputs in {outputs}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from hdc_ray.tune.spec import is_spec_file, load_spec

    if is_spec_file(args.path):
        spec = load_spec(args.path, args.overrides)
        print(spec.describe())
        return 0
    from hdc_ray.config import dump_yaml, load_config

    cfg = load_config(args.path, args.overrides)
    print(dump_yaml(cfg), end="")
    print(f"# ok: {args.path} is a valid config")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from hdc_ray.tune.spec import SpecError, load_spec
    from hdc_ray.tune.sweep import run_sweep

    overrides = list(args.overrides)
    if args.trials is not None:
        overrides.append(f"search.trials={args.trials}")
    spec = load_spec(args.spec, overrides)
    if args.accept_spec_change and not args.resume:
        raise SpecError("--accept-spec-change only applies with --resume")
    run_sweep(spec, results=args.results, name=args.name, address=args.address, resume=args.resume, verbose=args.verbose, accept_spec_change=args.accept_spec_change)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from hdc_ray.analysis.report import report_results

    try:
        report = report_results(args.results, sweeps=args.sweep, out=args.out, target_dice=args.target_dice)
    except OSError as exc:
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return 1
    print(report.summary)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from hdc_ray.tune.export import export_experiment
    from hdc_ray.tune.spec import load_spec

    experiment = Path(args.experiment).expanduser()
    spec = load_spec(args.spec) if args.spec else None
    out = Path(args.out) if args.out else experiment.resolve().parent
    n_trials, n_epochs = export_experiment(experiment, out, spec)
    print(f"exported {n_trials} trials, {n_epochs} epoch rows -> {out}/trials.parquet, {out}/history.parquet")
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    from hdc_ray.results.dataset import compact_sweep

    for name, stats in compact_sweep(args.folder).items():
        print(f"{name}: {stats.parts_before} -> {stats.parts_after} part(s), {stats.rows_before} -> {stats.rows_after} rows, {stats.bytes_after / 1e6:.1f} MB")
    return 0


def _load_models(args: argparse.Namespace, expect_task: str | None = None, what: str = "") -> list:  # type: ignore[type-arg]
    from hdc_ray.inference.sources import load_models, resolve

    best = args.top if args.top is not None else (1 if args.best else None)
    resolved = resolve(args.source, trials=args.trial, best=best, labels=args.labels)
    for extra in args.ensemble:
        resolved += resolve(extra)
    models = load_models(resolved, expect_task, what)
    for m in models:
        print(f"checkpoint: {m.note}")
        for warning in m.warnings:
            print(f"note: {warning}")
    print(f"model: {models[0].card.describe()}" + (f"; an ensemble of {len(models)}" if len(models) > 1 else "") + ("; flip TTA" if args.tta else ""))
    return models


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        from hdc_ray.outputs import OutputError

        raise OutputError("--device cuda: no CUDA device here (or torch is a CPU build); use --device cpu")
    return name


def _cmd_predict(args: argparse.Namespace) -> int:
    """Exit 0: every image has a mask; 2: refused or stopped (masks written so far in OUT.partial/);
    3: finished, but --continue-on-error skipped unreadable images (OUT/errors.json lists them)."""
    from hdc_ray.inference.inputs import discover
    from hdc_ray.inference.predict import PredictOptions, predict_folder, summary_lines

    if args.batch_size < 1:
        raise _usage("--batch-size must be >= 1")
    inputs = discover(args.input)
    models = _load_models(args, inputs.task, f"INPUT {args.input} (a {inputs.layout.upper()} layout)")
    print(f"input: {inputs.describe()}")
    for warning in inputs.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    device = ("cuda" if args.gpu else "cpu") if args.address else _device(args.device)
    options = PredictOptions(args.tta, args.overlays, args.batch_size, device, not args.no_progress, args.save_probabilities, args.continue_on_error)
    out = Path(args.out)
    try:
        if args.address:
            from hdc_ray.distributed.predict import predict_on_ray

            record = predict_on_ray(models, inputs, out, options, address=args.address, workers=args.workers, gpu=args.gpu, overwrite=args.overwrite)
            how = f" on Ray Data ({args.workers} actor(s){', GPU' if args.gpu else ''})"
        else:
            record, how = predict_folder(models, inputs, out, options, overwrite=args.overwrite), f" on {device}"
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted: {'; '.join(getattr(exc, '__notes__', ())) or 'no mask was written'}", file=sys.stderr)
        return 130
    except Exception as exc:  # a full disk, a bug: where the masks written so far went, then the error itself
        for note in getattr(exc, "__notes__", ()):
            print(f"note: {note}", file=sys.stderr)
        raise
    said, warned = summary_lines(record, out, how, options)
    print("\n".join(said))
    for line in warned:
        print(line, file=sys.stderr)
    return 3 if record.skipped else 0


def _cmd_export_fugc(args: argparse.Namespace) -> int:
    from hdc_ray.inference.fugc_export import export_fugc

    models = _load_models(args, "cervix", "a FUGC 2025 submission")
    report = export_fugc(models, Path(args.out), tta=args.tta, overwrite=args.overwrite)
    print("\n".join(report.lines()))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.prediction is not None:
        return _evaluate_folders(args)
    if args.task is not None:
        raise _usage("--task applies to evaluate REF PRED; a checkpoint knows its task")
    from hdc_ray.inference.evaluate import evaluate_models
    from hdc_ray.inference.printing import model_table

    models = _load_models(args)
    report = evaluate_models(models, args.overrides, split=args.split, out=Path(args.out) if args.out else None, overwrite=args.overwrite,
                             device=_device(args.device), tta=args.tta, progress=not args.no_progress)  # fmt: skip
    print(model_table(report))
    print(f"per-image scores in {report.out / 'cases.csv'}, summary in {report.out / 'summary.json'}")
    return 0


def _evaluate_folders(args: argparse.Namespace) -> int:
    from hdc_ray.inference.folders import evaluate_folders
    from hdc_ray.inference.printing import folder_table

    model_only = {"--set": args.overrides, "--split": args.split, "--trial": args.trial, "--best": args.best, "--top": args.top,
                  "--labels": args.labels, "--ensemble": args.ensemble, "--tta": args.tta, "--device": args.device != "auto"}  # fmt: skip
    given = [flag for flag, value in model_only.items() if value]
    if given:
        raise _usage(f"{', '.join(given)}: for evaluate MODEL; evaluate REF PRED scores two folders of masks and runs no model")
    report = evaluate_folders(args.source, args.prediction, Path(args.out) if args.out else None, task=args.task, overwrite=args.overwrite,
                              progress=not args.no_progress)  # fmt: skip
    print(folder_table(report))
    print(f"per-case scores in {report.out / 'cases.csv'}, summary in {report.out / 'summary.json'}")
    return 0


def _usage(message: str) -> Exception:
    from hdc_ray.outputs import OutputError

    return OutputError(message)


def _cmd_list(args: argparse.Namespace) -> int:
    from hdc_ray.config import packaged_config_names
    from hdc_ray.tune.spec import shipped_spec_names

    print("configs:", ", ".join(packaged_config_names()))
    print("search spaces:", ", ".join(shipped_spec_names()))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _cmd_train,
    "validate": _cmd_validate,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "export": _cmd_export,
    "compact": _cmd_compact,
    "predict": _cmd_predict,
    "export-fugc": _cmd_export_fugc,
    "evaluate": _cmd_evaluate,
    "list": _cmd_list,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from hdc_ray import __version__

        print(f"hdc-ray {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished epochs and trials are saved; rerun with --resume to continue", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError) as exc:  # the user's input, one line instead of a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine said no (disk full, read-only, permissions): the user's to fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last line of defence: a bug, reported in one line (pip's pattern)
        log = _write_crash_log(argv)
        print(f"error: unexpected {type(exc).__name__} (a bug in hdc-ray, please report it): {_one_line(exc)}; traceback in {log}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _write_crash_log(argv: Sequence[str] | None) -> str:
    """The traceback of the exception being handled, in a file the one-line message names."""
    import datetime
    import os
    import tempfile
    import traceback

    folder = Path(os.environ.get("HDC_RAY_LOG_DIR") or tempfile.gettempdir())
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"hdc-ray-crash-{stamp}-", suffix=".log", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"hdc-ray {' '.join(sys.argv[1:] if argv is None else argv)}\n\n{traceback.format_exc()}")
        return path
    except OSError:  # nowhere to write: the traceback goes to stderr after all
        traceback.print_exc()
        return "(could not write a log file; traceback above)"


if __name__ == "__main__":
    sys.exit(main())
