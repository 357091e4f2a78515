"""What a finished run's history and predictions sum up to (metrics.json's derived fields)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SAMPLES_KEPT = 64  # correctly and wrongly classified test indices kept for image grids


def accuracy_summary(history: pd.DataFrame) -> dict[str, Any]:
    """The report's metric (highest over epochs) and the honest one (final epoch)."""
    if history.empty:
        return dict.fromkeys(
            ("highest_train_acc", "highest_test_acc", "final_train_acc", "final_test_acc", "best_epoch")
        )
    return {
        "highest_train_acc": float(history["train_acc"].max()),
        "highest_test_acc": float(history["test_acc"].max()),
        "final_train_acc": float(history["train_acc"].iloc[-1]),
        "final_test_acc": float(history["test_acc"].iloc[-1]),
        "best_epoch": int(history.loc[history["test_acc"].idxmax(), "epoch"]),
    }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true classes."""
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def confusion_summary(confusion: np.ndarray, top: int = 5) -> dict[str, Any]:
    """Per-class accuracy (%) and the ``top`` most frequent confusions as [true, predicted, count]."""
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    pairs = [[int(i // len(off)), int(i % len(off)), int(off.flat[i])] for i in order if off.flat[i] > 0]
    return {"per_class_acc": [round(100 * float(a), 2) for a in per_class], "most_confused": pairs}


def predictions(labels: np.ndarray, predictions: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """Every test image's dataset index, true label and predicted label at the final epoch (about
    25 KB compressed for 10,000 images): they let an interval count test-image noise as well as seed
    noise (deepcls.analysis.statistics.two_way_bootstrap) without the dataset."""
    return {"index": index.astype(np.int32), "true": labels.astype(np.uint8), "predicted": predictions.astype(np.uint8)}


def samples(labels: np.ndarray, predictions: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """The first correctly and wrongly classified test images (original dataset indices)."""
    right = np.flatnonzero(labels == predictions)[:SAMPLES_KEPT]
    wrong = np.flatnonzero(labels != predictions)[:SAMPLES_KEPT]
    return {
        "correct_index": index[right],
        "correct_pred": predictions[right],
        "wrong_index": index[wrong],
        "wrong_pred": predictions[wrong],
        "wrong_true": labels[wrong],
    }
