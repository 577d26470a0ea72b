"""The Python API as docs/python.md shows it: its pipeline runs exactly as written, and the
keyword constructors refuse what they do not take."""

import re
from pathlib import Path

import jax
import pytest

import awmctl

DOC = Path(__file__).parents[1] / "docs" / "python.md"


# Three compiled programs of the paper's sizes (half a minute); the keyword constructors the page
# relies on are checked below in the default run, the whole page with `make test-all`.
@pytest.mark.slow
def test_the_documented_pipeline_runs_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(DOC), "exec"), {})  # noqa: S102  (the page's own code)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("validation loss")
    returns = [float(line.rsplit(" ", 1)[1]) for line in printed[1:]]
    # a policy through the fitted model is far better than acting at random on CANCER at H=20
    task = awmctl.make_task("cancer", horizon=20)
    random = awmctl.collect(task, awmctl.random_controller(task), 64, jax.random.key(1))
    assert len(returns) == 2 and min(returns) > float(random.rewards.sum(axis=1).max())


def test_the_keyword_constructors_match_the_positional_ones_and_refuse_unknown_names():
    task = awmctl.make_task("cancer", horizon=8)
    episodes = awmctl.collect(task, awmctl.random_controller(task), 20, jax.random.key(0))
    fit = awmctl.ModelFit.create(episodes, "markov-mlp", steps=7, val_fraction=0.2)
    assert (fit.config.steps, fit.config.val_fraction, fit.context) == (7, 0.2, 8)
    assert fit.train_obs.shape[0] + fit.val.observations.shape[0] == 20
    with pytest.raises(awmctl.BadInputError, match="FitConfig has no stpes; it takes: batch_size"):
        awmctl.ModelFit.create(episodes, "markov-mlp", stpes=7)
    bpo = awmctl.BPO.create(task, awmctl.SimulatorModel(task), episodes.observations, lr=0.5)
    assert bpo.config.lr == 0.5 and bpo.config.steps == awmctl.BPOConfig.preset("converged").steps
    with pytest.raises(awmctl.BadInputError, match="BPOConfig has no learning_rate"):
        awmctl.BPO.create(task, awmctl.SimulatorModel(task), episodes.observations, learning_rate=1)
