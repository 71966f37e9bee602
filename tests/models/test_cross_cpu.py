"""Same seed, same bytes on any x86-64 CPU with AVX2: faces; trained weights per CPU vendor.

Another CPU is simulated on this one, each in a fresh interpreter: NumPy's SIMD paths switched
off (``NPY_DISABLE_CPU_FEATURES``), oneDNN and MKL capped at older instruction sets, and 1, 2 or
3 intra-op threads. Every variant must give the same hashes, and those must equal the hashes
committed below: a machine that gives other bytes fails here, not silently in the published
numbers. That is how NNPACK was caught: with it, an Intel Xeon (AVX-512, 2 cores) trained other
weights than an AMD EPYC (AVX2, 2 cores), while every variant simulated on either machine agreed
with itself.

What was measured on real machines (2026-12): the faces, masks and landmarks are the same bytes
on the Xeon and on the EPYC. The trained weights, and so the logits of the freshly trained net,
are not: with every kernel pinned (ATen AVX2, MKL's COMPATIBLE branch, one thread, no oneDNN,
no NNPACK) the EPYC still trains other bytes than the Xeon, so the hashes of training are
recorded per CPU vendor (one machine each). That is why the default config ships its weights
(``data/weights/``, see ``test_shipped_weights.py``): its published numbers come from those
bytes on every machine, and ``test_shipped_weights.py`` checks that their predictions agree.
ATen's kernels are pinned to AVX2 by :mod:`generator.portable`; simulating a CPU *without* AVX2
(``ATEN_CPU_CAPABILITY=default``) is outside the promise and not tested.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import hashlib, json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
import generator
from generator.datasets.synthetic import SyntheticParams, generate
from generator.models.train import TrainParams, predict, train_model
from generator.models.checkpoints import state_dict_hash
from generator.portable import kernel_state

faces = generate(SyntheticParams(image_size=48, identities={"train_biased": 16, "eval": 4},
                                 images_per_identity=10), seed=7)
split, labels = faces.table["split"].to_numpy(), faces.table["label"].to_numpy()
train, held_out = split == "train_biased", split == "eval"
result = train_model(faces.images[train], labels[train], TrainParams(epochs=2, width=8), seed=7)
logits, embeddings = predict(result.model, faces.images[held_out])
digest = lambda array: hashlib.sha256(array.tobytes()).hexdigest()[:16]
print(json.dumps({"faces": digest(faces.images), "masks": digest(faces.masks), "landmarks": digest(faces.landmarks),
                  "weights": state_dict_hash(result.model.state_dict()), "logits": digest(logits),
                  "embeddings": digest(embeddings), "threads_after": torch.get_num_threads(),
                  "kernels": kernel_state()}))
"""
# The same on every machine measured (Intel Xeon with AVX-512 and AMD EPYC, both 2 cores).
EXPECTED_DATA = {"faces": "b19bea13a824d2b7", "masks": "ee59fb3daedb8c43", "landmarks": "0e5a2148ec61b926"}
# Training, per CPU vendor (``vendor_id`` in /proc/cpuinfo): measured on one machine each, without NNPACK.
EXPECTED_TRAINING = {
    "GenuineIntel": {"weights": "81f3100e459b4732", "logits": "1e7d1f7bc9740e08", "embeddings": "ca20aed9c6e6705a"},
    "AuthenticAMD": {"weights": "bb2c068ae1659992", "logits": "5dd3f6089f4ded1d", "embeddings": "fb101caa3a89bdf6"},
}
EXPECTED = {**EXPECTED_DATA, **EXPECTED_TRAINING["GenuineIntel"]}  # the keys every variant must agree on


def cpu_vendor() -> str:
    """``vendor_id`` of the first CPU in /proc/cpuinfo ("" where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    return next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("vendor_id")), "")


SIMULATED = {
    "as it is, 2 threads": ({}, 2),
    "1 thread": ({"OMP_NUM_THREADS": "1"}, 1),
    "3 threads": ({}, 3),
    "oneDNN capped at AVX2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, 2),
    "older CPU: SSE4.1 oneDNN, SSE4.2 MKL, NumPy without AVX2": (
        {"ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "NPY_DISABLE_CPU_FEATURES": "X86_V3"}, 2),
}


def _run(env: dict[str, str], threads: int) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(threads)], capture_output=True, text=True, cwd=REPO,
                          env={**clean, **env, "PYTHONPATH": str(REPO)}, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return {name: _run(env, threads) for name, (env, threads) in SIMULATED.items()}


def test_every_simulated_cpu_gives_the_same_bytes(results):
    reference = results["as it is, 2 threads"]
    for name, found in results.items():
        for key in EXPECTED:
            assert found[key] == reference[key], f"{name}: {key} differs ({found[key]} vs {reference[key]})"


def test_the_data_are_the_bytes_of_every_machine_measured(results):
    found = {key: results["as it is, 2 threads"][key] for key in EXPECTED_DATA}
    assert found == EXPECTED_DATA, (
        "this machine generates other faces than the machines measured, so every published number would differ; "
        f"or the face generator changed on purpose: then record the new hashes here. Found: {found}")


def test_training_gives_the_bytes_measured_on_this_cpu_vendor(results):
    vendor = cpu_vendor()
    if vendor not in EXPECTED_TRAINING:
        pytest.skip(f"no training hashes recorded for CPU vendor {vendor!r} (recorded: {sorted(EXPECTED_TRAINING)})")
    found = {key: results["as it is, 2 threads"][key] for key in EXPECTED_TRAINING[vendor]}
    assert found == EXPECTED_TRAINING[vendor], (
        f"this {vendor} machine trains other bytes than the {vendor} machine measured (kernels in force: "
        f"{results['as it is, 2 threads']['kernels']}); or the training code changed on purpose: then record the "
        f"new hashes here for every vendor. Found: {found}")


def test_the_kernels_are_pinned_and_threads_restored(results):
    for name, found in results.items():
        kernels = found["kernels"]
        assert kernels["aten_capability"] == "AVX2", name
        assert kernels["MKL_CBWR"] == "COMPATIBLE" and kernels["mkl_cbwr_branch"] != "AUTO (machine-dependent)", name
        assert found["threads_after"] == SIMULATED[name][1], f"{name}: training left the thread count changed"
