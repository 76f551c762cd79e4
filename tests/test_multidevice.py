"""One device and four forced CPU devices train to the same parameters."""

import json
import os
import subprocess
import sys


def test_one_and_four_devices_agree(repo_root):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, os.path.join(repo_root, "tests", "multidevice_check.py")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["moved"] > 1e-2  # training changed the parameters...
    assert result["regression"] < 1e-5  # ...identically up to float rounding
    assert result["minmax"] < 1e-5
