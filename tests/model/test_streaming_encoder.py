"""The streaming encoder with cached left context gives what the whole audio gives, and pays once per chunk."""

import numpy as np
import pytest
import torch

from asr.model.features import running_normalized
from asr.model.streaming import EncoderStream, streams
from tests.conftest import untrained_recognizer

SR = 16000
STREAMING = ("model.dynamic_chunk=true", "features.normalize=running")


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.2 * envelope * (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def test_running_normalization_is_causal_and_starts_from_the_global_statistics():
    torch.manual_seed(0)
    x, mean, std = 3 + 2 * torch.randn(1, 50, 4), torch.full((4,), 3.0), torch.full((4,), 2.0)
    whole = running_normalized(x, mean, std, prior=10)
    assert torch.allclose(whole[:, :20], running_normalized(x[:, :20], mean, std, 10), atol=1e-6)  # no look-ahead
    first = (x[0, 0] - (10 * mean + x[0, 0]) / 11) / ((10 * (std**2 + mean**2) + x[0, 0] ** 2) / 11
                                                      - ((10 * mean + x[0, 0]) / 11) ** 2).sqrt()
    assert torch.allclose(whole[0, 0], first, atol=1e-4)
    assert abs(float(whole[0, 30:].mean())) < 0.5 and 0.5 < float(whole[0, 30:].std()) < 1.5


@pytest.mark.parametrize("positions", ["rope", "sinusoidal"])
def test_each_prefix_encodes_as_the_whole_audio_does(positions):
    """Audio arriving 0.23 s at a time: every answer equals `Recognizer.encode` of the same audio with
    the same chunk (encoder output and CTC logits), while each cached chunk is computed once."""
    rec = untrained_recognizer(*STREAMING, f"model.enc_positions={positions}")
    chunk, audio = 4, speechlike(3.0)
    assert streams(rec, chunk)
    stream, reencoded = EncoderStream(rec, chunk), 0
    for end in range(3680, len(audio) + 1, 3680):
        got = stream(audio[:end])
        want = rec.encode(torch.from_numpy(audio[:end])[None], torch.tensor([end]), chunk)
        assert got.memory.shape == want.memory.shape and int(got.lengths) == int(want.lengths)
        torch.testing.assert_close(got.memory, want.memory, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got.ctc_logits, want.ctc_logits, atol=1e-4, rtol=1e-4)
        reencoded += int(want.lengths)
    assert stream.cached >= int(want.lengths) - 2 * chunk  # all but the growing chunk(s) are kept
    assert stream.computed < reencoded / 2  # encoding each prefix anew computes every frame again


def test_less_audio_than_before_drops_the_chunks_it_no_longer_covers():
    """A final may end before the last partial's audio did: the answer is still that audio's encoding."""
    rec = untrained_recognizer(*STREAMING)
    audio, chunk = speechlike(2.0, seed=1), 4
    stream = EncoderStream(rec, chunk)
    stream(audio)
    before = stream.cached
    got = stream(audio[: SR])
    want = rec.encode(torch.from_numpy(audio[:SR])[None], torch.tensor([SR]), chunk)
    torch.testing.assert_close(got.memory, want.memory, atol=1e-4, rtol=1e-4)
    assert stream.cached < before
    whole = rec.encode(torch.from_numpy(audio)[None], torch.tensor([len(audio)]), chunk)  # and more again
    torch.testing.assert_close(stream(audio).memory, whole.memory, atol=1e-4, rtol=1e-4)
    assert stream.cached == before


def test_models_whose_frames_move_do_not_stream_with_a_cache():
    """Per-utterance statistics change every frame as audio arrives, so nothing could be kept."""
    assert not streams(untrained_recognizer("model.dynamic_chunk=true", "features.normalize=utterance"), 4)
    assert not streams(untrained_recognizer(*STREAMING), 0)  # full context
    assert not streams(untrained_recognizer("features.normalize=running"), 4)  # not trained with chunks
    with pytest.raises(ValueError, match="dynamic-chunk"):
        EncoderStream(untrained_recognizer("model.dynamic_chunk=true", "features.normalize=utterance"), 4)
