"""Bad invocations a new user (or a sweep script) makes: each gets one line on stderr and the
documented exit code (2: bad input, nothing written; 1: the run failed), never a traceback.

The table covers what reliability work found accepted or crashing (task parameters outside their
domain, a constant action outside [-1, 1], divergence, a damaged dataset, a busy --out, a
directory written by an incompatible awmctl) and a sample of what was already refused; the
per-command tests hold the rest.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "data"
    assert run("collect", "--task", "cancer", "--horizon", 8, "-n", 32, "--out", out).exit_code == 0
    return out


BAD_INPUT = [
    # task parameters: finite, positive where physical, the right size, within the state bounds, a
    # known name
    (
        ["collect", "--task", "cancer", "--task-param", "T=nan"],
        2,
        "T=nan for cancer (the duration) must be finite",
    ),
    (["collect", "--task", "cancer", "--task-param", "T=-1"], 2, "must be a number > 0"),
    (
        ["collect", "--task", "cancer", "--task-param", "r=-0.5"],
        2,
        "r=-0.5 for cancer must be a number >= 0",
    ),
    (
        ["collect", "--task", "cancer", "--task-param", "x0=0.5,0.5"],
        2,
        "must be 1 comma-separated number(s), got 2",
    ),
    (
        ["collect", "--task", "cancer", "--task-param", "x0=7"],
        2,
        "must lie within the state bounds",
    ),
    (
        ["collect", "--task", "bacteria", "--task-param", "terminal_on=end"],
        2,
        "must be one of before-last, final",
    ),
    (["collect", "--task", "double-pendulum", "--task-param", "goal=2,0"], 2, "in [-1, 1]"),
    (
        ["collect", "--task", "double-pendulum", "--task-param", "M1=0"],
        2,
        "M1=0 for double-pendulum must be a number > 0",
    ),
    (["collect", "--task", "bounce", "--task-param", "dt=inf"], 2, "must be finite"),
    (["collect", "--task", "cancer", "--task-param", "nope=1"], 2, "has no parameter 'nope'"),
    (["collect", "--task", "cancer", "--task-param", "T"], 2, "write it as NAME=VALUE"),
    # behaviours and sizes
    (
        ["collect", "--task", "cancer", "--policy", "constant:5"],
        2,
        "constant action 5 is outside [-1, 1]",
    ),
    (["collect", "--task", "cancer", "--policy", "constant:nan"], 2, "outside [-1, 1]"),
    (["collect", "--task", "cancer", "--horizon", 0], 2, "horizon must be an integer >= 1"),
    (
        ["collect", "--task", "cancer", "--horizon", 100, "--episodes", 2 * 10**9],
        2,
        "2000000000 episodes need",
    ),
    (["collect", "--task", "no-such-task"], 2, "unknown task"),
    (
        ["optimize-policy", "--task", "cancer", "--model", "simulator", "--seeds", 0],
        2,
        "--seeds must be at least 1",
    ),
    (["optimize-policy", "--agent", "ppo", "--task", "cancer"], 2, "unknown agent 'ppo'"),
    (
        ["optimize-policy", "--agent", "sac", "--task", "cancer", "--model", "awm-lstm"],
        2,
        "--model does not apply to --agent sac",
    ),
    (
        ["optimize-policy", "--online", "--task", "cancer", "--model", "awm-lstm", "--steps", 5],
        2,
        "--steps does not apply with --online",
    ),
    (
        [
            "optimize-policy",
            "--online",
            "--task",
            "cancer",
            "--model",
            "awm-lstm",
            "--trust-gate",
            -1,
        ],
        2,
        "--trust-gate must be 0 (off) or positive, got -1.0",
    ),
    # closed sets of values: refused by the config they set (its Literal-typed field)
    (
        ["optimize-policy", "--agent", "sac", "--task", "cancer", "--variant", "mine"],
        2,
        "--variant must be authors or standard, got 'mine'",
    ),
    (
        ["optimize-policy", "--online", "--task", "cancer", "--model", "awm-lstm"]
        + ["--updates-from", "soon"],
        2,
        "--updates-from must be warmup or first-episode, got 'soon'",
    ),
    (
        ["optimize-policy", "--task", "cancer", "--model", "simulator"]
        + ["--policy-input-grad", "half"],
        2,
        "--policy-input-grad must be stop or full, got 'half'",
    ),
    (
        ["optimize-policy", "--agent", "sac", "--task", "cancer", "--trust-gate", 1],
        2,
        "--trust-gate does not apply to --agent sac",
    ),
    # integers beyond 32 bits: refused before they reach a compiled call (an OverflowError)
    (
        ["fit-model", "--data", "nowhere", "--model", "awm-lstm", "--steps", 10**12],
        2,
        "--steps 1000000000000 is out of range",
    ),
    (
        ["collect", "--task", "cancer", "--seed", 2**70],
        2,
        "--seed 1180591620717411303424 is out of range",
    ),
    (
        [
            "optimize-policy",
            "--online",
            "--task",
            "cancer",
            "--model",
            "awm-lstm",
            "--env-steps",
            -(2**40),
        ],
        2,
        "--env-steps -1099511627776 is out of range",
    ),
]


@pytest.mark.parametrize(
    "argv, code, message",
    BAD_INPUT,
    ids=[" ".join(map(str, a[0][:4])) + f" {i}" for i, a in enumerate(BAD_INPUT)],
)
def test_bad_input_gets_one_line_and_its_exit_code(tmp_path, argv, code, message):
    result = run(*argv, "--out", tmp_path / "out")
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "unexpected failure" not in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "sizes, message",
    [
        (["--model", "awm-transformer", "--heads", 5], "--width 48 is not divisible by --heads 5"),
        (["--model", "awm-transformer", "--layers", 0], "--layers 0 must be at least 1"),
        (["--model", "awm-lstm", "--width", 0], "--width 0 must be at least 1"),
        (["--model", "awm-transformer", "--dropout", 1.5], "--dropout 1.5 is not a dropout rate"),
        (["--model", "markov-mlp", "--width", -3], "--width -3 must be at least 1"),
    ],
)
def test_model_sizes_it_cannot_build_are_one_line_and_leave_nothing_behind(
    tmp_path, data, sizes, message
):
    result = run("fit-model", "--data", data, *sizes, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no out, out.partial or .out.lock


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["fit-model", "--model", "markov-mlp", "--steps", 200, "--lr", 1e9],
            "diverged at step 50",
        ),
        (
            [
                "optimize-policy",
                "--agent",
                "sac",
                "--task",
                "cancer",
                "--horizon",
                8,
                "--env-steps",
                320,
                "--warmup-steps",
                32,
                "--lr",
                1e9,
            ],
            "diverged at env step",
        ),
    ],
)
def test_divergence_is_reported_and_no_checkpoint_holds_a_non_finite_number(
    tmp_path, data, argv, message
):
    if argv[0] == "fit-model":
        argv = [*argv, "--data", data]
    result = run(*argv, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    if argv[0] == "fit-model":
        return  # it stops inside its first chunk, before any checkpoint
    records = [
        json.loads(line)
        for line in (tmp_path / "out.partial" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[-1]["train/nonfinite_updates"][0] >= 10
    checkpoints = sorted(
        p for p in (tmp_path / "out.partial" / "checkpoints").iterdir() if p.name.isdigit()
    )
    assert checkpoints, (
        "the chunk that diverged is checkpointed (its parameters are the last finite ones)"
    )
    for step in checkpoints:
        restored = ocp.StandardCheckpointer().restore(step / "default")
        for path, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]:
            name = jax.tree_util.keystr(path)
            # parameters (not the optimiser's moments, which may overflow, or the latest loss)
            if (
                "opt" not in name
                and "loss" not in name
                and np.issubdtype(np.asarray(leaf).dtype, np.floating)
            ):
                assert np.all(np.isfinite(leaf)), name


def test_a_damaged_dataset_is_one_line_whatever_orbax_does_at_exit(tmp_path, data):
    damaged = tmp_path / "damaged"
    shutil.copytree(data, damaged)
    chunk = max(
        (p for p in (damaged / "arrays").rglob("*") if p.is_file() and "/d/" in str(p)),
        key=lambda p: p.stat().st_size,
    )
    chunk.write_bytes(os.urandom(64))
    for _ in range(3):  # the extra tracebacks came only sometimes
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "awmctl",
                "fit-model",
                "--data",
                str(damaged),
                "--model",
                "markov-mlp",
                "--steps",
                "10",
                "--out",
                str(tmp_path / "m"),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2
        assert (
            result.stderr.strip().splitlines() == [result.stderr.strip()]
            and "damaged" in result.stderr
        )


def test_a_busy_out_is_refused_and_a_killed_writer_leaves_no_stuck_lock(tmp_path):
    out = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "awmctl",
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        "8",
        "--model",
        "markov-mlp",
        "--env-steps",
        "100000",
        "--warmup-steps",
        "32",
        "--out",
        str(out),
    ]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out.with_name("run.partial") / "metrics.jsonl").exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.5)
        second = run(
            "optimize-policy",
            "--online",
            "--task",
            "cancer",
            "--horizon",
            8,
            "--model",
            "markov-mlp",
            "--env-steps",
            100000,
            "--warmup-steps",
            32,
            "--out",
            out,
        )
        assert second.exit_code == 2 and "is being written by awmctl pid" in second.stderr, (
            second.stderr
        )
        first.kill()  # kill -9: no handler runs
        first.wait()
        # the killed writer's --out is free at once (the kernel dropped its flock)
        from awmctl.store import OutputLock

        OutputLock(out.absolute()).release()
    finally:
        if first.poll() is None:
            first.kill()


def test_a_directory_of_an_incompatible_format_names_the_awmctl_that_wrote_it(tmp_path, data):
    old = tmp_path / "old"
    shutil.copytree(data, old)
    meta = json.loads((old / "meta.json").read_text())
    meta["format_version"] = 99
    meta["environment"]["versions"]["awmctl"] = "9.9.9"
    (old / "meta.json").write_text(json.dumps(meta))
    result = run("fit-model", "--data", old, "--model", "markov-mlp", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert (
        "written by awmctl 9.9.9 in directory format 99" in result.stderr
        and "upgrade awmctl" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_json_output_carries_its_schema_version_and_the_documented_fields(tmp_path):
    documented = {  # docs/usage.md, "JSON output"
        "collect": {
            "out",
            "task",
            "horizon",
            "policy",
            "seed",
            "episodes",
            "mean_return",
            "std_return",
            "min_return",
            "max_return",
        },
        "optimize-policy": {
            "out",
            "model",
            "task",
            "horizon",
            "policy",
            "policy_input_grad",
            "steps",
            "seeds",
            "final_return_mean",
            "final_return_ci95",
            "best_return_mean",
            "final_grad_cosine_mean",
            "wall_s",
            "compile_s",
        },
    }
    runs = {
        "collect": run(
            "collect",
            "--task",
            "cancer",
            "--horizon",
            8,
            "-n",
            2,
            "--out",
            tmp_path / "d",
            "--json",
        ),
        "optimize-policy": run(
            "optimize-policy",
            "--model",
            "simulator",
            "--task",
            "cancer",
            "--horizon",
            8,
            "--steps",
            4,
            "--log-every",
            2,
            "--out",
            tmp_path / "p",
            "--json",
        ),
    }
    for command, result in runs.items():
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["schema_version"] == 1
        assert documented[command] <= set(summary), documented[command] - set(summary)


@pytest.mark.parametrize("stdout", ["closed", "broken pipe"])
def test_json_to_a_closed_stdout_is_one_line_and_the_output_is_kept(tmp_path, stdout):
    out = tmp_path / "data"
    command = (
        f"{sys.executable} -m awmctl collect --task cancer --horizon 8 -n 4 --out {out} --json"
    )
    shell = f"{command} >&-" if stdout == "closed" else f"{command} | head -c 0"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"the summary is in {out}/meta.json" in errors[0], result.stderr
    assert "standard output" in errors[0] and "Traceback" not in result.stderr
    assert json.loads((out / "meta.json").read_text())["status"] == "complete"


def test_a_run_too_big_for_memory_is_bad_input_and_leaves_nothing_behind(tmp_path):
    """XLA refuses the buffers (a transformer's attention over 100000 steps: terabytes) before
    any training: exit 2 with the size, and no OUT.partial or lock left for a resume that
    cannot succeed."""
    out = tmp_path / "policy"
    result = run(
        "optimize-policy", "--online", "--task", "cancer", "--horizon", 100000,
        "--model", "awm-transformer", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs more memory than this machine has" in lines[0], lines
    assert "GiB in one buffer" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_backend_that_is_not_here_is_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cuda"}
    argv = [sys.executable, "-m", "awmctl", "collect", "--task", "cancer", "--horizon", "4"]
    done = subprocess.run(
        [*argv, "-n", "2", "--out", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "JAX_PLATFORMS=cuda: JAX cannot start that backend" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
