"""Loaded by the fault tests' servers and their workers (``PYTHONPATH``), never by the planner itself.

A run of the scenario named ``fault_big`` stays in its model-building stage for ``FAULT_BIG_HOLD_S`` seconds
before it solves, so the tests that need a long run (a crash while a worker runs, leases across hosts, quotas of
places held) get one however fast the solver is on the machine. The worker lives, renews its lease and can be
cancelled or killed meanwhile, exactly as in a long solve.
"""

import importlib.abc
import importlib.util
import sys
import time

FAULT_BIG_HOLD_S = 90.0


class _HoldBigRuns(importlib.abc.MetaPathFinder):
    """Wraps ``planner.execute.execute_scenario`` as the module is imported."""

    def find_spec(self, name, path, target=None):
        if name != "planner.execute":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            execute = module.execute_scenario

            def held(scenario, *args, **kwargs):
                if scenario.name == "fault_big":
                    time.sleep(FAULT_BIG_HOLD_S)
                return execute(scenario, *args, **kwargs)

            module.execute_scenario = held

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _HoldBigRuns())
