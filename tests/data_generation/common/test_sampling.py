"""The per-row sampler shared by the embedded teacher and main.generate's transformers backend."""

import pytest
import torch

from data_generation.common.sampling import RowSampler, SamplingSettings, derive_seed, nucleus, sample_row
from data_generation.teacher.base import Decoding


def test_sample_row_top_k_top_p_and_wide_nucleus():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 5.0, 1.0, 4.9])
    greedyish = SamplingSettings(temperature=1.0, top_k=1)
    assert {int(sample_row(logits, greedyish, gen)) for _ in range(20)} == {1}
    small = SamplingSettings(temperature=1.0, top_p=0.5)  # token 1 alone holds >= half the mass
    assert {int(sample_row(logits, small, gen)) for _ in range(20)} == {1}
    assert {int(sample_row(logits, small, gen, whole_vocab=True)) for _ in range(20)} == {1}
    # A flat distribution: the nucleus needs ~1800 of 2000 tokens, far past the first probe of 256.
    flat = -torch.arange(2000, dtype=torch.float32) * 1e-4
    probs = torch.softmax(flat, -1)
    allowed = int(((torch.cumsum(probs, -1) - probs) < 0.9).sum())
    for whole_vocab in (False, True):
        draws = [
            int(sample_row(flat, SamplingSettings(temperature=1.0, top_p=0.9), gen, whole_vocab=whole_vocab))
            for _ in range(300)
        ]
        assert max(draws) < allowed and max(draws) > 1000


@pytest.mark.parametrize("scale", [0.5, 5.0, 30.0])
def test_nucleus_matches_the_full_sort_definition(scale: float) -> None:
    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(5000, generator=generator) * scale, dim=-1)
    ordered, order = torch.sort(probs, descending=True)
    for top_p in (0.05, 0.5, 0.9, 0.999):
        keep = (torch.cumsum(ordered, dim=-1) - ordered) < top_p
        expected = torch.zeros_like(probs).scatter_(0, order[keep], ordered[keep])
        kept, ids = nucleus(probs, top_p)
        assert torch.equal(torch.zeros_like(probs).scatter_(0, ids, kept), expected)


def test_whole_vocab_draws_the_same_distribution_differently():
    """Both draws sample the nucleus, from the same generator state, but consume it differently: the
    embedded teacher's cached answers depend on drawing over the whole vocabulary."""
    logits = torch.randn(500, generator=torch.Generator().manual_seed(1))
    settings = SamplingSettings(temperature=1.0, top_p=0.9)

    def draws(whole_vocab: bool) -> list[int]:
        return [
            int(sample_row(logits, settings, torch.Generator().manual_seed(s), whole_vocab=whole_vocab))
            for s in range(40)
        ]

    assert draws(False) != draws(True)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingSettings(top_p=0.0)
    with pytest.raises(ValueError, match="max_tokens"):
        SamplingSettings(max_tokens=0)


def test_decoding_and_settings_share_names_and_convert():
    wire = Decoding(temperature=0.7, top_p=0.9, max_tokens=64, stop=("\n",), seed=3, frequency_penalty=0.5)
    settings = wire.settings()
    assert (settings.temperature, settings.top_p, settings.max_tokens, settings.stop) == (0.7, 0.9, 64, ("\n",))
    assert settings.frequency_penalty == 0.5 and not settings.greedy
    assert Decoding.from_settings(settings, seed=3) == wire
    greedy = Decoding(temperature=0.0, top_p=0.0).settings()  # top-p means nothing to greedy decoding
    assert greedy.greedy and greedy.top_p == 1.0
    assert Decoding.from_settings(SamplingSettings(greedy=True, temperature=0.4), n=2) == Decoding(
        temperature=0.0, top_p=1.0, max_tokens=512, n=2
    )


def test_row_sampler_rows_keep_their_own_settings_and_generators():
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(2))
    rows = [SamplingSettings(temperature=1.0, top_p=1.0), SamplingSettings(greedy=True), SamplingSettings()]
    seeds = [derive_seed(7, i) for i in range(3)]
    together = RowSampler(seeds, rows, "cpu", forbidden=4).choose(scores, [0, 1, 2])
    alone = [RowSampler([seeds[i]], [rows[i]], "cpu", forbidden=4).choose(scores[i : i + 1], [0]) for i in range(3)]
    assert together.tolist() == [int(t) for t in alone]
    masked = scores.clone()
    masked[:, 4] = float("-inf")
    assert int(together[1]) == int(masked[1].argmax())
    out = RowSampler(seeds, rows, "cpu", forbidden=4)(torch.zeros(3, 0, dtype=torch.long), scores)
    assert torch.isfinite(out[0]).sum() == 1 and torch.equal(out[1], masked[1])  # greedy rows keep their logits


def test_penalties_follow_openai():
    scores = torch.zeros(1, 6)
    scores[0, 2] = 1.0
    generated = torch.tensor([[2, 2, 3]])
    sampler = RowSampler([0], SamplingSettings(greedy=True, frequency_penalty=0.4, presence_penalty=0.3), "cpu", None)
    out = sampler(generated, scores)
    assert out[0].tolist() == pytest.approx([0.0, 0.0, 1.0 - 0.8 - 0.3, -0.4 - 0.3, 0.0, 0.0])
