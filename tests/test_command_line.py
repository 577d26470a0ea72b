"""The command line as a shell sees it: completion of commands, choices, tasks and model names,
and choices listed in --help."""

from conftest import run


def completions(line: str) -> list[str]:
    """What bash completion offers at the end of ``line``: Typer's protocol as the installed
    script (``awmctl --show-completion bash``) calls it, run in this process."""
    from typer.testing import CliRunner

    from awmctl.cli import app

    env = {
        "_AWMCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split(" ")) - 1),
    }
    result = CliRunner().invoke(app, [], prog_name="awmctl", env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout.split()


def test_bash_completion_offers_choices_tasks_and_model_names():
    assert completions("awmctl optimize-policy --agent ") == ["bpo", "sac", "online-dt"]
    assert completions("awmctl optimize-policy --preset ") == ["converged", "paper"]
    assert completions("awmctl optimize-policy --policy-input-grad ") == ["stop", "full"]
    assert completions("awmctl collect --task predator-") == ["predator-prey", "predator-prey-t10"]
    assert completions("awmctl fit-model --model hwm-") == [
        "hwm-transformer",
        "hwm-lstm",
        "hwm-ssm",
    ]
    assert "optimize-policy" in completions("awmctl opt")


def test_the_completion_script_is_shown_and_the_help_lists_the_choices(monkeypatch):
    # --show-completion is a flag whose shell typer detects from the process's ancestors (a
    # test run detached from any shell has none): the test's shell is bash
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: "bash")
    script = run("--show-completion", "bash")
    assert script.exit_code == 0 and "_AWMCTL_COMPLETE=complete_bash" in script.stdout
    help_text = run("optimize-policy", "--help").stdout
    for choices in ("bpo|sac|online-dt", "converged|paper", "mlp|open-loop", "authors|standard"):
        assert choices in help_text
    assert "path/file.py:Class" in run("collect", "--help").stdout
    # optimize-policy's options grouped by mode
    for panel in ("Offline BPO", "Online: --online and the agents", "SAC", "Online-DT"):
        assert f"─ {panel} ─" in help_text


def test_flags_show_no_value_and_repeatable_options_say_so():
    for command in (
        "collect",
        "fit-model",
        "optimize-policy",
        "grad-norm",
        "landscape",
        "references",
        "show",
    ):
        lines = run(command, "--help").stdout.splitlines()
        flags = [line for line in lines if "--json" in line or "--overwrite" in line]
        assert flags and not any("<bool>" in line for line in flags), command
    # (the metavar column may wrap on an 80-column terminal)
    collect_help, grad_norm_help = (
        run("collect", "--help").stdout,
        run("grad-norm", "--help").stdout,
    )
    assert "NAME=VALUE" in collect_help and "(repeatable)" in collect_help
    assert "DIR|simulator" in grad_norm_help and "(repeatable)" in grad_norm_help


def test_help_text_reflows_to_an_80_column_terminal():
    """No description line ends early: a docstring's own line breaks would break the help a
    second time, mid-sentence, on a terminal narrower than the source."""
    from typer.testing import CliRunner

    from awmctl.cli import app

    for command in (
        "collect",
        "fit-model",
        "optimize-policy",
        "grad-norm",
        "landscape",
        "references",
    ):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        description = lines[: next(i for i, line in enumerate(lines) if line.startswith("╭"))]
        paragraphs = "\n".join(line.strip() for line in description).split("\n\n")
        paragraphs = [p.splitlines() for p in paragraphs if p.strip()][1:]  # after the usage line
        assert paragraphs, command
        for paragraph in paragraphs:
            for line in paragraph[:-1]:
                assert len(line) > 60, (command, line)
            assert max(len(line) for line in paragraph) <= 80, command
