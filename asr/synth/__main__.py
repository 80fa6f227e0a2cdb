"""python -m asr.synth --config recipes/synth/conf/commands.yaml --out data/synth/commands [key=value ...]
python -m asr.synth --fetch-kokoro   (set-up, once: the Kokoro engine's assets; the only step using the network)"""

from __future__ import annotations

import argparse
import sys

import asr.synth.kokoro as kokoro
from asr.config import load_config
from asr.synth.corpus import STAGES, SynthConfig, build_corpus


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.synth", description=__doc__)
    parser.add_argument("--config", help="YAML file of SynthConfig fields (only what differs from the defaults)")
    parser.add_argument("--out", help="corpus directory")
    parser.add_argument("--stage", default="all", choices=STAGES + ("all",), help="run the stages up to this one")
    parser.add_argument("--fetch-kokoro", action="store_true",
                        help=f"join and check the Kokoro model, fetch its voices (npm pack {kokoro.KOKORO_JS}) "
                             f"into {kokoro.asset_dir()}, then exit")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. utts_train=500 engines=[espeak]")
    args = parser.parse_args(argv)
    if args.fetch_kokoro:
        sys.exit(kokoro.fetch_command())
    if not args.out:
        parser.error("--out is required")
    build_corpus(load_config(SynthConfig, args.config, args.overrides), args.out, args.stage)


if __name__ == "__main__":
    main()
