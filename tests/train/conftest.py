"""Training tests run single-threaded: tiny networks gain nothing from threads, and on a shared
2-core machine intra-op threads oversubscribe the CPU (a 3x slowdown measured)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
