"""The paired gate and successive halving's cut: pure decisions on per-item scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semgrad.errors import ConfigError
from semgrad.optim.gate import PairedGate, compare, screen, sign_test_p


def scores(values: str) -> dict[str, float]:
    return {f"i{k}": float(v) for k, v in enumerate(values)}


def test_compare_counts_wins_losses_ties_on_shared_items() -> None:
    cand, inc = scores("1100"), scores("1010")
    assert compare(cand, inc) == (1, 1, 2)
    assert compare({"i0": 1.0}, inc) == (0, 0, 1)  # only items both were scored on


def test_margin_gate_accepts_more_wins_than_losses_by_the_margin() -> None:
    gate = PairedGate(margin=1)
    d = gate.decide(scores("1110"), scores("0110"))
    assert d.accepted and (d.wins, d.losses, d.ties) == (1, 0, 3)
    assert d.evaluated == 4 and d.of == 4 and not d.partial


def test_margin_gate_rejects_ties_and_equal_wins_and_losses() -> None:
    gate = PairedGate(margin=1)
    assert not gate.decide(scores("0110"), scores("0110")).accepted  # identical: a tie
    assert not gate.decide(scores("1001"), scores("0110")).accepted  # 2 wins, 2 losses
    assert not PairedGate(margin=2).decide(scores("1110"), scores("0110")).accepted


def test_sign_gate_needs_a_significant_majority_of_disagreements() -> None:
    gate = PairedGate(rule="sign", level=0.05)
    assert not gate.decide(scores("111" + "0" * 7), scores("0" * 10)).accepted  # p = 1/8
    d = gate.decide(scores("11111" + "0" * 5), scores("0" * 10))
    assert d.accepted and d.p_value == pytest.approx(1 / 32)


def test_sign_test_p_values() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(1, 0) == 0.5
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(0, 3) == 1.0


def test_partial_decision_is_a_rejection_marked_partial() -> None:
    d = PairedGate().decide(scores("11"), scores("00"), partial=True)
    assert d.partial and not d.accepted


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="tie"):
        PairedGate(margin=0)
    with pytest.raises(ConfigError):
        PairedGate(rule="sign", level=1.5)


@given(
    st.sampled_from(["margin", "sign"]),
    st.integers(1, 4),
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=30),
)
def test_early_stop_is_exact(rule: str, margin: int, pairs: list[tuple[int, int]]) -> None:
    """Whenever `hopeless` says stop, no completion of the remaining items could pass."""
    gate = PairedGate(rule=rule, margin=margin)  # type: ignore[arg-type]
    wins = losses = 0
    for k, (c, p) in enumerate(pairs):
        wins += c > p
        losses += c < p
        remaining = len(pairs) - k - 1
        if gate.hopeless(wins, losses, remaining):
            # the best possible completion: every remaining item a win
            assert not gate.passes(wins + remaining, losses)
            # and so the real completion does not pass either
            final_w = wins + sum(a > b for a, b in pairs[k + 1 :])
            final_l = losses + sum(a < b for a, b in pairs[k + 1 :])
            assert not gate.passes(final_w, final_l)


def test_screen_keeps_only_candidates_that_beat_the_parent_best_first() -> None:
    parent = scores("0101")
    cands = [scores("0101"), scores("1101"), scores("0000"), scores("1111"), scores("1100")]
    # tie, +1, -2, +2, 1 win 1 loss
    assert screen(cands, parent) == [3, 1]


@given(st.lists(st.lists(st.integers(0, 1), min_size=6, max_size=6), max_size=6))
def test_screen_never_passes_a_candidate_that_lost_or_tied(rows: list[list[int]]) -> None:
    parent = {f"i{k}": float(k % 2) for k in range(6)}
    cands = [{f"i{k}": float(v) for k, v in enumerate(r)} for r in rows]
    for i in screen(cands, parent):
        wins, losses, _ = compare(cands[i], parent)
        assert wins > losses
