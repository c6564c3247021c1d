"""What tests import to run a bank simulator in-process, on a free port.

For example, a bank that fails half of its requests and decides within 0.2 s::

    config = SimConfig(min_delay=0.05, max_delay=0.2, fail_rate=0.5)
    async with running_bank_sim(config) as sim:
        ...  # talk to sim.url over HTTP; assert on sim.state
"""

from lendo_banksim.server import RunningBankSim, running_bank_sim

__all__ = ["RunningBankSim", "running_bank_sim"]
