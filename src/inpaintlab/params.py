"""Keep params.yaml equal to the composition of conf/ (what `dvc repro` reads).

`dvc exp run -S key=value` composes conf/ into params.yaml itself (DVC's Hydra integration);
this does the same, with DVC's own function, for plain `dvc repro` and `make run`.

    python -m inpaintlab.params                     # conf/ defaults -> params.yaml
    python -m inpaintlab.params experiment=ci       # with Hydra overrides
    python -m inpaintlab.params --check             # exit 1 if params.yaml is stale
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from inpaintlab.errors import UserError, command

PARAMS_FILE = Path("params.yaml")


def compose(overrides: list[str], output: Path, root: Path = Path(".")) -> None:
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(
        output, str((root / "conf").resolve()), None, "config", str(root.resolve()), overrides
    )


def composed_text(overrides: list[str], root: Path = Path(".")) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose(overrides, out, root)
        return out.read_text(encoding="utf-8")


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inpaintlab.params", description=__doc__.split("\n")[0]
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=ci seed=7")
    parser.add_argument(
        "--check", action="store_true", help="only check; exit 1 when params.yaml is stale"
    )
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    try:
        text = composed_text(args.overrides)
    except Exception as err:  # Hydra's errors are user errors here: a bad override or config
        raise UserError(f"cannot compose conf/: {str(err).splitlines()[0]}") from None
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(
                f"{args.out} differs from conf/: run `python -m inpaintlab.params`", file=sys.stderr
            )
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"updated {args.out} from conf/ {' '.join(args.overrides)}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
