"""Every directory records which version of its task made it; a changed user task is refused."""

import json
import shutil
from pathlib import Path

from conftest import run

from awmctl.tasks import make_task, source_fingerprint, task_record


def test_built_in_tasks_record_awmctl_s_version_and_users_the_hash_of_their_file(tmp_path):
    import awmctl

    assert task_record(make_task("cancer", 5))["fingerprint"] == f"awmctl {awmctl.__version__}"
    source = tmp_path / "task.py"
    shutil.copy(Path(__file__).parent / "lq_task.py", source)
    before = source_fingerprint(f"{source}:LinearQuadratic")
    assert (
        before.startswith("sha256 ")
        and before == task_record(make_task(f"{source}:LinearQuadratic", 4))["fingerprint"]
    )
    source.write_text(source.read_text() + "\n# edited\n")
    assert source_fingerprint(f"{source}:LinearQuadratic") != before


def test_inputs_made_from_another_version_of_a_users_task_are_refused_unless_allowed(tmp_path):
    source = tmp_path / "task.py"
    shutil.copy(Path(__file__).parent / "lq_task.py", source)
    task = f"{source}:LinearQuadratic"
    data, policy = tmp_path / "data", tmp_path / "policy"
    assert run("collect", "--task", task, "--horizon", 4, "-n", 8, "--out", data).exit_code == 0
    made = run(
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        task,
        "--horizon",
        4,
        "--steps",
        2,
        "--log-every",
        2,
        "--out",
        policy,
    )
    assert made.exit_code == 0, made.stderr
    assert json.loads((data / "meta.json").read_text())["task"][
        "fingerprint"
    ] == source_fingerprint(task)

    # A policy used at another horizon than the one it was optimised for: one warning line.
    other = run(
        "collect",
        "--task",
        task,
        "--horizon",
        6,
        "-n",
        4,
        "--policy",
        policy,
        "--out",
        tmp_path / "h6",
    )
    assert other.exit_code == 0, other.stderr
    assert "was optimised over H=4 steps; collecting at H=6" in other.stderr

    source.write_text(
        source.read_text().replace(
            "b: float = eqx.field(static=True, default=0.5)",
            "b: float = eqx.field(static=True, default=0.7)",
        )
    )
    for argv, given in (
        (
            [
                "fit-model",
                "--data",
                data,
                "--model",
                "markov-mlp",
                "--steps",
                2,
                "--log-every",
                2,
                "--out",
                tmp_path / "model",
            ],
            data,
        ),
        (
            [
                "collect",
                "--task",
                task,
                "--horizon",
                4,
                "-n",
                4,
                "--policy",
                policy,
                "--out",
                tmp_path / "again",
            ],
            policy,
        ),
    ):
        refused = run(*argv)
        assert refused.exit_code == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{given} was made from another version of {task}" in lines[0], (
            refused.stderr
        )
        assert "--allow-task-change" in lines[0]
        assert not (tmp_path / "model").exists() and not (tmp_path / "again").exists()
    allowed = run(
        "fit-model",
        "--data",
        data,
        "--model",
        "markov-mlp",
        "--steps",
        2,
        "--log-every",
        2,
        "--out",
        tmp_path / "model",
        "--allow-task-change",
    )
    assert allowed.exit_code == 0, allowed.stderr
