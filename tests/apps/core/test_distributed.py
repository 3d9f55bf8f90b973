"""Scale-out on loopback: mirrored replicas, two-worker training, chief/worker tuning.

Every run is a subprocess (device layouts and TF_CONFIG are fixed when TensorFlow starts),
bounded by a timeout, on the sentiment app's tiny preset and a small synthetic CSV.
"""

from __future__ import annotations

import csv
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
POSITIVE = ["great", "wonderful", "moving", "superb", "delightful", "brilliant"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "tedious", "clumsy"]
FILLER = ["the", "film", "plot", "was", "a", "story", "acting", "and", "really", "very"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """240 eight-word reviews whose label is carried by one sentiment word among filler.

    One length, 192 training and 24 validation examples (the tiny split of 240) make every
    training batch of 16 full and the last validation batch of 8 split evenly, so two replicas
    of 8 see exactly what one device sees. (Keras averages the replicas' mean losses, which
    weighs the examples of an unevenly split batch differently from one device.)
    """
    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    rng = random.Random(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for _ in range(240):
            label = rng.choice(["pos", "neg"])
            words = rng.choices(FILLER, k=7)
            words.insert(
                rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE)
            )
            writer.writerow([" ".join(words), label])
    return path


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def sentiment(*args: str) -> list[str]:
    return [sys.executable, "-m", "apps.sentiment", *map(str, args)]


def start(command: list[str], log: Path, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=REPOSITORY,
        env={**ENVIRONMENT, **environment},
    )


def finish(processes: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float):
    """Waits for every process; kills all of them if one fails or the time runs out."""
    try:
        for name, process in processes.items():
            code = process.wait(timeout=timeout)
            assert code == 0, f"{name} exited with {code}:\n{logs[name].read_text()[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def history(workdir: Path) -> list[dict[str, float]]:
    with (workdir / "history.csv").open() as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    data, workdir, devices, batch_size = sys.argv[1:5]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(devices)
    )
    print("mirrored replicas:", tf.distribute.MirroredStrategy().num_replicas_in_sync)

    from apps.sentiment import main

    sys.exit(main(["train", "--workdir", workdir, "--strategy", "mirrored", "--preset", "tiny",
                   "--data", data, "--set", "training.epochs=2",
                   "--set", f"training.batch_size={batch_size}"]))
    """
)


@pytest.mark.large  # 60-120 s: two trainings in subprocesses
def test_mirrored_on_two_cpu_devices_matches_one_device(data, tmp_path):
    # One device with batches of 16 against two replicas of 8 each: the same global batches.
    # Both run under MirroredStrategy: under any strategy Keras draws one batch to build the
    # model, which moves the seeded shuffle on by one epoch compared with "default".
    runs = {"one_device": (1, 16), "two_devices": (2, 8)}
    processes, logs = {}, {}
    for name, (devices, batch_size) in runs.items():
        logs[name] = tmp_path / f"{name}.log"
        processes[name] = start(
            [
                sys.executable,
                "-c",
                MIRRORED_SCRIPT,
                str(data),
                str(tmp_path / name),
                str(devices),
                str(batch_size),
            ],
            logs[name],
        )
    finish(processes, logs, timeout=240)
    assert "mirrored replicas: 1" in logs["one_device"].read_text()
    assert "mirrored replicas: 2" in logs["two_devices"].read_text()
    one_device, two_devices = history(tmp_path / "one_device"), history(tmp_path / "two_devices")
    assert len(one_device) == len(two_devices) == 2
    for one_epoch, two_epoch in zip(one_device, two_devices, strict=True):
        for key in ["loss", "val_loss", "accuracy", "val_accuracy"]:
            np.testing.assert_allclose(
                two_epoch[key], one_epoch[key], rtol=1e-4, atol=1e-5, err_msg=key
            )


def test_two_workers_train_in_sync_on_loopback(data, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, logs = {}, {}
    for index in range(2):
        name = f"worker{index}"
        logs[name] = tmp_path / f"{name}.log"
        # Each worker writes its own work dir: checkpoints and backups are per process.
        processes[name] = start(
            sentiment(
                "train",
                "--workdir",
                tmp_path / name,
                "--strategy",
                "multi-worker",
                "--preset",
                "tiny",
                "--data",
                data,
                "--set",
                "training.epochs=1",
                "--set",
                "training.batch_size=8",
            ),
            logs[name],
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
    finish(processes, logs, timeout=240)
    worker0, worker1 = history(tmp_path / "worker0"), history(tmp_path / "worker1")
    assert len(worker0) == 1
    # Gradients are all-reduced, so both workers hold the same model after each step.
    np.testing.assert_allclose(worker0[0]["val_loss"], worker1[0]["val_loss"], rtol=1e-5)


PLAIN_KERAS_MULTI_WORKER_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tokens = np.random.default_rng(0).integers(1, 50, size=(64, 6))
    dataset = tf.data.Dataset.from_tensor_slices((tokens, tokens[:, 0] % 2)).batch(16)
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,), dtype="int64"),
                                  keras.layers.Embedding(50, 4), keras.layers.GRU(4),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(dataset, epochs=1, verbose=0)
    """
)


@pytest.mark.large  # 25-45 s, and it watches Keras, not this project
def test_keras_multi_worker_fit_still_needs_the_workaround(tmp_path):
    # apps.core.training.work_around_multi_worker_fit exists for this Keras bug; when this test
    # fails, Keras has fixed keras-team/keras#20585 and the workaround can go.
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, logs = {}, {}
    for index in range(2):
        logs[index] = tmp_path / f"worker{index}.log"
        processes[index] = start(
            [sys.executable, "-c", PLAIN_KERAS_MULTI_WORKER_SCRIPT],
            logs[index],
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
    try:
        codes = [process.wait(timeout=120) for process in processes.values()]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    assert codes != [0, 0]
    assert "PerReplica" in logs[0].read_text() + logs[1].read_text()


def test_a_chief_and_two_workers_finish_a_four_trial_search(data, tmp_path):
    (port,) = free_ports(1)
    workdir = tmp_path / "search"
    command = sentiment(
        "tune",
        "--workdir",
        workdir,
        "--preset",
        "tiny",
        "--data",
        data,
        "--set",
        "model.units=32",
        "--set",
        "model.embedding_dim=64",
        "--tuner",
        "random",
        "--max-trials",
        "4",
        "--epochs",
        "1",
    )
    processes, logs = {}, {}
    for tuner_id in ["chief", "tuner0", "tuner1"]:
        logs[tuner_id] = tmp_path / f"{tuner_id}.log"
        processes[tuner_id] = start(
            command,
            logs[tuner_id],
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    finish(processes, logs, timeout=300)
    trials = [json.loads(path.read_text()) for path in (workdir / "trials").glob("*/trial.json")]
    assert sorted(trial["status"] for trial in trials) == ["COMPLETED"] * 4
    worker_trials = [
        logs[name].read_text().count("trial finished in") for name in ["tuner0", "tuner1"]
    ]
    assert sum(worker_trials) == 4 and min(worker_trials) >= 1, worker_trials
    assert "best trials (4 finished" in logs["chief"].read_text()
    assert (workdir / "best_config.json").is_file()
