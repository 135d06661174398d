"""The ``idia`` command line: ``idia audit`` checks whether CLIP model(s) know one person;
``idia serve`` offers that audit as a local web page; ``idia provenance`` shows how a workflow
result was made, back to its raw inputs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from idia.provenance import sha256_file

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake in the command's input: reported in one message, without a traceback."""


def add_pool_options(parser: argparse.ArgumentParser) -> None:
    """The candidate pool and template options, the same for `idia audit` and `idia serve`."""
    pool = parser.add_mutually_exclusive_group()
    pool.add_argument(
        "--candidates", type=Path, help="candidate names, one per line (the name is added)"
    )
    pool.add_argument(
        "--pool-size",
        type=int,
        default=1000,
        help="size of a generated candidate pool (default 1000, as in the paper)",
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated pool")
    parser.add_argument("--templates", type=Path, help="prompt templates, one per line with {}")
    parser.add_argument(
        "--namesakes",
        type=int,
        default=50,
        metavar="N",
        help="also rank the name among N namesakes (same first name, same surname, one-letter "
        "edits), drawn with --seed; 0 turns the namesake test off (default 50)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="the namesake test is passed when its p-value is at most ALPHA (default 0.05)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idia", description="Identity Inference Attack: does a CLIP model know a person?"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    audit = sub.add_parser(
        "audit",
        help="audit one person (a folder of photos and a name) against one or more models",
        description=(
            "Run the Identity Inference Attack on one person with every photo in --photos and "
            "report, per model, the verdict, the vote score, a decoy p-value and provenance. "
            "Writes OUT/audit.json and OUT/audit.html."
        ),
    )
    audit.add_argument("--photos", required=True, type=Path, help="folder of the person's photos")
    audit.add_argument("--name", required=True, help='the person\'s name, e.g. "First Last"')
    audit.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="SPEC",
        help="a model to audit, repeatable: open_clip:ARCH/TAG, open_clip:ARCH/WEIGHTS_FILE, "
        "open_clip:hf-hub:ORG/NAME, hf:ORG/NAME or hf:DIR (transformers CLIP, SigLIP, SigLIP 2, "
        "MetaCLIP 2), local:DIR (a model the workflow trained)",
    )
    audit.add_argument(
        "--model-dir",
        action="append",
        default=[],
        type=Path,
        help="shorthand for --model local:DIR (open_clip_config.json + "
        "open_clip_model.safetensors); repeat for several models",
    )
    audit.add_argument(
        "--arch", action="append", default=[], help="pretrained open_clip architecture"
    )
    audit.add_argument(
        "--pretrained",
        action="append",
        default=[],
        help="pretrained tag or weight file, one per --arch (e.g. laion400m_e32); "
        "--arch A --pretrained P is shorthand for --model open_clip:A/P",
    )
    add_pool_options(audit)
    audit.add_argument(
        "--tau",
        type=int,
        default=1,
        help="member when vote score >= tau (1 to the number of templates; default 1)",
    )
    audit.add_argument(
        "--out",
        type=Path,
        help="output folder (default: audit/<name>-<hash>, one folder per person)",
    )
    audit.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an audit of another person already in --out",
    )
    audit.add_argument(
        "--include-photos",
        action="store_true",
        help="embed photo thumbnails in the HTML page (default: photos stay out of it)",
    )
    audit.add_argument(
        "--require-face",
        action="store_true",
        help="leave out photos in which no face is detected (default: use them, with a warning)",
    )
    audit.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")

    prov = sub.add_parser(
        "provenance",
        help="show how a workflow result was made, back to its raw inputs",
        description=(
            "Follow PATH (a result table, checkpoint or figure of the workflow) through the "
            "provenance manifests under results/.provenance/ back to the files no job made, "
            "and re-hash every file on the way: a file changed since a job read or wrote it is "
            "reported as a HASH MISMATCH (exit status 1)."
        ),
    )
    prov.add_argument("path", type=Path, help="a file (or directory output) of the workflow")
    prov.add_argument(
        "-d",
        "--directory",
        type=Path,
        help="the workflow's working directory (default: found from PATH)",
    )
    prov.add_argument(
        "--code", action="store_true", help="also list the package sources each job ran"
    )
    prov.add_argument("--json", action="store_true", help="print the chain as JSON")
    prov.add_argument(
        "--no-verify",
        action="store_true",
        help="do not re-hash files (fast; no mismatch check)",
    )
    from idia.serve import add_parser as add_serve_parser

    add_serve_parser(sub)
    return parser


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise UserError(f"{what} file {str(path)!r} is empty")
    return lines


def _candidates(args) -> tuple[list[str], int | None, str]:
    from idia.names import candidate_pool, faker_name_lists, read_name_list

    if args.candidates is not None:
        if not args.candidates.is_file():
            raise UserError(
                f"candidate file {str(args.candidates)!r} does not exist; pass a file with one "
                "name per line, or drop --candidates to generate a pool"
            )
        names = read_name_list(args.candidates)
        source = f"{args.candidates.name} (sha256 {sha256_file(args.candidates)})"
        return names, None, source
    if args.pool_size < 2:
        raise UserError(f"--pool-size must be at least 2, got {args.pool_size}")
    pool = candidate_pool(
        [args.name.strip()], args.pool_size, args.seed, *faker_name_lists("en_US")
    )
    return pool, args.seed, "generated: the name + random en_US First Last names"


def _model_specs(args) -> list:
    """Every model named on the command line as a parsed spec, checked before any loads."""
    from idia.backends import ModelSpec, parse_model_spec

    if not args.model and not args.model_dir and not args.arch:
        raise UserError(
            "name at least one model: --model SPEC (e.g. --model local:DIR, --model hf:DIR, "
            "--model open_clip:ARCH/TAG), --model-dir DIR, or --arch A --pretrained P"
        )
    if len(args.arch) != len(args.pretrained):
        raise UserError(
            f"give one --pretrained per --arch (got {len(args.arch)} --arch and "
            f"{len(args.pretrained)} --pretrained)"
        )
    for model_dir in args.model_dir:  # check all before loading any
        if not model_dir.is_dir():
            raise UserError(
                f"model folder {str(model_dir)!r} does not exist; pass the folder that holds "
                "open_clip_config.json and open_clip_model.safetensors (e.g. one under "
                "results/models/), or use --arch and --pretrained for a pretrained model"
            )
    specs = [parse_model_spec(spec) for spec in args.model]
    for spec in specs:
        if spec.backend != "open_clip" and spec.path is not None and not spec.path.is_dir():
            raise UserError(f"model {str(spec)!r}: folder {str(spec.path)!r} does not exist")
    specs += [ModelSpec("local", path=model_dir) for model_dir in args.model_dir]
    specs += [parse_model_spec(f"open_clip:{a}/{p}") for a, p in zip(args.arch, args.pretrained)]
    return specs


def _out_folder(args, name: str) -> Path:
    """``--out``, or one folder per person; refuse to overwrite another person's audit."""
    from idia.audit import person_slug
    from idia.names import name_key

    out = args.out if args.out is not None else Path("audit") / person_slug(name)
    previous = out / "audit.json"
    if previous.is_file() and not args.overwrite:
        try:
            other = json.loads(previous.read_text(encoding="utf-8")).get("name", "")
        except (ValueError, OSError, AttributeError):
            other = ""
        if name_key(str(other)) != name_key(name):
            raise UserError(
                f"{str(previous)!r} holds the audit of another person ({other!r}); pass another "
                "--out folder, drop --out to get one folder per person, or add --overwrite"
            )
    return out


def cmd_audit(args) -> int:
    from idia.attack import PAPER_TEMPLATES
    from idia.audit import (
        check_name,
        check_tau,
        collect_photos,
        printable,
        render_html,
        run_audit,
        summary_lines,
    )
    from idia.backends import load_backend
    from idia.namesakes import check_alpha

    try:
        name = check_name(args.name)
    except ValueError as err:
        raise UserError(f"--name: {err}") from None
    templates = _read_lines(args.templates, "template") if args.templates else list(PAPER_TEMPLATES)
    try:
        check_tau(args.tau, len(templates))
    except ValueError as err:
        raise UserError(f"--tau: {err}") from None
    if args.namesakes < 0:
        raise UserError(f"--namesakes must be 0 (off) or a positive number, got {args.namesakes}")
    try:
        check_alpha(args.alpha)
    except ValueError as err:
        raise UserError(f"--alpha: {err}") from None
    out = _out_folder(args, name)
    if not args.photos.is_dir():
        raise UserError(
            f"photo folder {str(args.photos)!r} does not exist; pass the folder that holds the "
            "person's photos"
        )
    # Check the photos before loading models: a bad folder fails in seconds.
    collect_photos(args.photos, require_face=args.require_face)
    candidates, seed, source = _candidates(args)
    specs = _model_specs(args)
    models = [load_backend(spec, device=args.device) for spec in specs]
    result = run_audit(
        args.photos,
        name,
        models,
        candidates=candidates,
        templates=templates,
        tau=args.tau,
        seed=seed,
        candidates_source=source,
        require_face=args.require_face,
        namesakes=args.namesakes,
        namesake_seed=args.seed,
        alpha=args.alpha,
    )
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "audit.json"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    html_path = render_html(result, out / "audit.html", include_photos=args.include_photos)

    print("\n".join(summary_lines(result)))
    print(f"wrote {printable(json_path)} and {printable(html_path)}")
    return 0


def cmd_provenance(args) -> int:
    from idia.lineage import chain, format_chain

    try:
        result = chain(args.path, root=args.directory, code=args.code, verify=not args.no_verify)
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_chain(result))
    if result["problems"]:
        print(
            f"idia provenance: {len(result['problems'])} file(s) changed since the workflow "
            "recorded them; rerun `snakemake` to bring the results up to date",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "provenance":
            return cmd_provenance(args)
        if args.command == "serve":
            from idia.serve import run as cmd_serve

            return cmd_serve(args)
    # RuntimeError: e.g. pretrained weights that cannot be fetched offline (idia.models).
    except (UserError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"idia {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE  # pragma: no cover - argparse requires a known command


if __name__ == "__main__":
    sys.exit(main())
