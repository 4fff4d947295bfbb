"""Reference baselines for the quality benchmark: majority class and TF-IDF + logistic regression.

Both train on a data set's own train split (in-domain), which makes them strong,
honest yardsticks for the transformer models.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from stance.training.data import PairData


class MajorityBaseline:
    """Predicts the most frequent training label for every pair."""

    def fit(self, data: PairData) -> MajorityBaseline:
        """Remember the most frequent label of ``data``."""
        self.label = int(np.bincount(np.asarray(data.labels)).argmax())
        return self

    def predict(self, data: PairData) -> np.ndarray:
        """The majority label for every row of ``data``."""
        return np.full(len(data), self.label, dtype=np.int64)


class TfidfBaseline:
    """TF-IDF of premise, hypothesis and their element-wise product, into logistic regression.

    The product term carries word overlap between the two texts, which is what a bag of
    words can know about stance; class weights are balanced so rare classes count.
    """

    def __init__(self, max_features: int = 50_000, seed: int = 13) -> None:
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, sublinear_tf=True)
        self.classifier = LogisticRegression(max_iter=2000, class_weight="balanced", C=2.0, random_state=seed)

    def _features(self, data: PairData) -> sp.csr_matrix:
        premise = self.vectorizer.transform(data.premises)
        hypothesis = self.vectorizer.transform(data.hypotheses)
        return sp.hstack([premise, hypothesis, premise.multiply(hypothesis)]).tocsr()

    def fit(self, data: PairData) -> TfidfBaseline:
        """Fit the vocabulary on both sides of ``data`` and train the classifier."""
        self.vectorizer.fit(data.premises + data.hypotheses)
        self.classifier.fit(self._features(data), np.asarray(data.labels))
        return self

    def predict(self, data: PairData) -> np.ndarray:
        """Predicted label ids for ``data``."""
        return self.classifier.predict(self._features(data)).astype(np.int64)


class HypothesisOnlyBaseline:
    """TF-IDF of the hypothesis alone, into logistic regression: the hypothesis-only check.

    A classifier that never sees the premise measures how much of a data set's label can
    be guessed from the claim's wording alone (annotation artefacts such as "not" ->
    contradict). A pair model far above it reads the pair.
    """

    def __init__(self, max_features: int = 50_000, seed: int = 13) -> None:
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, sublinear_tf=True)
        self.classifier = LogisticRegression(max_iter=2000, class_weight="balanced", C=2.0, random_state=seed)

    def fit(self, data: PairData) -> HypothesisOnlyBaseline:
        """Fit on the hypotheses of ``data`` only."""
        self.classifier.fit(self.vectorizer.fit_transform(data.hypotheses), np.asarray(data.labels))
        return self

    def predict(self, data: PairData) -> np.ndarray:
        """Predicted label ids for ``data`` from its hypotheses."""
        return self.classifier.predict(self.vectorizer.transform(data.hypotheses)).astype(np.int64)
