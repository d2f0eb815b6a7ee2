"""Checkpoints: atomic, checksummed, and the previous one used when the newest is damaged."""

from __future__ import annotations

import json

import pytest
import torch

from infscale.train import checkpoint as ckpt


def _save(root, step, value):
    return ckpt.save(
        root,
        step,
        {"w": torch.full((4, 4), float(value))},
        {"optimizer": {"state": {}, "param_groups": []}, "losses": torch.arange(step) * 1.0},
        {"points": [{"loss": value}]},
        [json.dumps({"step": s}) for s in range(1, step + 1)],
    )


def test_roundtrip_and_only_the_newest_two_are_kept(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000003"]
    latest = ckpt.load_latest(tmp_path)
    assert latest.step == 3
    assert torch.equal(latest.model["w"], torch.full((4, 4), 3.0))
    assert torch.equal(latest.state["losses"], torch.arange(3) * 1.0)
    assert latest.meta["points"] == [{"loss": 3}]
    assert len(latest.log_lines) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_damaged_newest_checkpoint_falls_back_to_previous(tmp_path, damage, capsys):
    _save(tmp_path, 1, 1)
    newest = _save(tmp_path, 2, 2)
    target = newest / "model.safetensors"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-10])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        (newest / "state.pt").unlink()
    else:
        (newest / "manifest.json").write_text("{")
    problem = ckpt.verify(newest)
    assert problem is not None
    latest = ckpt.load_latest(tmp_path)
    assert latest.step == 1
    assert torch.equal(latest.model["w"], torch.full((4, 4), 1.0))
    err = capsys.readouterr().err
    fallback = "falling back to step-00000001, step 1"
    assert err == f"checkpoint {newest} is damaged ({problem}); {fallback}\n"


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(tmp_path):
    for step in (1, 2):
        weights = _save(tmp_path, step, step) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(ckpt.DamagedCheckpoints) as caught:
        ckpt.load_latest(tmp_path)
    message = str(caught.value)
    assert f"every checkpoint in {tmp_path} is damaged" in message
    assert "step-00000002: model.safetensors has" in message and "step-00000001:" in message
    assert message.endswith(f"remove {tmp_path} to train this run again from step 0")


def test_resaving_a_step_replaces_it_and_clears_stale_temporaries(tmp_path):
    _save(tmp_path, 1, 1)
    (tmp_path / ".step-00000002.x.tmp").mkdir()  # a save that a kill cut short
    _save(tmp_path, 2, 2)
    _save(tmp_path, 2, 5)  # the same step again (a resume from step 1 passing it)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001", "step-00000002"]
    assert torch.equal(ckpt.load_latest(tmp_path).model["w"], torch.full((4, 4), 5.0))


def test_half_written_temp_directory_is_ignored(tmp_path):
    _save(tmp_path, 1, 1)
    (tmp_path / ".step-00000002.tmp").mkdir()
    (tmp_path / ".step-00000002.tmp" / "model.safetensors").write_bytes(b"partial")
    assert ckpt.load_latest(tmp_path).step == 1
    assert ckpt.load_latest(tmp_path / "none") is None


def test_state_loads_with_weights_only(tmp_path):
    path = _save(tmp_path, 1, 1)
    # a pickled arbitrary object is refused by the loader the checkpoint module uses
    torch.save({"x": object()}, path / "evil.pt")
    with pytest.raises(Exception, match=r"(?i)weights.only|unsupported"):
        torch.load(path / "evil.pt", weights_only=True)
