"""Training of :class:`knowledge.topic_model.TopicModel` from the knowledge base's own texts.

Run once per knowledge base and program version, when the matcher's index is built (then
cached on disk). scikit-learn and scipy are imported here only, so that a start from the
cache never loads them.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from knowledge.index_cache import code_digest, load_blob, store_blob
from knowledge.model import KnowledgeBase
from knowledge.topic_model import TopicModel, features

#: Inverse of the L2 regularisation strength (cross-validated on the examples: 3–30 differ little).
REGULARISATION = 10.0
#: Folds of the cross-validation the temperature is fitted on (``python -m bench.matcher_cv --calibrate``).
CALIBRATION_FOLDS = 5


def training_texts(kb: KnowledgeBase, rewrite: Callable[[str], str]) -> list[tuple[str, str]]:
    """(rewritten text, topic id): every topic's title, label, example questions and keywords."""
    rows = []
    for topic in kb.topics.values():
        for text in (topic.title, topic.label, *topic.questions, *topic.keywords):
            rewritten = rewrite(text)
            if rewritten:
                rows.append((rewritten, topic.id))
    return rows


def train(kb: KnowledgeBase, rewrite: Callable[[str], str]) -> TopicModel | None:
    """The model of ``kb`` (None with fewer than two topics: nothing to tell apart)."""
    rows = tuple(training_texts(kb, rewrite))
    if len({topic for _, topic in rows}) < 2:
        return None
    return _train(rows)


def calibrate(kb: KnowledgeBase, rewrite: Callable[[str], str]) -> float:
    """The temperature that calibrates the model's probabilities on unseen wording (cross-validated)."""
    rows = training_texts(kb, rewrite)
    labels = [topic for _, topic in rows]
    return _temperature([text for text, _ in rows], labels, tuple(sorted(set(labels))))


@lru_cache(maxsize=4)
def _train(rows: tuple[tuple[str, str], ...]) -> TopicModel:
    # The same texts give the same model: engines and tests rebuilding an index pay it once per
    # process, and once per machine through the cache (a knowledge base whose other parts changed).
    key = hashlib.sha256(code_digest() + repr(rows).encode()).hexdigest()
    cached = load_blob("model", key)
    if cached is not None:
        try:
            return TopicModel.from_plain(cached)
        except TypeError:
            pass
    model = _fit_model(rows)
    store_blob("model", key, model.to_plain())
    return model


def _fit_model(rows: tuple[tuple[str, str], ...]) -> TopicModel:
    texts = [text for text, _ in rows]
    labels = [topic for _, topic in rows]
    classes = tuple(sorted(set(labels)))
    vocabulary, idf = _vocabulary(texts)
    matrix = _matrix(texts, vocabulary, idf)
    classifier = _fit(matrix, labels)
    size = len(classes)
    order = [list(classifier.classes_).index(c) for c in classes]
    coef = array("f", [0.0]) * (len(vocabulary) * size)
    weights = classifier.coef_
    for k, row in enumerate(order):
        column_weights = weights[row]
        for column in range(len(vocabulary)):
            coef[column * size + k] = float(column_weights[column])
    intercept = tuple(float(classifier.intercept_[row]) for row in order)
    return TopicModel(classes, vocabulary, idf, coef, intercept, 1.0)


def _vocabulary(texts: list[str]) -> tuple[dict[str, int], array]:
    frequency: Counter[str] = Counter()
    for text in texts:
        chars, words = features(text)
        frequency.update(chars.keys())
        frequency.update(words.keys())
    vocabulary = {feature: column for column, feature in enumerate(sorted(frequency))}
    count = len(texts)
    # scikit-learn's smoothed IDF: as if one more text held every feature.
    idf = array("f", (math.log((1 + count) / (1 + frequency[feature])) + 1.0 for feature in sorted(frequency)))
    return vocabulary, idf


def _matrix(texts: list[str], vocabulary: dict[str, int], idf: array) -> Any:
    from scipy.sparse import csr_matrix

    from knowledge.topic_model import vectorise

    data: list[float] = []
    indices: list[int] = []
    pointers = [0]
    for text in texts:
        vector = vectorise(text, vocabulary, idf)
        for column in sorted(vector):
            indices.append(column)
            data.append(vector[column])
        pointers.append(len(indices))
    return csr_matrix((data, indices, pointers), shape=(len(texts), len(vocabulary)))


def _fit(matrix: Any, labels: list[str]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=REGULARISATION, tol=1e-3, max_iter=1000).fit(matrix, labels)


def _temperature(texts: list[str], labels: list[str], classes: tuple[str, ...]) -> float:
    """The temperature minimising the log-loss of cross-validated predictions (each fold's own vocabulary)."""
    logits: list[tuple[list[float], int]] = []
    for fold in range(CALIBRATION_FOLDS):
        train_rows = [i for i in range(len(texts)) if i % CALIBRATION_FOLDS != fold]
        test_rows = [i for i in range(len(texts)) if i % CALIBRATION_FOLDS == fold]
        train_labels = [labels[i] for i in train_rows]
        if len(set(train_labels)) < 2:
            continue
        vocabulary, idf = _vocabulary([texts[i] for i in train_rows])
        classifier = _fit(_matrix([texts[i] for i in train_rows], vocabulary, idf), train_labels)
        known = list(classifier.classes_)
        scores = classifier.decision_function(_matrix([texts[i] for i in test_rows], vocabulary, idf))
        for i, row in zip(test_rows, scores):
            if labels[i] in known:
                logits.append(([float(v) for v in row], known.index(labels[i])))
    if not logits:
        return 1.0

    def loss(temperature: float) -> float:
        total = 0.0
        for row, gold in logits:
            top = max(row)
            log_sum = math.log(sum(math.exp((v - top) / temperature) for v in row))
            total -= (row[gold] - top) / temperature - log_sum
        return total / len(logits)

    low, high = 0.05, 20.0  # the log-loss is unimodal in the temperature: golden-section search
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return round((low + high) / 2, 4)
