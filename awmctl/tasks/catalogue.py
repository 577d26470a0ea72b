"""Registers every task with the registry (imported lazily by ``registry._load``)."""

from awmctl.tasks import myriad
from awmctl.tasks.registry import register

for _info in myriad.task_infos():
    register(_info)
