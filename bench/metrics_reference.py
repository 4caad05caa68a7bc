#!/usr/bin/env python3
"""Reference values for `relatent metrics`: disentanglement_lib's DCI, MIG and SAP definitions
(dci.py, mig.py, sap_score.py, with its defaults) computed with scikit-learn and numpy on
synthetic representations whose answers are known, plus the .npy files to run relatent on.

    python3 bench/metrics_reference.py OUT_DIR      # writes OUT_DIR/<name>_{codes,factors}.npy
                                                    # and prints the reference scores as JSON
    cargo run --release -- metrics --codes OUT_DIR/aligned_codes.npy \\
        --factors OUT_DIR/aligned_factors.npy --train 10000 --json

Needs numpy, scipy and scikit-learn (not needed by relatent's tests or CI).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

N, TRAIN = 15000, 10000


# --- disentanglement_lib definitions (rows are points; the library stores them transposed) ---

def dci(x_train, y_train, x_test, y_test):
    num_codes, num_factors = x_train.shape[1], y_train.shape[1]
    importance = np.zeros([num_codes, num_factors])
    test_acc = []
    for i in range(num_factors):
        model = GradientBoostingClassifier()
        model.fit(x_train, y_train[:, i])
        importance[:, i] = np.abs(model.feature_importances_)
        test_acc.append(np.mean(model.predict(x_test) == y_test[:, i]))
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=num_factors)
    code_weight = importance.sum(axis=1) / importance.sum()
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=num_codes)
    factor_weight = importance.sum(axis=0) / importance.sum()
    d, c, inf = float(np.sum(per_code * code_weight)), float(np.sum(per_factor * factor_weight)), float(np.mean(test_acc))
    return {"disentanglement": d, "completeness": c, "informativeness": inf, "mean": (d + c + inf) / 3}


def mig(codes, factors, num_bins=20):
    discretized = np.zeros_like(codes, dtype=np.int64)
    for j in range(codes.shape[1]):
        discretized[:, j] = np.digitize(codes[:, j], np.histogram(codes[:, j], num_bins)[1][:-1])
    m = np.array([[mutual_info_score(factors[:, k], discretized[:, j]) for k in range(factors.shape[1])] for j in range(codes.shape[1])])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    sorted_m = np.sort(m, axis=0)[::-1]
    return float(np.mean((sorted_m[0, :] - sorted_m[1, :]) / entropy))


def sap(x_train, y_train, x_test, y_test):
    scores = np.zeros([x_train.shape[1], y_train.shape[1]])
    for i in range(x_train.shape[1]):
        for j in range(y_train.shape[1]):
            classifier = LinearSVC(C=0.01, class_weight="balanced")
            classifier.fit(x_train[:, i:i + 1], y_train[:, j])
            scores[i, j] = np.mean(classifier.predict(x_test[:, i:i + 1]) == y_test[:, j])
    sorted_scores = np.sort(scores, axis=0)
    return float(np.mean(sorted_scores[-1, :] - sorted_scores[-2, :]))


# --- representations with known structure ---

def representations(rng):
    factors = np.stack([rng.integers(0, 3, N), rng.integers(0, 6, N), rng.integers(0, 10, N)], axis=1)
    scaled = factors / np.array([2.0, 5.0, 9.0])
    noise = lambda d: rng.normal(0.0, 1.0, (N, d))
    aligned = np.concatenate([scaled + 0.05 * noise(3), noise(5)], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = np.concatenate([scaled @ rotation + 0.05 * noise(3), noise(5)], axis=1)
    partial = np.concatenate([scaled[:, :1] + 0.05 * noise(1), (factors[:, 1:2] // 3) + 0.3 * noise(1), noise(6)], axis=1)
    return factors, {"aligned": aligned, "rotated": rotated, "partial": partial}


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "metrics-reference")
    out.mkdir(parents=True, exist_ok=True)
    factors, reps = representations(np.random.default_rng(0))
    results = {}
    for name, codes in reps.items():
        codes = codes.astype(np.float32)
        np.save(out / f"{name}_codes.npy", codes)
        np.save(out / f"{name}_factors.npy", factors.astype(np.int64))
        start = time.perf_counter()
        xt, yt, xs, ys = codes[:TRAIN], factors[:TRAIN], codes[TRAIN:], factors[TRAIN:]
        results[name] = {"dci": dci(xt, yt, xs, ys), "mig": mig(xt, yt), "sap": sap(xt, yt, xs, ys), "seconds": time.perf_counter() - start}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
