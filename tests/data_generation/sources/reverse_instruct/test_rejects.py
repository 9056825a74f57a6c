"""The rejects file: whole steps survive a crash, a cut-off step and a torn line are cut before it reruns."""

import json

from data_generation.sources.reverse_instruct.rejects import RejectsFile


def reject(step: int, index: int) -> dict:
    return {"step": step, "index": index, "language": "python", "reason": "statement_missing"}


def test_steps_append_and_read_back(tmp_path):
    path = tmp_path / "r.rejects.jsonl"
    rejects = RejectsFile(path)
    assert not path.exists() and not rejects.after(0)  # nothing written until a step is
    rejects.append_step(0, [reject(0, 0), reject(0, 1)], kept=4)
    rejects.append_step(1, [], kept=6)
    rejects.close()
    again = RejectsFile(path)
    assert again.rows == [reject(0, 0), reject(0, 1)] and again.done == {0: 4, 1: 6}
    assert [json.loads(line) for line in path.read_text().splitlines()][-1] == {"step_done": 1, "kept": 6}


def test_a_cut_off_step_and_a_torn_line_are_cut_and_the_step_rerun_writes_the_same_bytes(tmp_path):
    ref, cut = tmp_path / "ref.jsonl", tmp_path / "cut.jsonl"
    rejects = RejectsFile(ref)
    for step in range(3):
        rejects.append_step(step, [reject(step, 2 * step), reject(step, 2 * step + 1)], kept=step)
    rejects.close()
    lines = ref.read_bytes().splitlines(keepends=True)
    cut.write_bytes(b"".join(lines[:7]) + lines[7][:10])  # step 2: one row, then a torn one, no marker
    rejects = RejectsFile(cut)
    assert rejects.done == {0: 0, 1: 1} and rejects.rows == [reject(s, i) for s, i in ((0, 0), (0, 1), (1, 2), (1, 3))]
    assert rejects.after(2)
    rejects.truncate(2)
    assert cut.read_bytes() == b"".join(lines[:6])
    rejects.append_step(2, [reject(2, 4), reject(2, 5)], kept=2)
    rejects.close()
    assert cut.read_bytes() == ref.read_bytes()


def test_truncate_drops_finished_steps_from_the_given_one(tmp_path):
    path = tmp_path / "r.jsonl"
    rejects = RejectsFile(path)
    for step in range(3):
        rejects.append_step(step, [reject(step, step)], kept=1)
    rejects.truncate(1)
    rejects.append_step(1, [], kept=2)
    rejects.close()
    again = RejectsFile(path)
    assert again.done == {0: 1, 1: 2} and again.rows == [reject(0, 0)]
