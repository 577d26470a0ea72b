"""awmctl show: one directory in detail, several in one table, their curves in one plot."""

import json

from conftest import run


def test_show_tells_what_each_directory_is_and_compares_runs(tmp_path):
    data = tmp_path / "data"
    assert run("collect", "--task", "cancer", "--horizon", 4, "-n", 8, "--out", data).exit_code == 0
    policies = []
    for lr in (0.01, 0.03):
        out = tmp_path / f"lr{lr}"
        made = run(
            "optimize-policy",
            "--model",
            "simulator",
            "--task",
            "cancer",
            "--horizon",
            4,
            "--steps",
            4,
            "--log-every",
            2,
            "--lr",
            lr,
            "--seeds",
            2,
            "--out",
            out,
        )
        assert made.exit_code == 0, made.stderr
        policies.append(out)

    one = run("show", policies[0], "--json")
    assert one.exit_code == 0, one.stderr
    (about,) = json.loads(one.stdout)["runs"]
    assert about["kind"] == "policy" and about["state"] == "complete" and about["task"] == "cancer"
    assert (
        about["horizon"] == 4 and about["model"] == "simulator" and about["options"]["lr"] == 0.01
    )
    assert about["versions"]["awmctl"] and "final_return_mean" in about["summary"]
    assert about["command"].startswith(
        "awmctl"
    )  # (in-process here: the test runner's own arguments)

    text = run("show", data)
    assert text.exit_code == 0 and "dataset" in text.stderr and "complete" in text.stderr, (
        text.stderr
    )

    plot = tmp_path / "curves.png"
    many = run("show", *policies, data, "--plot", plot, "--json")
    assert many.exit_code == 0, many.stderr
    report = json.loads(many.stdout)
    assert [r["kind"] for r in report["runs"]] == ["policy", "policy", "dataset"]
    assert "lr" in report["differing_options"] and "task" not in report["differing_options"]
    assert plot.stat().st_size > 1000
    table = run("show", *policies)
    assert table.exit_code == 0 and "--lr" in table.stderr and "0.03" in table.stderr, table.stderr


def test_a_directory_awmctl_did_not_write_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "mine").mkdir()
    result = run("show", tmp_path / "mine")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a directory awmctl wrote" in lines[0], result.stderr


def test_a_run_made_again_from_its_options_as_a_config_file(tmp_path):
    argv = (
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--horizon",
        4,
        "--steps",
        4,
        "--log-every",
        2,
        "--lr",
        0.02,
        "--task-param",
        "T=10",
    )
    first = run(*argv, "--out", tmp_path / "a", "--json")
    assert first.exit_code == 0, first.stderr
    config = run("show", tmp_path / "a", "--as-config")
    assert config.exit_code == 0, config.stderr
    assert (
        "lr = 0.02" in config.stdout
        and 'task-param = ["T=10"]' in config.stdout
        and "out =" not in config.stdout
    )
    (tmp_path / "again.toml").write_text(config.stdout)
    again = run(
        "optimize-policy", "--config", tmp_path / "again.toml", "--out", tmp_path / "b", "--json"
    )
    assert again.exit_code == 0, again.stderr
    assert (
        json.loads(again.stdout)["final_return_mean"]
        == json.loads(first.stdout)["final_return_mean"]
    )
    assert (
        json.loads((tmp_path / "b" / "meta.json").read_text())["options"]
        == json.loads((tmp_path / "a" / "meta.json").read_text())["options"]
    )


def test_config_files_set_options_the_command_line_overrides_and_refuse_unknown_keys(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('task = "cancer"\nhorizon = 4\nepisodes = 3\nseed = 5\n')
    made = run("collect", "--config", config, "--episodes", 2, "--out", tmp_path / "d", "--json")
    assert made.exit_code == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["episodes"] == 2 and summary["seed"] == 5 and summary["horizon"] == 4
    config.write_text('task = "cancer"\nepisdoes = 3\n')
    bad = run("collect", "--config", config, "--out", tmp_path / "e")
    assert (
        bad.exit_code == 2
        and len(bad.stderr.strip().splitlines()) == 1
        and "unknown key 'episdoes'" in bad.stderr
    )
    config.write_text('task = "cancer"\nonline = true\nmodel = "awm-lstm"\nsteps = 5\n')
    other_mode = run("optimize-policy", "--config", config, "--out", tmp_path / "f")
    assert (
        other_mode.exit_code == 2 and "--steps does not apply with --online" in other_mode.stderr
    ), other_mode.stderr


def test_config_files_that_would_be_read_wrongly_are_refused_in_one_line(tmp_path):
    config = tmp_path / "c.toml"
    out = tmp_path / "d"
    cases = [
        (b'task = "cancer"\nepisodes = true\n', "episodes = true is a true/false value"),
        (b'task = "cancer"\nepisodes = 3\nepisodes_ = 1\n', "unknown key"),
        (b'task = "cancer"\n"task-param" = ["T=2"]\ntask_param = ["T=3"]\n', "one option twice"),
        (b'task = "cancer\xff"\n', "is not UTF-8 text"),
    ]
    for text, says in cases:
        config.write_bytes(text)
        result = run("collect", "--config", config, "--out", out)
        assert result.exit_code == 2 and says in result.stderr, (text, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_show_refuses_what_it_cannot_read_or_write_in_one_line(tmp_path):
    data = tmp_path / "d"
    assert run("collect", "--task", "cancer", "--horizon", 4, "-n", 2, "--out", data).exit_code == 0
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps({**meta, "task": "cancer", "summary": [1]}))
    shown = run("show", data)
    assert shown.exit_code == 0, shown.stderr
    plotted = run("show", data, "--plot", tmp_path / "nowhere" / "x.png")
    assert plotted.exit_code == 2 and "does not exist" in plotted.stderr
    assert len(plotted.stderr.strip().splitlines()) == 1
