"""Load on `asr serve`, on loopback: 1, 4 and 16 concurrent clients send short clips for a fixed
time, with batching on (--max-batch 8) and off (--max-batch 1); one table of throughput (audio
seconds transcribed per wall second), latency p50/p95, errors and the server's RSS.

    python recipes/benchmarks/serve_load.py -m whisper-tiny.en --duration 60
    python recipes/benchmarks/serve_load.py -m exp/synth/commands/model.pt --clients 1 4 --duration 15

Each batching setting starts its own server (`python -m asr serve`, bound to 127.0.0.1 on a free
port) and waits for /health; RSS is read from /proc at the first and last request of the setting.
Bounded: each level stops sending after --duration seconds (or --max-requests), then waits at most
--timeout for replies still out, so a run takes about 2 x levels x duration plus model loading.

    python recipes/benchmarks/serve_load.py -m whisper-tiny.en --live --clients 1 4 16 --duration 60
    python recipes/benchmarks/serve_load.py -m M.pt --live --stream data/bench/live-commands-test.wav \
        --serve-args "--chunk 16"

--live: each client is a live session on the WebSocket /v1/realtime sending the stream that
streaming.py builds (data/bench/live.wav: real clips with 1-2 s pauses, from its start) in 0.1 s
pcm16 chunks at real time, for --duration seconds, then commits and waits for the last final.
Per level: finalization latency (from an utterance's speech end in the stream to its completed
event, p50/p90), error events and failed sessions, the decodes (partials and finals) and how many the
model thread took at once, and the server's RSS; one server per batching setting, as above.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from asr.data.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]
SERVER_LOG = ROOT / "data/bench/serve_load-server.log"  # the server's log (the latest server's)


@dataclass
class Level:
    """What one concurrency level measured."""

    batching: str
    clients: int
    wall: float = 0.0
    audio: float = 0.0  # seconds of audio transcribed
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    batches: int = 0  # groups the server's worker decoded

    def row(self, rss: tuple[float, float]) -> str:
        lat = np.array(self.latencies or [float("nan")]) * 1000
        per = len(self.latencies) / self.batches if self.batches else float("nan")
        return (f"| {self.batching} | {self.clients} | {len(self.latencies)} | {self.errors} | "
                f"{self.audio / self.wall:.1f} | {np.percentile(lat, 50):.0f} | {np.percentile(lat, 95):.0f} | "
                f"{per:.1f} | {rss[0]:.0f} -> {rss[1]:.0f} |")


def clips(manifest: Path, n: int) -> list[tuple[bytes, float]]:
    """The first n utterances of a manifest: (file bytes, seconds)."""
    rows = read_manifest(manifest)[:n]
    return [(Path(r["audio"]).read_bytes(), float(r["duration"])) for r in rows]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args: argparse.Namespace, max_batch: int, more: list[str] = ()) -> tuple[subprocess.Popen, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "asr", "serve", "-m", args.model, "--host", "127.0.0.1", "--port", str(port),
           "--max-batch", str(max_batch), "--batch-wait-ms", str(args.batch_wait_ms), "--device", "cpu"]
    cmd += (["--vad", args.vad] if args.vad else []) + args.serve_args.split() + list(more)
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    log = SERVER_LOG.open("w")  # a file, not a pipe: a pipe nobody reads fills up and stalls the server
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + args.startup
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {SERVER_LOG.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not answer within {args.startup} s")


async def client(http: httpx.AsyncClient, data: list[tuple[bytes, float]], k: int, stop: float, level: Level,
                 budget: list[int]) -> None:
    """One client: sends clip after clip (each waits for its reply) until the time or count runs out."""
    i = k
    while time.monotonic() < stop and budget[0] > 0:
        budget[0] -= 1
        body, seconds = data[i % len(data)]
        i += level.clients
        t0 = time.monotonic()
        try:
            r = await http.post("/v1/audio/transcriptions", files={"file": ("clip.wav", body, "audio/wav")})
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok:
            level.latencies.append(time.monotonic() - t0)
            level.audio += seconds
        else:
            level.errors += 1


async def run_level(url: str, data: list[tuple[bytes, float]], level: Level, args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout) as http:
        before = (await http.get("/health")).json()["batches"]
        t0 = time.monotonic()
        stop, budget = t0 + args.duration, [args.max_requests]
        await asyncio.gather(*(client(http, data, k, stop, level, budget) for k in range(level.clients)))
        level.wall = time.monotonic() - t0
        level.batches = (await http.get("/health")).json()["batches"] - before


async def live_client(url: str, audio: np.ndarray, placed: list[dict], duration: float, out: dict) -> None:
    """One live session: the stream at real time for `duration` s -> finalization latencies into `out`."""
    import websockets

    ends = [u["speech"][1] for u in placed if u["speech"][1] <= duration]
    got: list[tuple[float, float]] = []  # (utterance end in the stream, when its final came) per completed event
    try:
        async with websockets.connect(url.replace("http", "ws") + "/v1/realtime", max_size=None) as ws:
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {"sample_rate": 16000}}))
            t0, step = time.monotonic(), 1600

            async def receive():
                async for message in ws:
                    e = json.loads(message)
                    if e["type"] == "error":
                        out["errors"] += 1
                    elif e["type"].endswith("transcription.completed"):
                        got.append((e["end"], time.monotonic() - t0))

            reader = asyncio.create_task(receive())
            for k, i in enumerate(range(0, int(duration * 16000), step)):
                await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.monotonic()))
                pcm = (np.clip(audio[i : i + step], -1, 1) * 32767).astype("<i2").tobytes()
                chunk = base64.b64encode(pcm).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            await asyncio.sleep(5.0)  # the last final
            reader.cancel()
    except (OSError, websockets.WebSocketException):
        out["failed"] += 1
    for end in ends:  # each utterance's final: the first completed event that ends after its speech does
        after = [w for e, w in got if e >= end - 0.05]
        if after:
            out["latencies"].append(min(after) - end)


def run_live(args: argparse.Namespace) -> None:
    from asr.audio.read import load_audio

    path = ROOT / args.stream
    placed_json = path.with_suffix(".json")
    if not placed_json.exists():
        raise SystemExit(f"no {args.stream}: run recipes/benchmarks/streaming.py first (it builds the stream)")
    audio, placed = load_audio(path), json.loads(placed_json.read_text())
    duration = min(args.duration, len(audio) / 16000)
    rows = []
    for name, max_batch in ((f"on ({args.max_batch})", args.max_batch), ("off (1)", 1)):
        server, url = start_server(args, max_batch, ["--max-sessions", str(max(args.clients))])
        try:
            for n in args.clients:
                start_rss, before = rss_mb(server.pid), httpx.get(f"{url}/health").json()
                out = {"latencies": [], "errors": 0, "failed": 0}

                async def level():
                    await asyncio.gather(*(live_client(url, audio, placed, duration, out) for _ in range(n)))

                asyncio.run(level())
                if server.poll() is not None:
                    raise SystemExit(f"the server died with {n} sessions (exit {server.returncode}): "
                                     f"{SERVER_LOG.read_text()[-3000:]}")
                after = httpx.get(f"{url}/health").json()
                decodes = after["live_decodes"] - before["live_decodes"]
                per = decodes / max(1, after["live_batches"] - before["live_batches"])
                lat = np.array(out["latencies"] or [float("nan")])
                p50, p90 = np.percentile(lat, 50), np.percentile(lat, 90)
                rss = f"{start_rss:.0f} -> {rss_mb(server.pid):.0f}"
                rows.append(f"| {name} | {n} | {len(out['latencies'])} | {p50:.2f} | {p90:.2f} | {out['errors']} "
                            f"| {out['failed']} | {decodes} | {per:.1f} | {rss} |")
                print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(30)
    print(f"\nmodel {args.model}; live sessions of {duration:g} s of real speech at real time; wait "
          f"{args.batch_wait_ms:g} ms\n")
    print("| batching | sessions | finals | final latency p50 s | p90 s | error events | failed sessions | decodes "
          "| decodes/batch | server RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", required=True, help="model file or name")
    p.add_argument("--manifest", type=Path, default=ROOT / "data/synth/commands/test.jsonl", help="short clips")
    p.add_argument("--n-clips", type=int, default=64)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per level and setting")
    p.add_argument("--max-requests", type=int, default=5000, help="per level: stop sending after this many")
    p.add_argument("--max-batch", type=int, default=8, help="the batching-on setting (off is 1)")
    p.add_argument("--batch-wait-ms", type=float, default=15)
    p.add_argument("--vad", choices=["silero", "energy"])
    p.add_argument("--timeout", type=float, default=300, help="per request")
    p.add_argument("--startup", type=float, default=600, help="seconds to wait for the server to load the model")
    p.add_argument("--live", action="store_true", help="live sessions on /v1/realtime instead of uploads")
    p.add_argument("--stream", default="data/bench/live.wav",
                   help="--live: the stream (streaming.py builds it; --manifest there builds others)")
    p.add_argument("--serve-args", default="", help='more options of `asr serve`, e.g. "--compute-type int8"')
    args = p.parse_args(argv)
    if args.live:
        run_live(args)
        return
    data = clips(args.manifest, args.n_clips)
    print(f"{len(data)} clips, {np.mean([s for _, s in data]):.2f} s on average; {args.duration:g} s per level")
    rows = []
    for name, max_batch in ((f"on ({args.max_batch})", args.max_batch), ("off (1)", 1)):
        server, url = start_server(args, max_batch)
        try:
            httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("w.wav", data[0][0])}, timeout=args.timeout)
            for n in args.clients:
                start_rss = rss_mb(server.pid)
                level = Level(name, n)
                asyncio.run(run_level(url, data, level, args))
                rows.append(level.row((start_rss, rss_mb(server.pid))))
                print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(30)
    print(f"\nmodel {args.model}; {len(data)} clips of {np.mean([s for _, s in data]):.2f} s on average; "
          f"{args.duration:g} s per level; wait {args.batch_wait_ms:g} ms\n")
    print("| batching | clients | requests | errors | audio s/s | p50 ms | p95 ms | requests/batch | server RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
