"""A rerun of a complete command: the same options exit 0 without work, other options exit 2."""

import json

from conftest import run

from awmctl.cli.collect import collect_command
from awmctl.cli.reruns import option_flags


def test_flags_are_the_ones_a_user_types():
    from awmctl.cli.optimize_policy import optimize_policy_command

    flags = option_flags(collect_command)
    assert (
        flags["episodes"] == "--episodes"
        and flags["task_param"] == "--task-param"
        and flags["out"] == "--out"
    )
    flags = option_flags(
        optimize_policy_command
    )  # marked @no_type_check, and takes the click context
    assert flags["data_dir"] == "--data" and flags["json_out"] == "--json" and "ctx" not in flags


def test_a_complete_identical_rerun_prints_the_stored_summary_and_exits_0(tmp_path):
    out = tmp_path / "d"
    argv = (
        "collect",
        "--task",
        "cancer",
        "--horizon",
        4,
        "-n",
        6,
        "--seed",
        3,
        "--out",
        out,
        "--json",
    )
    first = run(*argv)
    assert first.exit_code == 0, first.stderr
    meta_before = (out / "meta.json").read_text()
    assert json.loads(meta_before)["options"]["episodes"] == 6

    again = run(*argv)
    assert again.exit_code == 0, again.stderr
    assert "Already complete with the same options" in again.stderr
    assert json.loads(again.stdout) == json.loads(
        first.stdout
    )  # the stored summary, as --json printed it
    assert (out / "meta.json").read_text() == meta_before  # nothing was redone or rewritten

    other = run("collect", "--task", "cancer", "--horizon", 4, "-n", 7, "--seed", 3, "--out", out)
    assert other.exit_code == 2
    lines = other.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "made with --episodes 6 (now 7)" in lines[0]
        and "--overwrite" in lines[0]
    ), other.stderr
    assert (out / "meta.json").read_text() == meta_before

    replaced = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        4,
        "-n",
        7,
        "--seed",
        3,
        "--out",
        out,
        "--overwrite",
    )
    assert (
        replaced.exit_code == 0
        and json.loads((out / "meta.json").read_text())["options"]["episodes"] == 7
    )


def test_a_training_command_rerun_does_no_work(tmp_path):
    data, model = tmp_path / "d", tmp_path / "m"
    assert run("collect", "--task", "cancer", "--horizon", 4, "-n", 8, "--out", data).exit_code == 0
    argv = (
        "fit-model",
        "--data",
        data,
        "--model",
        "markov-mlp",
        "--steps",
        4,
        "--log-every",
        2,
        "--out",
        model,
        "--json",
    )
    first = run(*argv)
    assert first.exit_code == 0, first.stderr
    metrics = (model / "metrics.jsonl").read_text()
    again = run(*argv)
    assert again.exit_code == 0 and json.loads(again.stdout) == json.loads(first.stdout), (
        again.stderr
    )
    assert (model / "metrics.jsonl").read_text() == metrics
    other = run(*argv[:-3], "--lr", 0.01, "--out", model)
    assert other.exit_code == 2 and "made with --lr 0.001 (now 0.01)" in other.stderr, other.stderr
