"""Command line: ``python -m kit <command>``.

python -m kit doctor [--profile NAME]     check this machine, say what to fix
python -m kit models [--rebuild]          convert / verify the bundled models in the cache
python -m kit run [--profile NAME]        the main job: the whole walk-through and its report
python -m kit run --docs DIR [--questions FILE] [--examples FILE|auto]
                                          the same comparison on your documents (notebook 06)
python -m kit train [--profile NAME] [--examples FILE] [--out DIR] [--max-steps N] [--resume]
                                          fine-tune a LoRA adapter; the same command runs as
                                          several processes under torchrun (README)
python -m kit bench rag|finetune|grid     benchmarks that print figures (see --help of each)
python -m kit workshop prepare|check      build what a workshop reuses; is this machine ready?
python -m kit serve [--index DIR | --docs DIR] [--host H] [--port N] [--role R]
                                          answer questions over HTTP from one shared index
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_doctor = sub.add_parser("doctor", help="check this machine and say what to fix")
    p_doctor.add_argument("--profile", type=_given, help="force a profile: smoke, cpu or gpu")
    p_models = sub.add_parser("models", help="convert / verify the bundled models")
    p_models.add_argument(
        "--rebuild", action="store_true", help="move a damaged cached model aside and convert again"
    )
    p_run = sub.add_parser("run", help="run the whole walk-through headless and write a report")
    _profile_option(p_run)
    p_run.add_argument(
        "--out",
        type=_given,
        help="folder for the report (default: outputs, or outputs/your_data with --docs)",
    )
    p_run.add_argument(
        "--docs", type=_given, help="your folder of documents: run the comparison on it"
    )
    p_run.add_argument(
        "--questions", type=_given, help="your questions: JSONL or CSV with question,answer"
    )
    p_run.add_argument(
        "--examples",
        type=_given,
        help="your chat examples (JSONL or CSV), or 'auto' to build house-style ones",
    )
    _folder_options(p_run)
    p_train = sub.add_parser(
        "train", help="fine-tune a LoRA adapter (also as several processes under torchrun)"
    )
    _profile_option(p_train)
    p_train.add_argument(
        "--examples", type=_given, help="your chat examples, JSONL or CSV (default: the bundled)"
    )
    p_train.add_argument(
        "--out",
        type=_given,
        default="outputs/adapter",
        help="folder for the adapter and checkpoints (default: outputs/adapter; not the one "
        "`run` and `workshop prepare` reuse)",
    )
    p_train.add_argument(
        "--max-steps", type=_steps, help="optimizer steps (default: the profile's)"
    )
    p_train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --out (default: continue a stopped run with "
        "the same settings, else start over)",
    )
    p_bench = sub.add_parser("bench", help="benchmarks that print figures: rag, finetune, grid")
    p_bench.add_argument("which", choices=["rag", "finetune", "grid"])
    p_bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of that benchmark")
    p_work = sub.add_parser("workshop", help="prepare a workshop's artefacts, or check readiness")
    p_work.add_argument("action", choices=["prepare", "check"])
    _profile_option(p_work)
    p_serve = sub.add_parser("serve", help="answer questions over HTTP from one shared index")
    p_serve.add_argument(
        "--index", type=_given, help="a saved index folder (default: the bundled one)"
    )
    p_serve.add_argument(
        "--docs", type=_given, help="a folder of your documents: indexed once, then reused"
    )
    p_serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="default 127.0.0.1 (this machine only); 0.0.0.0 lets anyone on the network ask",
    )
    p_serve.add_argument("--port", type=_port, default=8000, help="default 8000")
    p_serve.add_argument(
        "--role",
        default="public",
        choices=["public", "employee", "admin"],
        help="the access level of every answer (default public; clients cannot change it)",
    )
    _profile_option(p_serve)
    _folder_options(p_serve)
    return parser


def _profile_option(command: argparse.ArgumentParser) -> None:
    """``--profile`` of a command that runs models."""
    command.add_argument(
        "--profile", type=_given, help="smoke, cpu or gpu (default: picked by the doctor)"
    )


def _given(value: str) -> str:
    """An option's value, refused when blank (``--out "$OUT"`` with OUT unset)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("is empty: give a value, or leave the option out")
    return value


def _port(value: str) -> int:
    """A TCP port number, 1 to 65535."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def _steps(value: str) -> int:
    """A number of training steps, 1 or more."""
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of steps (1 or more)")
    return steps


def _folder_options(command: argparse.ArgumentParser) -> None:
    """The options of a command that reads a folder of your documents (``--docs``)."""
    command.add_argument(
        "--default-access",
        choices=["public", "internal", "confidential"],
        help="with --docs: the access level of files whose front matter declares none",
    )
    command.add_argument(
        "--skip-bad",
        action="store_true",
        help="with --docs: leave out files whose access level cannot be read (with a warning)",
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the process exit code."""
    args = _parser().parse_args(argv)

    if args.command == "doctor":  # before the imports below: it reports what fails to import
        from kit.doctor import run_doctor

        report = run_doctor(args.profile)  # a bad profile is one of its red lines
        print(report.to_text())
        return 0 if report.ok else 1
    # Imports after parsing, and each command's own in its branch: --help and a mistyped command
    # answer at once; the jobs and benchmarks load Haystack and torch.
    from kit.data import DataError
    from kit.inputs import InputError
    from kit.models import BUNDLED, ModelError, convert_gguf, resolve_model
    from kit.profiles import ProfileError

    try:
        if args.command == "models":
            for name, model in BUNDLED.items():
                if model.kind == "generator":
                    print(f"{name}: {convert_gguf(name, rebuild=args.rebuild)}")
                else:
                    print(f"{name}: {resolve_model(name)}")
            return 0
        if args.command == "bench":
            if args.which == "rag":
                from kit.rag_bench import main as bench_main
            elif args.which == "grid":
                from kit.grid_bench import main as bench_main
            else:
                from kit.finetune_bench import main as bench_main
            return bench_main(args.rest)
        if args.command == "workshop":
            from kit import workshop

            if args.action == "prepare":
                try:
                    workshop.prepare(args.profile)
                except RuntimeError as err:
                    print(f"error: {err}", file=sys.stderr)
                    return 1
                return 0
            report = workshop.check(args.profile)
            print(report.to_text())
            return 0 if report.ok else 1
        if args.command == "train":
            return _train(args)
        if args.command == "run":
            return _run(args)
        if args.command == "serve":
            return _serve(args)
    except (ModelError, ProfileError, DataError, InputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: say what happens next, no traceback
        print(
            "\ninterrupted (Ctrl-C); run the command again: a stopped training continues from "
            "its last checkpoint",
            file=sys.stderr,
        )
        return 130
    return 1


def _run(args: argparse.Namespace) -> int:
    """``run``: the walk-through on the bundled data, or with ``--docs`` the comparison on yours.
    The stages' own errors (RAG, fine-tuning, adapters) are one line and exit 2, like the rest."""
    from kit.adapters import AdapterError
    from kit.finetune import FinetuneError
    from kit.rag import RagError

    try:
        return _run_job(args)
    except (RagError, FinetuneError, AdapterError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    """``train``: one adapter, in this process or in each of several that torchrun started (the
    main one prints the summary). A stage error is one line, exit 2."""
    from kit.adapters import AdapterError
    from kit.finetune import FinetuneError, train_adapter
    from kit.processes import ProcessGroupError, is_main_process, leave_group

    steps = {"max_steps": args.max_steps} if args.max_steps else {}
    try:
        result = train_adapter(
            args.examples,
            profile=args.profile,
            output_dir=args.out,
            resume=True if args.resume else "auto",
            **steps,
        )
    except ProcessGroupError:  # the main process stopped and says why
        return 2
    except (FinetuneError, AdapterError) as err:
        who = "" if is_main_process() else f" (process {os.environ.get('RANK')})"
        print(f"error{who}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the training said where it stopped; a rerun continues there
        return 130
    if is_main_process():
        print(result.summary())
        print(f"Adapter saved in {result.adapter_dir}")
    leave_group()  # several processes: all are here, they close the group together
    return 0


def _serve(args: argparse.Namespace) -> int:
    """``serve``: until Ctrl-C (exit 130); a bad index or port is one line, exit 2."""
    from kit.rag import RagError
    from kit.serve import serve_index

    try:
        serve_index(
            args.index,
            args.docs,
            args.host,
            args.port,
            args.role,
            args.profile,
            args.default_access,
            args.skip_bad,
        )
    except RagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


def _run_job(args: argparse.Namespace) -> int:
    """The body of ``run`` (see :func:`_run`)."""
    if args.docs is None:
        if args.questions or args.examples or args.default_access or args.skip_bad:
            print(
                "error: --questions, --examples, --default-access and --skip-bad go with "
                "--docs DIR",
                file=sys.stderr,
            )
            return 2
        from kit.inputs import writable_folder
        from kit.run import run_all

        out = writable_folder(  # before the long run; --out "" is a mistake, not "outputs"
            "outputs" if args.out is None else args.out, "--out folder"
        )
        path = run_all(profile=args.profile, out_dir=out)
    else:
        from kit.your_data import run_your_data

        path, _ = run_your_data(
            args.docs,
            questions=args.questions,
            examples=args.examples,
            profile=args.profile,
            out_dir=args.out or "outputs/your_data",
            default_access=args.default_access,
            skip_bad=args.skip_bad,
        )
    print(f"Report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
