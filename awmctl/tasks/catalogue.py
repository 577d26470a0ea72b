"""Registers every task with the registry (imported lazily by ``registry._load``)."""

from awmctl.tasks import bounce, myriad, pendulum
from awmctl.tasks.registry import register

for _info in myriad.task_infos():
    register(_info)
for _info in pendulum.task_infos():
    register(_info)
for _info in bounce.task_infos():
    register(_info)
