"""The HTML report of an evaluation run (`asr evaluate --html`): one self-contained page.

    write_html(summaries, rows, out_path, rec) -> out_path

`summaries` and `rows` are `asr.evaluate`'s, keyed by test set. The page holds a summary table;
WER by speaker, by voice engine (the part of a synthetic "speaker" before ":") and by reference
length, as tables and bar plots; the worst utterances with their word alignments coloured; and for
a few of them the decoder's cross-attention (last layer, averaged over heads, teacher-forced on the
hypothesis) and the CTC forced alignment over the CTC posteriors. Images are PNGs inlined as base64
and there is no script, so the file can be mailed or attached to an issue as it is. This module
also owns `cross_attention`, which training uses for its TensorBoard images. Matplotlib is
imported only when a page is drawn (Figure objects, no pyplot state: safe in threads and servers).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import jiwer
import numpy as np
import torch
from torch import Tensor

from asr.audio.read import AudioError, load_audio
from asr.decode.ctc import align_tokens
from asr.model.recognizer import Recognizer
from asr.storage import write_text

LENGTH_BINS = [(1, 3), (4, 6), (7, 10), (11, 15), (16, 25), (26, 10**9)]  # reference words, inclusive
STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
td.l,th.l{text-align:left}td.id{white-space:nowrap}img{max-width:100%;display:block;margin:.3em 0 1em}
.eq{color:#222}.sub{background:#fde2a6}.del{background:#f7b5b5;text-decoration:line-through}
.ins{background:#b9e8b9}.sub del{color:#a33}.sub ins{color:#161;text-decoration:none}
.al span{padding:0 2px;border-radius:3px}.key span{padding:0 4px;margin-right:6px}"""


def write_html(summaries: dict[str, dict], rows: dict[str, list[dict]], out_path: str | Path,
               rec: Recognizer | None = None, worst: int = 20, maps: int = 3) -> Path:
    """Write the report of one evaluation run; attention and CTC images need the model `rec`."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ASR evaluation</title>",
             f"<style>{STYLE}</style></head><body><h1>Evaluation</h1>", summary_table(summaries)]
    for name, set_rows in rows.items():
        parts.append(f"<h2>{esc(name)}</h2>")
        for title, key in group_keys(set_rows):
            groups = group_wer(set_rows, key)
            parts += [f"<h3>WER by {title}</h3>", group_table(title, groups),
                      img(bar_png([g[0] for g in groups], [g[4] for g in groups], f"{name}: WER by {title}"),
                          f"WER by {title}")]
    ranked = worst_rows(rows, worst)
    parts += [f"<h2>The {len(ranked)} worst utterances</h2>", worst_table(ranked)]
    if rec is not None:
        parts.append("<h2>Attention and CTC alignment</h2>")
        for set_name, r in [x for x in ranked if x[1]["hyp"]][:maps]:
            parts.append(utterance_maps(rec, set_name, r))
    parts.append("</body></html>")
    out_path = Path(out_path)
    write_text(out_path, "\n".join(parts) + "\n")
    return out_path


def esc(x) -> str:
    return html.escape(str(x))


def img(png: bytes, alt: str) -> str:
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def summary_table(summaries: dict[str, dict]) -> str:
    head = "<tr><th class=l>test set</th><th>utterances</th><th>words</th><th>WER %</th><th>CER %</th>" \
           "<th>S</th><th>D</th><th>I</th><th>RTF</th></tr>"
    body = [f"<tr><td class=l>{esc(n)}</td><td>{s['utterances']}</td><td>{s['reference_words']}</td>"
            f"<td>{s['wer']:.2f}</td><td>{s['cer']:.2f}</td><td>{s['substitutions']}</td><td>{s['deletions']}</td>"
            f"<td>{s['insertions']}</td><td>{s.get('rtf', float('nan')):.4f}</td></tr>" for n, s in summaries.items()]
    return "<table id=summary>" + head + "".join(body) + "</table>"


def length_bin(r: dict) -> str:
    n = r["words"]
    for lo, hi in LENGTH_BINS:
        if lo <= n <= hi:
            return f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"
    return "0"


def group_keys(rows: list[dict]) -> list[tuple[str, callable]]:
    """(title, key) of each grouping that says something: speakers only where the manifest names them."""
    keys = []
    if any(r.get("speaker") for r in rows):
        keys.append(("speaker", lambda r: r.get("speaker") or "?"))
        if any(":" in (r.get("speaker") or "") for r in rows):  # synthetic voices: engine:voice
            keys.append(("engine", lambda r: (r.get("speaker") or "?").split(":")[0]))
    keys.append(("length (reference words)", length_bin))
    return keys


def group_wer(rows: list[dict], key) -> list[tuple[str, int, int, int, float]]:
    """(group, utterances, reference words, word edits, WER %) per group, in the groups' order."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        s = sums.setdefault(str(key(r)), [0, 0, 0])
        s[0], s[1], s[2] = s[0] + 1, s[1] + r["words"], s[2] + r["errors"]
    order = [f"{lo}-{hi}" if hi < 10**9 else f"{lo}+" for lo, hi in LENGTH_BINS]
    names = sorted(sums, key=lambda g: (order.index(g) if g in order else len(order), g))
    return [(g, *sums[g], 100.0 * sums[g][2] / max(sums[g][1], 1)) for g in names]


def group_table(title: str, groups: list[tuple]) -> str:
    cls = "group-" + title.split()[0]
    body = "".join(f"<tr><td class=l>{esc(g)}</td><td>{u}</td><td>{w}</td><td>{e}</td><td>{wer:.2f}</td></tr>"
                   for g, u, w, e, wer in groups)
    return (f"<table class='group {cls}'><tr><th class=l>{esc(title)}</th><th>utterances</th><th>words</th>"
            f"<th>errors</th><th>WER %</th></tr>{body}</table>")


def bar_png(labels: list[str], values: list[float], title: str) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(2 + 0.45 * len(labels), 11), 3.2), dpi=90)
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), values, color="#4a7ebb")
    ax.set_xticks(range(len(labels)), labels, rotation=40 if len(labels) > 6 else 0, ha="right", fontsize=8)
    ax.set_ylabel("WER %")
    ax.set_title(title, fontsize=10)
    return png(fig)


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def worst_rows(rows: dict[str, list[dict]], n: int) -> list[tuple[str, dict]]:
    flat = [(name, r) for name, rs in rows.items() for r in rs]
    flat.sort(key=lambda x: (-x[1]["errors"], -x[1]["errors"] / max(x[1]["words"], 1), x[0], x[1]["id"]))
    return [x for x in flat if x[1]["errors"] > 0][:n]


def alignment_html(ref: str, hyp: str) -> str:
    """The word alignment as coloured spans: equal, substitution (ref struck, hyp after), deletion, insertion."""
    r, h = ref.split(), hyp.split()
    if not r or not h:  # jiwer needs words on both sides to align
        chunks = [("delete", r, [])] if r else [("insert", [], h)] if h else []
    else:
        a = jiwer.process_words(ref, hyp).alignments[0]
        chunks = [(c.type, r[c.ref_start_idx:c.ref_end_idx], h[c.hyp_start_idx:c.hyp_end_idx]) for c in a]
    out = []
    for kind, rw, hw in chunks:
        if kind == "equal":
            out.append(f"<span class=eq>{esc(' '.join(rw))}</span>")
        elif kind == "substitute":
            out += [f"<span class=sub><del>{esc(x)}</del>&rarr;<ins>{esc(y)}</ins></span>" for x, y in zip(rw, hw)]
        elif kind == "delete":
            out.append(f"<span class=del>{esc(' '.join(rw))}</span>")
        else:
            out.append(f"<span class=ins>{esc(' '.join(hw))}</span>")
    return "<span class=al>" + " ".join(out) + "</span>"


def worst_table(ranked: list[tuple[str, dict]]) -> str:
    key = ("<p class=key><span class=eq>correct</span><span class=sub><del>ref</del>&rarr;<ins>hyp</ins></span>"
           "<span class=del>deleted</span><span class=ins>inserted</span></p>")
    body = "".join(
        f"<tr><td class=l>{esc(s)}</td><td class='l id'>{esc(r['id'])}</td><td class=l>{esc(r.get('speaker') or '')}"
        f"</td><td>{r['errors']}/{r['words']}</td><td class=l>{alignment_html(r['ref'], r['hyp'])}</td></tr>"
        for s, r in ranked
    )
    return (key + "<table id=worst><tr><th class=l>set</th><th class=l>id</th><th class=l>speaker</th>"
            f"<th>errors</th><th class=l>alignment</th></tr>{body}</table>")


@torch.no_grad()
def cross_attention(rec: Recognizer, tokens: list[int], memory: Tensor) -> Tensor:
    """(len(tokens) + 1, T') attention weights of the last decoder layer, averaged over its heads, of
    each position that predicts a token or the end, teacher-forced on `tokens`, over one utterance's
    valid memory (T', D)."""
    rules = rec.tokenizer.decoding_rules()
    prompt = list(rules["prompt"])
    seq = torch.tensor([prompt + tokens + [rules["eos"]]], device=memory.device)
    qk: list[Tensor] = []
    # .forward: past a training run's in-place torch.compile, whose graph has no cross_qk output
    rec.model.decoder.forward(seq, memory[None], torch.tensor([memory.shape[0]], device=memory.device), cross_qk=qk)
    w = qk[-1][0].float().softmax(-1).mean(0)  # (H, L, T') -> (L, T')
    return w[len(prompt) - 1 : -1]


def utterance_maps(rec: Recognizer, set_name: str, r: dict) -> str:
    """The attention and CTC images of one utterance (CTC only for a model with a CTC head)."""
    title = f"<h3>{esc(set_name)} / {esc(r['id'])}</h3><p>REF: {esc(r['ref'])}<br>HYP: {esc(r['hyp'])}</p>"
    try:
        wav = load_audio(r["audio"], rec.cfg.features.sample_rate, r.get("offset"),
                         r.get("duration") if r.get("offset") is not None else None)
    except (AudioError, KeyError) as e:
        return title + f"<p>no images: {esc(e)}</p>"
    enc = rec.encode(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    n = int(enc.lengths[0])
    tokens = rec.tokenizer.encode_transcript(r["hyp"])
    labels = [rec.tokenizer.piece(t) or "?" for t in tokens]
    fs = rec.frame_seconds
    att = cross_attention(rec, tokens, enc.memory[0, :n]).cpu().numpy()
    out = title + img(matrix_png(att, labels + ["<end>"], fs, "decoder cross-attention (last layer, mean of heads)"),
                      "cross-attention")
    if enc.ctc_logits is not None:
        logits = enc.ctc_logits[0, :n].float()
        spans = align_tokens(logits, tokens, rec.tokenizer.ctc_blank)
        post = logits.softmax(-1)[:, tokens].T.cpu().numpy() if tokens else np.zeros((1, n))
        note = "" if spans is not None else " (the transcript does not fit the frames: no alignment)"
        out += img(matrix_png(post, labels or ["-"], fs, "CTC posteriors of the hypothesis tokens, forced alignment"
                              + note, spans), "CTC alignment")
    return out


def matrix_png(m: np.ndarray, labels: list[str], frame_seconds: float, title: str, spans=None) -> bytes:
    """(tokens, frames) weights as an image, tokens top-down; `spans` (TokenSpan per row) boxed."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows, frames = m.shape
    fig = Figure(figsize=(min(3 + frames * 0.06, 12), min(1.5 + rows * 0.18, 9)), dpi=90)
    ax = fig.add_subplot()
    ax.imshow(m, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
              extent=(0, frames * frame_seconds, rows - 0.5, -0.5))
    for i, s in enumerate(spans or []):
        ax.add_patch(Rectangle((s.start * frame_seconds, i - 0.5), (s.end - s.start) * frame_seconds, 1,
                               fill=False, edgecolor="#ff4040", linewidth=1.2))
    ax.set_yticks(range(rows), [repr(x)[1:-1] if x.strip() else "␣" for x in labels], fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    return png(fig)
