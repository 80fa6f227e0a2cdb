"""python -m asr.synth --config recipes/synth/conf/commands.yaml --out data/synth/commands [key=value ...]"""

from __future__ import annotations

import argparse

from asr.config import load_config
from asr.synth.corpus import STAGES, SynthConfig, build_corpus


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.synth", description=__doc__)
    parser.add_argument("--config", help="YAML file of SynthConfig fields (only what differs from the defaults)")
    parser.add_argument("--out", required=True, help="corpus directory")
    parser.add_argument("--stage", default="all", choices=STAGES + ("all",), help="run the stages up to this one")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. utts_train=500 engines=[espeak]")
    args = parser.parse_args(argv)
    build_corpus(load_config(SynthConfig, args.config, args.overrides), args.out, args.stage)


if __name__ == "__main__":
    main()
