from main.prompt import PROMPTS_DIR, render_example, render_prompt

# The seeds' exact wording (Stanford Alpaca's PROMPT_DICT, reused by CodeAlpaca).
SEED_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
SEED_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def test_prompts_match_the_seeds_exactly():
    assert render_prompt("Sort {x}", "[3, 1]") == SEED_WITH_INPUT.format(instruction="Sort {x}", input="[3, 1]")
    assert render_prompt("Say hi") == SEED_NO_INPUT.format(instruction="Say hi")
    assert render_prompt("Say hi", "   ") == render_prompt("Say hi")  # blank input counts as none


def test_templates_live_in_prompts_folder():
    assert (PROMPTS_DIR / "alpaca_input.txt").read_text().rstrip("\n") == SEED_WITH_INPUT
    assert (PROMPTS_DIR / "alpaca_no_input.txt").read_text().rstrip("\n") == SEED_NO_INPUT


def test_render_example_splits_prompt_and_target():
    prompt, target = render_example("Add", "1 2", "3")
    assert prompt == render_prompt("Add", "1 2") and target == "3"
