"""TF-IDF + logistic-regression baseline trained on the same split as the model."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline


def baseline_text(prompt: str | None, reply: str) -> str:
    """Prompt words get a prefix so the baseline, like the model, can tell context from reply."""
    prompt_words = " ".join("p_" + w for w in (prompt or "").lower().split())
    return f"{prompt_words} {reply}"


class TfidfBaseline:
    """One-vs-rest logistic regression over word and character n-gram TF-IDF features."""

    def __init__(self, seed: int = 13) -> None:
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=60000)),
                (
                    "chars",
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, max_features=80000
                    ),
                ),
            ]
        )
        clf = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed))
        self.pipeline = Pipeline([("features", features), ("clf", clf)])

    def fit(self, prompts: list[str | None], replies: list[str], y: np.ndarray) -> TfidfBaseline:
        texts = [baseline_text(p, r) for p, r in zip(prompts, replies, strict=True)]
        # a label with a single class in train cannot be fitted: OneVsRest handles constant columns
        self.pipeline.fit(texts, y)
        return self

    def predict_proba(self, prompts: list[str | None], replies: list[str]) -> np.ndarray:
        texts = [baseline_text(p, r) for p, r in zip(prompts, replies, strict=True)]
        return np.asarray(self.pipeline.predict_proba(texts), dtype=np.float32)
